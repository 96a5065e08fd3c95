// GGUF model loader for llama.cpp's architectures llama, qwen2, qwen3, granite, smollm3, gemma,
// gemma3, phi3 (Phi-3 / Phi-4: fused attn_qkv and ffn_up = gate | up split at load, partial
// rope from rope.dimension_count, longrope from rope_factors_{short,long}.weight) and chatglm
// (GLM-edge, GLM-4: q/k/v with biases, separate or fused attn_qkv; ffn_up = gate | up; partial
// rope, NORM type: interleaved pairs in the first rope.dimension_count dims of each head, as
// transformers' Glm, permuted to rotate-half within that part):
// <arch>.* metadata -> LlamaConfig, blk.N.* tensors -> LlamaWeights. llama.cpp stores the q/k
// rows of llama and granite with interleaved RoPE pairs (convert_hf_to_gguf permutes them; rope
// type NORM): they are permuted back to rotate-half. qwen2/qwen3/gemma/gemma3 use the NEOX rope
// type, rows already rotate-half. Gemma's norms are stored with the 1 of (1 + w) added by
// convert_hf_to_gguf; llama.cpp's graph scales the embedding by sqrt(D) and uses GELU-tanh, and
// for gemma3 (as its loader) every 6th layer is global, the others sliding-window layers with
// RoPE base 10000. Every tensor of the file must be read (one nothing reads is an error).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <set>

#include "headsplit/frontend/gguf.h"

