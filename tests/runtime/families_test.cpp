// End to end per family (Qwen2.5, Qwen3, SmolLM3, Granite, Llama-3.2, Gemma, Gemma3 features on
// small random models with a byte tokenizer): `export` picks the family's recipe (scheme, rules, KV width, R3
// and masked softmax where the family uses them), and greedy decoding on the artifact (fast
// kernels) gives the same tokens as the reference interpreter running the same preprocessed
// (quantized, split) graphs; the float export likewise.
#include <gtest/gtest.h>

#include <fstream>

#include "headsplit/backend/export.h"
#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "step_recorder.h"
#include "testing/family_configs.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

constexpr int64_t kNewTokens = 16;

std::string calibration_text() {
  const std::string path = hs::testing::temp_dir() + "/families-calib.txt";
  std::ofstream out(path);
  out << "Once upon a time there was a little robot.\n"
      << "def f(x): return x * 2  # 12345 tokens\n"
      << "The quick brown fox jumps over the lazy dog.\n";
  return path;
}

struct Case {
  std::string family;
  std::string scheme;  // "" = the family's recipe, "none" = float
};

class FamilyExport : public ::testing::TestWithParam<Case> {};

TEST_P(FamilyExport, RuntimeTokensEqualTheInterpreters) {
  const Case& c = GetParam();
  const frontend::LlamaModel model = hs::testing::family_model(c.family, 41);
  backend::ExportOptions options;
  options.prefill_ar_len = 8;
  options.context_len = 64;
  options.quant.scheme = c.scheme;
  options.quant.calibration_files = {calibration_text()};
  options.quant.progress = false;
  if (c.scheme.empty()) {
    HS_ASSERT_OK_AND_ASSIGN(quant::QuantConfig config, backend::quant_config(model, options.quant));
    EXPECT_EQ(config.recipe, backend::default_recipe(model));
    EXPECT_FALSE(config.recipe.empty()) << c.family;
  }
  HS_ASSERT_OK_AND_ASSIGN(backend::PreparedExport prepared,
                          backend::prepare_export(model, options));
  const std::string path = fmt::format("{}/{}-{}.hsa", hs::testing::temp_dir(), c.family,
                                       c.scheme.empty() ? "recipe" : c.scheme);
  HS_ASSERT_OK(backend::write_export(prepared, path));
  HS_ASSERT_OK_AND_ASSIGN(artifact::LoadedArtifact loaded, artifact::load_artifact(path));
  auto artifact = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
  EXPECT_TRUE(artifact->program().metadata.split_applied);
  if (model.config.sliding_window > 0) {  // the runtime reads the window from the metadata
    EXPECT_EQ(artifact->program().metadata.extra.at("sliding_window"),
              std::to_string(model.config.sliding_window));
  }

  HS_ASSERT_OK_AND_ASSIGN(auto tok, tokenizer::Tokenizer::create(*model.tokenizer));
  std::vector<ir::Graph> graphs;
  for (const backend::PreparedGraph& g : prepared.graphs) graphs.push_back(g.graph);
  irexec::GraphStepModelOptions step_options;
  step_options.sliding_window = model.config.sliding_window;  // Gemma3's window mask
  HS_ASSERT_OK_AND_ASSIGN(auto reference,
                          irexec::GraphStepModel::create(std::move(graphs), step_options));
  HS_ASSERT_OK_AND_ASSIGN(auto runtime, ArtifactStepModel::create(artifact, {.threads = 1}));
  for (const char* prompt : {"Once upon a time", "x = 42;"}) {
    HS_ASSERT_OK_AND_ASSIGN(
        Recorded want, record_greedy(*reference, *tok, prompt, {.max_new_tokens = kNewTokens}));
    HS_ASSERT_OK_AND_ASSIGN(Recorded got,
                            record_greedy(*runtime, *tok, prompt, {.max_new_tokens = kNewTokens}));
    ASSERT_EQ(want.tokens.size(), static_cast<size_t>(kNewTokens));
    EXPECT_EQ(got.tokens, want.tokens) << prompt;
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const std::string& f : hs::testing::family_names()) {
    out.push_back({f, ""});
    out.push_back({f, "none"});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyExport, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                           std::string n = info.param.family + "_" +
                                           (info.param.scheme.empty() ? "recipe" : "float");
                           std::erase(n, '.');
                           return n;
                         });

}  // namespace
}  // namespace hs::runtime::testing
