// The family recipes of the reference's table (§11.3): scheme, block size, mixed-precision
// rules, KV width, R3 and masked softmax; and which recipe export picks for each named shape.
#include <gtest/gtest.h>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/quant/scheme.h"
#include "testing/testing.h"

namespace hs::quant {
namespace {

std::vector<std::string> rule_texts(const QuantConfig& c) {
  std::vector<std::string> out;
  for (const Rule& r : c.rules) out.push_back(r.text);
  return out;
}

TEST(FamilyRecipes, MatchTheReferenceTable) {
  struct Row {
    std::string name, scheme;
    int kv_bits;
    std::vector<std::string> rules;
    bool r3, masked_softmax;
  };
  const Row rows[] = {
      {"llama3.2-3b",
       "16a4w-block32",
       8,
       {"output=16a8w", "layers.{21-27}.ffn.w2=16a8w"},
       false,
       false},
      {"qwen2.5-0.5b", "16a4w-block16", 16, {}, true, true},
      {"qwen2.5-1.5b", "16a4w-block16", 16, {"output=16a8w"}, true, true},
      {"qwen3-0.6b", "16a4w-block32", 16, {"layers.*.ffn.w2=16a8w"}, false, true},
      {"qwen3-1.7b", "16a4w-block16", 8, {"output=16a8w"}, true, true},
      {"smollm3-3b",
       "16a4w-block32",
       8,
       {"layers.*.attn.q=16a8w", "layers.*.attn.k=16a8w", "layers.*.attn.v=16a8w", "output=16a8w"},
       false,
       true},
      {"granite", "16a4w-block64", 8, {"layers.*.attn.v=16a8w"}, false, true},
      {"gemma-2b", "16a4w-block64", 8, {"layers.*.attn.v=16a8w", "output=16a8w"}, false, true},
      {"gemma3-1b", "16a4w-block64", 8, {"layers.*.attn.v=16a8w"}, false, true},
      {"phi-4-mini", "16a4w-block16", 8, {"layers.*.attn.v=8a4w", "output=16a8w"}, false, false},
      {"glm-edge-1.5b", "16a4w-block32", 8, {"output=16a8w"}, false, false},
      {"codegen2-1b", "16a8w", 16, {}, false, true},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    HS_ASSERT_OK_AND_ASSIGN(QuantConfig c, recipe_config(row.name));
    EXPECT_EQ(c.recipe, row.name);
    EXPECT_EQ(scheme_name(c.scheme), row.scheme);
    EXPECT_EQ(c.kv_bits, row.kv_bits);
    EXPECT_EQ(rule_texts(c), row.rules);
    EXPECT_EQ(c.r3, row.r3);
    EXPECT_EQ(c.masked_softmax, row.masked_softmax);
    HS_EXPECT_OK(validate_config(c));
    // R3 needs a power-of-two head size: every shape that uses the recipe has one.
    EXPECT_NE(std::find(recipe_names().begin(), recipe_names().end(), row.name),
              recipe_names().end());
  }
  // The w2 rule of llama3.2-3b covers its last 7 of 28 layers only.
  HS_ASSERT_OK_AND_ASSIGN(QuantConfig l, recipe_config("llama3.2-3b"));
  EXPECT_EQ(scheme_name(l.scheme_for("layers.21.ffn.w2")), "16a8w");
  EXPECT_EQ(scheme_name(l.scheme_for("layers.20.ffn.w2")), "16a4w-block32");
  EXPECT_EQ(scheme_name(l.scheme_for("layers.27.attn.q")), "16a4w-block32");
}

TEST(FamilyRecipes, NamedShapesHavePowerOfTwoHeadsForR3) {
  for (const char* shape : {"qwen2.5-0.5b", "qwen2.5-1.5b", "qwen3-1.7b"}) {
    HS_ASSERT_OK_AND_ASSIGN(frontend::LlamaConfig c, frontend::named_config(shape));
    EXPECT_EQ(c.head_dim & (c.head_dim - 1), 0) << shape;
    HS_EXPECT_OK(c.validate(shape));
  }
}

TEST(FamilyRecipes, GemmaNamedShapes) {
  // §12.1: gemma-2b 18 layers, D 2048, H 8, Hkv 1, Dh 256, F 16384, V 256000, emb scale 45.25;
  // gemma3-1b 26 layers, D 1152, H 4, Hkv 1, Dh 256, F 6912, V 262144, sliding window
  // (512, every 6th layer global).
  HS_ASSERT_OK_AND_ASSIGN(frontend::LlamaConfig g, frontend::named_config("gemma-2b"));
  HS_EXPECT_OK(g.validate("gemma-2b"));
  EXPECT_EQ(g.n_kv_heads, 1);
  EXPECT_EQ(g.head_dim, 256);
  EXPECT_NEAR(g.embedding_multiplier, 45.25, 0.01);
  EXPECT_EQ(g.ffn_act, frontend::FfnActivation::kGeluTanh);
  HS_ASSERT_OK_AND_ASSIGN(frontend::LlamaConfig g3, frontend::named_config("gemma3-1b"));
  HS_EXPECT_OK(g3.validate("gemma3-1b"));
  EXPECT_EQ(g3.sliding_window, 512);
  EXPECT_EQ(g3.sliding_window_layers.size(), 22u);  // 26 layers, globals 5, 11, 17, 23
  EXPECT_FALSE(g3.is_sliding(5));
  EXPECT_TRUE(g3.is_sliding(4));
  EXPECT_TRUE(g3.qk_norm && g3.post_norms);
}

}  // namespace
}  // namespace hs::quant
