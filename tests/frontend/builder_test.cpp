// The static llama graph builder: I/O contract, structure per form and option, option errors,
// and logits against an independent float forward pass written here (llama2.c run.c style,
// reading the checkpoint itself, interleaved RoPE, no code shared with the builder).
#include "headsplit/frontend/builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "headsplit/frontend/llama2c.h"
#include "headsplit/ir/interpreter.h"
#include "testing/testing.h"

namespace hs::frontend {
namespace {

LlamaConfig tiny_config(int64_t H, int64_t Hkv, int64_t Dh) {
  LlamaConfig c;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = H;
  c.n_kv_heads = Hkv;
  c.head_dim = Dh;
  c.vocab_size = 32;
  c.max_seq_len = 64;
  c.name = "tiny";
  return c;
}

int64_t count_op(const ir::Graph& g, ir::OpKind op) {
  int64_t n = 0;
  for (ir::NodeId i = 0; i < g.num_nodes(); ++i) n += g.node(i).op == op && !g.node(i).erased;
  return n;
}

TEST(Builder, MhaIoContract) {
  LlamaModel m = make_random_llama(tiny_config(4, 2, 4), 7);
  BuildOptions o;
  o.ar_len = 3;
  o.context_len = 10;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, build_llama(m, o));
  // Inputs: tokens, mask, positions, 2 K caches, 2 V caches.
  ASSERT_EQ(g.inputs().size(), 3u + 2 * 2);
  EXPECT_EQ(g.value(g.inputs()[0]).name, "tokens");
  EXPECT_EQ(g.type(g.inputs()[0]), ir::TensorType::i32({1, 3}));
  EXPECT_EQ(g.value(g.inputs()[1]).name, "attention_mask");
  EXPECT_EQ(g.type(g.inputs()[1]), ir::TensorType::f32({1, 3, 10}));
  EXPECT_EQ(g.value(g.inputs()[2]).name, "input_pos");
  EXPECT_EQ(g.value(g.inputs()[3]).name, "k_cache.0");
  EXPECT_EQ(g.type(g.inputs()[3]), ir::TensorType::f32({1, 2, 4, 7}));  // [1,Hkv,Dh,P]
  EXPECT_EQ(g.value(g.inputs()[5]).name, "v_cache.0");
  EXPECT_EQ(g.type(g.inputs()[5]), ir::TensorType::f32({1, 2, 7, 4}));  // [1,Hkv,P,Dh]
  // Outputs: logits, 2 new K, 2 new V.
  ASSERT_EQ(g.outputs().size(), 5u);
  EXPECT_EQ(g.value(g.outputs()[0]).name, "logits");
  EXPECT_EQ(g.type(g.outputs()[0]).shape, (ir::Shape{1, 3, 32}));
  EXPECT_EQ(g.value(g.outputs()[1]).name, "k_new.0");
  EXPECT_EQ(g.type(g.outputs()[1]).shape, (ir::Shape{1, 2, 4, 3}));  // [1,Hkv,Dh,T]
  EXPECT_EQ(g.value(g.outputs()[3]).name, "v_new.0");
  EXPECT_EQ(g.type(g.outputs()[3]).shape, (ir::Shape{1, 2, 3, 4}));  // [1,Hkv,T,Dh]
  // Per layer 4 attention + 3 FFN projections, plus the LM head.
  EXPECT_EQ(count_op(g, ir::OpKind::kConv2d), 2 * 7 + 1);
  EXPECT_EQ(count_op(g, ir::OpKind::kSoftmax), 2);
  EXPECT_EQ(count_op(g, ir::OpKind::kExpand), 2 * 2);  // GQA repeat of k and v per layer
  // Stable intermediate names.
  EXPECT_TRUE(g.find_value("layers.1.attn.q").has_value());
  EXPECT_TRUE(g.find_value("layers.1.attn.probs").has_value());
  EXPECT_TRUE(g.find_value("layers.0.ffn.w2").has_value());
}

TEST(Builder, ShaFromSourceStructure) {
  LlamaModel m = make_random_llama(tiny_config(4, 2, 4), 7);
  BuildOptions o;
  o.ar_len = 2;
  o.context_len = 8;
  o.form = AttentionForm::kShaFromSource;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, build_llama(m, o));
  // Per layer H + 2*Hkv + 1 attention projections + 3 FFN; plus the LM head.
  EXPECT_EQ(count_op(g, ir::OpKind::kConv2d), 2 * (4 + 2 * 2 + 1 + 3) + 1);
  EXPECT_EQ(count_op(g, ir::OpKind::kSoftmax), 2 * 4);
  EXPECT_EQ(count_op(g, ir::OpKind::kExpand), 0);  // no GQA repeat: head h reads kv h / G
  EXPECT_EQ(g.inputs().size(), 3u + 2 * 2);         // still per-layer caches
  EXPECT_EQ(g.outputs().size(), 5u);

