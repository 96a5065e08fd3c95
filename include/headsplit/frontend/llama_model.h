// A llama-family model in memory: its configuration and float32 weights.
//
// Every frontend (llama2.c .bin, GGUF, Hugging Face folders, random weights) produces a
// LlamaModel. Weights are row-major [out, in]; the q and k projection rows are always in
// the rotate-half ("HF") RoPE layout: loaders of checkpoints with interleaved pairs (llama2.c,
// GGUF, Meta) permute them per head at load time (see permute_interleaved_to_rotate_half).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "headsplit/support/buffer.h"
#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::frontend {

// llama3-style RoPE frequency scaling (Llama-3.x "rope_scaling": {"rope_type": "llama3"}).
struct RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// The FFN gate activation: w2(act(w1 x) * w3 x).
enum class FfnActivation : uint8_t {
  kSilu,      // Llama, Qwen, ...
  kGeluTanh,  // Gemma, Gemma3 (gelu_pytorch_tanh)
  kGelu,      // exact (erf) GELU
};
std::string_view ffn_activation_name(FfnActivation act);  // "silu", "gelu_tanh", "gelu"

// The normalization of every norm slot (attention, FFN, final).
enum class NormKind : uint8_t {
  kRms,    // x * w / sqrt(mean(x^2) + eps)
  kLayer,  // (x - mean(x)) / sqrt(var(x) + eps) * w + b  (CodeGen; a [D] bias per norm)
};

// Phi-3 / Phi-4 "longrope" RoPE scaling (transformers' _compute_longrope_parameters): inverse
// frequency i is 1 / (ext[i] * theta^(2i/R)), R the rotary dims, ext the short factors, or the
// long ones when the context exceeds original_max_position_embeddings; cos and sin are
// multiplied by attention_factor (default sqrt(1 + ln(s) / ln(original)), s = max_seq_len /
// original, 1 when s <= 1).
struct LongRope {
  std::vector<double> short_factor;  // [R/2]
  std::vector<double> long_factor;   // [R/2]
  int64_t original_max_position_embeddings = 4096;
  double attention_factor = 1.0;
};
// transformers' default longrope attention factor: sqrt(1 + ln(s) / ln(original)),
// s = max_seq_len / original; 1 when s <= 1.
double longrope_default_attention_factor(int64_t max_seq_len, int64_t original);

struct LlamaConfig {
  int64_t dim = 0;          // D
  int64_t hidden_dim = 0;   // F (FFN)
  int64_t n_layers = 0;     // L
  int64_t n_heads = 0;      // H
  int64_t n_kv_heads = 0;   // Hkv
  int64_t head_dim = 0;     // Dh (usually D / H)
  int64_t vocab_size = 0;   // V
  int64_t max_seq_len = 0;  // trained context
  double rms_eps = 1e-5;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tied_embeddings = true;  // LM head reuses the token embedding
  bool attention_bias = false;  // q/k/v projections have biases
  std::string name = "llama";   // for messages and artifact metadata
  // The checkpoint's family: "llama", "qwen2", "qwen3", "smollm3", "granite", "gemma",
  // "gemma3", "phi3", "glm" or "codegen" (picks the export recipe; the features below say what the
  // graph computes).
  std::string family = "llama";

