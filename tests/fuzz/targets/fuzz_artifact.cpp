// libFuzzer target: the artifact reader (entries/fuzz_entries.h).
#include "entries/fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hs::fuzz::artifact(data, size);
}

// The structured mutation: libFuzzer's byte mutation, then the header's file size and
// checksum rewritten, so most mutants get past the checksum to the verifier and the checks.
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  // One mutant in 8 keeps its checksum as mutated (the checksum check is fuzzed too).
  if (seed % 8 != 0) hs::fuzz::fix_artifact_checksum(data, size);
  return size;
}