  o.cache_layout = CacheLayout::kPerHead;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph gh, build_llama(m, o));
  EXPECT_EQ(gh.inputs().size(), 3u + 2 * 2 * 2);  // 2*L*Hkv caches
  EXPECT_EQ(gh.outputs().size(), 1u + 2 * 2 * 2);
  EXPECT_EQ(gh.value(gh.inputs()[3]).name, "k_cache.0.0");
  EXPECT_EQ(gh.type(gh.inputs()[3]).shape, (ir::Shape{1, 1, 4, 6}));
  EXPECT_EQ(gh.value(gh.outputs()[1]).name, "k_new.0.0");
}

TEST(Builder, OptionsChangeStructure) {
  LlamaModel m = make_random_llama(tiny_config(4, 4, 4), 3);
  BuildOptions o;
  o.ar_len = 1;
  o.context_len = 6;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph plain, build_llama(m, o));
  EXPECT_EQ(count_op(plain, ir::OpKind::kExpand), 0);  // G = 1: no repeat
  o.r3 = true;
  o.mask = MaskKind::kMaskedSoftmax;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph r3, build_llama(m, o));
  // R3 adds a matmul for q and k per layer; masked softmax adds eq/reduce_min/where.
  EXPECT_EQ(count_op(r3, ir::OpKind::kMatMul), count_op(plain, ir::OpKind::kMatMul) + 2 * 2);
  EXPECT_EQ(count_op(r3, ir::OpKind::kWhere), 2);
  EXPECT_EQ(count_op(r3, ir::OpKind::kReduceMin), 2);
  o.projection = ProjectionKind::kLinear;
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph lin, build_llama(m, o));
  EXPECT_EQ(count_op(lin, ir::OpKind::kConv2d), 0);
  EXPECT_EQ(count_op(lin, ir::OpKind::kLinear), 2 * 7 + 1);
  EXPECT_EQ(lin.value(lin.outputs()[0]).name, "logits");
}

TEST(Builder, BiasAndSeparateHead) {
  LlamaConfig c = tiny_config(4, 2, 4);
  c.attention_bias = true;
  c.tied_embeddings = false;
  LlamaModel m = make_random_llama(c, 5);
  HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, build_llama(m, BuildOptions{}));
  EXPECT_TRUE(g.find_value("layers.0.attn.q.bias").has_value());
  EXPECT_TRUE(g.find_value("layers.0.attn.v.bias").has_value());
  const ir::Node* q = g.producer(*g.find_value("layers.0.attn.q.proj"));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->inputs.size(), 3u);
}

