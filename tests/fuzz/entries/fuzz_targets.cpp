// The table of fuzz targets (for the replay test).
#include "fuzz_entries.h"

namespace hs::fuzz {

std::span<const Target> targets() {
  static const Target all[] = {
      {"gguf", gguf},
      {"safetensors", safetensors},
      {"hf_config", hf_config},
      {"hf_index", hf_index},
      {"hf_tokenizer", hf_tokenizer},
      {"llama2c", llama2c},
      {"llama2c_tokenizer", llama2c_tokenizer},
      {"artifact", artifact},
      {"ir_text", ir_text},
      {"chat_template", chat_template},
  };
  return all;
}

}  // namespace hs::fuzz
