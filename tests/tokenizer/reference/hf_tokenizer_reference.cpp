// headsplit's side of the Hugging Face tokenizer reference test (hf_reference_test.sh):
//   corpus <out.bin> <records>   writes a deterministic corpus (seeded mt19937): code, digits,
//                                CJK, emoji, whitespace runs, ill-formed UTF-8, special-token
//                                text, mixed scripts, decomposed accents; records are a
//                                little-endian uint32 byte length and the bytes
//   check <name> <tokenizer dir> <corpus.bin> <reference.jsonl>
//                                encodes every record with load_hf_tokenizer + Tokenizer
//                                (BOS as the vocabulary asks, special-token text parsed) and
//                                compares with the JavaScript reference (hf_reference.cjs):
//                                ids equal, decode equal to the reference's decode, and for
//                                records without special-token text decode(encode(x)) equal
//                                to the reference's input string (x with U+FFFD, NFC'd when
//                                the tokenizer normalizes). Exit 1 naming the first mismatches.
//   chat <rendered.json>         compares headsplit's chat forms with the conversations the
//                                JavaScript reference rendered (hf_chat.cjs): the family
//                                detected from each real template, and the text of
//                                chat_prefix + (chat_user_turn + answer + chat_end_of_answer)*
//                                + chat_user_turn (the first with first_turn).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "headsplit/frontend/hf.h"
#include "headsplit/tokenizer/chat.h"
#include "headsplit/tokenizer/pre_tokenizer.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace {

using Rng = std::mt19937;

size_t pick(Rng& rng, size_t n) { return static_cast<size_t>(rng() % n); }

