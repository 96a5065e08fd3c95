// `headsplit eval` in process: the JSON report on stories260K (short context, one story each
// way), the text table, and clear errors for bad rules, schemes and empty calibration input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headsplit/cli/cli.h"
#include "headsplit/support/file.h"
#include "testing/cli_run.h"
#include "testing/testing.h"

namespace hs::cli {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

std::vector<std::string> eval_args(std::vector<std::string> more) {
  std::vector<std::string> a = {"eval",
                                "-m",
                                testing::shared_file("models/stories260K/stories260K.bin"),
                                "-t",
                                testing::shared_file("models/stories260K/tok512.bin"),
                                "--ctx-len",
                                "48",
                                "--ar-len",
                                "16",
                                "--calib-lines",
                                "0-0",
                                "--eval-lines",
                                "4-4"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

TEST(CliEval, JsonReportHasEveryModel) {
  HS_REQUIRE_SHARED();
  CliRun r = run_cli(eval_args({"--recipe", "stories", "--json"}));
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["quantization"], "16a4w, output=16a8w, 8-bit KV (recipe stories)");
  EXPECT_EQ(j["window"], 32);  // C - N
  ASSERT_EQ(j["models"].size(), 4u);
  const char* names[] = {"float", "quant MHA", "quant MHA+split", "quant SHA-from-source"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(j["models"][i]["name"], names[i]);
    EXPECT_GT(j["models"][i]["perplexity"].get<double>(), 1.0);
    EXPECT_GT(j["models"][i]["scored_tokens"].get<int64_t>(), 100);
  }
  EXPECT_TRUE(j["models"][0]["sqnr_db"].is_null()) << "the float model is its own reference";
  EXPECT_EQ(j["models"][0]["top1_agreement"], 1.0);
  EXPECT_GT(j["calibration"]["tokens"].get<int64_t>(), 100);
  EXPECT_NE(j["calibration"]["source"].get<std::string>().find("lines 0-0 of"), std::string::npos);
  EXPECT_NE(j["evaluation"]["source"].get<std::string>().find("lines 4-4 of"), std::string::npos);
}

TEST(CliEval, TableStatesTheProtocol) {
  HS_REQUIRE_SHARED();
  CliRun r = run_cli(eval_args({"--quant", "16a8w", "--rule", "layers.{0-1}.ffn.w2=16a8w",
                                "--no-sha", "-p", "Once upon a time"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("quantization: 16a8w, layers.{0-1}.ffn.w2=16a8w, 16-bit KV"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("+ the prompt"), std::string::npos);
  EXPECT_NE(r.out.find("windows of W = C - N = 32 tokens"), std::string::npos);
  EXPECT_NE(r.out.find("quant MHA+split"), std::string::npos);
  EXPECT_EQ(r.out.find("SHA-from-source "), std::string::npos) << "--no-sha";
}

TEST(CliEval, ErrorsNameTheOffendingInput) {
  HS_REQUIRE_SHARED();
  CliRun rule = run_cli(eval_args({"--rule", "layers.{5-1}.ffn.w2=16a8w"}));
  EXPECT_EQ(rule.code, 1);
  EXPECT_NE(rule.err.find("rule 'layers.{5-1}.ffn.w2=16a8w'"), std::string::npos) << rule.err;
  CliRun nomatch = run_cli(eval_args({"--rule", "decoder.ffn=16a8w"}));
  EXPECT_EQ(nomatch.code, 1);
  EXPECT_NE(nomatch.err.find("rule 'decoder.ffn=16a8w' matches no projection"), std::string::npos)
      << nomatch.err;
  CliRun scheme = run_cli(eval_args({"--quant", "16a2w"}));
  EXPECT_EQ(scheme.code, 1);
  EXPECT_NE(scheme.err.find("unknown quantization scheme '16a2w'"), std::string::npos);
  const std::string blank = testing::temp_dir() + "/blank-calib.txt";
  ASSERT_TRUE(write_file_atomic(blank, std::string("\n\n")).ok());
  CliRun empty =
      run_cli({"eval", "-m", testing::shared_file("models/stories260K/stories260K.bin"), "-t",
               testing::shared_file("models/stories260K/tok512.bin"), "--calib", blank});
  EXPECT_EQ(empty.code, 1);
  EXPECT_NE(empty.err.find("empty calibration input"), std::string::npos) << empty.err;
  CliRun lines =
      run_cli({"eval", "-m", testing::shared_file("models/stories260K/stories260K.bin"), "-t",
               testing::shared_file("models/stories260K/tok512.bin"), "--eval-lines", "3-12"});
  EXPECT_EQ(lines.code, 1);
  EXPECT_NE(lines.err.find("--eval-lines '3-12'"), std::string::npos) << lines.err;
}

// Without -m/-t the shared stories260K checkpoint is used, and the report says so.
TEST(CliEval, DefaultsToTheSharedStoriesModel) {
  HS_REQUIRE_SHARED();
  CliRun r = run_cli({"eval", "--quant", "16a8w", "--kv-bits", "8", "--ctx-len", "48", "--ar-len",
                      "16", "--calib-lines", "0-0", "--eval-lines", "4-4", "--no-sha", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const std::string model = j["model"].get<std::string>();
  EXPECT_EQ(model.rfind("stories260K (the default", 0), 0u) << model;
  EXPECT_NE(model.find(testing::shared_file("models/stories260K/stories260K.bin")),
            std::string::npos)
      << model;
  EXPECT_NE(model.find("tok512.bin"), std::string::npos) << model;
  EXPECT_EQ(j["context"], 48);
  EXPECT_EQ(j["quantization"], "16a8w, 8-bit KV") << "--kv-bits 8 replaces the scheme's 16";
  ASSERT_EQ(j["models"].size(), 3u) << "--no-sha";
  EXPECT_NE(r.err.find("model: stories260K (the default"), std::string::npos) << r.err;
}

TEST(CliEval, KvBitsMustBe8Or16) {
  CliRun r = run_cli({"eval", "--quant", "16a8w", "--kv-bits", "12"});
  EXPECT_EQ(r.code, 2) << "a usage error";
  EXPECT_NE(r.err.find("--kv-bits"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("12"), std::string::npos) << r.err;
}

TEST(CliEval, HelpTeachesWithExamples) {
  CliRun r = run_cli({"eval", "--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* part :
       {"Examples:", "headsplit eval --quant 16a8w\n", "--recipe stories --quant 16a4w-block32",
        "--rule output=16a8w", "../shared/models/stories260K/stories260K.bin",
        "docs/quantization.md"}) {
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  }
}

}  // namespace
}  // namespace hs::cli
