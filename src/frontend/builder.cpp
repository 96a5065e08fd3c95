// The static llama graph: I/O, embedding, RoPE tables, decoder layers, LM head.
//
//   h0 = gather(tok_embeddings[V,D], tokens[1,T]) [* embedding_multiplier]   [1,T,D]
//   per layer: h += [r *] [post_norm(] o_proj(attention(norm(h))) [)];
//              h += [r *] [post_norm(] w2(act(w1 x) * w3 x) [)], x = norm(h)
//              (r: residual_multiplier; act: silu or gelu; post norms: Gemma3)
//   CodeGen's parallel block instead: x = norm(h); h += o_proj(attention(x)) + ffn(x), the FFN
//              non-gated with biases: w2(act(w1 x + b1)) + b2
//   logits = lm_head(norm(h)) [+ output_bias] [/ logits_scaling]             [1,T,V]
//            [-> cap * tanh(logits / cap)]  (final_logit_softcapping)
//   (norm: RMSNorm, or LayerNorm with bias (CodeGen))
// A multiplier of exactly 1 emits no op.
// Conv form: every projection is a 1x1 conv over [1,D,1,T] (reshape [1,T,1,D] + transpose
// (0,3,2,1) in, transpose (0,3,2,1) + reshape [1,T,D] out), as in the reference.
#include "headsplit/frontend/builder.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <tuple>
#include <utility>

#include "builder_internal.h"
#include "headsplit/support/memory.h"

namespace hs::frontend {

namespace detail {

std::string layer_prefix(int64_t layer) { return fmt::format("layers.{}", layer); }

namespace {

using ir::ValueId;

// Inverse RoPE frequencies theta^(-2i/R), i < R/2 (R = rotary dims, Dh unless partial), with
// llama3 scaling, or divided by the longrope short/long factors (long when the context C is
// beyond the original trained context), when configured. `local`: the sliding-window layers'
// base rope_local_theta, unscaled.
std::vector<double> rope_inv_freq(const LlamaConfig& c, int64_t context_len, bool local = false) {
  const int64_t R = c.rope_dims();
  const int64_t half = R / 2;
  const double theta = local ? c.rope_local_theta : c.rope_theta;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv[static_cast<size_t>(i)] =
        1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(R));
  }
  if (c.longrope && !local) {
    const bool use_long = context_len > c.longrope->original_max_position_embeddings;
    const std::vector<double>& ext = use_long ? c.longrope->long_factor : c.longrope->short_factor;
    for (size_t i = 0; i < inv.size(); ++i) inv[i] /= ext[i];
    return inv;
  }
  if (!c.rope_scaling || local) return inv;
  const RopeScaling& s = *c.rope_scaling;
  const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_ctx / s.low_freq_factor;
  const double high_wavelen = old_ctx / s.high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      f /= s.factor;
      continue;
    }
    const double smooth =
        (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    f = (1.0 - smooth) * f / s.factor + smooth * f;
  }
  return inv;
}

// Sylvester Hadamard matrix of size n (a power of two), scaled by 1/sqrt(n): orthonormal.
std::vector<float> hadamard(int64_t n) {
  std::vector<float> m(static_cast<size_t>(n * n));
  const float scale = 1.0f / std::sqrt(static_cast<float>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      // H[i][j] = (-1)^popcount(i & j)
      const bool negative = (__builtin_popcountll(static_cast<uint64_t>(i & j)) & 1) != 0;
      m[static_cast<size_t>(i * n + j)] = negative ? -scale : scale;
    }
  }
  return m;
}

Status check_options(const LlamaConfig& c, const BuildOptions& o) {
  if (o.ar_len < 1 || o.context_len < 2 || o.ar_len >= o.context_len) {
    return errorf(ErrorKind::kInvalidArgument,
                  "ar_len {} and context_len {} must satisfy 1 <= T < C (cache slots P = C - T "
                  "must be at least 1)", o.ar_len, o.context_len);
  }
  if (o.r3 && (c.head_dim & (c.head_dim - 1)) != 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "r3 needs a power-of-two head size for the Hadamard matrix, got Dh = {}",
                  c.head_dim);
  }
  if (c.head_dim % 2 != 0) {
    return errorf(ErrorKind::kUnsupported, "rope needs an even head size, got Dh = {}", c.head_dim);
  }
  if (o.cache_layout == CacheLayout::kPerHead && o.form != AttentionForm::kShaFromSource) {
    return errorf(ErrorKind::kInvalidArgument,
                  "per-head caches exist only in the SHA-from-source form (use per-layer caches "
                  "with the MHA form)");
  }
  return {};
}

