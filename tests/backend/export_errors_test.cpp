// Export with bad input: every error is clear (kind, and a message naming the offending
// thing), comes before any pipeline phase runs (the checks are cheap, an export is not), and
// leaves no file behind. Also `headsplit export` on the command line, and a context that is
// not a multiple of the AR length (allowed: the cache has P = C - N slots, any size).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend_testing.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/backend/export.h"
#include "headsplit/cli/cli.h"
#include "testing/cli_run.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

std::string fresh_dir(const std::string& name) {
  const std::string dir = hs::testing::temp_dir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs export_model expecting `kind` with `part` in the message, no phase started and `dir`
// left empty.
void expect_fails_early(const frontend::LlamaModel& model, const std::string& path,
                        const ExportOptions& options, ErrorKind kind, const std::string& part,
                        const std::string& dir) {
  std::vector<std::string> phases;
  ExportObserver observer;
  observer.on_phase_start = [&phases](std::string_view p) { phases.emplace_back(p); };
  auto r = export_model(model, path, options, observer);
  ASSERT_FALSE(r.ok()) << part;
  EXPECT_EQ(r.kind(), kind) << r.error().message();
  EXPECT_TRUE(contains(r.error().message(), part)) << r.error().message();
  EXPECT_TRUE(phases.empty()) << part << ": failed only after phase " << phases.front();
  EXPECT_TRUE(testing::list_dir(dir).empty()) << part;
}

TEST(ExportErrors, BadInputFailsBeforeAnyWorkAndWritesNothing) {
  const frontend::LlamaModel model = testing::random_stories(5);
  const std::string dir = fresh_dir("export-errors");
  const std::string path = dir + "/model.hsa";
  ExportOptions base;
  base.context_len = 16;
  base.prefill_ar_len = 4;
  base.quant.scheme = "16a8w";
  base.quant.calibration_prompt = "once upon a time";

  // The output: a directory that does not exist, or a directory itself.
  expect_fails_early(model, dir + "/missing/model.hsa", base, ErrorKind::kNotFound,
                     "output directory '" + dir + "/missing' of", dir);
  expect_fails_early(model, dir, base, ErrorKind::kInvalidArgument,
                     "output '" + dir + "' is a directory", dir);

  // Quantization settings.
  ExportOptions o = base;
  o.quant.scheme = "16a3w";
  expect_fails_early(model, path, o, ErrorKind::kInvalidArgument,
                     "unknown quantization scheme '16a3w'", dir);
  o = base;
  o.quant.recipe = "gemma";
  expect_fails_early(model, path, o, ErrorKind::kInvalidArgument, "unknown recipe 'gemma'", dir);
  o = base;
  o.quant.rules = {"layers.{3-1}.ffn.w2=16a8w"};
  expect_fails_early(model, path, o, ErrorKind::kInvalidArgument,
                     "rule 'layers.{3-1}.ffn.w2=16a8w'", dir);
  o = base;
  o.quant.kv_bits = 12;
  expect_fails_early(model, path, o, ErrorKind::kInvalidArgument, "kv bits must be 8 or 16, got 12",
                     dir);
  o = base;
  o.quant.calibration_files = {dir + "/no-such-calib.txt"};
  expect_fails_early(model, path, o, ErrorKind::kNotFound,
                     "calibration file '" + dir + "/no-such-calib.txt' does not exist", dir);

  // The context: too small for the prefill graph (N must be < C).
  o = base;
  o.context_len = 4;
  expect_fails_early(model, path, o, ErrorKind::kInvalidArgument,
                     "ar length 4 must be at least 1 and smaller than the context length 4", dir);
  o.context_len = 1;
  o.prefill_ar_len = 1;
  expect_fails_early(model, path, o, ErrorKind::kInvalidArgument,
                     "ar length 1 must be at least 1 and smaller than the context length 1", dir);
}

// C = 13 with N = 4: not a multiple, and fine (P = 9 cache slots in prefill, 12 in decode).
TEST(ExportErrors, ContextNeedNotBeAMultipleOfTheArLength) {
  const frontend::LlamaModel model = testing::random_stories(6);
  const std::string dir = fresh_dir("export-odd-context");
  ExportOptions o;
  o.context_len = 13;
  o.prefill_ar_len = 4;
  HS_ASSERT_OK_AND_ASSIGN(ExportSummary s, export_model(model, dir + "/odd.hsa", o));
  EXPECT_EQ(s.path, dir + "/odd.hsa");
  HS_ASSERT_OK_AND_ASSIGN(artifact::LoadedArtifact a, artifact::load_artifact(dir + "/odd.hsa"));
  EXPECT_EQ(a.program().metadata.context_len, 13);
  EXPECT_EQ(testing::list_dir(dir), std::vector<std::string>{"odd.hsa"});
}

// The command line: a clear "headsplit: error: ..." line, exit code 1, no file.
TEST(ExportErrors, CommandLineErrorsNameTheInputAndWriteNothing) {
  const std::string dir = fresh_dir("export-cli-errors");
  const std::string out = dir + "/out.hsa";
  CliRun missing = run_cli({"export", "-m", dir + "/nothere.bin", "-o", out});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err.rfind("headsplit: error: " + dir + "/nothere.bin", 0), 0u) << missing.err;
  CliRun no_dir = run_cli({"export", "-m", dir + "/nothere.bin", "-o", dir + "/sub/out.hsa"});
  EXPECT_EQ(no_dir.code, 1);
  EXPECT_TRUE(contains(no_dir.err, "output directory '" + dir + "/sub' of")) << no_dir.err;
  EXPECT_FALSE(contains(no_dir.err, "nothere.bin: ")) << "the output is checked before loading";
  EXPECT_TRUE(testing::list_dir(dir).empty());
  if (!hs::testing::shared_available()) return;  // the rest needs a real checkpoint

  const std::vector<std::string> model = {
      "export",
      "-m",
      hs::testing::shared_file("models/stories260K/stories260K.bin"),
      "-t",
      hs::testing::shared_file("models/stories260K/tok512.bin"),
      "-o",
      out};
  auto with = [&model](std::vector<std::string> more) {
    std::vector<std::string> args = model;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  CliRun scheme = run_cli(with({"--quant", "16a3w", "--ctx-len", "32", "--ar-len", "8"}));
  EXPECT_EQ(scheme.code, 1);
  EXPECT_TRUE(contains(scheme.err, "headsplit: error: unknown quantization scheme '16a3w'"))
      << scheme.err;
  EXPECT_FALSE(contains(scheme.err, "build ...")) << "fails before building: " << scheme.err;
  CliRun ctx = run_cli(with({"--ctx-len", "8", "--ar-len", "8"}));
  EXPECT_EQ(ctx.code, 1);
  EXPECT_TRUE(contains(ctx.err,
                       "ar length 8 must be at least 1 and smaller than the context "
                       "length 8"))
      << ctx.err;
  CliRun kv = run_cli(with({"--kv-bits", "4"}));
  EXPECT_EQ(kv.code, 2) << "a usage error";
  EXPECT_TRUE(contains(kv.err, "--kv-bits")) << kv.err;
  EXPECT_TRUE(testing::list_dir(dir).empty());
}

}  // namespace
}  // namespace hs::backend