template <typename T>
const T& one_of(Rng& rng, const std::vector<T>& items) {
  return items[pick(rng, items.size())];
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A code point from [lo, hi].
std::string in_range(Rng& rng, uint32_t lo, uint32_t hi) {
  return utf8(lo + static_cast<uint32_t>(pick(rng, hi - lo + 1)));
}

const std::vector<std::string> kWords = {
    "the",         "model", "splits", "heads", "quantize", "token",    "Hello",  "WORLD",
    "I'm",         "don't", "WE'LL",  "she'd", "they've",  "it's",     "you're", "O'Neil",
    "rock'n'roll", "naïve", "café",   "über",  "façade",   "jalapeño", "Ærø",    "smörgåsbord"};
const std::vector<std::string> kCode = {"int main(void) {\n    return 0;\n}",
                                        "for (size_t i = 0; i < n; ++i) { a[i] += b[i] * 2; }",
                                        "def f(x):\n\treturn x ** 2  # square\n",
                                        "if x != None and y >= 0x1F:\n    print(f\"{x!r:>10}\")",
                                        "const auto& [k, v] = *it;  // C++17",
                                        "{\"name\": \"qwen3\", \"layers\": 28, \"theta\": 1e6}",
                                        "$ ls -la | grep '^d' >> out.txt 2>&1",
                                        "<div class=\"x\">&nbsp;</div>",
                                        "SELECT id, COUNT(*) FROM t WHERE a<>b GROUP BY id;",
                                        "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
                                        "x=[1,2,3];y={'a':(4,5)}\r\nz = x[::-1]",
                                        "#include <vector>\n#define MAX(a,b) ((a)>(b)?(a):(b))",
                                        "    \t  indented();\n\n\n    more();"};
const std::vector<std::string> kSpecials = {"<|im_start|>",
                                            "<|im_end|>",
                                            "<|endoftext|>",
                                            "<think>",
                                            "</think>",
                                            "<tool_call>",
                                            "<|begin_of_text|>",
                                            "<|eot_id|>",
                                            "<|start_header_id|>",
                                            "<|end_header_id|>",
                                            "<|im_start",
                                            "|im_end|>",
                                            "<|reserved_special_token_5|>",
                                            "<|vision_pad|>"};
// Whitespace of Unicode White_Space that both references treat alike (U+0085 and U+FEFF are
// left out: JavaScript's \s differs from Unicode White_Space there; see the test's notes).
const std::vector<std::string> kSpaces = {
    " ",      " ",      "  ",     "\t",     "\n",     "\r\n",   "\n\n",   "\r",   "\u00a0",
    "\u3000", "\u2003", "\u2009", "\u202f", "\u205f", "\u2028", "\u2029", "\x0b", "\x0c"};
const std::vector<std::string> kInvalid = {"\xff",         "\xfe",
                                           "\x80",         "\xbf\xbf",
                                           "\xc0\x80",     "\xc3",
                                           "\xe4\xb8",     "\xf0\x9f\x98",
                                           "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                           "\xe0\x80\xaf", "\xf8\x88\x80\x80\x80",
                                           "\xc1\xbf",     "\xf5"};

std::string digits(Rng& rng) {
  std::string s;
  const size_t n = 1 + pick(rng, 14);
  for (size_t i = 0; i < n; ++i) s += static_cast<char>('0' + pick(rng, 10));
  switch (pick(rng, 8)) {
    case 0: s += fmt::format(".{}", pick(rng, 1000)); break;
    case 1: s.insert(0, 1, '-'); break;
    case 2: s += fmt::format(",{}", 100 + pick(rng, 900)); break;
    case 3: s = in_range(rng, 0x660, 0x669) + in_range(rng, 0x660, 0x669); break;      // ٠-٩
    case 4: s = in_range(rng, 0xFF10, 0xFF19) + in_range(rng, 0xFF10, 0xFF19); break;  // fullwidth
    case 5: s += "\u00b2\u00bd\u2167"; break;                 // ², ½, Ⅷ (\p{N})
    case 6: s.insert(0, in_range(rng, 0x966, 0x96F)); break;  // Devanagari digits
    default: break;
  }
  return s;
}

std::string cjk(Rng& rng) {
  std::string s;
  const size_t n = 1 + pick(rng, 8);
  for (size_t i = 0; i < n; ++i) {
    switch (pick(rng, 6)) {
      case 0: s += in_range(rng, 0x3041, 0x3096); break;  // Hiragana
      case 1: s += in_range(rng, 0x30A1, 0x30FA); break;  // Katakana
      case 2: s += in_range(rng, 0xAC00, 0xD7A3); break;  // Hangul syllables
      case 3:
        s += one_of(rng, std::vector<std::string>{"\u3001", "\u3002", "\u300c", "\u300d", "\uff0c",
                                                  "\uff01", "\u30fc"});
        break;
      default: s += in_range(rng, 0x4E00, 0x9FA5); break;  // CJK unified ideographs
    }
  }
  return s;
}

std::string emoji(Rng& rng) {
  switch (pick(rng, 7)) {
    case 0: return in_range(rng, 0x1F600, 0x1F64F);
    case 1: return in_range(rng, 0x1F300, 0x1F5FF);
    case 2: return in_range(rng, 0x1F466, 0x1F469) + in_range(rng, 0x1F3FB, 0x1F3FF);  // skin
    case 3: return "\U0001F468\u200d\U0001F469\u200d\U0001F467";                       // ZWJ family
    case 4: return in_range(rng, 0x1F1E6, 0x1F1FF) + in_range(rng, 0x1F1E6, 0x1F1FF);  // flag
    case 5: return std::string(1, static_cast<char>('0' + pick(rng, 10))) + "\ufe0f\u20e3";
    default: return in_range(rng, 0x2600, 0x26FF) + "\ufe0f";
  }
}

std::string script(Rng& rng) {
  std::string s;
  const size_t n = 2 + pick(rng, 7);
  uint32_t lo = 0;
  uint32_t hi = 0;
  switch (pick(rng, 8)) {
    case 0:
      lo = 0x3B1;
      hi = 0x3C9;
      break;  // Greek
    case 1:
      lo = 0x430;
      hi = 0x44F;
      break;  // Cyrillic
    case 2:
      lo = 0x627;
      hi = 0x64A;
      break;  // Arabic
    case 3:
      lo = 0x5D0;
      hi = 0x5EA;
      break;  // Hebrew
    case 4:
      lo = 0x915;
      hi = 0x939;
      break;  // Devanagari
    case 5:
      lo = 0xE01;
      hi = 0xE2E;
      break;  // Thai
    case 6:
      lo = 0xC0;
      hi = 0xFF;
      break;  // Latin-1 letters (and × ÷)
    default:
      lo = 0x100;
      hi = 0x17E;
      break;  // Latin Extended-A (no U+017F)
  }
  for (size_t i = 0; i < n; ++i) s += in_range(rng, lo, hi);
  return s;
}

// Decomposed and compatibility forms that NFC changes (or must leave alone).
std::string decomposed(Rng& rng) {
  const std::string base(1, static_cast<char>("aeiouAEIOUnc"[pick(rng, 12)]));
  switch (pick(rng, 6)) {
    case 0: return base + in_range(rng, 0x300, 0x308);                             // combining mark
    case 1: return base + "\u0323\u0302";                                          // two marks
    case 2: return in_range(rng, 0x1100, 0x1112) + in_range(rng, 0x1161, 0x1175);  // jamo
    case 3: return "\u212b\u2126";        // Å Ω singletons
    case 4: return "\ufb01\uff21\u2460";  // ﬁ Ａ ① (kept)
    default: return "\u1e9b\u0323";       // ẛ̣
  }
}

std::string atom(Rng& rng, size_t kind) {
  switch (kind) {
    case 0: return one_of(rng, kCode);
    case 1: return digits(rng);
    case 2: return cjk(rng);
    case 3: return emoji(rng);
    case 4: return one_of(rng, kSpaces) + one_of(rng, kSpaces) + one_of(rng, kSpaces);
    case 5: return one_of(rng, kInvalid);
    case 6: return one_of(rng, kSpecials);
    case 7: return script(rng);
    case 8: return decomposed(rng);
    default: return one_of(rng, kWords);
  }
}

// Record i: a theme (i % 10) dominates, mixed with words, spaces and other atoms.
std::string record(Rng& rng, size_t i) {
  const size_t theme = i % 10;
  std::string s;
  const size_t n = 1 + pick(rng, i % 97 == 0 ? 60 : 12);
  for (size_t k = 0; k < n; ++k) {
    const size_t r = pick(rng, 10);
    const size_t kind = r < 5 ? theme : (r < 7 ? 9 : (r < 8 ? 4 : pick(rng, 10)));
    if (k > 0 && pick(rng, 3) != 0) s += pick(rng, 5) == 0 ? one_of(rng, kSpaces) : " ";
    s += atom(rng, kind);
  }
  if (pick(rng, 8) == 0) s = one_of(rng, kSpaces) + s;  // leading / trailing whitespace
  if (pick(rng, 8) == 0) s += one_of(rng, kSpaces);
  return s;
}

int write_corpus(const std::string& path, size_t records) {
  Rng rng(20261202);
  std::ofstream out(path, std::ios::binary);
  for (size_t i = 0; i < records; ++i) {
    const std::string s = record(rng, i);
    const auto n = static_cast<uint32_t>(s.size());
    const char len[4] = {static_cast<char>(n & 0xFF), static_cast<char>((n >> 8) & 0xFF),
                         static_cast<char>((n >> 16) & 0xFF), static_cast<char>(n >> 24)};
    out.write(len, 4);
    out.write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  if (!out) {
    fmt::print(stderr, "cannot write {}\n", path);
    return 1;
  }
  fmt::print("corpus: {} records in {}\n", records, path);
  return 0;
}

std::vector<std::string> read_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> records;
  unsigned char len[4];
  while (in.read(reinterpret_cast<char*>(len), 4)) {
    const uint32_t n = len[0] | (len[1] << 8) | (len[2] << 16) | (uint32_t{len[3]} << 24);
    std::string s(n, '\0');
    in.read(s.data(), n);
    records.push_back(std::move(s));
  }
  return records;
}

std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

bool has_special_text(const std::string& s) {
  for (const std::string& special : kSpecials) {
    if (s.find(special) != std::string::npos) return true;
  }
  return false;
}

int check(const std::string& name, const std::string& dir, const std::string& corpus_path,
          const std::string& reference_path) {
  auto data = hs::frontend::load_hf_tokenizer(dir);
  if (!data.ok()) {
    fmt::print(stderr, "{}: {}\n", name, data.error().message());
    return 1;
  }
  const std::string pre = data->pre_tokenizer;
  // SentencePiece-style vocabularies keep ill-formed UTF-8 as raw bytes (byte fallback,
  // lossless, as llama.cpp's SPM tokenizer does); the reference can only see the Unicode string
  // with U+FFFD in their place. For those records the ids are compared on the reference's
  // string, and the raw bytes must survive encode -> decode.
  const bool raw_bytes = data->kind == hs::tokenizer::TokenizerKind::kSpm;
  auto tokenizer = hs::tokenizer::Tokenizer::create(std::move(data).value());
  if (!tokenizer.ok()) {
    fmt::print(stderr, "{}: {}\n", name, tokenizer.error().message());
    return 1;
  }
  const std::vector<std::string> records = read_corpus(corpus_path);
  std::ifstream ref(reference_path);
  std::string line;
  size_t i = 0;
  size_t ids_equal = 0;
  size_t decode_equal = 0;
  size_t round_trips = 0;
  size_t round_trips_equal = 0;
  size_t invalid = 0;
  size_t raw_checked = 0;  // ill-formed records without special-token text (raw_bytes)
  size_t raw_kept = 0;
  size_t tokens = 0;
  size_t shown = 0;
  while (std::getline(ref, line)) {
    if (i >= records.size()) break;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      fmt::print(stderr, "{}: {} line {} is not JSON\n", name, reference_path, i + 1);
      return 1;
    }
    const std::vector<int32_t> expected = j["ids"].get<std::vector<int32_t>>();
    const bool valid = hs::tokenizer::is_valid_utf8(records[i]);
    const std::string as_unicode = j["text"].get<std::string>();
    const std::string& x = !valid && raw_bytes ? as_unicode : records[i];
    const std::vector<int32_t> got = (*tokenizer)->encode(x, /*add_bos=*/true, true);
    const std::string decoded = (*tokenizer)->decode(got);
    invalid += valid ? 0 : 1;
    if (!valid && raw_bytes && !has_special_text(records[i])) {
      const std::string raw = (*tokenizer)->decode((*tokenizer)->encode(records[i], true, true));
      const bool kept = raw == records[i];
      ++raw_checked;
      raw_kept += kept ? 1 : 0;
      if (!kept && shown++ < 8) {
        fmt::print("{} record {}: raw bytes \"{}\" decode to \"{}\"\n", name, i,
                   escaped(records[i]), escaped(raw));
      }
    }
    tokens += got.size();
    const bool ids_ok = got == expected;
    const bool decode_ok = decoded == j["decoded"].get<std::string>();
    bool round_trip_ok = true;
    if (!has_special_text(x)) {
      ++round_trips;
      round_trip_ok = decoded == j["text"].get<std::string>();
      round_trips_equal += round_trip_ok ? 1 : 0;
    }
    ids_equal += ids_ok ? 1 : 0;
    decode_equal += decode_ok ? 1 : 0;
    if ((!ids_ok || !decode_ok || !round_trip_ok) && shown++ < 8) {
      fmt::print("{} record {}: \"{}\"\n  headsplit: {}\n  reference: {}\n  decode: \"{}\"\n", name,
                 i, escaped(x), fmt::join(got, " "), fmt::join(expected, " "), escaped(decoded));
    }
    ++i;
  }
  if (i != records.size()) {
    fmt::print(stderr, "{}: the reference has {} lines for {} records\n", name, i, records.size());
    return 1;
  }
  fmt::print(
      "{} (pre-tokenizer {}): {} records ({} with ill-formed UTF-8, {} tokens): ids equal {}/{}, "
      "decode equal {}/{}, round trip equal {}/{}\n",
      name, pre, i, invalid, tokens, ids_equal, i, decode_equal, i, round_trips_equal, round_trips);
  if (raw_bytes) {
    fmt::print("{}: ill-formed records compared on the reference's U+FFFD string; their raw "
               "bytes kept by encode -> decode {}/{}\n",
               name, raw_kept, raw_checked);
  }
  return ids_equal == i && decode_equal == i && round_trips_equal == round_trips &&
                 raw_kept == raw_checked
             ? 0
             : 1;
}