// Inputs in the reference's order: tokens, mask, positions, every K cache, every V cache;
// names and shapes are the step-I/O contract's.
void add_inputs(BuildContext& ctx, ValueId& tokens, ValueId& pos) {
  GraphEmitter& e = ctx.e;
  const opset::CacheLayout layout = ctx.options.cache_layout;
  const opset::StepDims dims{.ar_len = ctx.T,
                             .context_len = ctx.C,
                             .vocab_size = ctx.V,
                             .n_layers = ctx.L,
                             .n_kv_heads = ctx.Hkv,
                             .head_dim = ctx.Dh,
                             .layout = layout};
  tokens = e.input(std::string(opset::kTokensName), ir::TensorType::i32({1, ctx.T}));
  ctx.mask =
      e.input(std::string(opset::kAttentionMaskName), ir::TensorType::f32({1, ctx.T, ctx.C}));
  if (!ctx.model.config.sliding_window_layers.empty()) {  // after the mask, as the reference
    ctx.window_mask =
        e.input(std::string(opset::kWindowMaskName), ir::TensorType::f32({1, ctx.T, ctx.C}));
  }
  pos = e.input(std::string(opset::kInputPosName), ir::TensorType::i32({1, ctx.T}));
  const int64_t per_layer = ctx.per_head_cache() ? ctx.Hkv : 1;
  const auto slots = static_cast<size_t>(dims.slot_count());
  ctx.k_cache.assign(slots, ir::kNoValue);
  ctx.v_cache.assign(slots, ir::kNoValue);
  ctx.k_new.assign(slots, ir::kNoValue);
  ctx.v_new.assign(slots, ir::kNoValue);
  for (auto [which, values] : {std::pair{opset::CacheTensor::kKCache, &ctx.k_cache},
                               std::pair{opset::CacheTensor::kVCache, &ctx.v_cache}}) {
    const ir::TensorType type = ir::TensorType::f32(opset::cache_tensor_shape(which, dims));
    for (int64_t l = 0; l < ctx.L; ++l) {
      for (int64_t g = 0; g < per_layer; ++g) {
        (*values)[static_cast<size_t>(l * per_layer + g)] =
            e.input(opset::cache_tensor_name(which, l, layout, g), type);
      }
    }
  }
}

// Shared constants: RoPE rows of this step's positions, attention scale, masked-softmax
// scalars, R3 matrix.
// The cos and sin rows of this step's positions, [1,1,T,R/2] each, named `prefix`.cos/.sin.
std::pair<ValueId, ValueId> rope_rows(BuildContext& ctx, ValueId pos, const std::vector<double>& inv,
                                      const std::string& prefix) {
  GraphEmitter& e = ctx.e;
  const int64_t half = ctx.model.config.rope_dims() / 2;  // R/2
  // longrope: cos and sin scaled by the attention factor (transformers' attention_scaling).
  const double amp = ctx.model.config.longrope ? ctx.model.config.longrope->attention_factor : 1.0;
  std::vector<float> cos(static_cast<size_t>(ctx.C * half)), sin(cos.size());
  for (int64_t p = 0; p < ctx.C; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p) * inv[static_cast<size_t>(i)];
      cos[static_cast<size_t>(p * half + i)] = static_cast<float>(amp * std::cos(angle));
      sin[static_cast<size_t>(p * half + i)] = static_cast<float>(amp * std::sin(angle));
    }
  }
  ValueId cos_table = e.constant(prefix + ".cos_table", {ctx.C, half}, cos);  // [C,R/2]
  ValueId sin_table = e.constant(prefix + ".sin_table", {ctx.C, half}, sin);
  return {e.reshape(e.gather(cos_table, pos, prefix + ".cos_rows"), {1, 1, ctx.T, half},
                    prefix + ".cos"),
          e.reshape(e.gather(sin_table, pos, prefix + ".sin_rows"), {1, 1, ctx.T, half},
                    prefix + ".sin")};
}

