// Hugging Face tokenizer.json (+ tokenizer_config.json, generation_config.json) ->
// TokenizerData: byte-level BPE or SentencePiece-style BPE (see hf.h for the rules).
#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "headsplit/frontend/hf.h"
#include "headsplit/support/file.h"
#include "hf_json.h"

namespace hs::frontend {

namespace {

using json::Json;
using tokenizer::TokenizerData;
using tokenizer::TokenizerKind;
using tokenizer::TokenType;

constexpr std::string_view kLlama3Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// o200k (GPT-4o, Phi-4-mini): cased words with attached contractions, numbers of 1-3 digits,
// punctuation runs keeping a trailing "/" with the newlines.
constexpr std::string_view kO200kRegex =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// Qwen2 / Qwen2.5 / Qwen3: Llama-3's with \p{N} for numbers (single digits).
constexpr std::string_view kQwen2Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kSpace = "\xe2\x96\x81";  // "▁"

std::string type_of(const Json& node) {
  const Json* t = json::member(node, "type");
  return t != nullptr && t->is_string() ? t->get<std::string>() : std::string();
}

// The first component of `type` in a (possibly nested Sequence) normalizer / pre-tokenizer /
// decoder / post-processor tree, or nullptr.
const Json* find_component(const Json* node, std::string_view type) {
  if (node == nullptr) return nullptr;
  if (node->is_object()) {
    if (type_of(*node) == type) return node;
    for (const auto& [key, child] : node->items()) {
      if (child.is_array()) {
        if (const Json* found = find_component(&child, type)) return found;
      }
    }
  } else if (node->is_array()) {
    for (const Json& child : *node) {
      if (const Json* found = find_component(&child, type)) return found;
    }
  }
  return nullptr;
}

// Ids may be left unused, at most this many (o200k's model.vocab has 200000 entries with ids
// up to 200018: 199998 and 200000..200017 are unused).
constexpr size_t kMaxUnusedIds = 1024;

// Reads the vocabulary and added tokens into id -> piece tables. Ids nothing names (up to
// kMaxUnusedIds of them) get an empty piece of type kUnused (never produced by encode, decoded
// as nothing).
Status read_vocab(const Json& root, const Json& model, const std::string& what, TokenizerData& t) {
  const Json* vocab = json::member(model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return errorf(ErrorKind::kParse, "{}: model.vocab object is missing", what);
  }
  const Json* added = json::member(root, "added_tokens");
  const size_t dense = vocab->size() + (added != nullptr && added->is_array() ? added->size() : 0);
  const size_t limit = dense + kMaxUnusedIds;
  std::vector<bool> seen(limit, false);
  t.pieces.assign(limit, std::string());
  t.types.assign(limit, TokenType::kNormal);
  size_t end = 0;  // 1 + the largest id
  auto put = [&](const std::string& piece, const Json& id_json, TokenType type) -> Status {
    auto id = json::as_int(id_json, fmt::format("{}: id of token '{}'", what, piece));
    if (!id.ok()) return id.error();
    if (*id < 0 || static_cast<size_t>(*id) >= limit) {
      return errorf(ErrorKind::kCorrupt,
                    "{}: token '{}' has id {}, outside 0..{} (at most {} unused ids)", what, piece,
                    *id, limit - 1, kMaxUnusedIds);
    }
    const size_t i = static_cast<size_t>(*id);
    if (seen[i] && t.pieces[i] != piece) {
      return errorf(ErrorKind::kCorrupt, "{}: id {} is given to both '{}' and '{}'", what, i,
                    t.pieces[i], piece);
    }
    end = std::max(end, i + 1);
    seen[i] = true;
    t.pieces[i] = piece;
    if (type != TokenType::kNormal) t.types[i] = type;
    return ok_status();
  };
  for (const auto& [piece, id] : vocab->items()) HS_TRY(put(piece, id, TokenType::kNormal));
  if (added != nullptr && added->is_array()) {
    for (const Json& a : *added) {
      HS_ASSIGN_OR_RETURN(std::string content,
                          json::get_string(a, "content", what + " added_tokens"));
      HS_ASSIGN_OR_RETURN(bool special, json::get_bool_or(a, "special", false, what));
      const Json* id = json::member(a, "id");
      if (id == nullptr)
        return errorf(ErrorKind::kParse, "{}: added token '{}' has no id", what, content);
      HS_TRY(put(content, *id, special ? TokenType::kControl : TokenType::kUserDefined));
    }
  }
  t.pieces.resize(end);
  t.types.resize(end);
  for (size_t i = 0; i < end; ++i) {
    if (!seen[i]) t.types[i] = TokenType::kUnused;  // an id nothing names
  }
  return ok_status();
}

Result<std::vector<std::pair<std::string, std::string>>> read_merges(const Json& model,
                                                                     const std::string& what) {
  std::vector<std::pair<std::string, std::string>> merges;
  const Json* m = json::member(model, "merges");
  if (m == nullptr) return merges;
  if (!m->is_array()) return errorf(ErrorKind::kParse, "{}: model.merges is not an array", what);
  merges.reserve(m->size());
  for (const Json& x : *m) {
    if (x.is_string()) {
      const std::string s = x.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return errorf(ErrorKind::kParse, "{}: merge '{}' is not two pieces separated by a space",
                      what, s);
      }
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (x.is_array() && x.size() == 2 && x[0].is_string() && x[1].is_string()) {
      merges.emplace_back(x[0].get<std::string>(), x[1].get<std::string>());
    } else {
      return errorf(ErrorKind::kParse, "{}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", what,
                    json::text(x));
    }
  }
  return merges;
}

// The llama.cpp name of a byte-level pre-tokenizer. "qwen2" includes an NFC normalizer, so
// it is picked only when `normalizer` is NFC (every Qwen tokenizer.json has one); any other
// normalizer is an error naming it.
Result<std::string> byte_level_pre_tokenizer(const Json* pt, const Json* normalizer,
                                             const std::string& what) {
  if (pt != nullptr && type_of(*pt) == "ByteLevel") {
    HS_ASSIGN_OR_RETURN(bool regex, json::get_bool_or(*pt, "use_regex", true, what));
    if (regex) return std::string("gpt2");
  }
  const Json* seq = pt != nullptr ? json::member(*pt, "pretokenizers") : nullptr;
  if (seq != nullptr && seq->is_array() && seq->size() == 2 && type_of((*seq)[1]) == "ByteLevel") {
    const Json& first = (*seq)[0];
    HS_ASSIGN_OR_RETURN(bool regex, json::get_bool_or((*seq)[1], "use_regex", true, what));
    const Json* pattern = json::member(first, "pattern");
    const Json* re = pattern != nullptr ? json::member(*pattern, "Regex") : nullptr;
    if (type_of(first) == "Split" && !regex && re != nullptr && re->is_string() &&
        re->get<std::string>() == kLlama3Regex) {
      return std::string("llama3");
    }
    // o200k's Split keeps the matches (invert: true, behavior: Removed); every character
    // matches one alternative, so nothing is removed: the same split as Isolated.
    if (type_of(first) == "Split" && !regex && re != nullptr && re->is_string() &&
        re->get<std::string>() == kO200kRegex) {
      return std::string("o200k");
    }
    if (type_of(first) == "Split" && !regex && re != nullptr && re->is_string() &&
        re->get<std::string>() == kQwen2Regex) {
      if (normalizer == nullptr || type_of(*normalizer) != "NFC") {
        return errorf(ErrorKind::kUnsupported,
                      "{}: the Qwen2 pre-tokenizer comes with normalizer {}; only NFC (as in "
                      "Qwen2/Qwen2.5/Qwen3) is supported",
                      what, normalizer != nullptr ? json::text(*normalizer) : "null");
      }
      return std::string("qwen2");
    }
    HS_ASSIGN_OR_RETURN(bool single, json::get_bool_or(first, "individual_digits", false, what));
    if (type_of(first) == "Digits" && single && regex) return std::string("smollm");
  }
  return errorf(ErrorKind::kUnsupported,
                "{}: pre_tokenizer {} is not one of the known byte-level ones (gpt2, llama3, "
                "qwen2, smollm, o200k)",
                what, pt != nullptr ? json::text(*pt) : "null");
}

bool is_byte_piece(const std::string& p) {
  return p.size() == 6 && p.starts_with("<0x") && p.back() == '>' &&
         std::isxdigit(static_cast<unsigned char>(p[3])) &&
         std::isxdigit(static_cast<unsigned char>(p[4]));
}

// Scores for SentencePiece-style BPE derived from merge ranks (see hf.h).
void derive_spm_scores(const std::vector<std::pair<std::string, std::string>>& merges,
                       const std::unordered_map<std::string, int32_t>& ids, TokenizerData& t) {
  const size_t n = t.pieces.size();
  std::vector<bool> made(n, false);
  t.scores.assign(n, 0.0f);
  for (size_t r = 0; r < merges.size(); ++r) {
    auto it = ids.find(merges[r].first + merges[r].second);
    if (it == ids.end() || made[it->second]) continue;
    made[it->second] = true;
    t.scores[it->second] = -static_cast<float>(r);
  }
  for (size_t i = 0; i < n; ++i) {
    if (!made[i] && t.types[i] == TokenType::kNormal) {
      t.scores[i] = -static_cast<float>(merges.size() + i);
    }
  }
}

}  // namespace

namespace {

// A special token named in tokenizer_config.json: a string or {"content": "..."}.
Result<int32_t> special_token_id(const Json& config, std::string_view key,
                                 const std::unordered_map<std::string, int32_t>& ids,
                                 const std::string& what) {
  const Json* v = json::member(config, key);
  if (v == nullptr) return -1;
  std::string piece;
  if (v->is_string()) {
    piece = v->get<std::string>();
  } else {
    HS_ASSIGN_OR_RETURN(piece, json::get_string(*v, "content", fmt::format("{} {}", what, key)));
  }
  auto it = ids.find(piece);
  if (it == ids.end()) {
    return errorf(ErrorKind::kNotFound, "{}: {} '{}' is not in the vocabulary", what, key, piece);
  }
  return it->second;
}

// Returns whether the file sets add_bos_token.
Result<bool> read_tokenizer_config(const std::string& dir,
                                   const std::unordered_map<std::string, int32_t>& ids,
                                   TokenizerData& t) {
  const std::string path = dir + "/tokenizer_config.json";
  if (!path_exists(path)) return false;  // present but not a file: refused below
  HS_ASSIGN_OR_RETURN(Json c, json::read_file(path));
  HS_ASSIGN_OR_RETURN(t.add_bos, json::get_bool_or(c, "add_bos_token", t.add_bos, path));
  HS_ASSIGN_OR_RETURN(int32_t bos, special_token_id(c, "bos_token", ids, path));
  HS_ASSIGN_OR_RETURN(int32_t eos, special_token_id(c, "eos_token", ids, path));
  HS_ASSIGN_OR_RETURN(int32_t unk, special_token_id(c, "unk_token", ids, path));
  HS_ASSIGN_OR_RETURN(int32_t pad, special_token_id(c, "pad_token", ids, path));
  if (bos >= 0) t.bos_id = bos;
  if (eos >= 0) t.eos_id = eos;
  if (unk >= 0) t.unk_id = unk;
  if (pad >= 0) t.pad_id = pad;
  if (const Json* tpl = json::member(c, "chat_template"); tpl != nullptr) {
    if (tpl->is_string()) {
      t.chat_template = tpl->get<std::string>();
    } else if (tpl->is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const Json& entry : *tpl) {
        HS_ASSIGN_OR_RETURN(std::string name, json::get_string_or(entry, "name", "", path));
        if (name == "default" || t.chat_template.empty()) {
          HS_ASSIGN_OR_RETURN(t.chat_template, json::get_string_or(entry, "template", "", path));
        }
      }
    }
  }
  return json::member(c, "add_bos_token") != nullptr;
}

Status read_generation_config(const std::string& dir, TokenizerData& t) {
  const std::string path = dir + "/generation_config.json";
  if (!path_exists(path)) return ok_status();
  HS_ASSIGN_OR_RETURN(Json g, json::read_file(path));
  const int64_t n = static_cast<int64_t>(t.pieces.size());
  auto check = [&](int64_t id, std::string_view key) -> Result<int32_t> {
    if (id < 0 || id >= n) {
      return errorf(ErrorKind::kCorrupt, "{}: {} {} is outside the vocabulary of {} tokens", path,
                    key, id, n);
    }
    return static_cast<int32_t>(id);
  };
  if (json::member(g, "bos_token_id") != nullptr && t.bos_id < 0) {
    HS_ASSIGN_OR_RETURN(int64_t bos, json::get_int(g, "bos_token_id", path));
    HS_ASSIGN_OR_RETURN(t.bos_id, check(bos, "bos_token_id"));
  }
  const Json* eos = json::member(g, "eos_token_id");
  if (eos == nullptr) return ok_status();
  std::vector<int32_t> list;
  for (const Json& x : eos->is_array() ? *eos : Json::array({*eos})) {
    HS_ASSIGN_OR_RETURN(int64_t id, json::as_int(x, path + ": eos_token_id"));
    HS_ASSIGN_OR_RETURN(int32_t checked, check(id, "eos_token_id"));
    list.push_back(checked);
  }
  for (int32_t id : list) {
    if (t.eos_id < 0) t.eos_id = id;
    if (id != t.eos_id &&
        std::find(t.extra_eos_ids.begin(), t.extra_eos_ids.end(), id) == t.extra_eos_ids.end()) {
      t.extra_eos_ids.push_back(id);
    }
  }
  return ok_status();
}

// Whether the post-processor template puts `bos` before a single sequence.
bool template_adds_bos(const Json& root, const std::string& bos) {
  const Json* tp = find_component(json::member(root, "post_processor"), "TemplateProcessing");
  const Json* single = tp != nullptr ? json::member(*tp, "single") : nullptr;
  if (single == nullptr || !single->is_array() || single->empty()) return false;
  const Json* special = json::member((*single)[0], "SpecialToken");
  const Json* id = special != nullptr ? json::member(*special, "id") : nullptr;
  return id != nullptr && id->is_string() && id->get<std::string>() == bos;
}

}  // namespace

