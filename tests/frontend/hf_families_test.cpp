// The llama-like families from Hugging Face folders written by the test (Qwen2ForCausalLM,
// Qwen3ForCausalLM, SmolLM3ForCausalLM, GraniteForCausalLM, GemmaForCausalLM, Gemma3ForCausalLM,
// Phi3ForCausalLM, GlmForCausalLM, CodeGenForCausalLM, LlamaForCausalLM with llama3 RoPE scaling
// under `rope_parameters`): each loads with its features; its float logits for 16
// positions equal a straightforward forward pass written here (double precision, no code shared
// with the builder; CodeGen's reads the fused, interleaved checkpoint as transformers does)
// within 1e-4; MHA, SHA from source and MHA + split give the same greedy
// tokens; hostile files (missing norm weights, a bias of the wrong length, no_rope_layers of the
// wrong length, negative multipliers, tensors nothing reads) fail naming what is wrong. Gemma3's
// sliding window through the runner (hybrid AR-32 / AR-1, window 8, context 64): greedy tokens
// and logits equal the reference that recomputes every position from scratch.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numbers>

#include "frontend/config_expect.h"
#include "frontend/hf_writer.h"
#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/hf.h"
#include "headsplit/frontend/safetensors.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/passes/passes.h"
#include "headsplit/runner/decoder.h"
#include "headsplit/runner/generator.h"
#include "headsplit/support/file.h"
#include "headsplit/tokenizer/pre_tokenizer.h"
#include "testing/family_configs.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

using ::testing::HasSubstr;
using Vec = std::vector<double>;

// ---- The independent reference: the HF modeling code's math, one position at a time ----------

