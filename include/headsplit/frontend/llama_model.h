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
  Weight ffn_norm;    // [D]
  Weight w1;          // [F, D]  gate
  Weight w2;          // [D, F]  down
  Weight w3;          // [F, D]  up
};

struct LlamaWeights {
  Weight tok_embeddings;  // [V, D]
  std::vector<LayerWeights> layers;
  Weight norm;    // [D]
  Weight output;  // [V, D]; empty when tied_embeddings
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
// "norm", "output"), in the fixed order of RandomOptions below; absent (empty) weights included.
struct NamedWeight {
  std::string name;
  const Weight* weight = nullptr;
};
std::vector<NamedWeight> named_weights(const LlamaModel& model);

// Reorders the rows of a q or k projection (and its bias) from interleaved RoPE pairs
// (2i, 2i+1) to rotate-half (i, i + Dh/2), per head: new row h*Dh + j takes old row
// h*Dh + (j < Dh/2 ? 2j : 2(j - Dh/2) + 1).
Weight permute_interleaved_to_rotate_half(const Weight& w, int64_t n_heads, int64_t head_dim);

// Deterministic random weights in the given shape (for tests and benchmarks; speed does
// not depend on weight values). Norm weights are near 1; matrices scaled by 1/sqrt(in).
// Value of element i of the n-th weight (in the order tok_embeddings, per layer attn_norm, wq,
// wk, wv, wo, bq, bk, bv, ffn_norm, w1, w2, w3, then norm, output) is a hash of (seed, n, i),
// so the result does not depend on the thread count.
struct RandomOptions {
  int threads = 0;  // 0: std::thread::hardware_concurrency()
};
LlamaModel make_random_llama(const LlamaConfig& config, uint64_t seed);
LlamaModel make_random_llama(const LlamaConfig& config, uint64_t seed,
                             const RandomOptions& options);

// Named configurations in real model shapes: "stories260k", "smollm2-135m", "llama3.2-1b".
Result<LlamaConfig> named_config(std::string_view name);

}  // namespace hs::frontend
