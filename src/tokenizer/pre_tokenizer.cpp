// The byte-level BPE pre-tokenizer (PCRE2 regexes in UTF + Unicode-property mode) and GPT-2's
// bytes <-> printable unicode map.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "headsplit/tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include <array>

#include "internal.h"

namespace hs::tokenizer {
namespace {

// GPT-2 (openai/gpt-2 encoder.py), with the final `\s+` llama.cpp leaves to its custom code.
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama-3 and Qwen2 (tokenizer.json), with `(?i:'s|...)` spelled out per letter as llama.cpp
// and transformers.js do, so that Unicode case folding (e.g. U+017F "ſ" ~ "s") does not widen
// the contractions, and \s / \S as Unicode White_Space (Oniguruma's \s in Hugging Face).
// Llama-3 takes numbers as \p{N}{1,3}, Qwen2 as \p{N}.
constexpr std::string_view kWhiteSpace =
    R"(\t-\r \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000})";

// The Llama-3 regex with `numbers` for its digit alternative and W = kWhiteSpace:
//   contractions|[^\r\n\p{L}\p{N}]?\p{L}+|numbers| ?[^W\p{L}\p{N}]+[\r\n]*|[W]*[\r\n]+|
//   [W]+(?![^W])|[W]+
std::string bpe_regex(std::string_view numbers) {
  const std::string w(kWhiteSpace);
  return std::string(R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|)") +
         R"([^\r\n\p{L}\p{N}]?\p{L}+|)" + std::string(numbers) + "| ?[^" + w +
         R"(\p{L}\p{N}]+[\r\n]*|[)" + w + R"(]*[\r\n]+|[)" + w + "]+(?![^" + w + "])|[" + w + "]+";
}

// o200k (GPT-4o / Phi-4-mini tokenizer.json, llama.cpp's gpt-4o), contractions spelled out per
// letter and \s / \S as Unicode White_Space (W) as above:
//   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+c?|
//   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*c?|
//   \p{N}{1,3}| ?[^W\p{L}\p{N}]+[\r\n/]*|[W]*[\r\n]+|[W]+(?![^W])|[W]+
std::string o200k_regex() {
  const std::string w(kWhiteSpace);
  const std::string c = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?)";
  const std::string upper = R"([\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}])";
  const std::string lower = R"([\p{Ll}\p{Lm}\p{Lo}\p{M}])";
  const std::string lead = R"([^\r\n\p{L}\p{N}]?)";
  return lead + upper + "*" + lower + "+" + c + "|" + lead + upper + "+" + lower + "*" + c +
         R"(|\p{N}{1,3}| ?[^)" + w + R"(\p{L}\p{N}]+[\r\n/]*|[)" + w + R"(]*[\r\n]+|[)" + w +
         "]+(?![^" + w + "])|[" + w + "]+";
}

constexpr std::string_view kDigitRegex = R"(\p{N})";
// llama.cpp's list for a BPE vocabulary without tokenizer.ggml.pre ("default").
constexpr std::string_view kDefaultPunctRegex = R"([\p{P}\$\+<=>\^~\|]+)";
constexpr std::string_view kNumbersRegex = R"(\p{N}+)";
constexpr std::string_view kThreeDigitsRegex = R"([0-9][0-9][0-9])";

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

namespace {

Result<std::shared_ptr<const PreTokenizer::Regex>> compile(std::string_view pattern);

}  // namespace

Result<PreTokenizer> PreTokenizer::create(std::string_view name) {
  std::vector<std::string> patterns;
  bool ignore_merges = false;
  bool nfc = false;
  if (name.empty() || name == "gpt2" || name == "gpt-2") {
    patterns = {std::string(kGpt2Regex)};
  } else if (name == "llama3" || name == "llama-bpe") {
    patterns = {bpe_regex(R"(\p{N}{1,3})")};
    ignore_merges = true;
  } else if (name == "glm4" || name == "chatglm-bpe") {
    // llama.cpp's CHATGLM4 (GLM-4, GLM-edge): Llama-3's regex, merges always applied.
    patterns = {bpe_regex(R"(\p{N}{1,3})")};
  } else if (name == "qwen2") {
    patterns = {bpe_regex(R"(\p{N})")};
    nfc = true;
  } else if (name == "o200k" || name == "gpt-4o") {
    patterns = {o200k_regex()};
  } else if (name == "smollm") {
    patterns = {std::string(kDigitRegex), std::string(kGpt2Regex)};
  } else if (name == "default") {
    patterns = {std::string(kDefaultPunctRegex), std::string(kGpt2Regex),
                std::string(kNumbersRegex), std::string(kThreeDigitsRegex)};
  } else {
    return errorf(ErrorKind::kUnsupported,
                  "unknown byte-level bpe pre-tokenizer '{}' (known: gpt2, gpt-2, llama3, "
                  "llama-bpe, glm4, chatglm-bpe, qwen2, smollm, o200k, gpt-4o, default)",
                  name);
  }
  std::vector<std::shared_ptr<const Regex>> regexes;
  for (const std::string& pattern : patterns) {
    HS_ASSIGN_OR_RETURN(auto regex, compile(pattern));
    regexes.push_back(std::move(regex));
  }
  return PreTokenizer(std::string(name), std::move(regexes), ignore_merges, nfc);
}

namespace {

Result<std::shared_ptr<const PreTokenizer::Regex>> compile(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  auto regex = std::make_shared<PreTokenizer::Regex>();
  regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code,
                              &error_offset, nullptr);
  if (regex->code == nullptr) {
    std::array<PCRE2_UCHAR, 256> message{};
    pcre2_get_error_message(error_code, message.data(), message.size());
    return errorf(ErrorKind::kInternal, "pre-tokenizer regex '{}': {} at offset {}", pattern,
                  reinterpret_cast<const char*>(message.data()), error_offset);
  }
  return std::shared_ptr<const PreTokenizer::Regex>(std::move(regex));
}

// Appends to `out` the matches of `code` in `piece` and the text between them.
void split_piece(const pcre2_code* code, pcre2_match_data* match, std::string_view piece,
                 std::vector<std::string_view>& out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t offset = 0;
  size_t last = 0;  // end of what has been emitted
  while (offset < piece.size()) {
    const int rc = pcre2_match(code, subject, piece.size(), offset, 0, match, nullptr);
    if (rc < 0) break;  // no (further) match
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end == begin) {  // an empty match (none of the known regexes has one): step over it
      offset = begin + tokenizer::detail::utf8_sequence_length(
                           static_cast<unsigned char>(piece[begin < piece.size() ? begin : 0]));
      continue;
    }
    if (begin > last) out.push_back(piece.substr(last, begin - last));
    out.push_back(piece.substr(begin, end - begin));
    last = end;
    offset = end;
  }
  if (last < piece.size()) out.push_back(piece.substr(last));
}

}  // namespace

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(regex->code, nullptr);
    HS_CHECK(match != nullptr, "pcre2_match_data_create_from_pattern failed (out of memory)");
    next.clear();
    for (std::string_view piece : pieces) split_piece(regex->code, match, piece, next);
    pcre2_match_data_free(match);
    pieces.swap(next);
  }
  return pieces;
}

