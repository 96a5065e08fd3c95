// Seed corpora for the fuzz targets (see fuzz_entries.h).
#pragma once

#include <string>

namespace hs::fuzz {

// Writes <out_dir>/<target>/<seed> for every target: small generated files, the shared
// folder's small models (stories260K .bin/.gguf/tok512.bin) when present, and the repository's
// golden IR texts (`source_dir`/tests/golden). Returns the number of seeds written.
int write_seeds(const std::string& out_dir, const std::string& shared_dir,
                const std::string& source_dir);

}  // namespace hs::fuzz