namespace hs::frontend {

namespace {

// The double a float32 metadata value stood for: its shortest round-trip decimal
// (1e-5f is stored as 9.99999974737875e-06 and read back as 1e-05).
double meant_value(const GgufFile& f, std::string_view key, double value) {
  const GgufValue* v = f.find(key);
  if (v == nullptr || v->type != GgufType::kF32 || !std::isfinite(value)) return value;
  const std::string text = fmt::format("{}", static_cast<float>(value));
  return std::strtod(text.c_str(), nullptr);
}

Result<int64_t> required_dim(const GgufFile& f, const std::string& key) {
  HS_ASSIGN_OR_RETURN(uint64_t v, f.get_uint(key));
  if (v == 0 || v >= (uint64_t{1} << 31)) {
    return errorf(ErrorKind::kCorrupt, "{}: {} is {}, expected 1..2^31-1", f.path(), key, v);
  }
  return static_cast<int64_t>(v);
}

Result<int64_t> optional_dim(const GgufFile& f, const std::string& key, int64_t fallback) {
  if (f.find(key) == nullptr) return fallback;
  return required_dim(f, key);
}

Result<double> optional_float(const GgufFile& f, const std::string& key, double fallback) {
  if (f.find(key) == nullptr) return fallback;
  HS_ASSIGN_OR_RETURN(double v, f.get_float(key));
  return meant_value(f, key, v);
}

// The architectures read, their family and whether q/k rows are stored interleaved.
struct GgufArch {
  const char* arch;
  const char* family;
  bool interleaved_qk;
};
constexpr GgufArch kGgufArchs[] = {{"llama", "llama", true},
                                   {"qwen2", "qwen2", false},
                                   {"qwen3", "qwen3", false},
                                   {"granite", "granite", true},
                                   {"smollm3", "smollm3", true},
                                   {"gemma", "gemma", false},
                                   {"gemma3", "gemma3", false},
                                   {"phi3", "phi3", false},
                                   {"chatglm", "glm", true}};

// Rows [begin, end) of a [rows, cols] weight, or elements of a [rows] bias, as a view (fused
// tensors split at load).
Weight rows_of(const Weight& w, int64_t begin, int64_t end) {
  const int64_t cols = w.shape.size() > 1 ? w.shape[1] : 1;
  std::vector<int64_t> shape = w.shape;
  shape[0] = end - begin;
  return Weight{std::move(shape), w.data.sub(static_cast<size_t>(begin * cols * 4),
                                             static_cast<size_t>((end - begin) * cols * 4))};
}

// Loads tensor `name`, checks its row-major shape and adds the name to `read` (the tensors
// something reads).
Result<Weight> load_checked(const GgufFile& f, std::set<std::string>& read, const std::string& name,
                            const std::vector<int64_t>& shape) {
  read.insert(name);
  HS_ASSIGN_OR_RETURN(Weight w, f.load_tensor(name));
  if (w.shape != shape) {
    std::vector<int64_t> ne(shape.rbegin(), shape.rend());
    return errorf(ErrorKind::kShape, "{}: tensor '{}' has ne [{}], expected [{}] (shape [{}])",
                  f.path(), name, fmt::join(f.find_tensor(name)->ne, ","), fmt::join(ne, ","),
                  fmt::join(shape, ","));
  }
  return w;
}

// llama3 RoPE scaling is stored as a rope_freqs.weight tensor [Dh/2] of per-frequency
// divisors. Recognise the Llama-3.x formula (low 1, high 4, original 8192) with the factor its
// largest entry gives; anything else is unsupported.
Result<RopeScaling> llama3_scaling_from_tensor(const GgufFile& f, std::set<std::string>& read,
                                               const LlamaConfig& c) {
  HS_ASSIGN_OR_RETURN(Weight w, load_checked(f, read, "rope_freqs.weight", {c.head_dim / 2}));
  std::span<const float> got = w.f32();
  RopeScaling s;
  s.factor = 0.0;
  for (float x : got) s.factor = std::max(s.factor, static_cast<double>(x));
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (size_t i = 0; i < got.size(); ++i) {
    const double freq = 1.0 / std::pow(c.rope_theta, 2.0 * i / c.head_dim);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double expected = 1.0;
    if (wavelen > low_wavelen) {
      expected = s.factor;
    } else if (wavelen > high_wavelen) {
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      expected = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    if (!std::isfinite(got[i])) {
      return errorf(ErrorKind::kCorrupt, "{}: rope_freqs.weight[{}] is {}", f.path(), i, got[i]);
    }
    if (std::abs(got[i] - expected) > 1e-3 * expected) {
      return errorf(ErrorKind::kUnsupported,
                    "{}: rope_freqs.weight[{}] is {}, not the llama3 scaling value {} (factor "
                    "{}, low 1, high 4, original 8192)",
                    f.path(), i, got[i], expected, s.factor);
    }
  }
  return s;
}

// phi3: longrope as convert_hf_to_gguf writes it (rope_factors_short/long.weight [R/2],
// phi3.rope.scaling.attn_factor, phi3.rope.scaling.original_context_length), and the sliding
// window (phi3.attention.sliding_window; 0 or a window covering the context changes nothing).
Status read_phi3_rope(const GgufFile& f, std::set<std::string>& read, LlamaConfig& c) {
  uint64_t window = 0;  // convert_hf_to_gguf writes 0 for Phi-4 (no window)
  if (f.find("phi3.attention.sliding_window") != nullptr) {
    HS_ASSIGN_OR_RETURN(window, f.get_uint("phi3.attention.sliding_window"));
  }
  if (window > 0 && window < static_cast<uint64_t>(c.max_seq_len)) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: phi3.attention.sliding_window {} is below the context length {}; "
                  "sliding-window attention is not supported",
                  f.path(), window, c.max_seq_len);
  }
  const bool has_short = f.find_tensor("rope_factors_short.weight") != nullptr;
  const bool has_long = f.find_tensor("rope_factors_long.weight") != nullptr;
  if (!has_short && !has_long) return ok_status();
  if (!has_short || !has_long) {
    return errorf(ErrorKind::kCorrupt,
                  "{}: rope_factors_short.weight and rope_factors_long.weight come in pairs",
                  f.path());
  }
  const int64_t half = c.rope_dims() / 2;
  LongRope lr;
  HS_ASSIGN_OR_RETURN(Weight s, load_checked(f, read, "rope_factors_short.weight", {half}));
  HS_ASSIGN_OR_RETURN(Weight l, load_checked(f, read, "rope_factors_long.weight", {half}));
  lr.short_factor.assign(s.f32().begin(), s.f32().end());
  lr.long_factor.assign(l.f32().begin(), l.f32().end());
  HS_ASSIGN_OR_RETURN(lr.original_max_position_embeddings,
                      optional_dim(f, "phi3.rope.scaling.original_context_length", c.max_seq_len));
  const double fallback =
      longrope_default_attention_factor(c.max_seq_len, lr.original_max_position_embeddings);
  HS_ASSIGN_OR_RETURN(lr.attention_factor,
                      optional_float(f, "phi3.rope.scaling.attn_factor", fallback));
  c.longrope = std::move(lr);
  if (Status st = c.validate(f.path()); !st.ok()) {
    return Error(ErrorKind::kCorrupt, st.error().message());
  }
  return ok_status();
}

Result<LlamaConfig> read_config(const GgufFile& f, std::set<std::string>& read, int64_t vocab_size,
                                const GgufArch& arch) {
  LlamaConfig c;
  c.family = arch.family;
  const std::string a = arch.arch;
  auto key = [&](std::string_view k) { return fmt::format("{}.{}", a, k); };
  HS_ASSIGN_OR_RETURN(c.dim, required_dim(f, key("embedding_length")));
  HS_ASSIGN_OR_RETURN(c.n_layers, required_dim(f, key("block_count")));
  HS_ASSIGN_OR_RETURN(c.hidden_dim, required_dim(f, key("feed_forward_length")));
  HS_ASSIGN_OR_RETURN(c.n_heads, required_dim(f, key("attention.head_count")));
  HS_ASSIGN_OR_RETURN(c.n_kv_heads, optional_dim(f, key("attention.head_count_kv"), c.n_heads));
  HS_ASSIGN_OR_RETURN(c.head_dim, optional_dim(f, key("attention.key_length"), c.dim / c.n_heads));
  HS_ASSIGN_OR_RETURN(int64_t value_dim,
                      optional_dim(f, key("attention.value_length"), c.head_dim));
  HS_ASSIGN_OR_RETURN(int64_t rope_dims, optional_dim(f, key("rope.dimension_count"), c.head_dim));
  if ((c.family == "phi3" || c.family == "glm") && value_dim == c.head_dim &&
      rope_dims < c.head_dim && rope_dims > 0 && rope_dims % 2 == 0) {
    c.rotary_dim = rope_dims;  // partial rotary (Phi-4-mini: 96 of 128, GLM-edge: 64 of 128)
  } else if (value_dim != c.head_dim || rope_dims != c.head_dim) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: key length {}, value length {} and rope dimension count {} differ "
                  "(partial rope or distinct v heads are not supported)",
                  f.path(), c.head_dim, value_dim, rope_dims);
  }
  HS_ASSIGN_OR_RETURN(c.rms_eps, optional_float(f, key("attention.layer_norm_rms_epsilon"), 1e-5));
  HS_ASSIGN_OR_RETURN(c.rope_theta, optional_float(f, key("rope.freq_base"), 10000.0));
  HS_ASSIGN_OR_RETURN(c.max_seq_len, optional_dim(f, key("context_length"), 2048));
  if (f.find(key("rope.scaling.type")) != nullptr) {
    HS_ASSIGN_OR_RETURN(std::string type, f.get_string(key("rope.scaling.type")));
    if (type != "none") {
      return errorf(ErrorKind::kUnsupported, "{}: {} '{}' is not supported", f.path(),
                    key("rope.scaling.type"), type);
    }
  }
  if (c.family == "granite") {  // convert_hf_to_gguf's names for Granite's multipliers
    HS_ASSIGN_OR_RETURN(c.embedding_multiplier, optional_float(f, key("embedding_scale"), 1.0));
    HS_ASSIGN_OR_RETURN(c.residual_multiplier, optional_float(f, key("residual_scale"), 1.0));
    HS_ASSIGN_OR_RETURN(c.logits_scaling, optional_float(f, key("logit_scale"), 1.0));
    if (f.find(key("attention.scale")) != nullptr) {
      HS_ASSIGN_OR_RETURN(double m, optional_float(f, key("attention.scale"), 1.0));
      c.attention_multiplier = m;
    }
  }
  if (c.family == "smollm3") {
    // llama.cpp has no key for SmolLM3's no-RoPE layers: its graph skips RoPE in every 4th
    // layer ((l + 1) % 4 == 0, n_no_rope_layer_step = 4), as SmolLM3's no_rope_layer_interval.
    for (int64_t l = 3; l < c.n_layers; l += 4) c.no_rope_layers.push_back(l);
  }
  if (c.family == "gemma" || c.family == "gemma3") {
    c.ffn_act = FfnActivation::kGeluTanh;
    c.embedding_multiplier = std::sqrt(static_cast<double>(c.dim));
    HS_ASSIGN_OR_RETURN(c.final_logit_softcapping,
                        optional_float(f, key("final_logit_softcapping"), 0.0));
  }
  if (c.family == "gemma3") {
    c.post_norms = true;
    HS_ASSIGN_OR_RETURN(c.sliding_window, required_dim(f, key("attention.sliding_window")));
    HS_ASSIGN_OR_RETURN(int64_t pattern,
                        optional_dim(f, key("attention.sliding_window_pattern"), 6));
    for (int64_t l = 0; l < c.n_layers; ++l) {
      if ((l + 1) % pattern != 0) c.sliding_window_layers.push_back(l);
    }
    c.rope_local_theta = 10000.0;  // llama.cpp: rope_freq_base_train_swa
  }
  c.qk_norm = f.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  c.vocab_size = vocab_size;
  if (f.find("general.name") != nullptr) {
    HS_ASSIGN_OR_RETURN(c.name, f.get_string("general.name"));
  }
  if (Status st = c.validate(f.path()); !st.ok()) {
    return Error(ErrorKind::kCorrupt, st.error().message());
  }
  if (f.find_tensor("rope_freqs.weight") != nullptr) {
    HS_ASSIGN_OR_RETURN(RopeScaling s, llama3_scaling_from_tensor(f, read, c));
    c.rope_scaling = s;
  }
  if (c.family == "phi3") HS_TRY(read_phi3_rope(f, read, c));
  return c;
}

}  // namespace

