// Hostile command lines (issue 16): sizes beyond their range or the model, seeds that would
// wrap, unknown pass names, and exports that would destroy their input or a device.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "headsplit/support/file.h"
#include "testing/cli_run.h"
#include "testing/testing.h"

namespace hs::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::run_cli;

std::string stories() { return testing::shared_file("models/stories260K/stories260K.bin"); }

// Class 6: values CLI11 would saturate or wrap are usage errors naming the limit.
TEST(HostileCli, IntegersThatWouldWrapAreRefused) {
  HS_REQUIRE_SHARED();
  auto n = run_cli({"generate", "-m", stories(), "-n", "9223372036854775808"});
  EXPECT_EQ(n.code, 2);
  EXPECT_THAT(n.err, HasSubstr("-n 9223372036854775808: out of range, the largest accepted value "
                               "is 9223372036854775807"));
  auto seed = run_cli({"generate", "-m", stories(), "--seed", "18446744073709551616"});
  EXPECT_EQ(seed.code, 2);
  EXPECT_THAT(seed.err, HasSubstr("--seed 18446744073709551616: out of range"));
  auto negative = run_cli({"generate", "-m", stories(), "--seed", "-1"});
  EXPECT_EQ(negative.code, 2);
  EXPECT_THAT(negative.err,
              HasSubstr("--seed -1: expected an integer in [0, 18446744073709551615]"));
  auto ctx = run_cli({"generate", "-m", stories(), "--ctx-len", "2147483648"});
  EXPECT_EQ(ctx.code, 2);
  EXPECT_THAT(ctx.err, HasSubstr("--ctx-len 2147483648: out of range, the largest accepted value "
                                 "is 16777216"));
}

// Class 2: a context above the trained one is an error, not accepted (nor an abort).
TEST(HostileCli, ContextAboveTheTrainedOneIsRefused) {
  HS_REQUIRE_SHARED();
  auto r = run_cli({"generate", "-m", stories(), "-n", "1", "--ctx-len", "1000"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("context length 1000 is above the model's trained context 512"));
}

// Class 7: bounds are printed compactly, not DBL_MAX in 309 digits.
TEST(HostileCli, RangeMessagesAreCompact) {
  HS_REQUIRE_SHARED();
  auto r = run_cli({"generate", "-m", stories(), "--temp", "-1e308"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--temp: -1e308 is outside [0, 1.79769e+308]"));
  EXPECT_LT(r.err.size(), 400u);
  auto p = run_cli({"generate", "-m", stories(), "--top-p", "1e308"});
  EXPECT_THAT(p.err, HasSubstr("1e308 is outside [0, 1]"));
}

// Class 5 and 6: export refuses to overwrite its own checkpoint (or a hard link to it) and a
// device, and an unknown --print-after pass; nothing is written.
TEST(HostileCli, ExportNeverDestroysItsInput) {
  HS_REQUIRE_SHARED();
  const std::string dir = testing::temp_dir() + "/export_self";
  std::filesystem::create_directories(dir);
  const std::string model = dir + "/model.bin", tok = dir + "/tokenizer.bin";
  std::filesystem::copy_file(stories(), model);
  std::filesystem::copy_file(testing::shared_file("models/stories260K/tok512.bin"), tok);
  const auto before = std::filesystem::file_size(model);

  auto self = run_cli({"export", "-m", model, "-o", model, "--quant", "none"});
  EXPECT_EQ(self.code, 1);
  EXPECT_THAT(self.err, HasSubstr("output is the same file as the input '" + model + "'"));
  auto tokenizer = run_cli({"export", "-m", model, "-o", tok, "--quant", "none"});
  EXPECT_EQ(tokenizer.code, 1);
  EXPECT_THAT(tokenizer.err, HasSubstr("same file as the input"));
  auto device = run_cli({"export", "-m", model, "-o", "/dev/null", "--quant", "none"});
  EXPECT_EQ(device.code, 1);
  EXPECT_THAT(device.err, HasSubstr("/dev/null"));  // a device (or, unprivileged, /dev unwritable)
  auto pass = run_cli(
      {"export", "-m", model, "-o", dir + "/x.hsa", "--quant", "none", "--print-after", "bogus"});
  EXPECT_EQ(pass.code, 1);
  EXPECT_THAT(pass.err, HasSubstr("--print-after: no pass named 'bogus'"));

  EXPECT_EQ(std::filesystem::file_size(model), before);
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_THAT(e.path().string(), Not(HasSubstr(".tmp-")));
    EXPECT_THAT(e.path().string(), Not(HasSubstr("x.hsa")));
  }
}

}  // namespace
}  // namespace hs::cli