TEST(Builder, RejectsBadOptions) {
  LlamaModel m = make_random_llama(tiny_config(4, 2, 6), 1);
  BuildOptions o;
  o.ar_len = 8;
  o.context_len = 8;
  auto r = build_llama(m, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message().find("ar_len 8"), std::string::npos) << r.error().message();
  o.ar_len = 1;
  o.r3 = true;  // Dh = 6 is not a power of two
  r = build_llama(m, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("Dh = 6"), std::string::npos) << r.error().message();
  o.r3 = false;
  o.cache_layout = CacheLayout::kPerHead;  // MHA form with per-head caches
  r = build_llama(m, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
}

// ---- Independent reference: llama2.c run.c forward, reading the .bin itself. ----------------

struct RefModel {
  int dim, hidden, layers, heads, kv_heads, vocab, seq;
  std::vector<float> emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final;
};

bool read_floats(std::FILE* f, std::vector<float>& v, size_t n) {
  v.resize(n);
  return std::fread(v.data(), sizeof(float), n, f) == n;
}

bool load_reference(const std::string& path, RefModel& m) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  int h[7];
  bool ok = std::fread(h, sizeof(int), 7, f) == 7;
  m.dim = h[0], m.hidden = h[1], m.layers = h[2], m.heads = h[3], m.kv_heads = h[4];
  m.vocab = std::abs(h[5]), m.seq = h[6];
  const size_t D = m.dim, L = m.layers, F = m.hidden, kv = D * m.kv_heads / m.heads;
  ok = ok && read_floats(f, m.emb, m.vocab * D) && read_floats(f, m.rms_att, L * D) &&
       read_floats(f, m.wq, L * D * D) && read_floats(f, m.wk, L * kv * D) &&
       read_floats(f, m.wv, L * kv * D) && read_floats(f, m.wo, L * D * D) &&
       read_floats(f, m.rms_ffn, L * D) && read_floats(f, m.w1, L * F * D) &&
       read_floats(f, m.w2, L * D * F) && read_floats(f, m.w3, L * F * D) &&
       read_floats(f, m.rms_final, D);
  std::fclose(f);
  return ok;
}

// The reference computes in double (weights are the file's floats), so the comparison
// measures the graph's own float32 rounding.
void ref_rmsnorm(double* o, const double* x, const float* w, int n) {
  double ss = 0;
  for (int j = 0; j < n; j++) ss += x[j] * x[j];
  ss = 1.0 / std::sqrt(ss / n + 1e-5);
  for (int j = 0; j < n; j++) o[j] = w[j] * (ss * x[j]);
}

// W (d,n) @ x (n,) -> y (d,)
void ref_matmul(double* y, const double* x, const float* w, int n, int d) {
  for (int i = 0; i < d; i++) {
    double val = 0.0;
    for (int j = 0; j < n; j++) val += w[i * n + j] * x[j];
    y[i] = val;
  }
}