Result<LlamaModel> load_gguf_model(const std::string& path) {
  HS_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  HS_ASSIGN_OR_RETURN(std::string arch_name, f.get_string("general.architecture"));
  const GgufArch* arch = nullptr;
  for (const GgufArch& a : kGgufArchs) {
    if (arch_name == a.arch) arch = &a;
  }
  if (arch == nullptr) {
    return errorf(ErrorKind::kUnsupported,
                  "{}: architecture '{}' is not supported, expected llama, qwen2, qwen3, granite, "
                  "smollm3, gemma, gemma3, phi3 or chatglm",
                  path, arch_name);
  }
  std::set<std::string> read;
  LlamaModel model;
  model.source = path;
  int64_t vocab_size = 0;
  if (f.find("tokenizer.ggml.tokens") != nullptr) {
    HS_ASSIGN_OR_RETURN(tokenizer::TokenizerData tok, load_gguf_tokenizer(f));
    vocab_size = static_cast<int64_t>(tok.pieces.size());
    model.tokenizer = std::move(tok);
  } else if (const std::string key = arch_name + ".vocab_size"; f.find(key) != nullptr) {
    HS_ASSIGN_OR_RETURN(vocab_size, required_dim(f, key));
  } else if (const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
             emb != nullptr && emb->ne.size() == 2 && emb->ne[1] < (uint64_t{1} << 31)) {
    vocab_size = static_cast<int64_t>(emb->ne[1]);
  }
  HS_ASSIGN_OR_RETURN(model.config, read_config(f, read, vocab_size, *arch));
  const LlamaConfig& c = model.config;
  const int64_t d = c.dim, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  const int64_t ff = c.hidden_dim;

  LlamaWeights& w = model.weights;
  HS_ASSIGN_OR_RETURN(w.tok_embeddings,
                      load_checked(f, read, "token_embd.weight", {c.vocab_size, d}));
  HS_ASSIGN_OR_RETURN(w.norm, load_checked(f, read, "output_norm.weight", {d}));
  if (f.find_tensor("output.weight") != nullptr) {
    HS_ASSIGN_OR_RETURN(w.output, load_checked(f, read, "output.weight", {c.vocab_size, d}));
    if (weights_bit_equal(w.output, w.tok_embeddings)) w.output = Weight{};
  }
  model.config.tied_embeddings = w.output.empty();
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    HS_ASSIGN_OR_RETURN(lw.attn_norm, load_checked(f, read, p + "attn_norm.weight", {d}));
    Weight wq, wk, bq, bk;
    const bool fused_qkv = f.find_tensor(p + "attn_qkv.weight") != nullptr;
    if (fused_qkv) {  // phi3, chatglm: fused q | k | v rows (and bias)
      HS_ASSIGN_OR_RETURN(Weight qkv,
                          load_checked(f, read, p + "attn_qkv.weight", {q + 2 * kv, d}));
      wq = rows_of(qkv, 0, q), wk = rows_of(qkv, q, q + kv), lw.wv = rows_of(qkv, q + kv, q + 2 * kv);
      if (f.find_tensor(p + "attn_qkv.bias") != nullptr) {
        HS_ASSIGN_OR_RETURN(Weight b, load_checked(f, read, p + "attn_qkv.bias", {q + 2 * kv}));
        bq = rows_of(b, 0, q), bk = rows_of(b, q, q + kv), lw.bv = rows_of(b, q + kv, q + 2 * kv);
      }
    } else {
      HS_ASSIGN_OR_RETURN(wq, load_checked(f, read, p + "attn_q.weight", {q, d}));
      HS_ASSIGN_OR_RETURN(wk, load_checked(f, read, p + "attn_k.weight", {kv, d}));
      HS_ASSIGN_OR_RETURN(lw.wv, load_checked(f, read, p + "attn_v.weight", {kv, d}));
    }
    HS_ASSIGN_OR_RETURN(lw.wo, load_checked(f, read, p + "attn_output.weight", {d, q}));
    HS_ASSIGN_OR_RETURN(lw.ffn_norm, load_checked(f, read, p + "ffn_norm.weight", {d}));
    if (c.post_norms) {  // gemma3
      HS_ASSIGN_OR_RETURN(lw.post_attn_norm,
                          load_checked(f, read, p + "post_attention_norm.weight", {d}));
      HS_ASSIGN_OR_RETURN(lw.post_ffn_norm, load_checked(f, read, p + "post_ffw_norm.weight", {d}));
    }
    HS_ASSIGN_OR_RETURN(lw.w2, load_checked(f, read, p + "ffn_down.weight", {d, ff}));
    if (c.family == "phi3" || c.family == "glm") {
      // ffn_up [2F, D]: gate rows, then up rows (llama.cpp's swiglu)
      HS_ASSIGN_OR_RETURN(Weight gate_up, load_checked(f, read, p + "ffn_up.weight", {2 * ff, d}));
      lw.w1 = rows_of(gate_up, 0, ff), lw.w3 = rows_of(gate_up, ff, 2 * ff);
    } else {
      HS_ASSIGN_OR_RETURN(lw.w1, load_checked(f, read, p + "ffn_gate.weight", {ff, d}));
      HS_ASSIGN_OR_RETURN(lw.w3, load_checked(f, read, p + "ffn_up.weight", {ff, d}));
    }
    // GGUF llama/granite q/k rows use interleaved RoPE pairs (convert_hf_to_gguf permutes
    // HF's rotate-half into it); undo that. The per-head q/k norms are over Dh, elementwise
    // weights that convert_hf_to_gguf does not permute (qwen3: NEOX, nothing permuted).
    const auto to_rotate_half = [&](const Weight& x, int64_t heads) {
      return arch->interleaved_qk
                 ? permute_interleaved_to_rotate_half(x, heads, c.head_dim, c.rope_dims())
                 : x;
    };
    lw.wq = to_rotate_half(wq, c.n_heads);
    lw.wk = to_rotate_half(wk, c.n_kv_heads);
    if (c.qk_norm) {
      HS_ASSIGN_OR_RETURN(lw.q_norm, load_checked(f, read, p + "attn_q_norm.weight", {c.head_dim}));
      HS_ASSIGN_OR_RETURN(lw.k_norm, load_checked(f, read, p + "attn_k_norm.weight", {c.head_dim}));
    }
    const bool has_bias = fused_qkv ? !bq.empty() : f.find_tensor(p + "attn_q.bias") != nullptr;
    if (l == 0) model.config.attention_bias = has_bias;
    if (has_bias != c.attention_bias) {
      return errorf(ErrorKind::kCorrupt, "{}: attention biases present in some layers only", path);
    }
    if (has_bias) {
      if (!fused_qkv) {
        HS_ASSIGN_OR_RETURN(bq, load_checked(f, read, p + "attn_q.bias", {q}));
        HS_ASSIGN_OR_RETURN(bk, load_checked(f, read, p + "attn_k.bias", {kv}));
        HS_ASSIGN_OR_RETURN(lw.bv, load_checked(f, read, p + "attn_v.bias", {kv}));
      }
      lw.bq = to_rotate_half(bq, c.n_heads);
      lw.bk = to_rotate_half(bk, c.n_kv_heads);
    }
  }
  std::vector<std::string> unread;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (read.count(t.name) == 0) unread.push_back(t.name);
  }
  if (!unread.empty()) {
    const size_t shown = std::min<size_t>(unread.size(), 8);
    return errorf(
        ErrorKind::kUnsupported,
        "{}: {} tensor(s) that a {} model does not use: {}{} (the file has features "
        "headsplit does not read; refusing to drop them silently)",
        path, unread.size(), arch_name,
        fmt::join(unread.begin(), unread.begin() + static_cast<std::ptrdiff_t>(shown), ", "),
        unread.size() > shown ? ", ..." : "");
  }
  HS_TRY(model.validate());
  return model;
}

}  // namespace hs::frontend
