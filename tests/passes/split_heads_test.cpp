// The MHA -> SHA split: bit-exact equivalence in the reference interpreter (float and
// quantized), node counts in the style of the reference's test, per-head quant params,
// idempotency, unmatched attentions and shape errors.
#include "headsplit/passes/split_heads.h"

#include <gtest/gtest.h>

#include <random>

#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/llama2c.h"
#include "headsplit/ir/text.h"
#include "headsplit/ir/verifier.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::passes {
namespace {

using frontend::BuildOptions;
using frontend::LlamaConfig;
using frontend::LlamaModel;
using frontend::MaskKind;

int64_t count_op(const ir::Graph& g, ir::OpKind op) {
  int64_t n = 0;
  for (ir::NodeId i = 0; i < g.num_nodes(); ++i) n += !g.node(i).erased && g.node(i).op == op;
  return n;
}

// Projection ops reading a weight with out-channels from q/k/v/o of layer `layer`.
int64_t attention_projections(const ir::Graph& g, int64_t layer) {
  const std::string prefix = fmt::format("layers.{}.attn.", layer);
  int64_t n = 0;
  for (ir::NodeId i = 0; i < g.num_nodes(); ++i) {
    const ir::Node& node = g.node(i);
    if (node.erased || (node.op != ir::OpKind::kConv2d && node.op != ir::OpKind::kLinear)) continue;
    n += g.value(node.outputs[0]).name.rfind(prefix, 0) == 0;
  }
  return n;
}

PassContext quiet() { return PassContext{}; }

// Runs the preprocess graph pipeline with the split on a copy and checks every output is
// bit-identical on two random input sets. Returns the split graph.
ir::Graph split_and_compare(const ir::Graph& mha, uint64_t seed) {
  ir::Graph sha = mha;
  PassContext ctx;
  ctx.verify_each = true;
  auto runs = run_preprocess(sha, PreprocessOptions{}, ctx);
  EXPECT_TRUE(runs.ok()) << runs.error().message();
  for (uint64_t s : {seed, seed + 1}) {
    auto inputs = testing::random_step_inputs(mha, s);
    auto before = ir::run_graph(mha, inputs);
    auto after = ir::run_graph(sha, inputs);
    EXPECT_TRUE(before.ok() && after.ok())
        << (before.ok() ? after.error().message() : before.error().message());
    if (!before.ok() || !after.ok()) break;
    std::string why;
    EXPECT_TRUE(testing::bit_identical(*before, *after, &why)) << why;
  }
  return sha;
}

struct Variant {
  int64_t T;
  bool r3;
  MaskKind mask;
};

const Variant kVariants[] = {
    {1, false, MaskKind::kAdditive},
    {32, false, MaskKind::kAdditive},
    {1, true, MaskKind::kMaskedSoftmax},
    {32, true, MaskKind::kMaskedSoftmax},
    {32, false, MaskKind::kMaskedSoftmax},
    {1, true, MaskKind::kAdditive},
};

void check_model(const LlamaModel& model, int64_t C, int64_t expected_projections) {
  const LlamaConfig& c = model.config;
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(fmt::format("T={} r3={} masked_softmax={}", v.T, v.r3,
                             v.mask == MaskKind::kMaskedSoftmax));
    BuildOptions o;
    o.ar_len = v.T;
    o.context_len = C;
    o.r3 = v.r3;
    o.mask = v.mask;
    auto mha = frontend::build_llama(model, o);
    ASSERT_TRUE(mha.ok()) << mha.error().message();
    for (int64_t l = 0; l < c.n_layers; ++l) EXPECT_EQ(attention_projections(*mha, l), 4);
    ir::Graph sha = split_and_compare(*mha, 1000 + static_cast<uint64_t>(v.T));
    for (int64_t l = 0; l < c.n_layers; ++l) {
      EXPECT_EQ(attention_projections(sha, l), expected_projections) << "layer " << l;
    }
    // Cache I/O keeps its per-layer shapes: 2L cache inputs and 2L cache outputs.
    EXPECT_EQ(sha.inputs().size(), mha->inputs().size());
    EXPECT_EQ(sha.outputs().size(), 1 + 2 * static_cast<size_t>(c.n_layers));
    for (size_t i = 0; i < sha.outputs().size(); ++i) {
      EXPECT_EQ(sha.value(sha.outputs()[i]).name, mha->value(mha->outputs()[i]).name);
      EXPECT_EQ(sha.type(sha.outputs()[i]), mha->type(mha->outputs()[i]));
    }
    EXPECT_EQ(count_op(sha, ir::OpKind::kSoftmax), c.n_layers * c.n_heads);
    EXPECT_EQ(count_op(sha, ir::OpKind::kExpand), 0) << "the GQA repeat must be bypassed";
  }
}

