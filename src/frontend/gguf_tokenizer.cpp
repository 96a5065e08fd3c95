// GGUF tokenizer metadata (tokenizer.ggml.*) -> TokenizerData.
#include <algorithm>

#include "headsplit/frontend/gguf.h"

namespace hs::frontend {

namespace {

using tokenizer::TokenizerData;
using tokenizer::TokenizerKind;
using tokenizer::TokenType;

constexpr uint64_t kNoToken = 0xffffffffu;  // what llama.cpp writes for "no such token"

// Reads an optional special-token id: -1 when absent or 0xffffffff, else it must be < n.
Result<int32_t> special_id(const GgufFile& f, const std::string& key, size_t n) {
  if (f.find(key) == nullptr) return -1;
  HS_ASSIGN_OR_RETURN(uint64_t id, f.get_uint(key));
  if (id == kNoToken) return -1;
  if (id >= n) {
    return errorf(ErrorKind::kCorrupt, "{}: {} is {}, outside the vocabulary of {} tokens",
                  f.path(), key, id, n);
  }
  return static_cast<int32_t>(id);
}

Result<bool> optional_bool(const GgufFile& f, const std::string& key, bool fallback) {
  if (f.find(key) == nullptr) return fallback;
  return f.get_bool(key);
}

}  // namespace

Result<TokenizerData> load_gguf_tokenizer(const std::string& path) {
  HS_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(path));
  return load_gguf_tokenizer(file);
}

Result<TokenizerData> load_gguf_tokenizer(const GgufFile& f) {
  TokenizerData t;
  HS_ASSIGN_OR_RETURN(std::string model, f.get_string("tokenizer.ggml.model"));
  if (model == "llama") {
    t.kind = TokenizerKind::kSpm;
  } else if (model == "gpt2") {
    t.kind = TokenizerKind::kByteLevelBpe;
  } else {
    return errorf(ErrorKind::kUnsupported,
                  "{}: tokenizer.ggml.model '{}' is not supported, expected llama or gpt2",
                  f.path(), model);
  }
  HS_ASSIGN_OR_RETURN(t.pieces, f.get_string_array("tokenizer.ggml.tokens"));
  const size_t n = t.pieces.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) {
    return errorf(ErrorKind::kCorrupt, "{}: tokenizer.ggml.tokens has {} tokens", f.path(), n);
  }
  if (f.find("tokenizer.ggml.scores") != nullptr) {
    HS_ASSIGN_OR_RETURN(t.scores, f.get_f32_array("tokenizer.ggml.scores"));
    if (t.scores.size() != n) {
      return errorf(ErrorKind::kCorrupt, "{}: tokenizer.ggml.scores has {} entries for {} tokens",
                    f.path(), t.scores.size(), n);
    }
  } else if (t.kind == TokenizerKind::kSpm) {
    t.scores.assign(n, 0.0f);
  }
  if (f.find("tokenizer.ggml.token_type") != nullptr) {
    HS_ASSIGN_OR_RETURN(std::vector<int64_t> types, f.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() != n) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: tokenizer.ggml.token_type has {} entries for {} tokens", f.path(),
                    types.size(), n);
    }
    t.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::kByte)) {
        return errorf(ErrorKind::kCorrupt, "{}: token {} has unknown token type {}", f.path(), i,
                      types[i]);
      }
      t.types.push_back(static_cast<TokenType>(types[i]));
    }
  }
  if (f.find("tokenizer.ggml.merges") != nullptr) {
    HS_ASSIGN_OR_RETURN(t.merges, f.get_string_array("tokenizer.ggml.merges"));
  }
  if (t.kind == TokenizerKind::kByteLevelBpe && t.merges.empty()) {
    return errorf(ErrorKind::kCorrupt, "{}: gpt2 tokenizer without tokenizer.ggml.merges",
                  f.path());
  }
  t.pre_tokenizer = "default";
  if (f.find("tokenizer.ggml.pre") != nullptr) {
    HS_ASSIGN_OR_RETURN(t.pre_tokenizer, f.get_string("tokenizer.ggml.pre"));
  }
  HS_ASSIGN_OR_RETURN(t.bos_id, special_id(f, "tokenizer.ggml.bos_token_id", n));
  HS_ASSIGN_OR_RETURN(t.eos_id, special_id(f, "tokenizer.ggml.eos_token_id", n));
  HS_ASSIGN_OR_RETURN(t.unk_id, special_id(f, "tokenizer.ggml.unknown_token_id", n));
  HS_ASSIGN_OR_RETURN(t.pad_id, special_id(f, "tokenizer.ggml.padding_token_id", n));
  // llama.cpp: the GLM-4 / GLM-edge vocabularies have no BOS (special_bos_id = NULL whatever
  // tokenizer.ggml.bos_token_id says).
  if (t.pre_tokenizer == "glm4" || t.pre_tokenizer == "chatglm-bpe") t.bos_id = -1;
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    HS_ASSIGN_OR_RETURN(int32_t id, special_id(f, key, n));
    if (id >= 0 && id != t.eos_id &&
        std::find(t.extra_eos_ids.begin(), t.extra_eos_ids.end(), id) == t.extra_eos_ids.end()) {
      t.extra_eos_ids.push_back(id);
    }
  }
  const bool spm = t.kind == TokenizerKind::kSpm;
  HS_ASSIGN_OR_RETURN(t.add_bos, optional_bool(f, "tokenizer.ggml.add_bos_token", spm));
  HS_ASSIGN_OR_RETURN(t.add_space_prefix, optional_bool(f, "tokenizer.ggml.add_space_prefix", spm));
  if (f.find("tokenizer.chat_template") != nullptr) {
    HS_ASSIGN_OR_RETURN(t.chat_template, f.get_string("tokenizer.chat_template"));
  }
  size_t longest = 0;
  for (const std::string& p : t.pieces) longest = std::max(longest, p.size());
  t.max_token_length = static_cast<int32_t>(std::min<size_t>(longest, INT32_MAX));
  return t;
}

}  // namespace hs::frontend