// y = W x (+ b), W row-major [rows, cols].
Vec matvec(const Weight& w, const Vec& x, const Weight* b = nullptr) {
  const auto rows = static_cast<size_t>(w.shape[0]), cols = static_cast<size_t>(w.shape[1]);
  std::span<const float> wf = w.f32();
  Vec y(rows, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    double s = b != nullptr && !b->empty() ? b->f32()[r] : 0.0;
    for (size_t c = 0; c < cols; ++c) s += wf[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

// RMSNorm of x[begin, begin + n) in place: x * w / sqrt(mean(x^2) + eps).
void rms_norm(Vec& x, size_t begin, size_t n, const Weight& w, double eps) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += x[begin + i] * x[begin + i];
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (size_t i = 0; i < n; ++i) x[begin + i] *= inv * w.f32()[i];
}

// transformers' default inverse frequencies over the rotary dims R (Dh, or int(Dh * partial
// factor)), with _compute_llama3_parameters or _compute_longrope_parameters (long factors when
// the context is beyond the original one) when scaled; `local`: Gemma3's sliding-window layers
// (rope_local_base_freq, unscaled).
Vec inv_freq(const LlamaConfig& c, int64_t context, bool local = false) {
  Vec f;
  const int64_t R = c.rotary_dim > 0 ? c.rotary_dim : c.head_dim;
  const double theta = local ? c.rope_local_theta : c.rope_theta;
  for (int64_t i = 0; i < R; i += 2) {
    f.push_back(1.0 / std::pow(theta, static_cast<double>(i) / static_cast<double>(R)));
  }
  if (c.longrope && !local) {
    const bool use_long = context > c.longrope->original_max_position_embeddings;
    for (size_t i = 0; i < f.size(); ++i) {
      f[i] /= use_long ? c.longrope->long_factor[i] : c.longrope->short_factor[i];
    }
  }
  if (!c.rope_scaling || local) return f;
  const RopeScaling& s = *c.rope_scaling;
  const double old = static_cast<double>(s.original_max_position_embeddings);
  for (double& x : f) {
    const double wavelen = 2 * std::numbers::pi / x;
    const double scaled = wavelen > old / s.low_freq_factor ? x / s.factor : x;
    const bool medium =
        !(wavelen < old / s.high_freq_factor) && !(wavelen > old / s.low_freq_factor);
    const double smooth =
        (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    x = medium ? (1 - smooth) * scaled / s.factor + smooth * scaled : scaled;
  }
  return f;
}

// RoPE of head vector x[begin, begin + Dh) at position p on its first R = 2 * freq.size() dims
// (the rest pass through), cos and sin times `amp` (longrope's attention factor). Rotate-half
// pairs (i, i + R/2), or (GLM's rotate_half) interleaved pairs (2i, 2i + 1).
void rope(Vec& x, size_t begin, int64_t p, const Vec& freq, double amp, bool interleaved) {
  const size_t half = freq.size();
  for (size_t i = 0; i < half; ++i) {
    const double a = static_cast<double>(p) * freq[i], c = amp * std::cos(a), s = amp * std::sin(a);
    const size_t i1 = begin + (interleaved ? 2 * i : i);
    const size_t i2 = begin + (interleaved ? 2 * i + 1 : half + i);
    const double x1 = x[i1], x2 = x[i2];
    x[i1] = x1 * c - x2 * s;
    x[i2] = x2 * c + x1 * s;
  }
}

// The FFN gate activation: silu, or GELU (erf, or transformers' gelu_pytorch_tanh).
double activation(const LlamaConfig& c, double x) {
  switch (c.ffn_act) {
    case FfnActivation::kSilu: return x / (1 + std::exp(-x));
    case FfnActivation::kGelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case FfnActivation::kGeluTanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
  }
  return 0;
}

// GLM checkpoints hold q/k rows (and biases) with interleaved pairs in the rotary part: row 2i
// of a head is rotate-half row i, row 2i + 1 is row R/2 + i (rows >= R unchanged). Written here
// independently of the library's permutation.
Weight interleave_rows(const Weight& w, int64_t heads, int64_t dh, int64_t r) {
  if (w.empty()) return w;
  const int64_t cols = w.numel() / w.shape[0];
  std::vector<float> out(w.f32().begin(), w.f32().end());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < r / 2; ++i) {
      for (int64_t c = 0; c < cols; ++c) {
        out[static_cast<size_t>((h * dh + 2 * i) * cols + c)] =
            w.f32()[static_cast<size_t>((h * dh + i) * cols + c)];
        out[static_cast<size_t>((h * dh + 2 * i + 1) * cols + c)] =
            w.f32()[static_cast<size_t>((h * dh + r / 2 + i) * cols + c)];
      }
    }
  }
  return Weight::from_floats(w.shape, out);
}

// Logits [T][V] of the whole sequence from an empty cache (causal attention; on Gemma3's
// sliding-window layers position t sees positions (t - W, t] only).
// `context` picks longrope's factors (the graph's C). GLM models get their q/k rows interleaved
// as in the checkpoint, and interleaved RoPE.
std::vector<Vec> reference_logits(const LlamaModel& model, const std::vector<int32_t>& ids,
                                  int64_t context) {
  LlamaModel m = model;
  const LlamaConfig& c = m.config;
  const bool interleaved = c.family == "glm";
  const int64_t R = c.rotary_dim > 0 ? c.rotary_dim : c.head_dim;
  if (interleaved) {
    for (LayerWeights& w : m.weights.layers) {
      w.wq = interleave_rows(w.wq, c.n_heads, c.head_dim, R);
      w.bq = interleave_rows(w.bq, c.n_heads, c.head_dim, R);
      w.wk = interleave_rows(w.wk, c.n_kv_heads, c.head_dim, R);
      w.bk = interleave_rows(w.bk, c.n_kv_heads, c.head_dim, R);
    }
  }
  const double amp = c.longrope ? c.longrope->attention_factor : 1.0;
  const auto T = ids.size(), D = static_cast<size_t>(c.dim), Dh = static_cast<size_t>(c.head_dim);
  const auto H = static_cast<size_t>(c.n_heads), Hkv = static_cast<size_t>(c.n_kv_heads);
  const Vec global_freq = inv_freq(c, context), local_freq = inv_freq(c, context, true);
  std::vector<Vec> h(T, Vec(D));
  for (size_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < D; ++i) {
      h[t][i] = m.weights.tok_embeddings.f32()[static_cast<size_t>(ids[t]) * D + i] *
                c.embedding_multiplier;
    }
  }
  const double scale = c.attention_multiplier.value_or(1.0 / std::sqrt(static_cast<double>(Dh)));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = m.weights.layers[static_cast<size_t>(l)];
    const Vec& freq = c.is_sliding(l) ? local_freq : global_freq;
    const size_t window = c.is_sliding(l) ? static_cast<size_t>(c.sliding_window) : T + 1;
    std::vector<Vec> q(T), k(T), v(T);
    for (size_t t = 0; t < T; ++t) {
      Vec x = h[t];
      rms_norm(x, 0, D, w.attn_norm, c.rms_eps);
      q[t] = matvec(w.wq, x, &w.bq);
      k[t] = matvec(w.wk, x, &w.bk);
      v[t] = matvec(w.wv, x, &w.bv);
      for (size_t hh = 0; hh < H; ++hh) {
        if (c.qk_norm) rms_norm(q[t], hh * Dh, Dh, w.q_norm, c.rms_eps);
        if (c.uses_rope(l)) rope(q[t], hh * Dh, static_cast<int64_t>(t), freq, amp, interleaved);
      }
      for (size_t g = 0; g < Hkv; ++g) {
        if (c.qk_norm) rms_norm(k[t], g * Dh, Dh, w.k_norm, c.rms_eps);
        if (c.uses_rope(l)) rope(k[t], g * Dh, static_cast<int64_t>(t), freq, amp, interleaved);
      }
    }
    for (size_t t = 0; t < T; ++t) {
      Vec attn(H * Dh, 0.0);
      for (size_t hh = 0; hh < H; ++hh) {
        const size_t g = hh / (H / Hkv);
        const size_t first = t + 1 > window ? t + 1 - window : 0;  // positions [first, t]
        Vec s(t + 1, 0.0);
        double mx = -1e300, sum = 0.0;
        for (size_t j = first; j <= t; ++j) {
          double d = 0.0;
          for (size_t i = 0; i < Dh; ++i) d += q[t][hh * Dh + i] * k[j][g * Dh + i];
          s[j] = d * scale;
          mx = std::max(mx, s[j]);
        }
        for (size_t j = first; j <= t; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (size_t j = first; j <= t; ++j) {
          for (size_t i = 0; i < Dh; ++i) attn[hh * Dh + i] += s[j] / sum * v[j][g * Dh + i];
        }
      }
      Vec o = matvec(w.wo, attn);
      if (c.post_norms) rms_norm(o, 0, D, w.post_attn_norm, c.rms_eps);
      for (size_t i = 0; i < D; ++i) h[t][i] += c.residual_multiplier * o[i];
      Vec x = h[t];
      rms_norm(x, 0, D, w.ffn_norm, c.rms_eps);
      Vec gate = matvec(w.w1, x), up = matvec(w.w3, x);
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = activation(c, gate[i]) * up[i];
      Vec down = matvec(w.w2, gate);
      if (c.post_norms) rms_norm(down, 0, D, w.post_ffn_norm, c.rms_eps);
      for (size_t i = 0; i < D; ++i) h[t][i] += c.residual_multiplier * down[i];
    }
  }
  std::vector<Vec> logits;
  for (size_t t = 0; t < T; ++t) {
    Vec x = h[t];
    rms_norm(x, 0, D, m.weights.norm, c.rms_eps);
    Vec y = matvec(c.tied_embeddings ? m.weights.tok_embeddings : m.weights.output, x);
    for (double& e : y) e /= c.logits_scaling;
    if (c.final_logit_softcapping > 0) {
      for (double& e : y) {
        e = c.final_logit_softcapping * std::tanh(e / c.final_logit_softcapping);
      }
    }
    logits.push_back(std::move(y));
  }
  return logits;
}

// ---- CodeGen: transformers' CodeGenForCausalLM on the checkpoint as written -----------------

// LayerNorm of x with weight w and bias b: (x - mean) / sqrt(var + eps) * w + b.
Vec layer_norm(const Vec& x, const Weight& w, const Weight& b, double eps) {
  double mean = 0.0, var = 0.0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    y[i] = (x[i] - mean) / std::sqrt(var + eps) * w.f32()[i] + b.f32()[i];
  }
  return y;
}

