// The static llama graph builder (DESIGN.md "The static llama graph").
//
// I/O (both forms, per-layer cache layout):
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

namespace hs::frontend {

enum class AttentionForm : uint8_t {
  kMha,            // one q/k/v/o projection per layer, heads on a tensor axis
  kShaFromSource,  // per-head q/k/v projections and per-head attention, built directly
};

enum class CacheLayout : uint8_t {
  kPerLayer,  // one K and one V cache tensor per layer (2L inputs, 2L outputs)
  kPerHead,   // one per layer and kv head (2*L*Hkv inputs and outputs); SHA from source only
};

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

// Stable names of graph I/O.
std::string k_cache_name(int64_t layer);
std::string v_cache_name(int64_t layer);
std::string k_new_name(int64_t layer);
std::string v_new_name(int64_t layer);

}  // namespace hs::frontend
