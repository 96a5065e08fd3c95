#include "headsplit/cli/cli.h"

#include <cstdio>

namespace hs::cli {

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  std::fprintf(stderr, "headsplit: no commands yet\n");
  return 1;
}

}  // namespace hs::cli
