// libFuzzer target: the llama2c reader (entries/fuzz_entries.h).
#include "entries/fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hs::fuzz::llama2c(data, size);
}
