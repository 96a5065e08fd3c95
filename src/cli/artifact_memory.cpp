// --mmap: where a command keeps the artifact it runs (artifact::Residence).
#include <CLI/CLI.hpp>

#include "headsplit/cli/commands.h"

namespace hs::cli {

void add_mmap_flag(CLI::App& command, bool& mmap) {
  command.add_flag("--mmap", mmap,
                   "memory-map the artifact instead of reading it into huge pages: less memory "
                   "when several processes share one cached file, slower decode (a TLB miss every "
                   "4 KiB of weights read)");
}

artifact::Residence residence_of(bool mmap) {
  return mmap ? artifact::Residence::kMapped : artifact::Residence::kHugePages;
}

}  // namespace hs::cli
