// The MHA -> SHA split on every family's features (Qwen2.5 biases, Qwen3 per-head q/k norm and
// Dh != D/H, SmolLM3 no-RoPE layers, Granite multipliers, Llama-3.2 scaled RoPE, untied
// heads, Gemma's GELU and Hkv = 1, Gemma3's post norms, sliding-window layers with their own
// mask and RoPE rows, and logit soft-capping, Phi-4 partial rotary with longrope, GLM partial
// rotary with biases, CodeGen's LayerNorm, parallel block, biased GELU FFN and LM head bias):
// on random weights in small family-like shapes, float and quantized (16a8w, 16a4w-block32),
// T = 1 and T = 32, the split graph's outputs are bit-identical to the MHA graph's; every layer
// has H + 2*Hkv + 1 attention projections after the split; the per-head q/k norm reads the
// shared [Dh] weight; bias slices are the weight's rows; the SHA-from-source graph computes the
// same logits. Phi-4, GLM and CodeGen partial rotary: each head's chain slices only the rotary
// part. The same on each family's published attention shape (SplitPublishedShapes: D, H, Hkv,
// Dh as published, two layers; quantized with 16a4w-block32, and 16a8w too with
// HS_ALL_PUBLISHED_SHAPES=1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "headsplit/frontend/builder.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/passes/passes.h"
#include "ptq/ptq_testing.h"
#include "testing/family_configs.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

using frontend::LlamaConfig;
using frontend::LlamaModel;

ir::Graph split(const ir::Graph& mha) {
  ir::Graph sha = mha;
  passes::PassContext ctx;
  ctx.verify_each = true;
  passes::PreprocessOptions po;
  po.split_options.require_all = true;
  auto runs = passes::run_preprocess(sha, po, ctx);
  EXPECT_TRUE(runs.ok()) << runs.error().message();
  return sha;
}

// Per layer: attention projections (conv2d or linear nodes named layers.l.attn.*), per-head q/k
// norms, and the [Dh] weights those norms read.
struct LayerCounts {
  int64_t projections = 0;
  int64_t qk_norms = 0;
};
LayerCounts count_layer(const ir::Graph& g, int64_t layer, int64_t head_dim) {
  LayerCounts out;
  const std::string prefix = fmt::format("layers.{}.attn.", layer);
  for (ir::NodeId id = 0; id < g.num_nodes(); ++id) {
    const ir::Node& n = g.node(id);
    if (n.erased) continue;
    const std::string& name = g.value(n.outputs[0]).name;
    if (!name.starts_with(prefix)) continue;
    if (n.op == ir::OpKind::kConv2d || n.op == ir::OpKind::kLinear) ++out.projections;
    if (n.op == ir::OpKind::kRmsNorm) {
      ++out.qk_norms;
      EXPECT_EQ(g.type(n.inputs[1]).shape, ir::Shape{head_dim}) << name;
      EXPECT_EQ(g.type(n.inputs[0]).shape[1], 1) << name << " is not per head";
    }
  }
  return out;
}

void expect_split_shape(const LlamaConfig& c, const ir::Graph& sha) {
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerCounts counts = count_layer(sha, l, c.head_dim);
    EXPECT_EQ(counts.projections, c.n_heads + 2 * c.n_kv_heads + 1) << "layer " << l;
    EXPECT_EQ(counts.qk_norms, c.qk_norm ? c.n_heads + c.n_kv_heads : 0) << "layer " << l;
  }
}

void expect_same_outputs(const ir::Graph& a, const ir::Graph& b, uint64_t seed) {
  auto inputs = hs::testing::random_step_inputs(a, seed);
  HS_ASSERT_OK_AND_ASSIGN(auto before, ir::run_graph(a, inputs));
  HS_ASSERT_OK_AND_ASSIGN(auto after, ir::run_graph(b, inputs));
  std::string why;
  EXPECT_TRUE(hs::testing::bit_identical(before, after, &why)) << why;
}

// `m` quantized with `scheme` (8-bit KV), AR-32 and AR-1 graphs at context 48, calibrated on
// `windows` random windows of 16 tokens.
Result<QuantizedModel> quantize_with(const LlamaModel& m, const char* scheme, int64_t windows,
                                     uint64_t seed) {
  quant::QuantConfig config;
  HS_ASSIGN_OR_RETURN(config.scheme, quant::parse_scheme(scheme));
  config.kv_bits = 8;
  const PtqOptions o = testing::ptq_options(config, {32, 1}, 48);
  return quantize_model(m, testing::random_samples(m.config.vocab_size, windows, 16, seed), o);
}