void add_shared_values(BuildContext& ctx, ValueId pos) {
  GraphEmitter& e = ctx.e;
  std::tie(ctx.cos, ctx.sin) = rope_rows(ctx, pos, rope_inv_freq(ctx.model.config, ctx.C), "rope");
  if (!ctx.model.config.sliding_window_layers.empty()) {
    std::tie(ctx.cos_local, ctx.sin_local) =
        rope_rows(ctx, pos, rope_inv_freq(ctx.model.config, ctx.C, true), "rope_local");
  }
  const std::optional<double>& m = ctx.model.config.attention_multiplier;
  ctx.attn_scale = m ? e.scalar("attn.scale", static_cast<float>(*m))
                     : e.scalar("attn.scale", std::sqrt(static_cast<float>(ctx.Dh)));
  if (ctx.options.mask == MaskKind::kMaskedSoftmax) {
    ctx.zero = e.scalar("attn.mask_zero", 0.0f);
    ctx.twenty = e.scalar("attn.mask_margin", 20.0f);
  }
  if (ctx.options.r3) ctx.hadamard = e.constant("attn.r3_hadamard", {ctx.Dh, ctx.Dh}, hadamard(ctx.Dh));
}

// Conv form: [1,T,n] -> [1,n,1,T]; linear form: unchanged.
ValueId to_projection_layout(BuildContext& ctx, ValueId x, int64_t n, const std::string& name) {
  if (!ctx.conv()) return x;
  ValueId r = ctx.e.reshape(x, {1, ctx.T, 1, n}, name + "_r");  // [1,T,1,n]
  return ctx.e.transpose(r, {0, 3, 2, 1}, name);                // [1,n,1,T]
}

// Conv form: [1,n,1,T] -> [1,T,n]; linear form: unchanged.
ValueId from_projection_layout(BuildContext& ctx, ValueId x, int64_t n, const std::string& name) {
  if (!ctx.conv()) return x;
  ValueId t = ctx.e.transpose(x, {0, 3, 2, 1}, name + "_t");  // [1,T,1,n]
  return ctx.e.reshape(t, {1, ctx.T, n}, name);               // [1,T,n]
}

// A projection in the configured form: conv over [1,in,1,T] or linear over [1,T,in]; `bias`
// ([out]) added when not empty.
ValueId project(BuildContext& ctx, ValueId x, const Weight& w, const std::string& name,
                const Weight& bias = {}) {
  GraphEmitter& e = ctx.e;
  const ValueId b = bias.empty() ? ir::kNoValue : e.weight(name + ".bias", bias);
  if (!ctx.conv()) return e.linear(x, e.weight(name + ".weight", w), b, name);
  ValueId wv = e.weight(name + ".weight", w, {w.shape[0], w.shape[1], 1, 1});
  return e.conv2d(x, wv, b, name);
}

// The model's norm of h [1,T,D] (op `name`): RMSNorm with weight `w`, or LayerNorm with `w` and
// bias `b`; the constants are named `weights`.weight / .bias.
ValueId norm(BuildContext& ctx, ValueId h, const Weight& w, const Weight& b,
             const std::string& weights, const std::string& name) {
  GraphEmitter& e = ctx.e;
  const double eps = ctx.model.config.rms_eps;
  const ValueId wv = e.weight(weights + ".weight", w);
  if (ctx.model.config.norm == NormKind::kRms) return e.rms_norm(h, wv, eps, name);
  return e.layer_norm(h, wv, e.weight(weights + ".bias", b), eps, name);
}

// The FFN on the normalized input f_in [1,D,1,T] (conv) or [1,T,D] (linear), same layout out:
// gated w2(act(w1 x) * w3 x), or non-gated w2(act(w1 x + b1)) + b2 (CodeGen).
ValueId ffn(BuildContext& ctx, const LayerWeights& w, ValueId f_in, const std::string& p) {
  GraphEmitter& e = ctx.e;
  const bool gated = ctx.model.config.gated_ffn;
  ValueId gate = project(ctx, f_in, w.w1, p + ".ffn.w1", w.b1);                   // [1,F,1,T]
  ValueId up = gated ? project(ctx, f_in, w.w3, p + ".ffn.w3") : ir::kNoValue;  // [1,F,1,T]
  ValueId a = ir::kNoValue;
  switch (ctx.model.config.ffn_act) {
    case FfnActivation::kSilu: a = e.silu(gate, p + ".ffn.act"); break;
    case FfnActivation::kGeluTanh: a = e.gelu(gate, "tanh", p + ".ffn.act"); break;
    case FfnActivation::kGelu: a = e.gelu(gate, "none", p + ".ffn.act"); break;
  }
  if (gated) a = e.mul(a, up, p + ".ffn.gated");
  return project(ctx, a, w.w2, p + ".ffn.w2", w.b2);  // [1,D,1,T]
}

