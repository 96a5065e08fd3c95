// `headsplit generate` in process: exit codes (0 ok, 1 error, 2 usage), the streamed text of
// stories260K, the stats block, the clamping note and the prompt-too-long error.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "headsplit/cli/cli.h"
#include "testing/cli_run.h"
#include "testing/testing.h"

namespace hs::cli {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

std::vector<std::string> stories_args() {
  return {"generate", "-m", testing::shared_file("models/stories260K/stories260K.bin"), "-t",
          testing::shared_file("models/stories260K/tok512.bin")};
}

std::vector<std::string> with(std::vector<std::string> base, std::vector<std::string> more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

TEST(CliGenerate, HelpAndUsageErrors) {
  CliRun help = run_cli({"generate", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--ar-len INT:POSITIVE=32"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("Example:"), std::string::npos);
  EXPECT_EQ(run_cli({}).code, 2);
  CliRun bad = run_cli({"generate", "-m", "x", "--attention", "gqa"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--attention: gqa not in {mha,sha}"), std::string::npos) << bad.err;
  EXPECT_EQ(run_cli({"generate"}).code, 2);  // -m is required
}

TEST(CliGenerate, ErrorsExitOne) {
  CliRun missing = run_cli({"generate", "-m", "/nonexistent/model.bin"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err.rfind("headsplit: error: /nonexistent/model.bin", 0), 0u) << missing.err;
  HS_REQUIRE_SHARED();
  CliRun layout = run_cli(with(stories_args(), {"--kv-layout", "per-head"}));
  EXPECT_EQ(layout.code, 1);
  EXPECT_EQ(layout.err,
            "headsplit: error: --kv-layout per-head needs --attention sha (the MHA form keeps one "
            "cache tensor per layer)\n");
  // C = 16, N = 8: the prompt must fit in 8 cache slots.
  CliRun long_prompt = run_cli(with(stories_args(), {"-p", "Once upon a time there was a big dog",
                                                     "--ctx-len", "16", "--ar-len", "8"}));
  EXPECT_EQ(long_prompt.code, 1);
  EXPECT_NE(long_prompt.err.find("(+256 requested new tokens) does not fit the context of 16: "
                                 "prefill with ar length 8 has 8 cache slots"),
            std::string::npos)
      << long_prompt.err;
}

TEST(CliGenerate, StreamsStoriesText) {
  HS_REQUIRE_SHARED();
  CliRun r =
      run_cli(with(stories_args(), {"-p", "Zoo", "-n", "20", "--ctx-len", "64", "--ar-len", "4"}));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string want = "Zoo was a little girl named Lily.";
  EXPECT_EQ(r.out.substr(0, want.size()), want) << r.out;
  EXPECT_NE(r.err.find("graphs AR-4 + AR-1, MHA, per-layer caches"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("prompt eval:"), std::string::npos);
  EXPECT_NE(r.err.find("time to first token:"), std::string::npos);
  EXPECT_NE(r.err.find("generated:       20 tokens (stop: max tokens)"), std::string::npos)
      << r.err;
}

TEST(CliGenerate, ClampsToTheContext) {
  HS_REQUIRE_SHARED();
  // From BOS (1 token) with C = 16 and AR-1 decode: n + m <= C, so 15 new tokens at most.
  CliRun r = run_cli(with(stories_args(), {"-n", "100", "--ctx-len", "16", "--ar-len", "1"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("generated:       15 tokens (stop: context full)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("note: 100 new tokens requested, clamped to 15"), std::string::npos);
}

}  // namespace
}  // namespace hs::cli