// Logits [T][V] of `ids` from the CodeGen folder `dir`, reading config.json and the tensors by
// their HF names and following modeling_codegen.py literally: qkv = qkv_proj(x) viewed as
// [4, 3*D/4] (mp_num 4), each group split into query, value, key (D/4 each: H/4 heads of Dh);
// rotate_every_two RoPE (pairs (2i, 2i+1), sin/cos of position * 10000^(-2i/rotary_dim)) on the
// first rotary_dim dims of each q/k head; scores / sqrt(Dh), causal; out_proj; parallel block
// h = attn + fc_out(gelu_new(fc_in(x))) + h with x = ln_1(h); logits = lm_head(ln_f(h)).
std::vector<Vec> codegen_reference_logits(const std::string& dir, const std::vector<int32_t>& ids) {
  const nlohmann::json cfg = nlohmann::json::parse(*read_text_file(dir + "/config.json"));
  const auto D = cfg["n_embd"].get<size_t>(), H = cfg["n_head"].get<size_t>();
  const auto L = cfg["n_layer"].get<size_t>(), R = cfg["rotary_dim"].get<size_t>();
  const double eps = cfg["layer_norm_epsilon"].get<double>();
  EXPECT_EQ(cfg["activation_function"], "gelu_new");
  const size_t Dh = D / H, mp = 4, local = D / mp, T = ids.size();
  auto file = SafetensorsFile::open(dir + "/model.safetensors");
  EXPECT_TRUE(file.ok());
  auto t = [&](const std::string& name) {
    auto w = file->load(name);
    EXPECT_TRUE(w.ok()) << name;
    return w.ok() ? *w : Weight{};
  };
  Vec freq;
  for (size_t i = 0; i < R; i += 2) {
    freq.push_back(1.0 / std::pow(10000.0, static_cast<double>(i) / static_cast<double>(R)));
  }
  const Weight wte = t("transformer.wte.weight");
  std::vector<Vec> h(T, Vec(D));
  for (size_t p = 0; p < T; ++p) {
    for (size_t i = 0; i < D; ++i) h[p][i] = wte.f32()[static_cast<size_t>(ids[p]) * D + i];
  }
  auto gelu_new = [](double x) {
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
  };
  for (size_t l = 0; l < L; ++l) {
    const std::string pre = fmt::format("transformer.h.{}.", l);
    const Weight ln_w = t(pre + "ln_1.weight"), ln_b = t(pre + "ln_1.bias");
    const Weight qkv_w = t(pre + "attn.qkv_proj.weight"), out_w = t(pre + "attn.out_proj.weight");
    const Weight fc_in = t(pre + "mlp.fc_in.weight"), fc_in_b = t(pre + "mlp.fc_in.bias");
    const Weight fc_out = t(pre + "mlp.fc_out.weight"), fc_out_b = t(pre + "mlp.fc_out.bias");
    std::vector<Vec> x(T), q(T, Vec(D)), k(T, Vec(D)), v(T, Vec(D));
    for (size_t p = 0; p < T; ++p) {
      x[p] = layer_norm(h[p], ln_w, ln_b, eps);
      const Vec qkv = matvec(qkv_w, x[p]);
      // qkv.reshape(4, -1); query, value, key = split(local); _split_heads: head g*H/4 + u/Dh.
      for (size_t g = 0; g < mp; ++g) {
        for (size_t u = 0; u < local; ++u) {
          const size_t head = g * (H / mp) + u / Dh, i = u % Dh;
          q[p][head * Dh + i] = qkv[g * 3 * local + u];
          v[p][head * Dh + i] = qkv[g * 3 * local + local + u];
          k[p][head * Dh + i] = qkv[g * 3 * local + 2 * local + u];
        }
      }
      for (size_t hh = 0; hh < H; ++hh) {
        rope(q[p], hh * Dh, static_cast<int64_t>(p), freq, 1.0, true);
        rope(k[p], hh * Dh, static_cast<int64_t>(p), freq, 1.0, true);
      }
    }
    for (size_t p = 0; p < T; ++p) {
      Vec attn(D, 0.0);
      for (size_t hh = 0; hh < H; ++hh) {
        Vec s(p + 1);
        double mx = -1e300, sum = 0.0;
        for (size_t j = 0; j <= p; ++j) {
          double d = 0.0;
          for (size_t i = 0; i < Dh; ++i) d += q[p][hh * Dh + i] * k[j][hh * Dh + i];
          s[j] = d / std::sqrt(static_cast<double>(Dh));
          mx = std::max(mx, s[j]);
        }
        for (size_t j = 0; j <= p; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (size_t j = 0; j <= p; ++j) {
          for (size_t i = 0; i < Dh; ++i) attn[hh * Dh + i] += s[j] / sum * v[j][hh * Dh + i];
        }
      }
      const Vec a = matvec(out_w, attn);
      Vec f = matvec(fc_in, x[p], &fc_in_b);
      for (double& e : f) e = gelu_new(e);
      const Vec m = matvec(fc_out, f, &fc_out_b);
      for (size_t i = 0; i < D; ++i) h[p][i] = a[i] + m[i] + h[p][i];
    }
  }
  const Weight ln_f_w = t("transformer.ln_f.weight"), ln_f_b = t("transformer.ln_f.bias");
  const Weight head = t("lm_head.weight"), head_b = t("lm_head.bias");
  std::vector<Vec> logits;
  for (size_t p = 0; p < T; ++p) {
    logits.push_back(matvec(head, layer_norm(h[p], ln_f_w, ln_f_b, eps), &head_b));
  }
  return logits;
}

// ---- The graph side ------------------------------------------------------------------------

// Logits [T*V] of one T-token step from an empty cache (context 2T).
Result<std::vector<float>> graph_logits(const LlamaModel& m, const std::vector<int32_t>& ids) {
  const auto T = static_cast<int64_t>(ids.size()), C = 2 * T;
  HS_ASSIGN_OR_RETURN(ir::Graph g, build_llama(m, {.ar_len = T, .context_len = C}));
  std::vector<ir::NamedTensor> in;
  in.push_back({"tokens", ir::Tensor::from_i32({1, T}, ids)});
  std::vector<float> mask(static_cast<size_t>(T * C), -255.0f), window(mask);
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    for (int64_t j = 0; j <= t; ++j) {
      mask[static_cast<size_t>(t * C + C - T + j)] = 0.0f;
      if (t - j < m.config.sliding_window) window[static_cast<size_t>(t * C + C - T + j)] = 0.0f;
    }
  }
  in.push_back({"attention_mask", ir::Tensor::from_f32({1, T, C}, mask)});
  if (m.config.sliding_window > 0) {
    in.push_back({"window_attention_mask", ir::Tensor::from_f32({1, T, C}, window)});
  }
  in.push_back({"input_pos", ir::Tensor::from_i32({1, T}, pos)});
  const LlamaConfig& c = m.config;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    in.push_back({k_cache_name(l), ir::Tensor::zeros_f32({1, c.n_kv_heads, c.head_dim, C - T})});
    in.push_back({v_cache_name(l), ir::Tensor::zeros_f32({1, c.n_kv_heads, C - T, c.head_dim})});
  }
  HS_ASSIGN_OR_RETURN(auto outs, ir::run_graph(g, in));
  return outs[0].f;
}