// x * m (a scalar constant named `name`.scale), or x when m == 1.
ValueId scaled(BuildContext& ctx, ValueId x, double m, const std::string& name) {
  if (m == 1.0) return x;
  return ctx.e.mul(x, ctx.e.scalar(name + ".scale", static_cast<float>(m)), name);
}

ValueId decoder_layer(BuildContext& ctx, int64_t l, ValueId h) {
  GraphEmitter& e = ctx.e;
  const LayerWeights& w = ctx.model.weights.layers[static_cast<size_t>(l)];
  const std::string p = layer_prefix(l);
  const double eps = ctx.model.config.rms_eps;
  ValueId xn = norm(ctx, h, w.attn_norm, w.attn_norm_bias, p + ".attn_norm",
                    p + ".attn_norm");                                   // [1,T,D]
  ValueId x_in = to_projection_layout(ctx, xn, ctx.D, p + ".attn.x_in");  // [1,D,1,T]
  ValueId attn = ctx.options.form == AttentionForm::kMha ? attention_mha(ctx, l, x_in)
                                                         : attention_sha(ctx, l, x_in);
  ValueId o = project(ctx, attn, w.wo, p + ".attn.o_proj");              // [1,D,1,T]
  const double r = ctx.model.config.residual_multiplier;
  ValueId attn_out = from_projection_layout(ctx, o, ctx.D, p + ".attn.o");  // [1,T,D]
  if (ctx.model.config.parallel_block) {  // CodeGen: h + (attn(x) + ffn(x)), as transformers
    ValueId f_in = to_projection_layout(ctx, xn, ctx.D, p + ".ffn.x_in");  // [1,D,1,T]
    ValueId ffn_out = from_projection_layout(ctx, ffn(ctx, w, f_in, p), ctx.D, p + ".ffn.out");
    ValueId both = e.add(attn_out, ffn_out, p + ".attn_ffn");
    return e.add(h, scaled(ctx, both, r, p + ".res"), p + ".h");
  }
  if (!w.post_attn_norm.empty()) {
    attn_out = e.rms_norm(attn_out, e.weight(p + ".post_attn_norm.weight", w.post_attn_norm), eps,
                          p + ".post_attn_norm");
  }
  h = e.add(h, scaled(ctx, attn_out, r, p + ".attn.res"), p + ".h_attn");

  ValueId fn = norm(ctx, h, w.ffn_norm, w.ffn_norm_bias, p + ".ffn_norm", p + ".ffn_norm");
  ValueId f_in = to_projection_layout(ctx, fn, ctx.D, p + ".ffn.x_in");  // [1,D,1,T]
  ValueId ffn_out = from_projection_layout(ctx, ffn(ctx, w, f_in, p), ctx.D, p + ".ffn.out");
  if (!w.post_ffn_norm.empty()) {
    ffn_out = e.rms_norm(ffn_out, e.weight(p + ".post_ffn_norm.weight", w.post_ffn_norm), eps,
                         p + ".post_ffn_norm");
  }
  return e.add(h, scaled(ctx, ffn_out, r, p + ".ffn.res"), p + ".h");
}

}  // namespace
}  // namespace detail

namespace {

// Refuses (kInvalidArgument, naming the sizes and both byte counts) step graphs whose KV
// caches and one step's activations, as floats, would need more than the machine's memory:
// 4 * (2*L*Hkv*Dh*C + T*C*(H+1) + T*(4D + 3F + V)) bytes.
Status check_step_memory(const LlamaConfig& c, int64_t context_len, int64_t ar_len) {
  // Float bytes, in doubles (no overflow): KV caches 2*L*Hkv*C*Dh, and per step the mask T*C,
  // the attention scores H*T*C and the activations T*(4D + 3F + V).
  const double C = static_cast<double>(context_len), T = static_cast<double>(ar_len);
  const double kv =
      2.0 * static_cast<double>(c.n_layers * c.n_kv_heads) * static_cast<double>(c.head_dim) * C;
  const double step = T * C * (1.0 + static_cast<double>(c.n_heads)) +
                      T * static_cast<double>(4 * c.dim + 3 * c.hidden_dim + c.vocab_size);
  const double need = 4.0 * (kv + step);
  const auto have = static_cast<double>(physical_memory_bytes());
  if (have > 0 && need > have) {
    return errorf(ErrorKind::kInvalidArgument,
                  "context length {} with ar length {} needs about {:.3g} GiB for the KV cache "
                  "and one step's activations (L {}, Hkv {}, Dh {}, H {}), more than the {:.3g} "
                  "GiB of memory of this machine",
                  context_len, ar_len, need / 1073741824.0, c.n_layers, c.n_kv_heads, c.head_dim,
                  c.n_heads, have / 1073741824.0);
  }
  return {};
}

}  // namespace