class SplitFamilies : public ::testing::TestWithParam<std::string> {};

TEST_P(SplitFamilies, FloatSplitIsBitExact) {
  const LlamaConfig c = hs::testing::family_config(GetParam());
  const LlamaModel m = frontend::make_random_llama(c, 31);
  for (int64_t t : {1, 32}) {
    for (auto projection : {frontend::ProjectionKind::kConv, frontend::ProjectionKind::kLinear}) {
      SCOPED_TRACE(fmt::format("T={} {}", t,
                               projection == frontend::ProjectionKind::kConv ? "conv" : "linear"));
      frontend::BuildOptions o{.ar_len = t, .context_len = 48, .projection = projection};
      HS_ASSERT_OK_AND_ASSIGN(ir::Graph mha, frontend::build_llama(m, o));
      const ir::Graph sha = split(mha);
      expect_split_shape(c, sha);
      expect_same_outputs(mha, sha, 7 + static_cast<uint64_t>(t));
      // SHA from source: the same per-head graph built directly (same op order per head).
      o.form = frontend::AttentionForm::kShaFromSource;
      HS_ASSERT_OK_AND_ASSIGN(ir::Graph source, frontend::build_llama(m, o));
      expect_split_shape(c, source);
      expect_same_outputs(mha, source, 9 + static_cast<uint64_t>(t));
    }
  }
}

TEST_P(SplitFamilies, QuantizedSplitIsBitExact) {
  const LlamaConfig c = hs::testing::family_config(GetParam());
  const LlamaModel m = frontend::make_random_llama(c, 37);
  for (const char* scheme : {"16a8w", "16a4w-block32"}) {
    HS_ASSERT_OK_AND_ASSIGN(QuantizedModel q, quantize_with(m, scheme, 2, 19));
    for (const ir::Graph& mha : q.graphs) {
      const int64_t t = mha.type(*mha.find_value("tokens")).shape[1];
      SCOPED_TRACE(fmt::format("{} T={}", scheme, t));
      const ir::Graph sha = split(mha);
      expect_split_shape(c, sha);
      expect_same_outputs(mha, sha, 5 + static_cast<uint64_t>(t));
      if (!c.attention_bias) continue;
      // Bias slices are the original bias's rows, head by head.
      for (const char* p : {"q", "k", "v"}) {
        const std::string name = fmt::format("layers.0.attn.{}.bias", p);
        auto orig = mha.find_value(name);
        ASSERT_TRUE(orig.has_value()) << name;
        HS_ASSERT_OK_AND_ASSIGN(ir::Tensor full, ir::read_constant(mha, *orig));
        int64_t heads = 0;
        for (;; ++heads) {
          auto id = sha.find_value(fmt::format("{}.h{}", name, heads));
          if (!id) break;
          HS_ASSERT_OK_AND_ASSIGN(ir::Tensor part, ir::read_constant(sha, *id));
          ASSERT_EQ(part.f.size(), static_cast<size_t>(c.head_dim));
          for (int64_t i = 0; i < c.head_dim; ++i) {
            ASSERT_EQ(part.f[static_cast<size_t>(i)],
                      full.f[static_cast<size_t>(heads * c.head_dim + i)]);
          }
        }
        EXPECT_EQ(heads * c.head_dim, mha.type(*orig).shape[0]) << name;
      }
    }
  }
}