enum class Form { kMha, kShaFromSource, kMhaSplit };

// A step model of AR-`prefill` + AR-1 graphs in `form` (context C).
Result<std::unique_ptr<irexec::GraphStepModel>> hybrid_model(const LlamaModel& m, Form form,
                                                             int64_t prefill, int64_t context) {
  std::vector<ir::Graph> graphs;
  for (int64_t t : {prefill, int64_t{1}}) {
    BuildOptions o{.ar_len = t, .context_len = context};
    if (form == Form::kShaFromSource) o.form = AttentionForm::kShaFromSource;
    HS_ASSIGN_OR_RETURN(ir::Graph g, build_llama(m, o));
    if (form == Form::kMhaSplit) {
      passes::PreprocessOptions po;
      po.split_options.require_all = true;
      HS_TRY(passes::run_preprocess(g, po, passes::PassContext{}));
    }
    graphs.push_back(std::move(g));
  }
  irexec::GraphStepModelOptions so;
  so.sliding_window = m.config.sliding_window;
  return irexec::GraphStepModel::create(std::move(graphs), so);
}

// Greedy tokens from a hybrid AR-8 / AR-1 pair of graphs in `form`.
Result<std::vector<int32_t>> greedy(const LlamaModel& m, Form form, int64_t n) {
  HS_ASSIGN_OR_RETURN(auto step, hybrid_model(m, form, 8, 64));
  HS_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::create(*m.tokenizer));
  HS_ASSIGN_OR_RETURN(auto sampler, runner::Sampler::create(runner::SamplerOptions{}));
  runner::Generator gen(*step, *tok);
  runner::GeneratorOptions go;
  go.max_new_tokens = n;
  HS_ASSIGN_OR_RETURN(runner::GenerationResult r,
                      gen.generate(tok->encode("Once upon a time", true), sampler, go));
  return r.tokens;
}

std::string write_family(const std::string& family, const testing::HfWriteOptions& options = {}) {
  LlamaModel m = testing::family_model(family, 3);
  const std::string dir = testing::temp_dir() + "/" + family;
  std::filesystem::create_directories(dir);
  testing::HfWriteOptions o = options;
  o.write_tokenizer = false;
  o.rope_parameters = family == "llama3.2";  // the newer transformers layout
  EXPECT_TRUE(testing::write_hf_folder(m, dir, o).ok());
  return dir;
}

class HfFamilies : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFamilies, LoadsAndMatchesTheReferenceForward) {
  const LlamaModel src = testing::family_model(GetParam(), 3);
  const std::string dir = write_family(GetParam());
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_hf_model(dir));
  const LlamaConfig &a = m.config, &b = src.config;
  testing::expect_same_family_features(a, b);
  EXPECT_EQ(a.rope_scaling.has_value(), b.rope_scaling.has_value());
  EXPECT_EQ(a.no_rope_layers, b.no_rope_layers);
  // Gemma's norms are stored as w - 1 and folded back at load: bit for bit.
  for (size_t l = 0; l < m.weights.layers.size(); ++l) {
    const LayerWeights &x = m.weights.layers[l], &y = src.weights.layers[l];
    EXPECT_TRUE(weights_bit_equal(x.attn_norm, y.attn_norm)) << l;
    EXPECT_TRUE(weights_bit_equal(x.ffn_norm, y.ffn_norm)) << l;
    EXPECT_TRUE(weights_bit_equal(x.post_attn_norm, y.post_attn_norm)) << l;
    EXPECT_TRUE(weights_bit_equal(x.post_ffn_norm, y.post_ffn_norm)) << l;
    EXPECT_TRUE(weights_bit_equal(x.q_norm, y.q_norm)) << l;
    // Fused and interleaved checkpoints (Phi, GLM, CodeGen) split and permuted back.
    EXPECT_TRUE(weights_bit_equal(x.wq, y.wq)) << l;
    EXPECT_TRUE(weights_bit_equal(x.wk, y.wk)) << l;
    EXPECT_TRUE(weights_bit_equal(x.wv, y.wv)) << l;
    EXPECT_TRUE(weights_bit_equal(x.bq, y.bq)) << l;
    EXPECT_TRUE(weights_bit_equal(x.w3, y.w3)) << l;
    EXPECT_TRUE(weights_bit_equal(x.attn_norm_bias, y.attn_norm_bias)) << l;
    EXPECT_TRUE(weights_bit_equal(x.b1, y.b1)) << l;
    EXPECT_TRUE(weights_bit_equal(x.b2, y.b2)) << l;
  }
  EXPECT_TRUE(weights_bit_equal(m.weights.norm_bias, src.weights.norm_bias));
  EXPECT_TRUE(weights_bit_equal(m.weights.output_bias, src.weights.output_bias));
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_TRUE(weights_bit_equal(m.weights.norm, src.weights.norm));
  EXPECT_EQ(a.rotary_dim, b.rotary_dim);
  ASSERT_EQ(a.longrope.has_value(), b.longrope.has_value());
  if (a.longrope) {
    EXPECT_EQ(a.longrope->short_factor, b.longrope->short_factor);
    EXPECT_EQ(a.longrope->long_factor, b.longrope->long_factor);
    EXPECT_EQ(a.longrope->original_max_position_embeddings,
              b.longrope->original_max_position_embeddings);
    EXPECT_NEAR(a.longrope->attention_factor, b.longrope->attention_factor, 1e-12);
  }

  std::vector<int32_t> ids;
  for (int i = 0; i < 16; ++i) ids.push_back((i * 37 + 11) % static_cast<int32_t>(a.vocab_size));
  // CodeGen: the reference reads the fused, interleaved checkpoint itself.
  const std::vector<Vec> want =
      a.family == "codegen" ? codegen_reference_logits(dir, ids)
                            : reference_logits(src, ids, 2 * static_cast<int64_t>(ids.size()));
  HS_ASSERT_OK_AND_ASSIGN(std::vector<float> got, graph_logits(m, ids));
  const auto V = static_cast<size_t>(a.vocab_size);
  ASSERT_EQ(got.size(), ids.size() * V);
  double worst = 0.0, spread = 0.0;
  for (size_t t = 0; t < ids.size(); ++t) {
    for (size_t i = 0; i < V; ++i) {
      worst = std::max(worst, std::abs(got[t * V + i] - want[t][i]));
      spread = std::max(spread, std::abs(want[t][i]));
    }
  }
  EXPECT_LT(worst, 1e-4) << "largest |logit| " << spread;
  EXPECT_GT(spread, 0.05);  // the logits are not all near zero

  m.tokenizer = src.tokenizer;
  HS_ASSERT_OK_AND_ASSIGN(auto mha, greedy(m, Form::kMha, 12));
  HS_ASSERT_OK_AND_ASSIGN(auto sha, greedy(m, Form::kShaFromSource, 12));
  HS_ASSERT_OK_AND_ASSIGN(auto split, greedy(m, Form::kMhaSplit, 12));
  EXPECT_EQ(mha.size(), 12u);
  EXPECT_EQ(sha, mha);
  EXPECT_EQ(split, mha);
}

