// Scheme names, rule patterns and the named recipes.
#include "headsplit/quant/scheme.h"

#include <fmt/format.h>

#include <array>
#include <charconv>

namespace hs::quant {

namespace {

constexpr std::string_view kSchemeForms =
    "16a8w, 16a4w, 16a4w-block16, 16a4w-block32, 16a4w-block64, 8a8w, 8a4w";

// Parses a non-negative decimal number that is the whole of `text`.
std::optional<int64_t> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = text.find(sep, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

// `{0-3,7}` without the braces.
Result<PatternSegment> parse_numbers(std::string_view body) {
  PatternSegment seg;
  seg.kind = PatternSegment::Kind::kNumbers;
  for (std::string_view item : split(body, ',')) {
    const size_t dash = item.find('-');
    auto lo = parse_number(item.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : parse_number(item.substr(dash + 1));
    if (!lo || !hi) {
      return errorf(ErrorKind::kInvalidArgument,
                    "'{}' is not a number or a range n-m (write {{0-3}} or {{0,2,5}})", item);
    }
    if (*hi < *lo) {
      return errorf(ErrorKind::kInvalidArgument, "range {} is reversed ({} > {})", item, *lo, *hi);
    }
    seg.intervals.emplace_back(*lo, *hi);
  }
  return seg;
}

Result<PatternSegment> parse_segment(std::string_view text) {
  if (text.empty()) {
    return Error(ErrorKind::kInvalidArgument, "empty segment (two dots, or a dot at an end)");
  }
  if (text == "*") return PatternSegment{.kind = PatternSegment::Kind::kAny};
  if (text.front() == '{') {
    if (text.size() < 3 || text.back() != '}') {
      return errorf(ErrorKind::kInvalidArgument,
                    "segment '{}' opens '{{' but is not a list {{...}}", text);
    }
    return parse_numbers(text.substr(1, text.size() - 2));
  }
  for (char c : text) {
    if (!is_word_char(c)) {
      return errorf(ErrorKind::kInvalidArgument,
                    "segment '{}' has character '{}' (segments are *, {{n-m,...}} or letters, "
                    "digits and _)",
                    text, c);
    }
  }
  return PatternSegment{.kind = PatternSegment::Kind::kLiteral, .literal = std::string(text)};
}

}  // namespace

Result<Scheme> parse_scheme(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return errorf(ErrorKind::kInvalidArgument, "unknown quantization scheme '{}': {} (known: {})",
                  text, why, kSchemeForms);
  };
  const size_t a = text.find('a');
  const size_t w = text.find('w');
  if (a == std::string_view::npos || w == std::string_view::npos || w < a) {
    return bad("expected <A>a<W>w[-block<N>]");
  }
  auto act = parse_number(text.substr(0, a));
  auto weight = parse_number(text.substr(a + 1, w - a - 1));
  if (!act || (*act != 8 && *act != 16)) return bad("activation bits must be 8 or 16");
  if (!weight || (*weight != 4 && *weight != 8)) return bad("weight bits must be 4 or 8");
  Scheme s{static_cast<int>(*act), static_cast<int>(*weight), 0};
  std::string_view rest = text.substr(w + 1);
  if (rest.empty()) return s;
  constexpr std::string_view kBlock = "-block";
  if (rest.substr(0, kBlock.size()) != kBlock) return bad("expected -block<N> after the 'w'");
  auto block = parse_number(rest.substr(kBlock.size()));
  if (!block || (*block != 16 && *block != 32 && *block != 64)) {
    return bad("the block size must be 16, 32 or 64");
  }
  if (s.weight_bits != 4) return bad("per-block weights are 4-bit only (LPBQ)");
  s.block = *block;
  return s;
}

std::string scheme_name(const Scheme& s) {
  std::string name = fmt::format("{}a{}w", s.act_bits, s.weight_bits);
  if (s.block > 0) name += fmt::format("-block{}", s.block);
  return name;
}

bool PatternSegment::matches(std::string_view segment) const {
  switch (kind) {
    case Kind::kAny: return true;
    case Kind::kLiteral: return segment == literal;
    case Kind::kNumbers: {
      auto n = parse_number(segment);
      if (!n) return false;
      for (const auto& [lo, hi] : intervals) {
        if (*n >= lo && *n <= hi) return true;
      }
      return false;
    }
  }
  return false;
}

bool Rule::matches(std::string_view projection) const {
  const std::vector<std::string_view> parts = split(projection, '.');
  if (parts.size() < segments.size()) return false;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (!segments[i].matches(parts[i])) return false;
  }
  return true;
}

Result<Rule> parse_rule(std::string_view text) {
  auto fail = [&](const Error& e) {
    return errorf(ErrorKind::kInvalidArgument, "rule '{}': {}", text, e.message());
  };
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return fail(Error(ErrorKind::kInvalidArgument,
                      "expected pattern=scheme, e.g. output=16a8w or layers.{0-3}.ffn.w2=16a8w"));
  }
  Rule rule;
  rule.text = std::string(text);
  rule.pattern = std::string(text.substr(0, eq));
  if (rule.pattern.empty()) {
    return fail(Error(ErrorKind::kInvalidArgument, "the pattern before '=' is empty"));
  }
  for (std::string_view part : split(rule.pattern, '.')) {
    auto seg = parse_segment(part);
    if (!seg.ok()) return fail(seg.error());
    rule.segments.push_back(std::move(seg).value());
  }
  auto scheme = parse_scheme(text.substr(eq + 1));
  if (!scheme.ok()) return fail(scheme.error());
  rule.scheme = *scheme;
  return rule;
}

