// Shared state of the static llama graph builder (builder.cpp, builder_attention.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph_emitter.h"
#include "headsplit/frontend/builder.h"

namespace hs::frontend::detail {

// Dimensions (glossary names) and the values every layer reads.
struct BuildContext {
  const LlamaModel& model;
  const BuildOptions& options;
  GraphEmitter& e;

  int64_t T = 0, C = 0, P = 0;  // AR length, context, cache slots (P = C - T)
  int64_t D = 0, H = 0, Hkv = 0, G = 0, Dh = 0, F = 0, V = 0, L = 0;

  ir::ValueId mask = ir::kNoValue;        // attention_mask [1,T,C]
  ir::ValueId cos = ir::kNoValue;         // rope cos rows of input_pos, [1,1,T,R/2]
  ir::ValueId sin = ir::kNoValue;         // rope sin rows of input_pos, [1,1,T,R/2]
  // Sliding-window layers (Gemma3): their mask (window_attention_mask [1,T,C]) and RoPE rows
  // with the local base; kNoValue when the model has no such layer. Shared by all heads.
  ir::ValueId window_mask = ir::kNoValue;
  ir::ValueId cos_local = ir::kNoValue, sin_local = ir::kNoValue;
  ir::ValueId hadamard = ir::kNoValue;    // R3: Hadamard(Dh)/sqrt(Dh), [Dh,Dh]
  ir::ValueId attn_scale =
      ir::kNoValue;  // sqrt(Dh) (divides), or attention_multiplier (multiplies)
  ir::ValueId zero = ir::kNoValue;        // 0, scalar (masked softmax: mask == 0)
  ir::ValueId twenty = ir::kNoValue;      // 20, scalar (masked softmax: rowmin - 20)

  // Cache inputs and new-entry outputs. kPerLayer: index l; kPerHead: index l * Hkv + g.
  std::vector<ir::ValueId> k_cache, v_cache, k_new, v_new;

  bool per_head_cache() const { return options.cache_layout == CacheLayout::kPerHead; }
  bool sliding(int64_t layer) const { return model.config.is_sliding(layer); }
  ir::ValueId layer_mask(int64_t layer) const { return sliding(layer) ? window_mask : mask; }
  bool conv() const { return options.projection == ProjectionKind::kConv; }
};

// Layer-name prefix: "layers.3".
std::string layer_prefix(int64_t layer);

// Projects the normalized hidden state to `n` heads of Dh: [1,n,T,Dh]. `x_in` is [1,D,1,T]
// (conv form) or [1,T,D] (linear form); `rows` is the [n*Dh, D] weight (a view: per-head
// slices of the full weight in the SHA-from-source form), `bias` its [n*Dh] bias or empty.
// Intermediates are named `<prefix>.proj`, ...; the result is named `out_name`.
ir::ValueId project_heads(BuildContext& ctx, ir::ValueId x_in, const Weight& rows,
                          const Weight& bias, int64_t n, const std::string& prefix,
                          const std::string& out_name);

// q or k of shape [1,n,T,Dh] made ready for the scores, in this order: per-head RMSNorm over Dh
// with the [Dh] `norm` weight (when not empty; Qwen3), RoPE (rotate-half; skipped on no-RoPE
// layers; the local-base rows on sliding-window layers), R3 (when enabled).
ir::ValueId rotate(BuildContext& ctx, int64_t layer, ir::ValueId x, const Weight& norm,
                   const std::string& name);

// scores [1,h,T,C] / sqrt(Dh), or * attention_multiplier when the model has one.
ir::ValueId scale_scores(BuildContext& ctx, ir::ValueId scores, const std::string& name);

// Masks scaled scores [1,h,T,C] with `mask` (the layer's: ctx.layer_mask; additive or masked
// softmax), then softmax over the last axis.
ir::ValueId masked_softmax(BuildContext& ctx, ir::ValueId scores, ir::ValueId mask,
                           const std::string& name);

// Attention of one layer: input hidden state (post-norm) in projection layout; returns the
// attention output before the o-projection as [1,E,1,T] (conv form) or [1,T,E] (linear).
ir::ValueId attention_mha(BuildContext& ctx, int64_t layer, ir::ValueId x_in);
ir::ValueId attention_sha(BuildContext& ctx, int64_t layer, ir::ValueId x_in);

// Rows [begin, end) of a [rows, cols] weight (or elements of a 1-D bias) as a view.
Weight weight_rows(const Weight& w, int64_t begin, int64_t end);

}  // namespace hs::frontend::detail