TEST(SplitHeads, Stories260KIsBitExact) {
  HS_REQUIRE_SHARED();
  auto model = frontend::load_llama2c_model(
      testing::shared_file("models/stories260K/stories260K.bin"), "");
  ASSERT_TRUE(model.ok()) << model.error().message();
  check_model(*model, 64, 8 + 2 * 4 + 1);  // H + 2*Hkv + 1 = 17
}

TEST(SplitHeads, SmolLM2ShapeIsBitExact) {
  auto c = frontend::named_config("smollm2-135m");
  ASSERT_TRUE(c.ok());
  LlamaConfig config = *c;
  config.n_layers = 2;
  config.vocab_size = 256;  // the LM head does not take part in the split; keeps the test fast
  check_model(frontend::make_random_llama(config, 11), 48, 9 + 2 * 3 + 1);  // 16
}

TEST(SplitHeads, Llama1BAttentionShapeIsBitExact) {
  auto c = frontend::named_config("llama3.2-1b");
  ASSERT_TRUE(c.ok());
  LlamaConfig config = *c;
  // Attention in Llama-3.2-1B shape (D 2048, H 32, Hkv 8, Dh 64); one layer, a small FFN and
  // vocabulary, which the split does not touch, keep the reference interpreter fast.
  config.n_layers = 1;
  config.hidden_dim = 128;
  config.vocab_size = 64;
  check_model(frontend::make_random_llama(config, 12), 40, 32 + 2 * 8 + 1);  // 49
}

TEST(SplitHeads, LinearProjectionsAndBias) {
  LlamaConfig c;
  c.dim = 24, c.hidden_dim = 40, c.n_layers = 2, c.n_heads = 6, c.n_kv_heads = 2;
  c.head_dim = 4, c.vocab_size = 50, c.max_seq_len = 64, c.attention_bias = true;
  LlamaModel m = frontend::make_random_llama(c, 3);
  for (auto proj : {frontend::ProjectionKind::kLinear, frontend::ProjectionKind::kConv}) {
    BuildOptions o;
    o.ar_len = 5, o.context_len = 16, o.projection = proj;
    auto mha = frontend::build_llama(m, o);
    ASSERT_TRUE(mha.ok()) << mha.error().message();
    ir::Graph sha = split_and_compare(*mha, 5);
    EXPECT_EQ(attention_projections(sha, 0), 6 + 2 * 2 + 1);
  }
}

// Every per-head weight slice carries exactly the matching rows of the original params.
void check_weight_slices(const ir::Graph& mha, const ir::Graph& sha, int64_t layer) {
  for (const char* p : {"q", "k", "v"}) {
    const std::string name = fmt::format("layers.{}.attn.{}.weight", layer, p);
    auto orig_id = mha.find_value(name);
    ASSERT_TRUE(orig_id.has_value()) << name;
    const ir::TensorType& orig = mha.type(*orig_id);
    const int64_t rows = orig.shape[0];
    const int64_t blocks = orig.quant.kind == ir::QuantKind::kPerBlock
                               ? orig.quant.blocks_for(orig.shape[1]) : 1;
    int64_t heads = 0, covered = 0;
    for (int64_t h = 0;; ++h) {
      auto id = sha.find_value(fmt::format("{}.h{}", name, h));
      if (!id) break;
      ++heads;
      const ir::Value& slice = sha.value(*id);
      ASSERT_TRUE(slice.is_constant()) << slice.name << " must be folded into a constant";
      const int64_t n = slice.type.shape[0];
      EXPECT_EQ(slice.type.quant.kind, orig.quant.kind);
      EXPECT_EQ(slice.type.dtype, orig.dtype);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t b = 0; b < blocks; ++b) {
          const auto src = static_cast<size_t>((h * n + r) * blocks + b);
          const auto dst = static_cast<size_t>(r * blocks + b);
          ASSERT_EQ(slice.type.quant.scales[dst], orig.quant.scales[src]) << slice.name;
          ASSERT_EQ(slice.type.quant.zero_points[dst], orig.quant.zero_points[src]);
        }
      }
      // The slice is a view of the original bytes (per-head rows are contiguous).
      const ir::Value& o = mha.value(*orig_id);
      EXPECT_EQ(slice.data->buffer.get(), o.data->buffer.get()) << slice.name << " was copied";
      EXPECT_EQ(slice.data->offset, o.data->offset + static_cast<size_t>(h * n) * o.data->size /
                                                         static_cast<size_t>(rows));
      covered += n;
    }
    EXPECT_GT(heads, 1) << name;
    EXPECT_EQ(covered, rows) << name;
  }
}

