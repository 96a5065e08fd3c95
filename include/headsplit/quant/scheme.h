// Quantization schemes, mixed-precision rules and per-family recipes (reference §11.2-11.3).
//
//   scheme  := <A>a<W>w [-block<N>]      A in {8, 16}: activation bits (per-tensor asymmetric,
//                                         unsigned: u8 0..255 / u16 0..65535)
//                                         W in {4, 8}: weight bits (symmetric per output
//                                         channel: i8 -127..127 / i4 -7..7)
//                                         N in {16, 32, 64}: 4-bit weights per block of N input
//                                         channels (LPBQ), the last block of a row may be partial
//   names users know: 16a8w, 16a4w, 16a4w-block16/32/64, 8a8w (and 8a4w)
//
//   rule    := pattern '=' scheme         e.g. output=16a8w, layers.{0-3}.ffn.w2=16a8w
//   pattern := segment ('.' segment)*     matched against the leading dot-separated segments
//                                         of a projection name (its weight name without
//                                         ".weight": layers.3.attn.q, layers.3.ffn.w2, output;
//                                         SHA from source: layers.3.attn.q.5 for head 5)
//   segment := '*'                        any one segment
//            | '{' item (',' item)* '}'   a number in the list; item := n | n '-' m (inclusive)
//            | [A-Za-z0-9_]+              exactly this text
// So `layers.{0-3}` selects every projection of layers 0-3 and `layers.*.attn.v` every v
// projection. Rules apply in order and a later rule overrides an earlier one.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headsplit/support/result.h"

namespace hs::quant {

struct Scheme {
  int act_bits = 16;    // 8 or 16
  int weight_bits = 8;  // 4 or 8
  int64_t block = 0;    // 0: per output channel; 16, 32, 64: per block along input channels

  bool operator==(const Scheme&) const = default;
};

// Parses a scheme name. kInvalidArgument naming the text and listing the accepted forms.
Result<Scheme> parse_scheme(std::string_view text);
// "16a8w", "16a4w-block32".
std::string scheme_name(const Scheme& scheme);

// One parsed pattern segment.
struct PatternSegment {
  enum class Kind : uint8_t { kAny, kNumbers, kLiteral };
  Kind kind = Kind::kLiteral;
  std::string literal;                                 // kLiteral
  std::vector<std::pair<int64_t, int64_t>> intervals;  // kNumbers: inclusive [lo, hi]

  bool matches(std::string_view segment) const;
};

struct Rule {
  std::string pattern;  // as written, e.g. "layers.{0-3}.ffn.w2"
  Scheme scheme;
  std::string text;  // the whole rule as written, for messages
  std::vector<PatternSegment> segments;

  // True when the pattern matches the leading segments of `projection` (see above).
  bool matches(std::string_view projection) const;
};

// Parses "pattern=scheme". kInvalidArgument naming the rule for a missing '=', an empty or
// malformed pattern (empty segment, bad '{...}' list, reversed range, bad character) or an
// unknown scheme.
Result<Rule> parse_rule(std::string_view text);

// What to quantize how: a default scheme, rules by projection name, and the KV cache width.
struct QuantConfig {
  Scheme scheme;            // default for every projection and activation
  std::vector<Rule> rules;  // mixed precision; later rules win
  int kv_bits = 16;         // KV cache I/O (and every tensor sharing its encoding): 8 or 16
  std::string recipe;       // name of the recipe it came from, or empty
  // Graph features the recipe turns on (the export ORs them into its build options).
  bool r3 = false;              // Hadamard rotation of q and k after RoPE
  bool masked_softmax = false;  // where(mask == 0, s, rowmin(s) - 20) instead of s + mask
  int seq_mse = 0;              // SeqMSE candidates the recipe uses (reference seq_mse_candidates)
  // Per-block weight scales in LPBQ form (quant/params.h lpbq_scales: what QNN runs); false:
  // the observer's free float scales (what the reference's PyTorch fake-quant simulates).
  bool lpbq = true;

  // The scheme of a projection: the last matching rule's, else the default.
  const Scheme& scheme_for(std::string_view projection) const;
};

// Checks kv_bits and the scheme fields (e.g. a hand-built Scheme{12, 8, 0}).
Status validate_config(const QuantConfig& config);

// Named recipes as in the reference's table:
//   stories  16a4w, output 16a8w, 8-bit KV            (stories260K / stories110M)
//   smollm2  16a8w, 16-bit KV                          (SmolLM2-135M)
//   llama3   16a4w-block32, output and layers.{0-3}.ffn.w2 16a8w, 8-bit KV  (Llama-3.2-1B)
//   llama3.2-3b   16a4w-block32, output and layers.{21-27}.ffn.w2 16a8w, 8-bit KV
//   qwen2.5-0.5b  16a4w-block16, 16-bit KV; R3, masked softmax
//   qwen2.5-1.5b  16a4w-block16, output 16a8w, 16-bit KV; R3, masked softmax
//   qwen3-0.6b    16a4w-block32, every ffn.w2 16a8w, 16-bit KV; masked softmax
//   qwen3-1.7b    16a4w-block16, output 16a8w, 8-bit KV; R3, masked softmax
//   smollm3-3b    16a4w-block32, attn q/k/v and output 16a8w, 8-bit KV; masked softmax
//   granite       16a4w-block64, attn v 16a8w, 8-bit KV; masked softmax   (Granite-3.3-2B)
//   phi-4-mini    16a4w-block16, attn v 8a4w, output 16a8w, 8-bit KV
//   glm-edge-1.5b 16a4w-block32, output 16a8w, 8-bit KV
//   codegen2-1b   16a8w, 16-bit KV, masked softmax
// SeqMSE as in the reference (seq_mse_candidates 1000): llama3 and qwen3-0.6b.
// kInvalidArgument listing the known names otherwise.
Result<QuantConfig> recipe_config(std::string_view name);
std::span<const std::string_view> recipe_names();

}  // namespace hs::quant
