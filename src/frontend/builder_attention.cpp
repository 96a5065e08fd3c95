// Attention blocks of the static llama graph, in MHA form and in SHA-from-source form.
//
// MHA form (one layer; conv projections shown, as in the reference's forward_attention_conv):
//   X[1,D,1,T] -conv(Wq[H*Dh,D,1,1])-> [1,E,1,T] -transpose(0,3,1,2)-> [1,T,E,1] -squeeze->
//     [1,T,E] -reshape-> [1,T,H,Dh] -transpose(0,2,1,3)-> q[1,H,T,Dh]      (k, v: Hkv heads)
//   q, k <- [rms_norm over Dh (qk_norm) ->] RoPE (rotate-half; not on no-RoPE layers; on the
//           first rotary_dim dims only with partial rotary; local base on sliding-window
//           layers, which also read window_attention_mask)
//           [-> R3: x * Hadamard(Dh)/sqrt(Dh)]
//   k_new = transpose(k, 0,1,3,2) [1,Hkv,Dh,T]        v_new = v [1,Hkv,T,Dh]   (graph outputs)
//   kh = concat(k_cache[1,Hkv,Dh,P], k_new; 3)  vh = concat(v_cache[1,Hkv,P,Dh], v_new; 2)
//   GQA (G > 1): unsqueeze(2) -> expand [1,Hkv,G,...] -> reshape [1,H,...]
//   A = softmax(mask(q kh / sqrt(Dh))) vh  [1,H,T,Dh]   (Granite: q kh * attention_multiplier)
//   -transpose(0,2,1,3)-> [1,T,H,Dh] -reshape-> [1,T,1,E] -transpose(0,3,2,1)-> [1,E,1,T]
// SHA from source builds the same math per head: query head h reads kv head g = h / G.
#include <cmath>

#include "builder_internal.h"

