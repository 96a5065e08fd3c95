// One entry point for every checkpoint format: picks the reader from the path.
#pragma once

#include <string>

#include "headsplit/frontend/llama_model.h"

namespace hs::frontend {

enum class ModelFormat : uint8_t { kHuggingFace, kGguf, kLlama2c };

// A directory is a Hugging Face folder; a file ending in .gguf or starting with the GGUF magic
// is GGUF; anything else is a llama2.c checkpoint. kNotFound when the path does not exist.
Result<ModelFormat> detect_model_format(const std::string& path);

// Loads a model in any supported format. `tokenizer_path` is used by llama2.c checkpoints
// only (GGUF and Hugging Face carry their own); when empty, a llama2.c checkpoint looks for
// tokenizer.bin, then tok<V>.bin, next to it, and loads without a tokenizer if neither exists.
// Errors name the path.
Result<LlamaModel> load_model(const std::string& path, const std::string& tokenizer_path = "");

}  // namespace hs::frontend