int check_chat(const std::string& rendered_path) {
  std::ifstream in(rendered_path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const nlohmann::json cases = nlohmann::json::parse(buffer.str(), nullptr, false);
  if (cases.is_discarded() || !cases.is_array()) {
    fmt::print(stderr, "chat: {} is not a JSON array\n", rendered_path);
    return 1;
  }
  size_t equal = 0;
  size_t detected = 0;
  for (const nlohmann::json& c : cases) {
    const std::string family = c["family"].get<std::string>();
    auto named = hs::tokenizer::parse_chat_template_name(family);
    auto found = hs::tokenizer::detect_chat_template(c["template"].get<std::string>());
    if (!named.ok()) {
      fmt::print("chat: {}\n", named.error().message());
      continue;
    }
    if (found.ok() && *found == *named) {
      ++detected;
    } else {
      fmt::print("chat {}: the real template is detected as {}\n", family,
                 found.ok() ? hs::tokenizer::chat_template_name(*found) : found.error().message());
    }
    std::optional<std::string> system;
    if (!c["system"].is_null()) system = c["system"].get<std::string>();
    const std::vector<std::string> turns = c["turns"].get<std::vector<std::string>>();
    const std::string today = c["today"].get<std::string>();
    std::string text = hs::tokenizer::chat_prefix(
        *named, system ? std::optional<std::string_view>(*system) : std::nullopt, today);
    for (size_t i = 0; i < turns.size(); ++i) {
      if (i % 2 == 0) {
        text += hs::tokenizer::chat_user_turn(
            *named, turns[i], system ? std::optional<std::string_view>(*system) : std::nullopt,
            /*first_turn=*/i == 0);
      } else {
        text += turns[i];
        text += hs::tokenizer::chat_end_of_answer(*named);
      }
    }
    const std::string expected = c["text"].get<std::string>();
    if (text == expected) {
      ++equal;
    } else {
      fmt::print("chat {} (today '{}'):\n  headsplit: \"{}\"\n  reference: \"{}\"\n", family, today,
                 escaped(text), escaped(expected));
    }
  }
  fmt::print(
      "chat: {} conversations, text equal {}/{}, family detected from the real template "
      "{}/{}\n",
      cases.size(), equal, cases.size(), detected, cases.size());
  return equal == cases.size() && detected == cases.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "corpus") {
    return write_corpus(args[1], static_cast<size_t>(std::stoul(args[2])));
  }
  if (args.size() == 5 && args[0] == "check") return check(args[1], args[2], args[3], args[4]);
  if (args.size() == 2 && args[0] == "chat") return check_chat(args[1]);
  fmt::print(stderr,
             "usage: hf_tokenizer_reference corpus <out.bin> <records>\n"
             "       hf_tokenizer_reference check <name> <tokenizer dir> <corpus.bin> "
             "<reference.jsonl>\n"
             "       hf_tokenizer_reference chat <rendered.json>\n");
  return 2;
}
