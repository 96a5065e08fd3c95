// What a file given to `tokenize`, `info` and `perplexity` holds, and its tokenizer: a .hsa
// artifact, a GGUF file (a model, or vocabulary only), a Hugging Face folder or its
// tokenizer.json, a llama2.c tokenizer.bin, or a llama2.c checkpoint (tokenizer next to it).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::cli {

enum class SourceKind : uint8_t {
  kArtifact,           // .hsa (artifact magic)
  kGguf,               // "GGUF" magic or .gguf
  kHuggingFace,        // a folder (config.json and/or tokenizer.json)
  kTokenizerJson,      // a Hugging Face tokenizer.json file
  kLlama2cTokenizer,   // llama2.c tokenizer.bin: records that end exactly at the end of file
  kLlama2cCheckpoint,  // anything else
};
std::string_view source_kind_name(SourceKind kind);  // "artifact (.hsa)", "GGUF", ...

// kNotFound naming `path` when it does not exist; kInvalidArgument for a .json file other than
// tokenizer.json.
Result<SourceKind> detect_source(const std::string& path);

// The number of pieces of a llama2.c tokenizer.bin (int32 max_token_length, then per piece
// f32 score, i32 length, bytes), or nullopt when `bytes` is not one: a record runs past the
// end, a length is negative, or nothing is left for a single record.
std::optional<int64_t> llama2c_tokenizer_pieces(std::span<const std::byte> bytes);

// The tokenizer a source holds. `tokenizer_path` overrides it for llama2.c checkpoints (as
// `-t` of the other commands). Errors name the path and say that it holds no tokenizer
// (kNotFound) when the source has none.
Result<tokenizer::TokenizerData> load_source_tokenizer(const std::string& path,
                                                       const std::string& tokenizer_path = "");

// Text for one line of output: valid UTF-8 as is, \n \t \r \\ \' escaped, other control
// bytes and bytes that are not valid UTF-8 as \xNN.
std::string escape_text(std::string_view s);

}  // namespace hs::cli