Result<StepLengths> step_lengths(const LlamaModel& model, int64_t context_len,
                                 int64_t prefill_ar_len) {
  StepLengths out;
  const int64_t trained = model.config.max_seq_len;
  out.context_len = context_len > 0 ? context_len
                    : trained > 0   ? std::min(trained, kDefaultMaxContext)
                                    : kDefaultMaxContext;
  HS_TRY(opset::check_step_lengths(prefill_ar_len, out.context_len));
  if (trained > 0 && out.context_len > trained) {
    return errorf(ErrorKind::kInvalidArgument,
                  "context length {} is above the model's trained context {} ({}); use at most "
                  "{}",
                  out.context_len, trained, model.source, trained);
  }
  HS_TRY(check_step_memory(model.config, out.context_len, prefill_ar_len));
  out.ar_lens = {prefill_ar_len};
  if (prefill_ar_len != 1) out.ar_lens.push_back(1);
  return out;
}

Result<ir::Graph> build_llama(const LlamaModel& model, const BuildOptions& options) {
  using detail::BuildContext;
  const LlamaConfig& c = model.config;
  HS_TRY_CTX(model.validate(), model.source);
  HS_TRY(detail::check_options(c, options));

  ir::Graph graph(options.form == AttentionForm::kMha ? "llama_mha" : "llama_sha");
  GraphEmitter e(graph);
  BuildContext ctx{model, options, e};
  ctx.T = options.ar_len;
  ctx.C = options.context_len;
  ctx.P = ctx.C - ctx.T;
  ctx.D = c.dim;
  ctx.H = c.n_heads;
  ctx.Hkv = c.n_kv_heads;
  ctx.G = c.n_heads / c.n_kv_heads;
  ctx.Dh = c.head_dim;
  ctx.F = c.hidden_dim;
  ctx.V = c.vocab_size;
  ctx.L = c.n_layers;

  ir::ValueId tokens = ir::kNoValue, pos = ir::kNoValue;
  detail::add_inputs(ctx, tokens, pos);
  detail::add_shared_values(ctx, pos);

  ir::ValueId table = e.weight("tok_embeddings.weight", model.weights.tok_embeddings);
  ir::ValueId h = e.gather(table, tokens, "embed");  // [1,T,D]
  h = detail::scaled(ctx, h, c.embedding_multiplier, "embed_scaled");
  for (int64_t l = 0; l < ctx.L; ++l) h = detail::decoder_layer(ctx, l, h);

  ir::ValueId xn =
      detail::norm(ctx, h, model.weights.norm, model.weights.norm_bias, "norm", "final_norm");
  ir::ValueId x_in = detail::to_projection_layout(ctx, xn, ctx.D, "lm_head.x_in");
  ir::ValueId logits_p = detail::project(ctx, x_in, model.lm_head(), "output",
                                         model.weights.output_bias);  // [1,V,1,T]
  const bool capped = c.final_logit_softcapping > 0.0;
  const bool unscaled = c.logits_scaling != 1.0 || capped;
  ir::ValueId logits =
      detail::from_projection_layout(ctx, logits_p, ctx.V, unscaled ? "logits_unscaled" : "logits");
  if (c.logits_scaling != 1.0) {
    logits = e.div(logits, e.scalar("logits.scaling", static_cast<float>(c.logits_scaling)),
                   "logits_scaled");
  }
  if (capped) {  // cap * tanh(logits / cap)
    const ir::ValueId cap =
        e.scalar("logits.softcap", static_cast<float>(c.final_logit_softcapping));
    logits = e.mul(e.tanh(e.div(logits, cap, "logits_over_cap"), "logits_tanh"), cap,
                   "logits_capped");
  }
  HS_TRY_CTX(e.status(), fmt::format("building {}", model.source));
  if (!ctx.conv() || unscaled) graph.rename_value(logits, "logits");

  std::vector<ir::ValueId> outputs{logits};
  outputs.insert(outputs.end(), ctx.k_new.begin(), ctx.k_new.end());
  outputs.insert(outputs.end(), ctx.v_new.begin(), ctx.v_new.end());
  graph.set_outputs(std::move(outputs));
  return graph;
}

}  // namespace hs::frontend
