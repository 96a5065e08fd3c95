// libFuzzer target: the chat_template reader (entries/fuzz_entries.h).
#include "entries/fuzz_entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hs::fuzz::chat_template(data, size);
}
