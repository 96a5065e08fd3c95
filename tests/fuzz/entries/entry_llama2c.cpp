// Fuzz entry point(s): llama2.c checkpoint and tokenizer (see fuzz_entries.h).
#include "fuzz_entries.h"
#include "headsplit/frontend/llama2c.h"
#include "headsplit/tokenizer/llama2c.h"

namespace hs::fuzz {

int llama2c(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("model.bin", {data, size});
  (void)frontend::load_llama2c_model(path, "");
  return 0;
}

int llama2c_tokenizer(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first 2 bytes choose the vocabulary size (the checkpoint's V), the rest is the file.
  const int64_t vocab = (int64_t{data[0]} | (int64_t{data[1]} << 8)) % 4097;
  const std::string path = write_scratch("tokenizer.bin", {data + 2, size - 2});
  auto tok = tokenizer::load_llama2c_tokenizer(path, vocab);
  if (tok.ok()) exercise_tokenizer(*tok);
  return 0;
}

}  // namespace hs::fuzz
