// CodeGen / CodeGen2 from Hugging Face folders (hf_codegen.h).
//
// transformers' CodeGen (modeling_codegen.py), per layer:
//   x = ln_1(h)                                  LayerNorm with bias
//   qkv = qkv_proj(x) -> [T, 4, 3*D/4]; per group: query, value, key (D/4 each, H/4 heads)
//   q, k: rotate_every_two RoPE on the first rotary_dim dims of each head (interleaved pairs
//         (2i, 2i+1), inverse frequencies 10000^(-2i/rotary_dim)), the rest passes through
//   a = out_proj(softmax(q k^T / sqrt(Dh) + causal) v)
//   h = a + fc_out(gelu_new(fc_in(x))) + h      parallel block, biases on fc_in / fc_out
// logits = lm_head(ln_f(h)) with a bias.
#include "hf_codegen.h"

#include <cstring>

namespace hs::frontend::hf {

namespace {

using json::Json;

Result<FfnActivation> read_codegen_activation(const Json& j, const std::string& what) {
  HS_ASSIGN_OR_RETURN(std::string act, json::get_string_or(j, "activation_function", "gelu_new",
                                                           what));
  // gelu_fast is tanh GELU written as 0.5 x (1 + tanh(0.79788456 x (1 + 0.044715 x^2))).
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    return FfnActivation::kGeluTanh;
  }
  if (act == "gelu") return FfnActivation::kGelu;
  return errorf(ErrorKind::kUnsupported,
                "{}: activation_function '{}' is not supported (gelu_new, gelu_fast, "
                "gelu_pytorch_tanh, gelu)",
                what, act);
}

// Rows of `w` [rows, cols]: the concatenation of the row ranges [begin, begin + n) of `blocks`.
Weight gather_rows(const Weight& w, const std::vector<std::pair<int64_t, int64_t>>& blocks) {
  const int64_t cols = w.shape[1];
  int64_t rows = 0;
  for (const auto& [begin, n] : blocks) rows += n;
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const std::span<const float> src = w.f32();
  float* dst = out.data();
  for (const auto& [begin, n] : blocks) {
    std::memcpy(dst, src.data() + begin * cols, static_cast<size_t>(n * cols) * 4);
    dst += n * cols;
  }
  return Weight::from_floats({rows, cols}, out);
}

}  // namespace

Result<LlamaConfig> read_codegen_config(const Json& j, const std::string& what) {
  LlamaConfig c;
  c.family = "codegen";
  HS_ASSIGN_OR_RETURN(c.ffn_act, read_codegen_activation(j, what));
  HS_ASSIGN_OR_RETURN(c.dim, json::get_int(j, "n_embd", what));
  HS_ASSIGN_OR_RETURN(c.n_heads, json::get_int(j, "n_head", what));
  HS_ASSIGN_OR_RETURN(c.n_layers, json::get_int(j, "n_layer", what));
  HS_ASSIGN_OR_RETURN(c.vocab_size, json::get_int(j, "vocab_size", what));
  if (c.n_heads <= 0 || c.dim <= 0 || c.dim % c.n_heads != 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: n_embd {} is not divisible by n_head {} (head_dim = n_embd / n_head)", what,
                  c.dim, c.n_heads);
  }
  if (c.n_heads % kCodegenQkvGroups != 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: n_head {} is not a multiple of {} (CodeGen's qkv_proj holds {} groups of "
                  "heads)",
                  what, c.n_heads, kCodegenQkvGroups, kCodegenQkvGroups);
  }
  c.n_kv_heads = c.n_heads;
  c.head_dim = c.dim / c.n_heads;
  // n_inner: null (or absent) means 4 * n_embd.
  HS_ASSIGN_OR_RETURN(c.hidden_dim, json::get_int_or(j, "n_inner", 4 * c.dim, what));
  HS_ASSIGN_OR_RETURN(int64_t n_ctx, json::get_int_or(j, "n_ctx", 2048, what));
  HS_ASSIGN_OR_RETURN(c.max_seq_len, json::get_int_or(j, "n_positions", n_ctx, what));
  HS_ASSIGN_OR_RETURN(c.rms_eps, json::get_number_or(j, "layer_norm_epsilon", 1e-5, what));
  HS_ASSIGN_OR_RETURN(c.tied_embeddings, json::get_bool_or(j, "tie_word_embeddings", false, what));
  // rotary_dim: CodeGenConfig's default 64 when absent. null makes transformers rotate over
  // n_embd-wide sin/cos tables, which only fits a single head: refused.
  if (j.contains("rotary_dim") && j["rotary_dim"].is_null()) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: rotary_dim is null (transformers' CodeGen then builds RoPE tables over "
                  "n_embd dims); expected an even number in 2..{}",
                  what, c.head_dim);
  }
  HS_ASSIGN_OR_RETURN(int64_t rotary, json::get_int_or(j, "rotary_dim", 64, what));
  if (rotary <= 0 || rotary > c.head_dim || rotary % 2 != 0) {
    return errorf(ErrorKind::kInvalidArgument,
                  "{}: rotary_dim is {}, expected an even number in 2..{} (head_dim = n_embd {} "
                  "/ n_head {})",
                  what, rotary, c.head_dim, c.dim, c.n_heads);
  }
  c.rotary_dim = rotary == c.head_dim ? 0 : rotary;
  c.rope_theta = 10000.0;
  c.norm = NormKind::kLayer;
  c.parallel_block = true;
  c.gated_ffn = false;
  c.ffn_bias = true;
  c.lm_head_bias = true;
  return c;
}