namespace {

struct ByteMap {
  std::array<uint32_t, 256> to_code_point{};
  std::array<int16_t, 324> to_byte{};  // code point -> byte, -1 when not in the map

  ByteMap() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      to_code_point[b] = printable ? b : next++;
      to_byte[to_code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {  // the map only reaches U+0143
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

std::string bytes_to_unicode(std::string_view bytes) {
  const ByteMap& map = byte_map();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(map.to_code_point[static_cast<unsigned char>(c)], out);
  return out;
}

std::string unicode_to_bytes(std::string_view text) {
  const ByteMap& map = byte_map();
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    // Only 1- and 2-byte sequences can be in the map (code points below 0x800).
    if (lead < 0x80) {
      const int16_t byte = map.to_byte[lead];
      out += byte >= 0 ? static_cast<char>(byte) : text[i];
      ++i;
      continue;
    }
    if ((lead & 0xE0) == 0xC0 && i + 1 < text.size() &&
        (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      const uint32_t cp = ((lead & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
      if (cp < map.to_byte.size() && map.to_byte[cp] >= 0) {
        out += static_cast<char>(map.to_byte[cp]);
      } else {
        out.append(text.substr(i, 2));
      }
      i += 2;
      continue;
    }
    out += text[i++];  // longer sequences and invalid bytes: copied unchanged
  }
  return out;
}

}  // namespace hs::tokenizer
