// `headsplit generate --lookahead` (the interpreter, float stories260K): the same text as plain
// decoding, the extra lookahead graph when the prefill graph is too small, the stats line, and
// the option's errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testing/cli_run.h"
#include "testing/testing.h"

namespace hs::cli {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

std::vector<std::string> stories(std::vector<std::string> more, const std::string& ctx = "96") {
  std::vector<std::string> args = {
      "generate", "-m", hs::testing::shared_file("models/stories260K/stories260K.bin"), "-t",
      hs::testing::shared_file("models/stories260K/tok512.bin"), "-p", "Once upon a time", "-n",
      "40", "--ctx-len", ctx, "--ar-len", "4"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(CliGenerateLookahead, SameTextAsPlainDecoding) {
  HS_REQUIRE_SHARED();
  const CliRun plain = run_cli(stories({}));
  ASSERT_EQ(plain.code, 0) << plain.err;
  // 3,4,4 needs 16 rows: the AR-4 prefill graph is too small, an AR-16 graph is added.
  const CliRun ahead = run_cli(stories({"--lookahead", "3,4,4"}));
  ASSERT_EQ(ahead.code, 0) << ahead.err;
  EXPECT_EQ(ahead.out, plain.out);
  EXPECT_NE(ahead.err.find("graphs AR-4 + AR-1 + AR-16 (lookahead)"), std::string::npos)
      << ahead.err;
  EXPECT_NE(ahead.err.find("lookahead:   "), std::string::npos);
  EXPECT_NE(ahead.err.find("at ar length 16 (N=3 W=4 G=4)"), std::string::npos) << ahead.err;
  EXPECT_EQ(plain.err.find("lookahead:"), std::string::npos);
  // 2,1,1 needs 2 rows: the AR-4 prefill graph serves.
  const CliRun small = run_cli(stories({"--lookahead", "2,1,1"}));
  ASSERT_EQ(small.code, 0) << small.err;
  EXPECT_EQ(small.out, plain.out);
  EXPECT_NE(small.err.find("graphs AR-4 + AR-1, MHA"), std::string::npos) << small.err;
  EXPECT_NE(small.err.find("at ar length 4 (N=2 W=1 G=1)"), std::string::npos) << small.err;
}

TEST(CliGenerateLookahead, Errors) {
  HS_REQUIRE_SHARED();
  const CliRun bad = run_cli(stories({"--lookahead", "1,4,4"}));
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err,
            "headsplit: error: --lookahead: lookahead: the n-gram size N must be >= 2, got 1\n");
  // (8 + 8) * 4 = 64 rows: an AR-64 graph does not fit a context of 64.
  const CliRun big = run_cli(stories({"--lookahead", "5,8,8"}, "64"));
  EXPECT_EQ(big.code, 1);
  EXPECT_EQ(big.err,
            "headsplit: error: --lookahead 5,8,8 needs an ar length of 64, not smaller than the "
            "context length 64\n");
}

}  // namespace
}  // namespace hs::cli