TEST(SplitHeads, QuantizedGraphsAreBitExactAndSliceParams) {
  LlamaConfig c;
  c.dim = 64, c.hidden_dim = 172, c.n_layers = 2, c.n_heads = 8, c.n_kv_heads = 4;
  c.head_dim = 8, c.vocab_size = 96, c.max_seq_len = 64;
  LlamaModel m = frontend::make_random_llama(c, 21);
  for (auto weights : {testing::SyntheticWeights::kPerChannelInt8,
                       testing::SyntheticWeights::kPerBlockInt4}) {
    for (int64_t T : {1, 32}) {
      SCOPED_TRACE(fmt::format("T={} weights={}", T, static_cast<int>(weights)));
      BuildOptions o;
      o.ar_len = T, o.context_len = 48, o.r3 = T == 32, o.mask = MaskKind::kMaskedSoftmax;
      auto mha = frontend::build_llama(m, o);
      ASSERT_TRUE(mha.ok()) << mha.error().message();
      testing::SyntheticQuant q;
      q.weights = weights;
      q.block = 16;
      HS_ASSERT_OK(testing::quantize_synthetic(*mha, q));
      HS_ASSERT_OK(ir::verify(*mha));
      ir::Graph sha = split_and_compare(*mha, 77);
      check_weight_slices(*mha, sha, 0);
      check_weight_slices(*mha, sha, 1);
      // Per-head activations share the MHA tensor's per-tensor params.
      auto q_orig = mha->find_value("layers.0.attn.q.proj");
      auto q_head = sha.find_value("layers.0.attn.q.proj.h5");
      ASSERT_TRUE(q_orig && q_head);
      EXPECT_EQ(sha.type(*q_head).quant, mha->type(*q_orig).quant);
    }
  }
}

TEST(SplitHeads, SecondRunChangesNothing) {
  LlamaModel m = frontend::make_random_llama(frontend::named_config("stories260k").value(), 4);
  BuildOptions o;
  o.ar_len = 4, o.context_len = 12;
  auto g = frontend::build_llama(m, o);
  ASSERT_TRUE(g.ok());
  HS_ASSERT_OK(run_preprocess(*g, PreprocessOptions{}, quiet()));
  const int64_t nodes = g->live_node_count();
  auto report = split_heads(*g, SplitHeadsOptions{}, quiet());
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->split_count(), 0);
  EXPECT_EQ(report->skipped_count(), 0) << "single-head attentions are not reported as misses";
  // They are reported as skipped single-head softmaxes: H = 8 per layer, L = 5.
  EXPECT_EQ(report->single_head.size(), 8u * 5u);
  EXPECT_EQ(report->single_head.front(), "layers.0.attn.probs.h0");
  EXPECT_EQ(g->live_node_count(), nodes);
}

TEST(SplitHeads, UnmatchedAttentionIsLeftAndReported) {
  // softmax(q k^T) over heads without a following transpose: left as MHA, named in the report.
  ir::Graph g("plain");
  auto q = g.add_input("q", ir::TensorType::f32({1, 4, 3, 2})).value();
  auto k = g.add_input("kt", ir::TensorType::f32({1, 4, 2, 5})).value();
  auto v = g.add_input("v", ir::TensorType::f32({1, 4, 5, 2})).value();
  auto s = g.emit(ir::OpKind::kMatMul, {q, k}, {}, "scores").value();
  auto p = g.emit(ir::OpKind::kSoftmax, {s}, {{"axis", int64_t{3}}}, "probs").value();
  auto a = g.emit(ir::OpKind::kMatMul, {p, v}, {}, "attn").value();
  g.set_outputs({a});
  const std::string before = fmt::format("{}", g.live_node_count());
  std::vector<std::string> log;
  PassContext ctx;
  ctx.log = [&](std::string_view line) { log.emplace_back(line); };
  auto report = split_heads(g, SplitHeadsOptions{}, ctx);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->attentions.size(), 1u);
  EXPECT_FALSE(report->attentions[0].split);
  EXPECT_EQ(report->attentions[0].name, "probs");
  EXPECT_NE(report->attentions[0].reason.find("transpose"), std::string::npos);
  EXPECT_EQ(fmt::format("{}", g.live_node_count()), before);
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log[0].find("probs: left as MHA"), std::string::npos) << log[0];
  // With require-all the same graph is an error naming the attention.
  auto strict = split_heads(g, SplitHeadsOptions{true}, quiet());
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.error().message().find("'probs'"), std::string::npos);
}