QkvSplit split_codegen_qkv(const Weight& qkv, int64_t dim) {
  const int64_t local = dim / kCodegenQkvGroups;  // rows of one part of one group
  std::vector<std::pair<int64_t, int64_t>> q, k, v;
  for (int64_t g = 0; g < kCodegenQkvGroups; ++g) {
    const int64_t base = g * 3 * local;
    q.emplace_back(base, local);              // query
    v.emplace_back(base + local, local);      // value
    k.emplace_back(base + 2 * local, local);  // key
  }
  return {gather_rows(qkv, q), gather_rows(qkv, k), gather_rows(qkv, v)};
}

Result<LlamaWeights> load_codegen_weights(const LlamaConfig& c, const LoadTensor& load) {
  const int64_t d = c.dim, f = c.hidden_dim;
  LlamaWeights w;
  HS_ASSIGN_OR_RETURN(w.tok_embeddings, load("transformer.wte.weight", {c.vocab_size, d}));
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("transformer.h.{}.", l);
    HS_ASSIGN_OR_RETURN(lw.attn_norm, load(p + "ln_1.weight", {d}));
    HS_ASSIGN_OR_RETURN(lw.attn_norm_bias, load(p + "ln_1.bias", {d}));
    HS_ASSIGN_OR_RETURN(Weight qkv, load(p + "attn.qkv_proj.weight", {3 * d, d}));
    QkvSplit split = split_codegen_qkv(qkv, d);
    // Interleaved RoPE pairs in the rotary part -> rotate-half (the graph's layout).
    lw.wq = permute_interleaved_to_rotate_half(split.wq, c.n_heads, c.head_dim, c.rope_dims());
    lw.wk = permute_interleaved_to_rotate_half(split.wk, c.n_kv_heads, c.head_dim, c.rope_dims());
    lw.wv = std::move(split.wv);
    HS_ASSIGN_OR_RETURN(lw.wo, load(p + "attn.out_proj.weight", {d, d}));
    HS_ASSIGN_OR_RETURN(lw.w1, load(p + "mlp.fc_in.weight", {f, d}));
    HS_ASSIGN_OR_RETURN(lw.b1, load(p + "mlp.fc_in.bias", {f}));
    HS_ASSIGN_OR_RETURN(lw.w2, load(p + "mlp.fc_out.weight", {d, f}));
    HS_ASSIGN_OR_RETURN(lw.b2, load(p + "mlp.fc_out.bias", {d}));
  }
  HS_ASSIGN_OR_RETURN(w.norm, load("transformer.ln_f.weight", {d}));
  HS_ASSIGN_OR_RETURN(w.norm_bias, load("transformer.ln_f.bias", {d}));
  if (!c.tied_embeddings) {
    HS_ASSIGN_OR_RETURN(w.output, load("lm_head.weight", {c.vocab_size, d}));
  }
  HS_ASSIGN_OR_RETURN(w.output_bias, load("lm_head.bias", {c.vocab_size}));
  return w;
}

}  // namespace hs::frontend::hf