// Logits for each position of `tokens`, computed one token at a time with a growing cache.
std::vector<std::vector<double>> reference_logits(const RefModel& m, const std::vector<int>& tokens) {
  const int D = m.dim, hs = D / m.heads, kvd = hs * m.kv_heads, G = m.heads / m.kv_heads;
  const int F = m.hidden, n = static_cast<int>(tokens.size());
  std::vector<double> kc(static_cast<size_t>(m.layers) * n * kvd), vc(kc.size());
  std::vector<std::vector<double>> out;
  std::vector<double> x(D), xb(D), xb2(D), q(D), hb(F), hb2(F), att(n), logits(m.vocab);
  for (int pos = 0; pos < n; ++pos) {
    for (int i = 0; i < D; ++i) x[i] = m.emb[static_cast<size_t>(tokens[pos]) * D + i];
    for (int l = 0; l < m.layers; ++l) {
      ref_rmsnorm(xb.data(), x.data(), &m.rms_att[l * D], D);
      double* k = &kc[(static_cast<size_t>(l) * n + pos) * kvd];
      double* v = &vc[(static_cast<size_t>(l) * n + pos) * kvd];
      ref_matmul(q.data(), xb.data(), &m.wq[static_cast<size_t>(l) * D * D], D, D);
      ref_matmul(k, xb.data(), &m.wk[static_cast<size_t>(l) * D * kvd], D, kvd);
      ref_matmul(v, xb.data(), &m.wv[static_cast<size_t>(l) * D * kvd], D, kvd);
      for (int i = 0; i < D; i += 2) {  // interleaved RoPE pairs (2j, 2j+1), as in run.c
        const int head_dim = i % hs;
        const double freq = 1.0 / std::pow(10000.0, head_dim / static_cast<double>(hs));
        const double val = pos * freq, fcr = std::cos(val), fci = std::sin(val);
        for (int which = 0; which < (i < kvd ? 2 : 1); ++which) {
          double* vec = which == 0 ? q.data() : k;
          const double v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      std::fill(xb.begin(), xb.end(), 0.0);
      for (int h = 0; h < m.heads; ++h) {
        const double* qh = &q[h * hs];
        for (int t = 0; t <= pos; ++t) {
          const double* kt = &kc[(static_cast<size_t>(l) * n + t) * kvd + (h / G) * hs];
          double s = 0;
          for (int i = 0; i < hs; ++i) s += qh[i] * kt[i];
          att[t] = s / std::sqrt(static_cast<double>(hs));
        }
        double mx = att[0];
        for (int t = 1; t <= pos; ++t) mx = std::max(mx, att[t]);
        double sum = 0;
        for (int t = 0; t <= pos; ++t) sum += (att[t] = std::exp(att[t] - mx));
        for (int t = 0; t <= pos; ++t) {
          const double* vt = &vc[(static_cast<size_t>(l) * n + t) * kvd + (h / G) * hs];
          for (int i = 0; i < hs; ++i) xb[h * hs + i] += att[t] / sum * vt[i];
        }
      }
      ref_matmul(xb2.data(), xb.data(), &m.wo[static_cast<size_t>(l) * D * D], D, D);
      for (int i = 0; i < D; ++i) x[i] += xb2[i];
      ref_rmsnorm(xb.data(), x.data(), &m.rms_ffn[l * D], D);
      ref_matmul(hb.data(), xb.data(), &m.w1[static_cast<size_t>(l) * D * F], D, F);
      ref_matmul(hb2.data(), xb.data(), &m.w3[static_cast<size_t>(l) * D * F], D, F);
      for (int i = 0; i < F; ++i) hb[i] = hb[i] / (1.0 + std::exp(-hb[i])) * hb2[i];
      ref_matmul(xb.data(), hb.data(), &m.w2[static_cast<size_t>(l) * F * D], F, D);
      for (int i = 0; i < D; ++i) x[i] += xb[i];
    }
    ref_rmsnorm(x.data(), x.data(), m.rms_final.data(), D);
    ref_matmul(logits.data(), x.data(), m.emb.data(), D, m.vocab);  // shared classifier
    out.push_back(logits);
  }
  return out;
}

// One prefill step of T = 16 tokens from an empty cache: row t of the logits is position t.
TEST(Builder, LogitsMatchIndependentForwardPass) {
  HS_REQUIRE_SHARED();
  const std::string bin = testing::shared_file("models/stories260K/stories260K.bin");
  RefModel ref;
  ASSERT_TRUE(load_reference(bin, ref));
  const std::vector<int> tokens = {1, 403, 407, 261, 378, 430, 259, 300, 322, 271,
                                   266, 350, 289, 410, 294, 273};
  const int T = 16, C = 32;
  auto expected = reference_logits(ref, tokens);

  HS_ASSERT_OK_AND_ASSIGN(LlamaModel model, load_llama2c_model(bin, ""));
  for (ProjectionKind proj : {ProjectionKind::kConv, ProjectionKind::kLinear}) {
    BuildOptions o;
    o.ar_len = T;
    o.context_len = C;
    o.projection = proj;
    HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, build_llama(model, o));
    std::vector<ir::NamedTensor> in;
    in.push_back({"tokens", ir::Tensor::from_i32({1, T}, std::vector<int32_t>(tokens.begin(), tokens.end()))});
    std::vector<float> mask(T * C, -255.0f);  // cache slots [0,P) empty: masked
    for (int t = 0; t < T; ++t) {
      for (int j = 0; j <= t; ++j) mask[t * C + (C - T) + j] = 0.0f;
    }
    in.push_back({"attention_mask", ir::Tensor::from_f32({1, T, C}, mask)});
    std::vector<int32_t> pos(T);
    for (int t = 0; t < T; ++t) pos[t] = t;
    in.push_back({"input_pos", ir::Tensor::from_i32({1, T}, pos)});
    for (int l = 0; l < ref.layers; ++l) {
      in.push_back({k_cache_name(l), ir::Tensor::zeros_f32({1, 4, 8, C - T})});
      in.push_back({v_cache_name(l), ir::Tensor::zeros_f32({1, 4, C - T, 8})});
    }
    HS_ASSERT_OK_AND_ASSIGN(auto outs, ir::run_graph(g, in));
    const ir::Tensor& logits = outs[0];
    ASSERT_EQ(logits.shape, (ir::Shape{1, T, ref.vocab}));
    // The reference is exact up to double rounding, so this measures the graph's float32
    // error. Logits reach |17| here, where one float32 ulp is 1.9e-6: an absolute 1e-5 would be
    // ~5 ulps, below what any float32 evaluation order can promise through 5 layers. The bound
    // is therefore 1e-5 relative to the row's largest logit (measured: <= 1.3e-6 relative,
    // <= 1.7e-5 absolute).
    double worst_relative = 0, worst_absolute = 0;
    for (int t = 0; t < T; ++t) {
      double row_diff = 0, row_scale = 0;
      for (int v = 0; v < ref.vocab; ++v) {
        const double e = expected[t][static_cast<size_t>(v)];
        row_diff = std::max(row_diff, std::abs(logits.f[static_cast<size_t>(t * ref.vocab + v)] - e));
        row_scale = std::max(row_scale, std::abs(e));
      }
      worst_absolute = std::max(worst_absolute, row_diff);
      worst_relative = std::max(worst_relative, row_diff / std::max(1.0, row_scale));
      EXPECT_LT(row_diff / std::max(1.0, row_scale), 1e-5) << "position " << t;
    }
    std::printf("projection form %d: max |logits - reference| = %.3g (relative %.3g), 16 positions\n",
                static_cast<int>(proj), worst_absolute, worst_relative);
  }
}

// The step lengths export, eval and generate share: C defaults to the trained length, at most
// 512; AR lengths {N, 1} or {1}; one error text for N outside [1, C).
TEST(StepLengths, DefaultContextAndArLengths) {
  LlamaConfig c = tiny_config(4, 2, 4);
  c.max_seq_len = 256;
  LlamaModel m = make_random_llama(c, 1);
  HS_ASSERT_OK_AND_ASSIGN(StepLengths s, step_lengths(m, 0, 32));
  EXPECT_EQ(s.context_len, 256);
  EXPECT_EQ(s.ar_lens, (std::vector<int64_t>{32, 1}));
  HS_ASSERT_OK_AND_ASSIGN(s, step_lengths(m, 64, 1));
  EXPECT_EQ(s.context_len, 64);
  EXPECT_EQ(s.ar_lens, (std::vector<int64_t>{1}));
  m.config.max_seq_len = 4096;
  EXPECT_EQ(step_lengths(m, 0, 8).value().context_len, kDefaultMaxContext);
  m.config.max_seq_len = 0;  // unknown
  EXPECT_EQ(step_lengths(m, 0, 8).value().context_len, kDefaultMaxContext);
  auto bad = step_lengths(m, 16, 16);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(bad.error().message(),
            "ar length 16 must be at least 1 and smaller than the context length 16");
}

}  // namespace
}  // namespace hs::frontend