// Each feature matters: the reference without it differs from the graph with it.
TEST(HfFamilies, FeaturesChangeTheLogits) {
  std::vector<int32_t> ids{1, 40, 7, 99, 5, 250, 3, 17};
  for (const std::string family :
       {"qwen2.5", "qwen3", "smollm3", "granite", "gemma", "gemma3", "phi4", "glm"}) {
    const LlamaModel m = testing::family_model(family, 3);
    LlamaModel plain = m;
    plain.config.no_rope_layers.clear();
    plain.config.ffn_act = FfnActivation::kSilu;
    plain.config.post_norms = false;
    plain.config.sliding_window = 0;
    plain.config.sliding_window_layers.clear();
    plain.config.final_logit_softcapping = 0;
    plain.config.qk_norm = false;
    plain.config.embedding_multiplier = plain.config.residual_multiplier = 1.0;
    plain.config.logits_scaling = 1.0;
    plain.config.attention_multiplier.reset();
    plain.config.family = "llama";  // no interleaved pairs
    plain.config.rotary_dim = 0;
    plain.config.longrope.reset();
    for (LayerWeights& w : plain.weights.layers)
      w.bq = w.bk = w.bv = w.q_norm = w.k_norm = w.post_attn_norm = w.post_ffn_norm = Weight{};
    plain.config.attention_bias = false;
    HS_ASSERT_OK_AND_ASSIGN(std::vector<float> got, graph_logits(m, ids));
    const std::vector<Vec> without = reference_logits(plain, ids, 2 * std::ssize(ids));
    double worst = 0.0;
    const auto V = static_cast<size_t>(m.config.vocab_size);
    for (size_t t = 0; t < ids.size(); ++t) {
      for (size_t i = 0; i < V; ++i)
        worst = std::max(worst, std::abs(got[t * V + i] - without[t][i]));
    }
    EXPECT_GT(worst, 1e-2) << family;
  }
}

// Phi longrope below its original context: the short factors (the family config's context 32 is
// beyond its original 16: the long ones); the two give different logits.
TEST(HfFamilies, LongropeShortFactorsWithinTheOriginalContext) {
  LlamaModel m = testing::family_model("phi4", 3);
  std::vector<int32_t> ids;
  for (int i = 0; i < 16; ++i) ids.push_back((i * 53 + 5) % 320);
  HS_ASSERT_OK_AND_ASSIGN(std::vector<float> long_logits, graph_logits(m, ids));
  m.config.longrope->original_max_position_embeddings = 32;  // C = 32: not beyond
  HS_ASSERT_OK_AND_ASSIGN(std::vector<float> short_logits, graph_logits(m, ids));
  const std::vector<Vec> want = reference_logits(m, ids, 32);
  const auto V = static_cast<size_t>(m.config.vocab_size);
  double worst = 0.0, apart = 0.0;
  for (size_t t = 0; t < ids.size(); ++t) {
    for (size_t i = 0; i < V; ++i) {
      worst = std::max(worst, std::abs(short_logits[t * V + i] - want[t][i]));
      apart = std::max(apart, static_cast<double>(std::abs(short_logits[t * V + i] -
                                                           long_logits[t * V + i])));
    }
  }
  EXPECT_LT(worst, 1e-4);
  EXPECT_GT(apart, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Families, HfFamilies, ::testing::ValuesIn(testing::family_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::erase(n, '.');
                           return n;
                         });

// ---- Gemma3's sliding window through the runner ---------------------------------------------

size_t argmax(const Vec& v) { return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin()); }

constexpr int64_t kWindowContext = 64;

// A step model of AR-32 prefill + AR-1 decode graphs (context 64) in `form`.
Result<std::unique_ptr<irexec::GraphStepModel>> window_model(const LlamaModel& m, Form form) {
  return hybrid_model(m, form, 32, kWindowContext);
}

// Greedy continuation by the reference: every step recomputes every position from scratch
// (each sliding-window layer attends over the last W positions only).
std::vector<int32_t> reference_greedy(const LlamaModel& m, std::vector<int32_t> ids, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = static_cast<int32_t>(argmax(reference_logits(m, ids, kWindowContext).back()));
    out.push_back(next);
    ids.push_back(next);
  }
  return out;
}

TEST(Gemma3Window, GreedyTokensEqualTheFromScratchReference) {
  // Window 8, context 64, prompts of 20 and 30 tokens (longer than the window), AR-32 prefill
  // then AR-1 decode; MHA, SHA from source and MHA + split.
  const LlamaModel m = testing::family_model("gemma3", 5);
  ASSERT_EQ(m.config.sliding_window, 8);
  for (const int prompt_len : {20, 30}) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < prompt_len; ++i) prompt.push_back((i * 53 + 7) % 320);
    const std::vector<int32_t> want = reference_greedy(m, prompt, 12);
    if (prompt_len == 30) {  // the window matters: without it the reference continues otherwise
      LlamaModel global = m;
      global.config.sliding_window = 0;
      global.config.sliding_window_layers.clear();
      EXPECT_NE(reference_greedy(global, prompt, 12), want);
    }
    for (Form form : {Form::kMha, Form::kShaFromSource, Form::kMhaSplit}) {
      SCOPED_TRACE(fmt::format("prompt {} form {}", prompt_len, static_cast<int>(form)));
      HS_ASSERT_OK_AND_ASSIGN(auto step, window_model(m, form));
      EXPECT_EQ(step->info().sliding_window, 8);
      HS_ASSERT_OK_AND_ASSIGN(auto tok, tokenizer::Tokenizer::create(*m.tokenizer));
      HS_ASSERT_OK_AND_ASSIGN(auto sampler, runner::Sampler::create(runner::SamplerOptions{}));
      runner::Generator gen(*step, *tok);
      runner::GeneratorOptions go;
      go.max_new_tokens = 12;
      HS_ASSERT_OK_AND_ASSIGN(runner::GenerationResult r, gen.generate(prompt, sampler, go));
      EXPECT_EQ(r.prefill_ar_len, 32);
      EXPECT_EQ(r.decode_ar_len, 1);
      EXPECT_EQ(r.tokens, want);
    }
  }
}

