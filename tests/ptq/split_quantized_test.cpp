// The MHA -> SHA split on graphs quantized by the real quantizer: outputs bit-identical to the
// quantized MHA graph in the reference interpreter (T = 1 and T = 32; stories260K and the
// SmolLM2-shaped random model; 16a8w and 16a4w-block32), and each head's weight params are
// exactly the matching rows of the original's.
#include <gtest/gtest.h>

#include "headsplit/ir/verifier.h"
#include "headsplit/passes/passes.h"
#include "ptq/ptq_testing.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

// Per-head slices `<name>.h<i>` of the q/k/v weights of `layer` carry exactly the original's
// rows of scales and zero points (per-channel: one per row; per-block: a row of blocks).
void expect_head_params_are_rows(const ir::Graph& mha, const ir::Graph& sha, int64_t layer,
                                 int64_t head_dim) {
  for (const char* p : {"q", "k", "v"}) {
    const std::string name = fmt::format("layers.{}.attn.{}.weight", layer, p);
    auto orig_id = mha.find_value(name);
    ASSERT_TRUE(orig_id.has_value()) << name;
    const ir::TensorType& orig = mha.type(*orig_id);
    ASSERT_TRUE(orig.quant.is_quantized()) << name;
    const int64_t blocks =
        orig.quant.kind == ir::QuantKind::kPerBlock ? orig.quant.blocks_for(orig.shape[1]) : 1;
    int64_t heads = 0;
    for (;; ++heads) {
      auto id = sha.find_value(fmt::format("{}.h{}", name, heads));
      if (!id) break;
      const ir::TensorType& slice = sha.type(*id);
      ASSERT_EQ(slice.shape[0], head_dim) << name;
      ASSERT_EQ(slice.dtype, orig.dtype);
      ASSERT_EQ(slice.quant.kind, orig.quant.kind);
      ASSERT_EQ(slice.quant.block, orig.quant.block);
      ASSERT_EQ(slice.quant.scales.size(), static_cast<size_t>(head_dim * blocks));
      for (int64_t i = 0; i < head_dim * blocks; ++i) {
        const auto src = static_cast<size_t>(heads * head_dim * blocks + i);
        ASSERT_EQ(slice.quant.scales[static_cast<size_t>(i)], orig.quant.scales[src])
            << name << " head " << heads << " element " << i;
        ASSERT_EQ(slice.quant.zero_points[static_cast<size_t>(i)], orig.quant.zero_points[src]);
      }
    }
    EXPECT_EQ(heads * head_dim, orig.shape[0]) << name << ": heads do not cover the rows";
  }
}

void check_split(const frontend::LlamaModel& m, const char* scheme, int64_t context,
                 const quant::WeightSearchOptions& search = {}) {
  quant::QuantConfig config;
  config.scheme = quant::parse_scheme(scheme).value();
  config.kv_bits = 8;
  // Calibrate the export's pair (prefill AR-32, decode AR-1) together, as an export does.
  PtqOptions o = testing::ptq_options(config, {32, 1}, context);
  o.search = search;
  o.search.progress = false;
  const auto samples = testing::random_samples(m.config.vocab_size, 2, context - 32, 17);
  auto q = quantize_model(m, samples, o);
  ASSERT_TRUE(q.ok()) << q.error().message();
  for (const ir::Graph& mha : q->graphs) {
    const int64_t t = mha.type(*mha.find_value("tokens")).shape[1];
    SCOPED_TRACE(fmt::format("{} T={}", scheme, t));
    ir::Graph sha = mha;
    passes::PassContext ctx;
    ctx.verify_each = true;
    passes::PreprocessOptions po;
    po.split_options.require_all = true;
    HS_ASSERT_OK(passes::run_preprocess(sha, po, ctx));
    EXPECT_GT(sha.op_counts()["softmax"], mha.op_counts()["softmax"]);
    for (uint64_t seed : {5u, 6u}) {
      auto inputs = hs::testing::random_step_inputs(mha, seed + static_cast<uint64_t>(t));
      HS_ASSERT_OK_AND_ASSIGN(auto before, ir::run_graph(mha, inputs));
      HS_ASSERT_OK_AND_ASSIGN(auto after, ir::run_graph(sha, inputs));
      std::string why;
      EXPECT_TRUE(hs::testing::bit_identical(before, after, &why)) << why;
    }
    for (int64_t l = 0; l < m.config.n_layers; ++l) {
      expect_head_params_are_rows(mha, sha, l, m.config.head_dim);
    }
  }
}

TEST(SplitQuantized, Stories260KIsBitExact) {
  HS_REQUIRE_SHARED();
  const testing::Stories* s = testing::stories();
  ASSERT_NE(s, nullptr);
  for (const char* scheme : {"16a8w", "16a4w-block32"}) check_split(s->model, scheme, 64);
}

// SeqMSE scales and GPTQ integers are chosen on the MHA graph; the split slices them per head
// like MinMax ones (bit-exact outputs, each head's params the original's rows), and a second
// run with another thread count gives the same weights.
TEST(SplitQuantized, SeqMseAndGptqWeightsSurviveTheSplit) {
  HS_REQUIRE_SHARED();
  const testing::Stories* s = testing::stories();
  ASSERT_NE(s, nullptr);
  quant::WeightSearchOptions search{.seq_mse = 100, .gptq = true};
  check_split(s->model, "16a4w-block32", 64, search);

  quant::QuantConfig config;
  config.scheme = quant::parse_scheme("16a4w").value();
  PtqOptions o = testing::ptq_options(config, {32, 1}, 64);
  const auto samples = testing::random_samples(s->model.config.vocab_size, 1, 24, 17);
  auto minmax = quantize_model(s->model, samples, o);
  o.search = quant::WeightSearchOptions{.seq_mse = 100, .threads = 1, .progress = false};
  auto one = quantize_model(s->model, samples, o);
  o.search.threads = 2;
  auto two = quantize_model(s->model, samples, o);
  ASSERT_TRUE(minmax.ok() && one.ok() && two.ok());
  const std::string w = "layers.0.attn.q.weight";
  const auto& g = one->graphs[0];
  const ir::TensorType& t1 = g.type(*g.find_value(w));
  EXPECT_EQ(t1.quant.scales, two->graphs[0].type(*two->graphs[0].find_value(w)).quant.scales);
  EXPECT_NE(t1.quant.scales,
            minmax->graphs[0].type(*minmax->graphs[0].find_value(w)).quant.scales);
  // Prefill and decode graphs view one quantized buffer.
  EXPECT_EQ(g.value(*g.find_value(w)).data->buffer,
            one->graphs[1].value(*one->graphs[1].find_value(w)).data->buffer);
}

TEST(SplitQuantized, SmolLM2ShapeIsBitExact) {
  const frontend::LlamaModel m = testing::smollm2_shaped(23);
  for (const char* scheme : {"16a8w", "16a4w-block32"}) check_split(m, scheme, 48);
}

}  // namespace
}  // namespace hs::ptq