namespace hs::frontend::detail {

using ir::ValueId;

Weight weight_rows(const Weight& w, int64_t begin, int64_t end) {
  Weight out;
  int64_t row_elems = 1;
  for (size_t i = 1; i < w.shape.size(); ++i) row_elems *= w.shape[i];
  out.shape = w.shape;
  out.shape[0] = end - begin;
  auto offset = static_cast<size_t>(begin * row_elems * 4);
  auto size = static_cast<size_t>((end - begin) * row_elems * 4);
  out.data = w.data.sub(offset, size);
  return out;
}

ValueId project_heads(BuildContext& ctx, ValueId x_in, const Weight& rows, const Weight& bias,
                      int64_t n, const std::string& name, const std::string& out_name) {
  GraphEmitter& e = ctx.e;
  const int64_t out = n * ctx.Dh;
  ValueId b = bias.empty() ? ir::kNoValue : e.weight(name + ".bias", bias);
  ValueId flat;  // [1,T,n*Dh]
  if (ctx.conv()) {
    ValueId w = e.weight(name + ".weight", rows, {out, ctx.D, 1, 1});
    ValueId c = e.conv2d(x_in, w, b, name + ".proj");                 // [1,n*Dh,1,T]
    ValueId t = e.transpose(c, {0, 3, 1, 2}, name + ".proj_t");         // [1,T,n*Dh,1]
    flat = e.squeeze(t, 3, name + ".proj_s");                          // [1,T,n*Dh]
  } else {
    ValueId w = e.weight(name + ".weight", rows, {out, ctx.D});
    flat = e.linear(x_in, w, b, name + ".proj");                       // [1,T,n*Dh]
  }
  ValueId r = e.reshape(flat, {1, ctx.T, n, ctx.Dh}, name + ".heads");  // [1,T,n,Dh]
  return e.transpose(r, {0, 2, 1, 3}, out_name);                       // [1,n,T,Dh]
}

ValueId rotate(BuildContext& ctx, int64_t layer, ValueId x, const Weight& norm,
               const std::string& name) {
  GraphEmitter& e = ctx.e;
  if (!norm.empty()) {  // rms_norm over the last axis (Dh), one weight for every head
    x = e.rms_norm(x, e.weight(name + ".norm.weight", norm), ctx.model.config.rms_eps,
                   name + ".norm");
  }
  if (!ctx.model.config.uses_rope(layer)) {
    return ctx.options.r3 ? e.matmul(x, ctx.hadamard, name + ".r3") : x;
  }
  // RoPE, rotate-half over the first R dims: [x1, x2, xp] -> [x1*cos - x2*sin, x1*sin + x2*cos,
  // xp], x1 = x[..., :R/2], x2 = x[..., R/2:R], xp = x[..., R:] (partial rotary; absent when
  // R = Dh). Sliding-window layers read the rows of the local RoPE base.
  const int64_t R = ctx.model.config.rope_dims();
  const int64_t half = R / 2;
  ValueId x1 = e.slice(x, 3, 0, half, name + ".x1");  // [1,n,T,R/2]
  ValueId x2 = e.slice(x, 3, half, R, name + ".x2");  // [1,n,T,R/2]
  const bool local = ctx.sliding(layer);
  const ValueId cos = local ? ctx.cos_local : ctx.cos, sin = local ? ctx.sin_local : ctx.sin;
  ValueId a = e.sub(e.mul(x1, cos, name + ".x1cos"), e.mul(x2, sin, name + ".x2sin"),
                    name + ".rot_a");
  ValueId b = e.add(e.mul(x1, sin, name + ".x1sin"), e.mul(x2, cos, name + ".x2cos"),
                    name + ".rot_b");
  std::vector<ValueId> parts{a, b};
  if (R < ctx.Dh) parts.push_back(e.slice(x, 3, R, ctx.Dh, name + ".pass"));  // [1,n,T,Dh-R]
  ValueId r = e.concat(parts, 3, name + ".rope");  // [1,n,T,Dh]
  if (!ctx.options.r3) return r;
  return e.matmul(r, ctx.hadamard, name + ".r3");  // [1,n,T,Dh] x [Dh,Dh]
}

ValueId scale_scores(BuildContext& ctx, ValueId scores, const std::string& name) {
  if (ctx.model.config.attention_multiplier) return ctx.e.mul(scores, ctx.attn_scale, name);
  return ctx.e.div(scores, ctx.attn_scale, name);
}

ValueId masked_softmax(BuildContext& ctx, ValueId scores, ValueId mask, const std::string& name) {
  GraphEmitter& e = ctx.e;
  ValueId masked;
  if (ctx.options.mask == MaskKind::kAdditive) {
    masked = e.add(scores, mask, name + ".masked");  // [1,h,T,C] + [1,T,C]
  } else {
    // where(mask == 0, s, rowmin(s) - 20): masked slots sit 20 below the row minimum.
    ValueId keep = e.eq(mask, ctx.zero, name + ".keep");            // [1,T,C] bool
    ValueId rmin = e.reduce_min(scores, 3, name + ".rowmin");        // [1,h,T,1]
    ValueId low = e.sub(rmin, ctx.twenty, name + ".low");            // [1,h,T,1]
    masked = e.where(keep, scores, low, name + ".masked");          // [1,h,T,C]
  }
  return e.softmax(masked, 3, name + ".probs");
}

namespace {

// [1,H,T,Dh] or per-head [1,1,T,Dh] concat -> o-projection input layout.
ValueId merge_heads_for_output(BuildContext& ctx, ValueId y_tokens_major, const std::string& p) {
  // y_tokens_major: [1,T,H,Dh] (MHA) or [1,1,T,E] (SHA concat); both reshape the same way.
  GraphEmitter& e = ctx.e;
  const int64_t E = ctx.H * ctx.Dh;
  if (!ctx.conv()) return e.reshape(y_tokens_major, {1, ctx.T, E}, p + ".out");  // [1,T,E]
  ValueId r = e.reshape(y_tokens_major, {1, ctx.T, 1, E}, p + ".out_r");          // [1,T,1,E]
  return e.transpose(r, {0, 3, 2, 1}, p + ".out");                               // [1,E,1,T]
}

// GQA repeat of a [1,Hkv,a,b] tensor to [1,H,a,b]: kv head g serves query heads g*G..g*G+G-1.
ValueId repeat_kv(BuildContext& ctx, ValueId x, const std::string& name) {
  if (ctx.G == 1) return x;
  GraphEmitter& e = ctx.e;
  ir::Shape s = e.shape(x);
  ValueId u = e.unsqueeze(x, 2, name + ".unsq");                                 // [1,Hkv,1,a,b]
  ValueId x5 = e.expand(u, {1, ctx.Hkv, ctx.G, s[2], s[3]}, name + ".expand");  // [1,Hkv,G,a,b]
  return e.reshape(x5, {1, ctx.H, s[2], s[3]}, name + ".rep");                  // [1,H,a,b]
}

}  // namespace

ValueId attention_mha(BuildContext& ctx, int64_t layer, ValueId x_in) {
  GraphEmitter& e = ctx.e;
  const LayerWeights& w = ctx.model.weights.layers[static_cast<size_t>(layer)];
  const std::string p = layer_prefix(layer) + ".attn";
  const auto l = static_cast<size_t>(layer);

  ValueId q = rotate(ctx, layer, project_heads(ctx, x_in, w.wq, w.bq, ctx.H, p + ".q", p + ".q"),
                     w.q_norm, p + ".q");  // [1,H,T,Dh]
  ValueId k = rotate(ctx, layer, project_heads(ctx, x_in, w.wk, w.bk, ctx.Hkv, p + ".k", p + ".k"),
                     w.k_norm, p + ".k");  // [1,Hkv,T,Dh]
  ValueId v_new = project_heads(ctx, x_in, w.wv, w.bv, ctx.Hkv, p + ".v",
                                v_new_name(layer));                       // [1,Hkv,T,Dh]
  ValueId k_new = e.transpose(k, {0, 1, 3, 2}, k_new_name(layer));      // [1,Hkv,Dh,T]
  ctx.k_new[l] = k_new;
  ctx.v_new[l] = v_new;

  ValueId kh = e.concat({ctx.k_cache[l], k_new}, 3, p + ".k_all");  // [1,Hkv,Dh,C]
  ValueId vh = e.concat({ctx.v_cache[l], v_new}, 2, p + ".v_all");  // [1,Hkv,C,Dh]
  kh = repeat_kv(ctx, kh, p + ".k_all");                            // [1,H,Dh,C]
  vh = repeat_kv(ctx, vh, p + ".v_all");                            // [1,H,C,Dh]

  ValueId s = e.matmul(q, kh, p + ".scores");           // [1,H,T,C]
  s = scale_scores(ctx, s, p + ".scaled");              // / sqrt(Dh) or * multiplier
  ValueId probs = masked_softmax(ctx, s, ctx.layer_mask(layer), p);  // [1,H,T,C]
  ValueId y = e.matmul(probs, vh, p + ".heads_out");    // [1,H,T,Dh]
  ValueId yt = e.transpose(y, {0, 2, 1, 3}, p + ".heads_out_t");  // [1,T,H,Dh]
  return merge_heads_for_output(ctx, yt, p);
}

ValueId attention_sha(BuildContext& ctx, int64_t layer, ValueId x_in) {
  GraphEmitter& e = ctx.e;
  const LayerWeights& w = ctx.model.weights.layers[static_cast<size_t>(layer)];
  const std::string p = layer_prefix(layer) + ".attn";
  const int64_t Dh = ctx.Dh;
  auto rows = [&](const Weight& wt, int64_t head) {
    return wt.empty() ? Weight{} : weight_rows(wt, head * Dh, (head + 1) * Dh);
  };

  // Per kv head g: k_g, v_g [1,1,T,Dh], their caches and the concatenations.
  std::vector<ValueId> k_new(static_cast<size_t>(ctx.Hkv)), v_new(k_new.size());
  std::vector<ValueId> kh(k_new.size()), vh(k_new.size());
  for (int64_t g = 0; g < ctx.Hkv; ++g) {
    const auto gi = static_cast<size_t>(g);
    const std::string kp = fmt::format("{}.k.{}", p, g), vp = fmt::format("{}.v.{}", p, g);
    const bool per_head = ctx.per_head_cache();
    const auto slot = static_cast<size_t>(per_head ? layer * ctx.Hkv + g : layer);
    ValueId k =
        rotate(ctx, layer, project_heads(ctx, x_in, rows(w.wk, g), rows(w.bk, g), 1, kp, kp),
               w.k_norm, kp);
    const auto head_output = [&](opset::CacheTensor which) {
      return opset::cache_tensor_name(which, layer, opset::CacheLayout::kPerHead, g);
    };
    v_new[gi] = project_heads(ctx, x_in, rows(w.wv, g), rows(w.bv, g), 1, vp,
                              per_head ? head_output(opset::CacheTensor::kVNew) : vp);
    k_new[gi] = e.transpose(k, {0, 1, 3, 2},
                            per_head ? head_output(opset::CacheTensor::kKNew) : kp + ".new");
    ValueId kc = ctx.k_cache[slot], vc = ctx.v_cache[slot];
    if (!per_head) {
      kc = e.slice(kc, 1, g, g + 1, kp + ".cache");  // [1,1,Dh,P]
      vc = e.slice(vc, 1, g, g + 1, vp + ".cache");  // [1,1,P,Dh]
    } else {
      ctx.k_new[slot] = k_new[gi];
      ctx.v_new[slot] = v_new[gi];
    }
    kh[gi] = e.concat({kc, k_new[gi]}, 3, kp + ".all");  // [1,1,Dh,C]
    vh[gi] = e.concat({vc, v_new[gi]}, 2, vp + ".all");  // [1,1,C,Dh]
  }
  if (!ctx.per_head_cache()) {
    const auto l = static_cast<size_t>(layer);
    ctx.k_new[l] = e.concat(k_new, 1, k_new_name(layer));  // [1,Hkv,Dh,T]
    ctx.v_new[l] = e.concat(v_new, 1, v_new_name(layer));  // [1,Hkv,T,Dh]
  }

  // Per query head h: attention against kv head h / G.
  std::vector<ValueId> ys;
  for (int64_t h = 0; h < ctx.H; ++h) {
    const std::string qp = fmt::format("{}.q.{}", p, h), hp = fmt::format("{}.h{}", p, h);
    const auto g = static_cast<size_t>(h / ctx.G);
    ValueId q =
        rotate(ctx, layer, project_heads(ctx, x_in, rows(w.wq, h), rows(w.bq, h), 1, qp, qp),
               w.q_norm, qp);
    ValueId s = e.matmul(q, kh[g], hp + ".scores");   // [1,1,T,C]
    s = scale_scores(ctx, s, hp + ".scaled");
    ValueId probs = masked_softmax(ctx, s, ctx.layer_mask(layer), hp);
    ys.push_back(e.matmul(probs, vh[g], hp + ".out"));  // [1,1,T,Dh]
  }
  ValueId y = e.concat(ys, 3, p + ".heads_out");  // [1,1,T,E], head-major along the last axis
  return merge_heads_for_output(ctx, y, p);
}

}  // namespace hs::frontend::detail
