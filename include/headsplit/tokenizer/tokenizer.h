// Tokenizers: a vocabulary description (TokenizerData) that every source loads into and the
// artifact stores, and the Tokenizer that encodes and decodes with it.
//
// Families:
//   kLlama2c     llama2.c tokenizer.bin: BOS, a dummy-prefix space, per-codepoint lookup with
//                byte fallback (<0xXX> ids = byte + 3), greedy highest-score pair merges.
//   kSpm         SentencePiece BPE from GGUF/HF (LLaMA, LLaMA-2): the same algorithm with
//                "▁" for spaces and byte-fallback tokens looked up by name.
//   kByteLevelBpe GPT-2 style: pre-tokenizer regex, bytes mapped to printable unicode, ranked
//                merges.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/support/result.h"

namespace hs::tokenizer {

namespace detail {
class PieceMap;  // piece -> id (src/tokenizer/internal.h)
}  // namespace detail

enum class TokenizerKind : uint8_t { kLlama2c, kSpm, kByteLevelBpe };

// Token types as in GGUF tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenizerData {
  TokenizerKind kind = TokenizerKind::kLlama2c;
  std::vector<std::string> pieces;  // token id -> piece bytes (UTF-8 or raw)
  std::vector<float> scores;        // spm/llama2c merge scores (empty for byte-level BPE)
  std::vector<TokenType> types;     // may be empty (all normal)
  std::vector<std::string> merges;  // byte-level BPE merges "a b", in rank order
  std::string pre_tokenizer;        // byte-level BPE pre-tokenizer name ("gpt2", "llama3", ...)
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  std::vector<int32_t> extra_eos_ids;  // e.g. <|eot_id|>, generation_config eos lists
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = true;           // the vocabulary wants BOS prepended (GGUF add_bos_token)
  bool add_space_prefix = true;  // spm/llama2c dummy prefix
  int32_t max_token_length = 0;  // llama2c header field
  std::string chat_template;     // Jinja source as found in the model, may be empty
};

class Tokenizer {
 public:
  // Checks `data` (sizes agree, ids in range, merges well formed, pre-tokenizer known) and
  // builds the tokenizer of its kind.
  static Result<std::unique_ptr<Tokenizer>> create(TokenizerData data);
  virtual ~Tokenizer() = default;

  // Encodes text. BOS is prepended when `add_bos`, the vocabulary asks for it
  // (`data().add_bos`) and has one (`bos_id >= 0`). Control and unknown-token pieces in the
  // text become those tokens only when `parse_special` (chat templates need it), longest
  // piece first; user-defined pieces always do (as llama.cpp and Hugging Face do).
  // Empty text gives no tokens besides BOS.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos,
                                      bool parse_special = false) const = 0;
  // The bytes of one token when it follows `prev` (-1 at the start): llama2c/spm strip the
  // leading space of a piece after BOS; byte pieces decode to their byte; spm turns "▁" into
  // spaces; byte-level BPE maps its printable characters back to bytes. Control tokens,
  // BOS and EOS decode to "", out-of-range ids to "".
  virtual std::string decode_token(int32_t prev, int32_t token) const = 0;
  // Concatenates decode_token over `tokens` (the first follows -1).
  std::string decode(std::span<const int32_t> tokens) const;

  // The id of the token whose piece is exactly `piece` (as stored in TokenizerData::pieces),
  // or -1. When pieces repeat, the last id wins (as llama.cpp).
  int32_t find_piece(std::string_view piece) const;
  TokenType token_type(int32_t token) const;  // kNormal when `types` is empty

  const TokenizerData& data() const { return data_; }
  int64_t vocab_size() const { return static_cast<int64_t>(data_.pieces.size()); }
  int32_t bos_id() const { return data_.bos_id; }
  int32_t eos_id() const { return data_.eos_id; }
  // True for EOS and every extra end-of-generation id.
  bool is_eos(int32_t token) const;

 protected:
  explicit Tokenizer(TokenizerData data);
  const detail::PieceMap& piece_map() const { return *piece_map_; }
  TokenizerData data_;

 private:
  std::shared_ptr<const detail::PieceMap> piece_map_;  // piece -> id
};

}  // namespace hs::tokenizer