// Lookahead (tree) steps on the sliding-window model: a tree row sits at n_past + its depth and
// its window mask keeps the cache columns and the ancestors less than W = 8 positions back. The
// tree below has a chain 10 deep (deeper than the window: its last rows lose their first
// ancestors as well as cache columns) and a branch; every row's logits equal the from-scratch
// reference over the prompt and the row's path, before and after committing part of the chain
// (the window then slides over the committed slots). Greedy lookahead generation is exact: its
// tokens equal the reference's.
TEST(Gemma3Window, LookaheadTreeRowsEqualTheFromScratchReference) {
  const LlamaModel m = testing::family_model("gemma3", 5);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 12; ++i) prompt.push_back((i * 53 + 7) % 320);
  HS_ASSERT_OK_AND_ASSIGN(auto step, window_model(m, Form::kMha));
  HS_ASSERT_OK_AND_ASSIGN(runner::Decoder dec,
                          runner::Decoder::create(*step, {.lookahead_ar_len = 32}));
  HS_ASSERT_OK(dec.prefill(prompt));
  std::vector<int32_t> seq = prompt;
  // Rows 0..9: a chain; rows 10..13: a branch off row 3; rows 14..31: padding (roots).
  std::vector<int32_t> parents(32, -1);
  for (int i = 1; i < 10; ++i) parents[static_cast<size_t>(i)] = i - 1;
  parents[10] = 3;
  for (int i = 11; i < 14; ++i) parents[static_cast<size_t>(i)] = i - 1;
  double worst = 0.0;
  auto tree_step = [&](int salt, std::vector<int32_t>& tokens) {
    tokens.assign(32, 0);
    std::vector<int32_t> positions(32);
    std::vector<std::vector<int32_t>> paths(32);
    for (size_t i = 0; i < 32; ++i) {
      tokens[i] = static_cast<int32_t>((i * 37 + static_cast<size_t>(salt)) % 320);
      const int32_t parent = parents[i];
      paths[i] = parent < 0 ? std::vector<int32_t>{} : paths[static_cast<size_t>(parent)];
      paths[i].push_back(tokens[i]);
      positions[i] = static_cast<int32_t>(dec.n_past() + static_cast<int64_t>(paths[i].size()) - 1);
    }
    HS_ASSERT_OK(dec.run_tree(parents, tokens, positions));
    for (size_t i = 0; i < 14; ++i) {
      std::vector<int32_t> ids = seq;
      ids.insert(ids.end(), paths[i].begin(), paths[i].end());
      const Vec want = reference_logits(m, ids, kWindowContext).back();
      const std::span<const float> got = dec.logits_row(static_cast<int64_t>(i));
      for (size_t v = 0; v < want.size(); ++v) {
        worst = std::max(worst, std::abs(static_cast<double>(got[v]) - want[v]));
      }
      EXPECT_EQ(static_cast<size_t>(std::max_element(got.begin(), got.end()) - got.begin()),
                argmax(want))
          << "row " << i << " salt " << salt;
    }
  };
  std::vector<int32_t> first, second;
  tree_step(5, first);
  // Commit the first three chain rows (positions 12..14), then another tree step from 15.
  HS_ASSERT_OK(dec.commit(std::vector<int64_t>{0, 1, 2}));
  seq.insert(seq.end(), first.begin(), first.begin() + 3);
  tree_step(11, second);
  EXPECT_LT(worst, 1e-4);
  // A row whose position is not n_past + depth is refused on a sliding-window model.
  std::vector<int32_t> tokens(32, 1), positions(32, static_cast<int32_t>(dec.n_past()));
  auto bad = dec.run_tree(parents, tokens, positions);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("must be at position n_past + its depth"));

  const std::vector<int32_t> want = reference_greedy(m, prompt, 16);
  HS_ASSERT_OK_AND_ASSIGN(auto tok, tokenizer::Tokenizer::create(*m.tokenizer));
  HS_ASSERT_OK_AND_ASSIGN(auto sampler, runner::Sampler::create(runner::SamplerOptions{}));
  runner::Generator gen(*step, *tok);
  runner::GeneratorOptions go;
  go.max_new_tokens = 16;
  go.lookahead = {.ngram = 5, .window = 6, .guesses = 2};
  HS_ASSERT_OK_AND_ASSIGN(runner::GenerationResult r, gen.generate(prompt, sampler, go));
  EXPECT_GT(r.stats.lookahead_steps, 0);
  EXPECT_EQ(r.tokens, want);
}

TEST(Gemma3Window, LogitsAcrossArLengthSwitchesEqualTheReference) {
  // prefill 12 (AR-32) -> decode 6 (AR-1) -> prefill 9 more (AR-32 again, rows moved back) ->
  // decode 4: after each step the last logits row equals the reference over the whole sequence.
  const LlamaModel m = testing::family_model("gemma3", 6);
  HS_ASSERT_OK_AND_ASSIGN(auto step, window_model(m, Form::kMha));
  HS_ASSERT_OK_AND_ASSIGN(runner::Decoder dec, runner::Decoder::create(*step, {}));
  std::vector<int32_t> seq;
  double worst = 0.0;
  auto check = [&] {
    const Vec want = reference_logits(m, seq, kWindowContext).back();
    const std::span<const float> got = dec.last_logits();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
    EXPECT_EQ(static_cast<size_t>(std::max_element(got.begin(), got.end()) - got.begin()),
              argmax(want))
        << "at length " << seq.size();
  };
  auto prefill = [&](int n, int salt) {
    std::vector<int32_t> chunk;
    for (int i = 0; i < n; ++i) chunk.push_back((i * 31 + salt) % 320);
    HS_ASSERT_OK(dec.prefill(chunk));
    seq.insert(seq.end(), chunk.begin(), chunk.end());
    check();
  };
  auto decode = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const auto next = static_cast<int32_t>(argmax(reference_logits(m, seq, kWindowContext).back()));
      HS_ASSERT_OK(dec.decode(next));
      seq.push_back(next);
      check();
    }
  };
  prefill(12, 3);
  decode(6);
  prefill(9, 11);
  decode(4);
  EXPECT_EQ(dec.n_past(), 31);
  EXPECT_LT(worst, 1e-4);
}