TEST(SplitHeads, NonDividingShapeIsAnErrorNamingTheNode) {
  // scores [1,4,2,5] come from a reshape of [1,2,4,5]: the head axis (4) is made from input
  // axis 1 of size 2, which cannot be cut into 4 heads.
  ir::Graph g("bad");
  auto x = g.add_input("x", ir::TensorType::f32({1, 2, 4, 5})).value();
  auto v = g.add_input("v", ir::TensorType::f32({1, 4, 5, 3})).value();
  auto q = g.add_input("q", ir::TensorType::f32({1, 4, 2, 6})).value();
  auto kt = g.add_input("kt", ir::TensorType::f32({1, 4, 6, 5})).value();
  auto qk = g.emit(ir::OpKind::kMatMul, {q, kt}, {}, "qk").value();
  auto r = g.emit(ir::OpKind::kReshape, {x}, {{"shape", std::vector<int64_t>{1, 4, 2, 5}}}, "r").value();
  auto s = g.emit(ir::OpKind::kAdd, {qk, r}, {}, "scores").value();
  auto p = g.emit(ir::OpKind::kSoftmax, {s}, {{"axis", int64_t{3}}}, "probs").value();
  auto a = g.emit(ir::OpKind::kMatMul, {p, v}, {}, "attn").value();
  auto t = g.emit(ir::OpKind::kTranspose, {a}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}}, "attn_t").value();
  auto o = g.emit(ir::OpKind::kReshape, {t}, {{"shape", std::vector<int64_t>{1, 2, 12}}}, "out").value();
  g.set_outputs({o});
  auto report = split_heads(g, SplitHeadsOptions{}, quiet());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.kind(), ErrorKind::kShape);
  EXPECT_NE(report.error().message().find("'r' (reshape)"), std::string::npos)
      << report.error().message();
}

TEST(SplitHeads, RejectsHeadsNotDivisibleByKvHeads) {
  LlamaConfig c = frontend::named_config("stories260k").value();
  c.n_kv_heads = 3;  // 8 % 3 != 0
  LlamaModel m = frontend::make_random_llama(frontend::named_config("stories260k").value(), 1);
  m.config = c;
  auto g = frontend::build_llama(m, BuildOptions{});
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message().find("3"), std::string::npos) << g.error().message();
}

// Seeded random (H, Hkv, Dh, T, C, bias, R3, mask kind): verifier passes after the pass, a
// second run changes nothing, outputs are bit-identical.
TEST(SplitHeads, PropertyRandomShapes) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 24; ++trial) {
    const int64_t hkv = 1 + static_cast<int64_t>(rng() % 4);
    const int64_t group = 1 + static_cast<int64_t>(rng() % 4);
    const int64_t dh = int64_t{2} << (rng() % 3);  // 2, 4, 8
    LlamaConfig c;
    c.n_kv_heads = hkv, c.n_heads = hkv * group, c.head_dim = dh;
    c.dim = c.n_heads * dh + static_cast<int64_t>(rng() % 2) * 4;
    c.hidden_dim = 8 + static_cast<int64_t>(rng() % 20);
    c.n_layers = 1 + static_cast<int64_t>(rng() % 2);
    c.vocab_size = 16, c.max_seq_len = 64;
    c.attention_bias = rng() % 2 == 0;
    c.tied_embeddings = rng() % 2 == 0;
    BuildOptions o;
    o.ar_len = 1 + static_cast<int64_t>(rng() % 6);
    o.context_len = o.ar_len + 1 + static_cast<int64_t>(rng() % 10);
    o.r3 = rng() % 2 == 0;
    o.mask = rng() % 2 == 0 ? MaskKind::kAdditive : MaskKind::kMaskedSoftmax;
    o.projection = rng() % 4 == 0 ? frontend::ProjectionKind::kLinear : frontend::ProjectionKind::kConv;
    SCOPED_TRACE(fmt::format("trial {}: H={} Hkv={} Dh={} D={} T={} C={} bias={} r3={} masked={}",
                             trial, c.n_heads, hkv, dh, c.dim, o.ar_len, o.context_len,
                             c.attention_bias, o.r3, o.mask == MaskKind::kMaskedSoftmax));
    LlamaModel m = frontend::make_random_llama(c, 100 + static_cast<uint64_t>(trial));
    auto mha = frontend::build_llama(m, o);
    ASSERT_TRUE(mha.ok()) << mha.error().message();
    ir::Graph sha = split_and_compare(*mha, 300 + static_cast<uint64_t>(trial));
    HS_EXPECT_OK(ir::verify(sha));
    ir::Graph again = sha;
    auto second = split_heads(again, SplitHeadsOptions{}, quiet());
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->split_count(), 0);
    EXPECT_EQ(second->skipped_count(), 0);
    EXPECT_EQ(ir::print_graph(again), ir::print_graph(sha));
    if (c.n_heads > 1) {
      EXPECT_EQ(count_op(sha, ir::OpKind::kSoftmax), c.n_layers * c.n_heads);
    }
  }
}

}  // namespace
}  // namespace hs::passes