  // Family features (the defaults are plain Llama).
  bool qk_norm = false;                 // q, k <- rms_norm over Dh per head before RoPE (Qwen3)
  std::vector<int64_t> no_rope_layers;  // layers whose q, k skip RoPE (SmolLM3), ascending
  double embedding_multiplier = 1.0;    // h0 = embedding * m (Granite)
  std::optional<double> attention_multiplier;  // scores * m instead of / sqrt(Dh) (Granite)
  double residual_multiplier = 1.0;            // h += m * block(norm(h)) (Granite)
  double logits_scaling = 1.0;                 // logits = lm_head(x) / s (Granite)
  FfnActivation ffn_act = FfnActivation::kSilu;  // Gemma: gelu_tanh
  // Gemma3: rms_norm of the attention and the FFN outputs before their residual adds
  // (post_attn_norm, post_ffn_norm weights; four norms per layer).
  bool post_norms = false;
  // Gemma3 sliding-window layers: a query at position p attends to positions
  // (p - sliding_window, p] only, and its q/k use RoPE base rope_local_theta.
  int64_t sliding_window = 0;                   // 0: no sliding-window layers
  std::vector<int64_t> sliding_window_layers;   // ascending; empty when sliding_window == 0
  double rope_local_theta = 10000.0;            // RoPE base of the sliding-window layers
  double final_logit_softcapping = 0.0;         // > 0: logits = cap * tanh(logits / cap)
  // Partial rotary (Phi-4 0.75, GLM 0.5, CodeGen2 0.5): RoPE on the first rotary_dim dims of
  // each head only (rotate-half within them; inverse frequencies theta^(-2i/rotary_dim)), the
  // other Dh - rotary_dim pass through. 0: all of Dh. Interleaved checkpoints (GLM) are
  // permuted to rotate-half within the rotary part at load.
  int64_t rotary_dim = 0;
  std::optional<LongRope> longrope;  // Phi-3 / Phi-4 longrope scaling (not with rope_scaling)
  // CodeGen: LayerNorm with bias (rms_eps is its eps), a parallel block (one norm per layer:
  // h += attn(x) + ffn(x), x = attn_norm(h); no ffn_norm), a non-gated FFN with biases
  // (w2 act(w1 x + b1) + b2; no w3) and an LM head bias.
  NormKind norm = NormKind::kRms;
  bool parallel_block = false;
  bool gated_ffn = true;       // false: w2 act(w1 x), no w3
  bool ffn_bias = false;       // b1 [F], b2 [D] (non-gated FFNs only)
  bool lm_head_bias = false;   // output_bias [V]

  // R: rotary_dim, or head_dim when 0.
  int64_t rope_dims() const { return rotary_dim > 0 ? rotary_dim : head_dim; }

  // False for the layers of no_rope_layers.
  bool uses_rope(int64_t layer) const;
  // True for the layers of sliding_window_layers.
  bool is_sliding(int64_t layer) const;

  // Checks the numbers fit together (positive sizes, H % Hkv == 0, ...); `what` names the source.
  Status validate(std::string_view what) const;
};

// A float32 weight: shape and row-major data (a view into a file mapping or a heap buffer).
struct Weight {
  std::vector<int64_t> shape;
  BufferView data;  // numel * 4 bytes

  int64_t numel() const;
  std::span<const float> f32() const;
  bool empty() const { return data.size == 0; }
  static Weight from_floats(std::vector<int64_t> shape, std::span<const float> values);
  // A weight viewing `data` (no copy); data.size must be numel * 4 and 4-byte aligned.
  static Weight view(std::vector<int64_t> shape, BufferView data);
};

struct LayerWeights {
  Weight attn_norm;   // [D]
  Weight wq;          // [H*Dh, D]   rows in rotate-half layout per head
  Weight wk;          // [Hkv*Dh, D] rows in rotate-half layout per head
  Weight wv;          // [Hkv*Dh, D]
  Weight wo;          // [D, H*Dh]
  Weight bq, bk, bv;  // [H*Dh], [Hkv*Dh], [Hkv*Dh] when attention_bias (q/k permuted like rows)
  Weight q_norm, k_norm;  // [Dh] each when qk_norm: one weight shared by every head
  Weight ffn_norm;    // [D]
  Weight w1;          // [F, D]  gate
  Weight w2;          // [D, F]  down
  Weight w3;          // [F, D]  up
  Weight post_attn_norm, post_ffn_norm;  // [D] each when post_norms (Gemma3)
  Weight attn_norm_bias, ffn_norm_bias;  // [D] each when norm is kLayer (ffn's: not parallel)
  Weight b1, b2;                         // [F], [D] when ffn_bias
};

struct LlamaWeights {
  Weight tok_embeddings;  // [V, D]
  std::vector<LayerWeights> layers;
  Weight norm;    // [D]
  Weight output;  // [V, D]; empty when tied_embeddings
  Weight norm_bias;    // [D] when norm is kLayer
  Weight output_bias;  // [V] when lm_head_bias
};

struct LlamaModel {
  LlamaConfig config;
  LlamaWeights weights;
  std::optional<tokenizer::TokenizerData> tokenizer;  // when the source carries one
  std::string source;  // where it came from, for messages ("stories260K.bin", "random(seed 1)")

