// The static llama graph builder (DESIGN.md "The static llama graph").
//
// I/O: the step-I/O contract (opset/step_io.h), both forms, per-layer cache layout:
//   inputs  tokens i32[1,T]; attention_mask f32[1,T,C] (0 attend, -255 masked; columns [0,P)
//           are cache slots, slot j = position j; columns [P,C) are this step's tokens);
//           input_pos i32[1,T]; k_cache.{l} f32[1,Hkv,Dh,P]; v_cache.{l} f32[1,Hkv,P,Dh]
//   outputs logits f32[1,T,V]; k_new.{l} f32[1,Hkv,Dh,T]; v_new.{l} f32[1,Hkv,T,Dh]
// With CacheLayout::kPerHead (SHA from source only) the caches are k_cache.{l}.{g}
// f32[1,1,Dh,P] / v_cache.{l}.{g} f32[1,1,P,Dh] and the outputs k_new.{l}.{g} / v_new.{l}.{g}.
#pragma once

#include <cstdint>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/ir/graph.h"
#include "headsplit/opset/step_io.h"

namespace hs::frontend {

enum class AttentionForm : uint8_t {
  kMha,            // one q/k/v/o projection per layer, heads on a tensor axis
  kShaFromSource,  // per-head q/k/v projections and per-head attention, built directly
};

// kPerLayer: one K and one V cache tensor per layer (2L inputs, 2L outputs); kPerHead: one per
// layer and kv head (2*L*Hkv inputs and outputs), SHA from source only.
using CacheLayout = opset::CacheLayout;

enum class MaskKind : uint8_t {
  kAdditive,       // scores + mask
  kMaskedSoftmax,  // where(mask == 0, scores, rowmin(scores) - 20)
};

enum class ProjectionKind : uint8_t {
  kConv,    // 1x1 conv on [1,D,1,T] (the reference's conv form; default)
  kLinear,  // linear on [1,T,D]
};

struct BuildOptions {
  int64_t ar_len = 1;         // T: tokens per step
  int64_t context_len = 128;  // C: cache slots P = C - T
  bool r3 = false;            // q, k <- x * Hadamard(Dh)/sqrt(Dh) after RoPE (Dh a power of 2)
  MaskKind mask = MaskKind::kAdditive;
  AttentionForm form = AttentionForm::kMha;
  CacheLayout cache_layout = CacheLayout::kPerLayer;
  ProjectionKind projection = ProjectionKind::kConv;
};

// Builds the float graph. Errors: invalid options (T > C, R3 with Dh not a power of two,
// per-head caches with the MHA form) or a model that does not validate.
Result<ir::Graph> build_llama(const LlamaModel& model, const BuildOptions& options);

// The context length used when none is given: the model's trained length, at most this.
inline constexpr int64_t kDefaultMaxContext = 512;

// The step graphs of a hybrid model (what export, eval and generate build): context length C
// and AR lengths {N, 1} (prefill, then decode), or {1} when N == 1.
struct StepLengths {
  int64_t context_len = 0;       // C
  std::vector<int64_t> ar_lens;  // {N, 1} or {1}
};
// C = `context_len`, or min(model's max_seq_len, kDefaultMaxContext) when 0 (the model's
// length unknown: kDefaultMaxContext). kInvalidArgument unless 1 <= N < C
// (opset::check_step_lengths' one error text).
Result<StepLengths> step_lengths(const LlamaModel& model, int64_t context_len,
                                 int64_t prefill_ar_len);

// Stable names of graph I/O (the contract's).
using opset::k_cache_name;
using opset::k_new_name;
using opset::v_cache_name;
using opset::v_new_name;

}  // namespace hs::frontend