TEST(Gemma3Window, StepModelNeedsTheWindow) {
  const LlamaModel m = testing::family_model("gemma3", 5);
  std::vector<ir::Graph> graphs;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, build_llama(m, {.ar_len = 1, .context_len = 16}));
  graphs.push_back(std::move(g));
  auto r = irexec::GraphStepModel::create(std::move(graphs));  // no sliding_window given
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("window_attention_mask"));
}

// ---- Hostile files -------------------------------------------------------------------------

void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json c = nlohmann::json::parse(*read_text_file(dir + "/config.json"));
  edit(c);
  ASSERT_TRUE(write_file_atomic(dir + "/config.json", c.dump()).ok());
}

void expect_error(const std::string& dir, const std::string& part) {
  auto r = load_hf_model(dir);
  ASSERT_FALSE(r.ok()) << dir << ": expected an error with '" << part << "'";
  EXPECT_THAT(r.error().message(), HasSubstr(part));
}

TEST(HfFamiliesHostile, MissingNormWeight) {
  testing::HfWriteOptions o;
  o.skip_tensor = "model.layers.1.self_attn.k_norm.weight";
  expect_error(write_family("qwen3", o), "'model.layers.1.self_attn.k_norm.weight' is missing");
}

TEST(HfFamiliesHostile, BiasOfTheWrongLength) {
  const std::string dir = write_family("qwen2.5");
  // Rewrite the checkpoint with layer 0's k bias one element short.
  LlamaModel m = testing::family_model("qwen2.5", 3);
  const Weight& bk = m.weights.layers[0].bk;
  std::vector<float> shorter(bk.f32().begin(), bk.f32().end() - 1);
  m.weights.layers[0].bk = Weight::from_floats({static_cast<int64_t>(shorter.size())}, shorter);
  testing::HfWriteOptions o;
  o.write_tokenizer = false;
  ASSERT_TRUE(testing::write_hf_folder(m, dir, o).ok());
  expect_error(dir, "'model.layers.0.self_attn.k_proj.bias' has shape [31], expected [32]");
}

TEST(HfFamiliesHostile, NoRopeLayersOfTheWrongLength) {
  const std::string dir = write_family("smollm3");
  edit_config(dir, [](nlohmann::json& c) { c["no_rope_layers"] = {1, 1, 0}; });
  expect_error(dir, "no_rope_layers is [1,1,0], expected a list of 2 entries");
  edit_config(dir, [](nlohmann::json& c) { c["no_rope_layers"] = {1, 2}; });
  expect_error(dir, "no_rope_layers[1] is 2, expected 0 or 1");
}

TEST(HfFamiliesHostile, Gemma3Keys) {
  const std::string dir = write_family("gemma3");
  edit_config(dir, [](nlohmann::json& c) { c["layer_types"] = {"full_attention"}; });
  expect_error(dir, "layer_types is [\"full_attention\"], expected a list of 3 entries");
  edit_config(dir, [](nlohmann::json& c) {
    c["layer_types"] = {"sliding_attention", "chunked_attention", "full_attention"};
  });
  expect_error(dir, "layer_types[1] is 'chunked_attention', expected sliding_attention or "
                    "full_attention");
  edit_config(dir, [](nlohmann::json& c) {
    c.erase("layer_types");
    c["sliding_window_pattern"] = 3;  // the older key: layers 0, 1 sliding, 2 global
  });
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel m, load_hf_model(dir));
  EXPECT_EQ(m.config.sliding_window_layers, (std::vector<int64_t>{0, 1}));
  edit_config(dir, [](nlohmann::json& c) { c["sliding_window"] = 0; });
  expect_error(dir, "sliding_window is 0, expected > 0");
  edit_config(dir, [](nlohmann::json& c) {
    c["sliding_window"] = 8;
    c["attn_logit_softcapping"] = 50.0;
  });
  expect_error(dir, "attention-score soft-capping is not supported");
  edit_config(dir, [](nlohmann::json& c) {
    c["attn_logit_softcapping"] = nullptr;
    c["hidden_activation"] = "relu";
  });
  expect_error(dir, "activation 'relu' is not supported");
}

TEST(HfFamiliesHostile, NegativeMultipliers) {
  for (const char* key :
       {"embedding_multiplier", "attention_multiplier", "residual_multiplier", "logits_scaling"}) {
    const std::string dir = write_family("granite");
    edit_config(dir, [&](nlohmann::json& c) { c[key] = -0.5; });
    expect_error(dir, fmt::format("{} is -0.5, expected a finite value > 0", key));
  }
}

TEST(HfFamiliesHostile, TensorsNothingReadsAreNamed) {
  // A Llama config without attention_bias over a checkpoint with biases: the biases are unread.
  const std::string dir = write_family("qwen2.5");
  edit_config(dir, [](nlohmann::json& c) {
    c["architectures"] = {"LlamaForCausalLM"};
    c["model_type"] = "llama";
  });
  expect_error(dir,
               "6 tensor(s) that a llama model does not use: "
               "model.layers.0.self_attn.k_proj.bias, model.layers.0.self_attn.q_proj.bias");
  // Sliding windows are refused, not ignored.
  const std::string q = write_family("qwen3");
  edit_config(q, [](nlohmann::json& c) { c["use_sliding_window"] = true; });
  expect_error(q, "use_sliding_window is true");
}

TEST(HfFamiliesHostile, PhiAndGlm) {
  const std::string dir = write_family("phi4");
  edit_config(dir, [](nlohmann::json& c) { c["sliding_window"] = 128; });
  expect_error(dir, "sliding_window 128 is below max_position_embeddings 256; sliding-window "
                    "attention is not supported");
  edit_config(dir, [](nlohmann::json& c) {
    c["sliding_window"] = 262144;  // Phi-4-mini's: covers the context, changes nothing
    c["rope_scaling"]["short_factor"] = {1.0, 2.0};
  });
  expect_error(dir, "longrope short_factor has 2 entries, expected rotary dims / 2 = 6");
  edit_config(dir, [](nlohmann::json& c) {
    c["rope_scaling"]["short_factor"] = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0};
    c["partial_rotary_factor"] = 1.5;
  });
  expect_error(dir, "partial_rotary_factor is 1.5, expected (0, 1]");
  // A Phi config over separate q/k/v tensors: the fused qkv_proj is missing.
  const std::string q = write_family("qwen3");
  edit_config(q, [](nlohmann::json& c) {
    c["architectures"] = {"Phi3ForCausalLM"};
    c["model_type"] = "phi3";
  });
  expect_error(q, "tensor 'model.layers.0.self_attn.qkv_proj.weight' is missing");
  // yarn is refused for every family; longrope outside phi3 too.
  const std::string g = write_family("glm");
  edit_config(g, [](nlohmann::json& c) {
    c["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1}}, {"long_factor", {1}}};
  });
  expect_error(g, "rope_scaling type 'longrope' is not supported, only llama3 (and longrope for "
                  "phi3)");
}