const Scheme& QuantConfig::scheme_for(std::string_view projection) const {
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    if (it->matches(projection)) return it->scheme;
  }
  return scheme;
}

Status validate_config(const QuantConfig& config) {
  if (config.kv_bits != 8 && config.kv_bits != 16) {
    return errorf(ErrorKind::kInvalidArgument, "kv bits must be 8 or 16, got {}", config.kv_bits);
  }
  auto check = [](const Scheme& s, std::string_view where) -> Status {
    HS_TRY_CTX(parse_scheme(scheme_name(s)), where);
    return ok_status();
  };
  HS_TRY(check(config.scheme, "default scheme"));
  for (const Rule& r : config.rules) HS_TRY(check(r.scheme, fmt::format("rule '{}'", r.text)));
  return ok_status();
}

namespace {

constexpr std::array<std::string_view, 15> kRecipes = {
    "stories",      "smollm2",    "llama3",     "llama3.2-3b", "qwen2.5-0.5b", "qwen2.5-1.5b",
    "qwen3-0.6b",   "qwen3-1.7b", "smollm3-3b", "granite",     "gemma-2b",     "gemma3-1b",
    "phi-4-mini",   "glm-edge-1.5b", "codegen2-1b"};

// Graph features a recipe turns on (the reference's model configs).
struct Features {
  bool r3 = false;
  bool masked_softmax = false;
};

QuantConfig make_recipe(std::string_view name, std::string_view scheme, int kv_bits,
                        std::initializer_list<std::string_view> rules, Features f = {}) {
  QuantConfig c;
  c.recipe = std::string(name);
  c.scheme = parse_scheme(scheme).value();
  c.kv_bits = kv_bits;
  for (std::string_view r : rules) c.rules.push_back(parse_rule(r).value());
  c.r3 = f.r3;
  c.masked_softmax = f.masked_softmax;
  return c;
}

}  // namespace

std::span<const std::string_view> recipe_names() { return kRecipes; }

Result<QuantConfig> recipe_config(std::string_view name) {
  if (name == "stories") return make_recipe(name, "16a4w", 8, {"output=16a8w"});
  if (name == "smollm2") return make_recipe(name, "16a8w", 16, {});
  // SeqMSE 1000 candidates where the reference's model config sets seq_mse_candidates.
  if (name == "llama3") {
    QuantConfig c =
        make_recipe(name, "16a4w-block32", 8, {"output=16a8w", "layers.{0-3}.ffn.w2=16a8w"});
    c.seq_mse = 1000;
    return c;
  }
  // The reference's table (§11.3) and model configs (R3, masked softmax; §12).
  if (name == "llama3.2-3b") {
    return make_recipe(name, "16a4w-block32", 8, {"output=16a8w", "layers.{21-27}.ffn.w2=16a8w"});
  }
  if (name == "qwen2.5-0.5b") return make_recipe(name, "16a4w-block16", 16, {}, {true, true});
  if (name == "qwen2.5-1.5b") {
    return make_recipe(name, "16a4w-block16", 16, {"output=16a8w"}, {true, true});
  }
  if (name == "qwen3-0.6b") {
    QuantConfig c =
        make_recipe(name, "16a4w-block32", 16, {"layers.*.ffn.w2=16a8w"}, {false, true});
    c.seq_mse = 1000;
    return c;
  }
  if (name == "qwen3-1.7b") {
    return make_recipe(name, "16a4w-block16", 8, {"output=16a8w"}, {true, true});
  }
  if (name == "smollm3-3b") {
    return make_recipe(
        name, "16a4w-block32", 8,
        {"layers.*.attn.q=16a8w", "layers.*.attn.k=16a8w", "layers.*.attn.v=16a8w", "output=16a8w"},
        {false, true});
  }
  if (name == "granite") {
    return make_recipe(name, "16a4w-block64", 8, {"layers.*.attn.v=16a8w"}, {false, true});
  }
  if (name == "gemma-2b") {
    return make_recipe(name, "16a4w-block64", 8, {"layers.*.attn.v=16a8w", "output=16a8w"},
                       {false, true});
  }
  if (name == "gemma3-1b") {
    return make_recipe(name, "16a4w-block64", 8, {"layers.*.attn.v=16a8w"}, {false, true});
  }
  if (name == "phi-4-mini") {
    return make_recipe(name, "16a4w-block16", 8, {"layers.*.attn.v=8a4w", "output=16a8w"});
  }
  if (name == "glm-edge-1.5b") return make_recipe(name, "16a4w-block32", 8, {"output=16a8w"});
  if (name == "codegen2-1b") return make_recipe(name, "16a8w", 16, {}, {false, true});
  return errorf(ErrorKind::kInvalidArgument, "unknown recipe '{}' (known: {})", name,
                fmt::join(kRecipes, ", "));
}

}  // namespace hs::quant