Result<TokenizerData> load_hf_tokenizer(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  HS_ASSIGN_OR_RETURN(Json root, json::read_file(path));
  const Json* model = json::member(root, "model");
  if (model == nullptr || !model->is_object()) {
    return errorf(ErrorKind::kParse, "{}: 'model' object is missing", path);
  }
  HS_ASSIGN_OR_RETURN(std::string type, json::get_string_or(*model, "type", "BPE", path));
  if (type != "BPE") {
    return errorf(ErrorKind::kUnsupported, "{}: model type '{}' is not supported, only BPE", path,
                  type);
  }
  TokenizerData t;
  HS_TRY(read_vocab(root, *model, path, t));
  if (t.pieces.empty()) return errorf(ErrorKind::kCorrupt, "{}: empty vocabulary", path);
  HS_ASSIGN_OR_RETURN(auto merges, read_merges(*model, path));
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < t.pieces.size(); ++i) ids[t.pieces[i]] = static_cast<int32_t>(i);

  const Json* pre = json::member(root, "pre_tokenizer");
  const Json* normalizer = json::member(root, "normalizer");
  const Json* decoder = json::member(root, "decoder");
  HS_ASSIGN_OR_RETURN(bool byte_fallback, json::get_bool_or(*model, "byte_fallback", false, path));
  const Json* replace = find_component(normalizer, "Replace");
  const Json* metaspace = find_component(pre, "Metaspace");
  const bool spm_space =
      metaspace != nullptr || (replace != nullptr && json::member(*replace, "content") != nullptr &&
                               (*replace)["content"] == kSpace);
  if (find_component(pre, "ByteLevel") != nullptr || find_component(decoder, "ByteLevel")) {
    t.kind = TokenizerKind::kByteLevelBpe;
    HS_ASSIGN_OR_RETURN(t.pre_tokenizer, byte_level_pre_tokenizer(pre, normalizer, path));
    t.merges.reserve(merges.size());
    for (const auto& [a, b] : merges) t.merges.push_back(a + " " + b);
    t.add_bos = false;
    t.add_space_prefix = false;
  } else if (byte_fallback && spm_space) {
    t.kind = TokenizerKind::kSpm;
    for (size_t i = 0; i < t.pieces.size(); ++i) {
      if (is_byte_piece(t.pieces[i])) t.types[i] = TokenType::kByte;
    }
    HS_ASSIGN_OR_RETURN(std::string unk, json::get_string_or(*model, "unk_token", "", path));
    if (auto it = ids.find(unk); !unk.empty() && it != ids.end()) {
      t.unk_id = it->second;
      t.types[it->second] = TokenType::kUnknown;
    }
    derive_spm_scores(merges, ids, t);
    t.add_bos = true;
    const Json* prepend = find_component(normalizer, "Prepend");
    std::string scheme;
    if (metaspace != nullptr) {
      HS_ASSIGN_OR_RETURN(scheme, json::get_string_or(*metaspace, "prepend_scheme", "", path));
      HS_ASSIGN_OR_RETURN(bool add, json::get_bool_or(*metaspace, "add_prefix_space", false, path));
      if (add && scheme.empty()) scheme = "always";
    }
    t.add_space_prefix = prepend != nullptr || scheme == "always" || scheme == "first";
  } else {
    return errorf(ErrorKind::kUnsupported,
                  "{}: BPE tokenizer is neither byte-level (ByteLevel pre-tokenizer) nor "
                  "SentencePiece-style (byte_fallback with a \"\u2581\" normalizer)",
                  path);
  }
  HS_ASSIGN_OR_RETURN(bool add_bos_given, read_tokenizer_config(dir, ids, t));
  HS_TRY(read_generation_config(dir, t));
  if (t.kind == TokenizerKind::kByteLevelBpe && !add_bos_given && t.bos_id >= 0) {
    // Without add_bos_token in tokenizer_config.json the post-processor template decides.
    t.add_bos = template_adds_bos(root, t.pieces[static_cast<size_t>(t.bos_id)]);
  }
  size_t longest = 0;
  for (const std::string& p : t.pieces) longest = std::max(longest, p.size());
  t.max_token_length = static_cast<int32_t>(longest);
  return t;
}

}  // namespace hs::frontend
