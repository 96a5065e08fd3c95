// Fuzz entry point(s): IR text parser (see fuzz_entries.h).
#include <cstdio>

#include "fuzz_entries.h"
#include "headsplit/ir/text.h"
#include "headsplit/ir/verifier.h"

namespace hs::fuzz {

int ir_text(const uint8_t* data, size_t size) {
  auto graph = ir::parse_graph(as_text(data, size), "fuzz");
  if (!graph.ok()) return 0;
  if (!ir::verify(*graph).ok()) return 0;
  const std::string printed = ir::print_graph(*graph);
  auto again = ir::parse_graph(printed, "printed");
  if (!again.ok() || ir::print_graph(*again) != printed) {
    std::fprintf(stderr, "ir text does not round-trip:\n%s\n", printed.c_str());
    __builtin_trap();
  }
  return 0;
}

}  // namespace hs::fuzz
