// Byte-level BPE building blocks (GPT-2 family): the pre-tokenizer that splits text into
// words with PCRE2 regexes, and GPT-2's reversible map from bytes to printable characters.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/support/result.h"

namespace hs::tokenizer {

// Splits text into words the way a Hugging Face / llama.cpp pre-tokenizer does. A
// pre-tokenizer is a list of regexes applied in turn: each regex splits every piece produced
// so far into its matches and the text between them (both kept, in order), looking only
// inside that piece. Known names:
//   "gpt2", "gpt-2", "" (no name): the GPT-2 regex
//       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   "llama3", "llama-bpe": the Llama-3 regex (case-insensitive contractions, letters with one
//       leading non-letter, numbers of 1-3 digits, ...); BPE merges are skipped for words
//       that are already tokens (`ignore_merges`)
//   "qwen2": the Qwen2 / Qwen2.5 / Qwen3 regex (the Llama-3 one with every digit alone,
//       \p{N} instead of \p{N}{1,3}), after NFC normalization (`nfc`) as every Qwen
//       tokenizer.json asks (llama.cpp skips the NFC)
// In the Llama-3 and Qwen2 regexes \s is Unicode White_Space (tab..CR, space, U+0085,
// U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000) as in Hugging
// Face's Oniguruma; PCRE2's own \s would add U+180E.
//   "smollm": "\p{N}" (every digit alone, Hugging Face Digits(individual_digits)) and then
//       the GPT-2 regex, as llama.cpp does for SmolLM/SmolLM2
//   "default": llama.cpp's list for a GGUF BPE vocabulary without tokenizer.ggml.pre:
//       [\p{P}\$\+<=>\^~\|]+, the GPT-2 regex, \p{N}+, [0-9][0-9][0-9]
// Text that is not valid UTF-8 is split too (invalid bytes fall between matches).
class PreTokenizer {
 public:
  static Result<PreTokenizer> create(std::string_view name);

  // The words of `text`, in order; their concatenation is `text`.
  std::vector<std::string_view> split(std::string_view text) const;
  // Whether a word that is itself a token skips the merges (Llama-3).
  bool ignore_merges() const { return ignore_merges_; }
  // Whether raw text is NFC-normalized before the split (Qwen2).
  bool nfc() const { return nfc_; }
  const std::string& name() const { return name_; }

  struct Regex;  // a compiled PCRE2 regex (opaque)

 private:
  PreTokenizer(std::string name, std::vector<std::shared_ptr<const Regex>> regexes,
               bool ignore_merges, bool nfc)
      : name_(std::move(name)),
        regexes_(std::move(regexes)),
        ignore_merges_(ignore_merges),
        nfc_(nfc) {}
  std::string name_;
  std::vector<std::shared_ptr<const Regex>> regexes_;
  bool ignore_merges_ = false;
  bool nfc_ = false;
};

// GPT-2's bytes_to_unicode: bytes 33..126, 161..172 and 174..255 map to the code point of the
// same value, the 68 others to 256, 257, ... in byte order. Returns the UTF-8 of the mapped
// code points of every byte of `bytes`.
std::string bytes_to_unicode(std::string_view bytes);
// The inverse: every code point of `text` that is in the map becomes its byte; anything else
// (not in the map, invalid UTF-8) is copied unchanged.
std::string unicode_to_bytes(std::string_view text);

// Text as a Unicode string holds it: every ill-formed part of `text` becomes U+FFFD, one per
// maximal subpart (Unicode 3.9 / WHATWG, what Python's errors="replace" and JavaScript's
// TextDecoder do): "\xe4\xb8" (a cut 3-byte sequence) -> one U+FFFD, "\xc0\x80" -> two.
std::string to_valid_utf8(std::string_view text);
bool is_valid_utf8(std::string_view text);
// Unicode NFC (ICU) of `text`; ill-formed UTF-8 is first replaced as by to_valid_utf8.
std::string nfc_normalize(std::string_view text);

}  // namespace hs::tokenizer
