// hs_fuzz_seeds <out_dir>: writes the fuzz seed corpora (see entries/fuzz_seeds.h).
#include <cstdio>

#include "entries/fuzz_seeds.h"
#include "headsplit/support/shared_dir.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <out_dir>\n", argv[0]);
    return 2;
  }
  const int n = hs::fuzz::write_seeds(argv[1], hs::shared_dir(), HS_SOURCE_DIR);
  std::printf("wrote %d seeds under %s\n", n, argv[1]);
  return n > 0 ? 0 : 1;
}
