// export picks the recipe from the checkpoint's family and size: every named shape of a family
// with a recipe gets the reference's recipe for that model.
#include <gtest/gtest.h>

#include "headsplit/backend/export.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

TEST(DefaultRecipe, ByFamilyAndSize) {
  const std::pair<const char*, const char*> expected[] = {
      {"stories260k", "stories"},       {"smollm2-135m", "smollm2"},
      {"llama3.2-1b", "llama3"},        {"llama3.2-3b", "llama3.2-3b"},
      {"qwen2.5-0.5b", "qwen2.5-0.5b"}, {"qwen2.5-1.5b", "qwen2.5-1.5b"},
      {"qwen3-0.6b", "qwen3-0.6b"},     {"qwen3-1.7b", "qwen3-1.7b"},
      {"smollm3-3b", "smollm3-3b"},     {"granite-3.3-2b", "granite"},
        {"gemma-2b", "gemma-2b"},         {"gemma3-1b", "gemma3-1b"},
        {"phi-4-mini", "phi-4-mini"},     {"glm-edge-1.5b", "glm-edge-1.5b"},
        {"codegen2-1b", "codegen2-1b"}};
  ASSERT_EQ(std::size(expected), frontend::named_config_names().size());
  for (const auto& [shape, recipe] : expected) {
    frontend::LlamaModel m;
    HS_ASSERT_OK_AND_ASSIGN(m.config, frontend::named_config(shape));
    EXPECT_EQ(default_recipe(m), recipe) << shape;
  }
  // A checkpoint directory name says nothing: the family and size decide.
  frontend::LlamaModel m;
  HS_ASSERT_OK_AND_ASSIGN(m.config, frontend::named_config("qwen3-1.7b"));
  m.config.name = "my-finetune";
  EXPECT_EQ(default_recipe(m), "qwen3-1.7b");
  m.config.family = "llama";
  m.config.vocab_size = 32000;
  EXPECT_EQ(default_recipe(m), "");
}

}  // namespace
}  // namespace hs::backend