  // Checks every weight's shape against the config; errors name the tensor.
  Status validate() const;
  // LM head weight [V, D]: `output`, or the token embedding when tied.
  const Weight& lm_head() const;
};

// Element types weights are stored in by the checkpoint formats (little endian).
enum class StoredDType : uint8_t { kF32, kF16, kBF16 };
int64_t stored_dtype_size(StoredDType dtype);  // 4, 2, 2

// IEEE half and bfloat16 conversions (round to nearest even; NaN stays NaN, overflow to inf).
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
uint16_t f32_to_bf16(float value);

// A float32 weight from `data` holding numel(shape) little-endian elements of `dtype`
// (data.size must be numel * stored_dtype_size). 4-byte aligned F32 data is viewed in place
// (no copy); everything else is converted into a new heap buffer.
Weight weight_from_stored(std::vector<int64_t> shape, StoredDType dtype, const BufferView& data);

// True when both weights have the same shape and bit-identical float32 values.
bool weights_bit_equal(const Weight& a, const Weight& b);

// Every weight slot of a model with its name ("tok_embeddings", "layers.3.wq", "layers.3.bq",
// "norm", "output", then per layer "layers.3.q_norm", "layers.3.k_norm", then per layer
// "layers.3.post_attn_norm", "layers.3.post_ffn_norm", then per layer "layers.3.attn_norm_bias",
// "layers.3.ffn_norm_bias", "layers.3.b1", "layers.3.b2", then "norm_bias", "output_bias"), in
// the fixed order of RandomOptions below; absent (empty) weights included.
struct NamedWeight {
  std::string name;
  const Weight* weight = nullptr;
};
std::vector<NamedWeight> named_weights(const LlamaModel& model);

// Reorders the rows of a q or k projection (and its bias) from interleaved RoPE pairs
// (2i, 2i+1) to rotate-half (i, i + Dh/2), per head: new row h*Dh + j takes old row
// h*Dh + (j < Dh/2 ? 2j : 2(j - Dh/2) + 1).
// With rotary_dim R < head_dim (partial rotary, GLM), only rows j < R of each head are
// reordered (pairs (2i, 2i+1) of the first R -> (i, i + R/2)); rows R..Dh-1 stay.
Weight permute_interleaved_to_rotate_half(const Weight& w, int64_t n_heads, int64_t head_dim,
                                          int64_t rotary_dim = 0);
// The inverse of permute_interleaved_to_rotate_half (writers of interleaved checkpoints).
Weight permute_rotate_half_to_interleaved(const Weight& w, int64_t n_heads, int64_t head_dim,
                                          int64_t rotary_dim = 0);

// Deterministic random weights in the given shape (for tests and benchmarks; speed does
// not depend on weight values). Norm weights are near 1; matrices scaled by 1/sqrt(in).
// Value of element i of the n-th weight (in the order tok_embeddings, per layer attn_norm, wq,
// wk, wv, wo, bq, bk, bv, ffn_norm, w1, w2, w3, then norm, output, then per layer q_norm,
// k_norm, then per layer post_attn_norm, post_ffn_norm, then the CodeGen biases: appended so
// the other weights keep their values) is a hash of (seed, n, i),
// so the result does not depend on the thread count.
struct RandomOptions {
  int threads = 0;  // 0: std::thread::hardware_concurrency()
};
LlamaModel make_random_llama(const LlamaConfig& config, uint64_t seed);
LlamaModel make_random_llama(const LlamaConfig& config, uint64_t seed,
                             const RandomOptions& options);

// Named configurations in real model shapes: "stories260k", "smollm2-135m", "llama3.2-1b",
// "llama3.2-3b", "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen3-0.6b", "qwen3-1.7b", "smollm3-3b",
// "granite-3.3-2b", "gemma-2b", "gemma3-1b", "phi-4-mini", "glm-edge-1.5b", "codegen2-1b" (the
// published config.json values).
Result<LlamaConfig> named_config(std::string_view name);
// The names named_config knows, in that order.
std::vector<std::string> named_config_names();

}  // namespace hs::frontend
