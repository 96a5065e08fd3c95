// libFuzzer target: the hf_index reader (entries/fuzz_entries.h).
#include "entries/fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hs::fuzz::hf_index(data, size);
}
