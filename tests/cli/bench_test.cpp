// `headsplit bench` in process on a stories260K artifact (C = 512, prefill AR-32), tiny shapes:
// JSON rows with llama-bench's fields (avg_ts the mean of samples_ts, stddev_ts their sample
// standard deviation, each sample tokens / seconds), the Markdown and CSV tables, the context
// bound, and --compare-gguf against llama.cpp's llama-bench when ../shared has it.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "headsplit/support/file.h"
#include "testing/cli_run.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::cli {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

std::string artifact() {
  const testing::Exported& e = testing::exported("16a8w", /*split=*/true);
  return e.path;
}

void check_row(const nlohmann::json& row, int64_t n_prompt, int64_t n_gen, size_t reps) {
  EXPECT_EQ(row["n_prompt"], n_prompt);
  EXPECT_EQ(row["n_gen"], n_gen);
  EXPECT_EQ(row["n_threads"], 1);
  const std::vector<double> ts = row["samples_ts"], ns = row["samples_ns"];
  ASSERT_EQ(ts.size(), reps);
  ASSERT_EQ(ns.size(), reps);
  double mean = 0;
  for (size_t i = 0; i < reps; ++i) {
    EXPECT_GT(ts[i], 0.0);
    EXPECT_NEAR(ts[i], static_cast<double>(n_prompt + n_gen) / (ns[i] * 1e-9), 1e-6 * ts[i]);
    mean += ts[i] / static_cast<double>(reps);
  }
  double s2 = 0;
  for (double t : ts) s2 += (t - mean) * (t - mean);
  EXPECT_NEAR(row["avg_ts"].get<double>(), mean, 1e-9 * mean);
  EXPECT_NEAR(row["stddev_ts"].get<double>(), std::sqrt(s2 / static_cast<double>(reps - 1)),
              1e-9 * mean);
  EXPECT_EQ(row["n_ubatch"], 32) << "the artifact's prefill AR length";
  EXPECT_EQ(row["n_ctx"], 512);
  EXPECT_GT(row["model_n_params"].get<int64_t>(), 250000);
  EXPECT_GT(row["model_size"].get<int64_t>(), 0);
}

TEST(CliBench, JsonRowsHaveLlamaBenchFields) {
  HS_REQUIRE_SHARED();
  const std::string art = artifact();
  ASSERT_FALSE(art.empty());
  CliRun r =
      run_cli({"bench", "-m", art, "-p", "16,8", "-n", "4", "-t", "1", "-r", "3", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 3u);
  check_row(rows[0], 16, 0, 3);
  check_row(rows[1], 8, 0, 3);
  check_row(rows[2], 0, 4, 3);
  EXPECT_NE(r.err.find("prompts in AR-32 chunks (the artifact's prefill graph), decode on AR-1"),
            std::string::npos)
      << r.err;
}

TEST(CliBench, MarkdownAndCsv) {
  HS_REQUIRE_SHARED();
  const std::string art = artifact();
  CliRun md = run_cli({"bench", "-m", art, "-p", "8", "-n", "4", "-t", "1", "-r", "2"});
  ASSERT_EQ(md.code, 0) << md.err;
  std::istringstream lines(md.out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 4u) << md.out;
  EXPECT_EQ(rows[0].rfind("| model ", 0), 0u);
  EXPECT_NE(rows[0].find(" t/s |"), std::string::npos) << rows[0];
  EXPECT_NE(rows[2].find("| stories260K 16a8w "), std::string::npos) << rows[2];
  EXPECT_NE(rows[2].find("pp8 |"), std::string::npos);
  EXPECT_NE(rows[3].find("tg4 |"), std::string::npos);
  EXPECT_NE(rows[3].find(" ± "), std::string::npos);
  CliRun csv =
      run_cli({"bench", "-m", art, "-p", "8", "-n", "0", "-t", "1", "-r", "2", "-o", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_EQ(csv.out.rfind("model_filename,model_type,model_size,model_n_params,n_ubatch,n_ctx,"
                          "n_threads,n_prompt,n_gen,avg_ns,stddev_ns,avg_ts,stddev_ts\n",
                          0),
            0u)
      << csv.out;
  EXPECT_NE(csv.out.find(",1,8,0,"), std::string::npos) << csv.out;
}

TEST(CliBench, TestsMustFitTheContext) {
  HS_REQUIRE_SHARED();
  CliRun r = run_cli({"bench", "-m", artifact(), "-p", "500", "-n", "0", "-t", "1", "-r", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("pp500 needs 500 tokens in the context, but"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("holds at most 480 (context 512 minus the prefill AR length 32)"),
            std::string::npos)
      << r.err;
}

TEST(CliBench, ComparesWithLlamaBench) {
  HS_REQUIRE_SHARED();
  const std::string llama = testing::shared_file("anchors/llama.cpp/bin/llama-bench");
  if (!file_exists(llama)) GTEST_SKIP() << "no llama-bench in the shared folder: " << llama;
  const std::string gguf = testing::shared_file("models/stories260K/stories260K.gguf");
  CliRun r = run_cli({"bench", "-m", artifact(), "-p", "8", "-n", "4", "-t", "1", "-r", "2",
                      "--compare-gguf", gguf});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| threads |          test |          headsplit t/s |"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ratio: headsplit t/s / llama.cpp t/s"), std::string::npos);
  CliRun j = run_cli({"bench", "-m", artifact(), "-p", "8", "-n", "0", "-t", "1", "-r", "1", "-o",
                      "json", "--compare-gguf", gguf});
  ASSERT_EQ(j.code, 0) << j.err;
  const nlohmann::json both = nlohmann::json::parse(j.out);
  ASSERT_EQ(both["llama.cpp"].size(), 1u);
  EXPECT_EQ(both["llama.cpp"][0]["n_prompt"], both["headsplit"][0]["n_prompt"]);
  EXPECT_EQ(both["llama.cpp"][0]["n_threads"], 1);
  CliRun missing = run_cli({"bench", "-m", artifact(), "-p", "8", "-n", "0", "-r", "1",
                            "--compare-gguf", gguf, "--llama-bench", "/nonexistent/llama-bench"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("llama-bench not found at /nonexistent/llama-bench"),
            std::string::npos)
      << missing.err;
}

}  // namespace
}  // namespace hs::cli
