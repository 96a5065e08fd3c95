// Private helpers of the tokenizer library: the piece -> id map, UTF-8 helpers, the split of
// text around special-token pieces, and the factories of the tokenizer kinds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "headsplit/tokenizer/tokenizer.h"

namespace hs::tokenizer::detail {

// Hash map from piece bytes to token id, looked up by string_view without copies. Empty
// pieces are not entered; a repeated piece maps to its last id (as llama.cpp).
class PieceMap {
 public:
  explicit PieceMap(const std::vector<std::string>& pieces);
  int32_t find(std::string_view piece) const;  // -1 when absent

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> map_;
};

// Length of the UTF-8 sequence a lead byte announces (llama.cpp's unicode_len_utf8): 1 for
// ASCII and stray continuation bytes, 2, 3 or 4 from the high bits.
inline size_t utf8_sequence_length(unsigned char lead) {
  static constexpr size_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

// The byte a piece of the form "<0xHH>" (exactly 6 chars, hex digits of either case) stands
// for, or nullopt.
std::optional<uint8_t> parse_byte_piece(std::string_view piece);

// A part of the input text: raw text to tokenize normally, or one special token.
struct Fragment {
  std::string_view text;  // the raw text, or the special token's piece
  int32_t token = -1;     // >= 0: a special token
};

// Splits text around special-token pieces as llama.cpp's tokenizer_st_partition: pieces are
// tried longest first (ties: lower id), each splitting every raw fragment at all of its
// non-overlapping occurrences, left to right. Control and unknown-type pieces take part only
// when `parse_special`; user-defined pieces always do.
class SpecialSplitter {
 public:
  explicit SpecialSplitter(const TokenizerData& data);
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Special {
    int32_t id;
    bool always;  // user-defined: split even without parse_special
  };
  const TokenizerData& data_;
  std::vector<Special> specials_;  // longest piece first
};

// Factories of the tokenizer kinds; `data` has been checked by Tokenizer::create.
Result<std::unique_ptr<Tokenizer>> make_spm_tokenizer(TokenizerData data);  // kLlama2c, kSpm
Result<std::unique_ptr<Tokenizer>> make_byte_level_bpe_tokenizer(TokenizerData data);

}  // namespace hs::tokenizer::detail