// Partial rotary (Phi-4 0.75, GLM 0.5, CodeGen 0.5): after the split, each head's q and k chain
// slices [0, R/2) and [R/2, R) for the rotation and passes [R, Dh) through, concatenating the
// three back to Dh; the cos/sin rows the rotation multiplies are [1,1,T,R/2]. The split is
// bit-exact (FloatSplitIsBitExact / QuantizedSplitIsBitExact above run these families too).
TEST(SplitPartialRotary, PerHeadChainSlicesOnlyTheRotaryPart) {
  for (const char* family : {"phi4", "glm", "codegen"}) {
    SCOPED_TRACE(family);
    const LlamaConfig c = hs::testing::family_config(family);
    const int64_t R = c.rope_dims(), Dh = c.head_dim, T = 32;
    ASSERT_LT(R, Dh);
    const LlamaModel m = frontend::make_random_llama(c, 43);
    HS_ASSERT_OK_AND_ASSIGN(ir::Graph mha,
                            frontend::build_llama(m, {.ar_len = T, .context_len = 48}));
    const ir::Graph sha = split(mha);
    expect_same_outputs(mha, sha, 3);
    for (int64_t l = 0; l < c.n_layers; ++l) {
      for (auto [which, heads] : {std::pair{"q", c.n_heads}, std::pair{"k", c.n_kv_heads}}) {
        for (int64_t h = 0; h < heads; ++h) {
          const std::string p = fmt::format("layers.{}.attn.{}", l, which);
          const std::tuple<const char*, int64_t, int64_t> parts[] = {
              {"x1", 0, R / 2}, {"x2", R / 2, R}, {"pass", R, Dh}};
          for (const auto& [part, start, end] : parts) {
            const std::string name = fmt::format("{}.{}.h{}", p, part, h);
            auto id = sha.find_value(name);
            ASSERT_TRUE(id.has_value()) << name;
            const ir::Node* slice = sha.producer(*id);
            ASSERT_NE(slice, nullptr);
            ASSERT_EQ(slice->op, ir::OpKind::kSlice) << name;
            EXPECT_EQ(slice->attrs.get_int("axis"), 3) << name;
            EXPECT_EQ(slice->attrs.get_int("start"), start) << name;
            EXPECT_EQ(slice->attrs.get_int("end"), end) << name;
            EXPECT_EQ(sha.type(slice->inputs[0]).shape, (ir::Shape{1, 1, T, Dh})) << name;
          }
          auto rope = sha.find_value(fmt::format("{}.rope.h{}", p, h));
          ASSERT_TRUE(rope.has_value());
          EXPECT_EQ(sha.producer(*rope)->inputs.size(), 3u);
          EXPECT_EQ(sha.type(*rope).shape, (ir::Shape{1, 1, T, Dh}));
        }
      }
    }
    auto cos = sha.find_value("rope.cos");
    ASSERT_TRUE(cos.has_value());
    EXPECT_EQ(sha.type(*cos).shape, (ir::Shape{1, 1, T, R / 2}));
  }
}

INSTANTIATE_TEST_SUITE_P(Families, SplitFamilies, ::testing::ValuesIn(hs::testing::family_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::erase(n, '.');
                           return n;
                         });

// Each family's published attention shape: the float split (and SHA from source) and the split
// of the quantized graphs are bit-exact at T = 1 and T = 32.
class SplitPublishedShapes : public ::testing::TestWithParam<std::string> {};

TEST_P(SplitPublishedShapes, FloatSplitIsBitExact) {
  const LlamaConfig c = hs::testing::published_attention(GetParam());
  const LlamaModel m = frontend::make_random_llama(c, 41);
  for (int64_t t : {1, 32}) {
    SCOPED_TRACE(fmt::format("T={}", t));
    frontend::BuildOptions o{.ar_len = t, .context_len = 48};
    HS_ASSERT_OK_AND_ASSIGN(ir::Graph mha, frontend::build_llama(m, o));
    const ir::Graph sha = split(mha);
    expect_split_shape(c, sha);
    expect_same_outputs(mha, sha, 13 + static_cast<uint64_t>(t));
    o.form = frontend::AttentionForm::kShaFromSource;
    HS_ASSERT_OK_AND_ASSIGN(ir::Graph source, frontend::build_llama(m, o));
    expect_same_outputs(mha, source, 15 + static_cast<uint64_t>(t));
  }
}

// 16a4w-block32 (per-block parameters sliced per head) for every shape; 16a8w too with
// HS_ALL_PUBLISHED_SHAPES=1 (CI time: per-channel 16a8w is split on every family's small shape
// by SplitFamilies.QuantizedSplitIsBitExact).
TEST_P(SplitPublishedShapes, QuantizedSplitIsBitExact) {
  const LlamaConfig c = hs::testing::published_attention(GetParam());
  const LlamaModel m = frontend::make_random_llama(c, 43);
  const char* all = std::getenv("HS_ALL_PUBLISHED_SHAPES");
  std::vector<const char*> schemes = {"16a4w-block32"};
  if (all != nullptr && std::string_view(all) == "1") schemes.insert(schemes.begin(), "16a8w");
  for (const char* scheme : schemes) {
    HS_ASSERT_OK_AND_ASSIGN(QuantizedModel q, quantize_with(m, scheme, 1, 23));
    for (const ir::Graph& mha : q.graphs) {
      const int64_t t = mha.type(*mha.find_value("tokens")).shape[1];
      SCOPED_TRACE(fmt::format("{} T={}", scheme, t));
      const ir::Graph sha = split(mha);
      expect_split_shape(c, sha);
      expect_same_outputs(mha, sha, 17 + static_cast<uint64_t>(t));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(PublishedShapes, SplitPublishedShapes,
                         ::testing::ValuesIn(hs::testing::published_shape_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '.', '_');
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace hs::ptq
