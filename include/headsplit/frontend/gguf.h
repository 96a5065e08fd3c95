// GGUF reader (llama.cpp's model format): header, metadata of every value type, tensor
// infos, alignment; memory-mapped. Loads llama-architecture models and tokenizers.
#pragma once

#include <string>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::frontend {

// Reads the tokenizer (tokenizer.ggml.*) of a GGUF file, vocab-only files included.
Result<tokenizer::TokenizerData> load_gguf_tokenizer(const std::string& path);

// Loads a llama-architecture GGUF model (weights F32/F16/BF16/Q8_0 dequantized to float32,
// q/k rows permuted to rotate-half) with its tokenizer.
Result<LlamaModel> load_gguf_model(const std::string& path);

}  // namespace hs::frontend