TEST(HfFamiliesHostile, CodegenKeys) {
  const std::string dir = write_family("codegen");
  for (int rotary : {7, 32}) {  // odd; above head_dim 16
    edit_config(dir, [&](nlohmann::json& c) { c["rotary_dim"] = rotary; });
    expect_error(dir, fmt::format("rotary_dim is {}, expected an even number in 2..16 (head_dim "
                                  "= n_embd 64 / n_head 4)",
                                  rotary));
  }
  edit_config(dir, [](nlohmann::json& c) {
    c["rotary_dim"] = 8;
    c["n_embd"] = 66;
  });
  expect_error(dir, "n_embd 66 is not divisible by n_head 4 (head_dim = n_embd / n_head)");
  edit_config(dir, [](nlohmann::json& c) {
    c["n_embd"] = 64;
    c["n_head"] = 2;
  });
  expect_error(dir, "n_head 2 is not a multiple of 4 (CodeGen's qkv_proj holds 4 groups");
  edit_config(dir, [](nlohmann::json& c) {
    c["n_head"] = 4;
    c["activation_function"] = "relu";
  });
  expect_error(dir, "activation_function 'relu' is not supported (gelu_new, gelu_fast, "
                    "gelu_pytorch_tanh, gelu)");
  // rotary_dim absent: CodeGenConfig's default 64 (above this head_dim); null: refused.
  edit_config(dir, [](nlohmann::json& c) {
    c["activation_function"] = "gelu_new";
    c.erase("rotary_dim");
  });
  expect_error(dir, "rotary_dim is 64, expected an even number in 2..16");
  edit_config(dir, [](nlohmann::json& c) { c["rotary_dim"] = nullptr; });
  expect_error(dir, "rotary_dim is null");
  // n_inner null: 4 * n_embd (the checkpoint's fc_in is then the wrong shape).
  edit_config(dir, [](nlohmann::json& c) {
    c["rotary_dim"] = 8;
    c["n_inner"] = nullptr;
  });
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig c, load_hf_config(dir + "/config.json"));
  EXPECT_EQ(c.hidden_dim, 256);
  EXPECT_EQ(c.rope_dims(), 8);
  expect_error(dir, "'transformer.h.0.mlp.fc_in.weight' has shape [96,64], expected [256,64]");
  edit_config(dir, [](nlohmann::json& j) { j["n_inner"] = 96; });
  HS_ASSERT_OK(load_hf_model(dir));
  testing::HfWriteOptions o;
  o.skip_tensor = "transformer.h.1.attn.qkv_proj.weight";
  expect_error(write_family("codegen", o), "'transformer.h.1.attn.qkv_proj.weight' is missing");
}

// CodeGen2 ships a GPT-2 style byte-level BPE tokenizer.json: a codegen folder with one loads
// it (pieces in bytes_to_unicode form, merges, <|endoftext|> as BOS and EOS).
TEST(HfFamiliesTokenizer, CodegenByteLevelBpe) {
  LlamaModel m = testing::family_model("codegen", 3);
  tokenizer::TokenizerData t;
  t.kind = tokenizer::TokenizerKind::kByteLevelBpe;
  for (int b = 0; b < 256; ++b) {
    t.pieces.push_back(tokenizer::bytes_to_unicode(std::string(1, static_cast<char>(b))));
  }
  t.merges = {"d e", "de f", "\u0120 x", "r e"};
  for (const char* p : {"de", "def", "\u0120x", "re", "<|endoftext|>"}) t.pieces.push_back(p);
  t.types.assign(t.pieces.size(), tokenizer::TokenType::kNormal);
  t.types.back() = tokenizer::TokenType::kControl;
  t.pre_tokenizer = "gpt2";
  t.bos_id = t.eos_id = static_cast<int32_t>(t.pieces.size()) - 1;
  t.add_bos = false;
  t.add_space_prefix = false;
  m.tokenizer = t;
  const std::string dir = testing::temp_dir() + "/codegen-tokenizer";
  std::filesystem::create_directories(dir);
  HS_ASSERT_OK(testing::write_hf_folder(m, dir));
  HS_ASSERT_OK_AND_ASSIGN(LlamaModel loaded, load_hf_model(dir));
  ASSERT_TRUE(loaded.tokenizer.has_value());
  EXPECT_EQ(loaded.tokenizer->kind, tokenizer::TokenizerKind::kByteLevelBpe);
  EXPECT_EQ(loaded.tokenizer->pieces, t.pieces);
  EXPECT_EQ(loaded.tokenizer->merges, t.merges);
  EXPECT_EQ(loaded.tokenizer->eos_id, 260);
  HS_ASSERT_OK_AND_ASSIGN(auto tok, tokenizer::Tokenizer::create(*loaded.tokenizer));
  const std::vector<int32_t> ids = tok->encode("def x\n", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{257, 258, '\n'}));  // "def", "\u0120x", byte 0x0A
  EXPECT_EQ(tok->decode(ids), "def x\n");
}

TEST(HfFamiliesConfig, RopeParametersAndSmolLM3Interval) {
  const std::string dir = write_family("llama3.2");
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig c, load_hf_config(dir + "/config.json"));
  EXPECT_EQ(c.rope_theta, 500000.0);  // read from rope_parameters, not the 10000 default
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->factor, 32.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 64);
  // SmolLM3 without a list: every no_rope_layer_interval-th layer skips RoPE.
  const std::string s = write_family("smollm3");
  edit_config(s, [](nlohmann::json& j) {
    j.erase("no_rope_layers");
    j["num_hidden_layers"] = 8;
    j["no_rope_layer_interval"] = 3;
  });
  HS_ASSERT_OK_AND_ASSIGN(LlamaConfig sc, load_hf_config(s + "/config.json"));
  EXPECT_EQ(sc.no_rope_layers, (std::vector<int64_t>{2, 5}));
}

}  // namespace
}  // namespace hs::frontend
