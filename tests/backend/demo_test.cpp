// `headsplit demo` in process: exports the default model (or the random stand-in) to a
// quantized artifact and generates from it with the runtime; the artifact is kept with --dir.
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend_testing.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/cli/cli.h"
#include "testing/cli_run.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

using hs::testing::CliRun;
using hs::testing::run_cli;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Demo, StoriesExportsQuantizedAndGenerates) {
  HS_REQUIRE_SHARED();
  const std::string dir = hs::testing::temp_dir() + "/demo";
  CliRun r = run_cli({"demo", "-n", "12", "--ctx-len", "64", "--ar-len", "8", "--dir", dir,
                      "--calib", testing::calibration_file(2)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "model: stories260K, the llama2.c checkpoint")) << r.out;
  EXPECT_TRUE(contains(r.out, "quantization: 16a4w, attention split: yes")) << r.out;
  EXPECT_TRUE(contains(r.out, "4 -> 17")) << r.out;  // attention projections per layer
  EXPECT_TRUE(contains(r.out, "10 in  10 out")) << r.out;
  EXPECT_TRUE(contains(r.out, "== run (the artifact on the runtime) ==\nOnce upon a time"));
  EXPECT_TRUE(contains(r.out, "generated:")) << r.out;
  EXPECT_TRUE(contains(r.out, "artifact kept: " + dir + "/demo.hsa")) << r.out;
  HS_ASSERT_OK_AND_ASSIGN(artifact::LoadedArtifact loaded,
                          artifact::load_artifact(dir + "/demo.hsa"));
  EXPECT_EQ(loaded.program().metadata.quant_scheme, "16a4w");
  EXPECT_EQ(loaded.program().metadata.extra.at("quant_recipe"), "stories");
}

TEST(Demo, RandomStandInSaysWhatItIs) {
  // --random works without the shared folder; a temporary directory is removed afterwards.
  CliRun r = run_cli(
      {"demo", "--random", "-n", "6", "--ctx-len", "32", "--ar-len", "4", "--quant", "16a8w"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "model: a deterministic random model in stories260K's shape"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "quantization: 16a8w")) << r.out;
  EXPECT_TRUE(contains(r.out, "generated:")) << r.out;
  EXPECT_TRUE(contains(r.out, "written to a temporary directory and removed")) << r.out;
}

TEST(Demo, HelpTeachesWithAnExample) {
  CliRun r = run_cli({"demo", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(contains(r.out, "Example")) << r.out;
  CliRun e = run_cli({"export", "--help"});
  EXPECT_EQ(e.code, 0);
  EXPECT_TRUE(contains(e.out, "Example")) << e.out;
  EXPECT_TRUE(contains(e.out, "--ar-len INT:POSITIVE=32")) << e.out;
  CliRun missing = run_cli({"export", "-m", "/nonexistent/model.bin", "--quant", "none"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err.rfind("headsplit: error: /nonexistent/model.bin", 0), 0u) << missing.err;
}

TEST(Demo, ExportCommandWritesTheArtifactAndSummary) {
  HS_REQUIRE_SHARED();
  const std::string path = hs::testing::temp_dir() + "/cli.hsa";
  CliRun r =
      run_cli({"export", "-m", hs::testing::shared_file("models/stories260K/stories260K.bin"), "-t",
               hs::testing::shared_file("models/stories260K/tok512.bin"), "-o", path, "--quant",
               "none", "--ar-len", "8", "--ctx-len", "32", "--no-split"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "-> " + path)) << r.out;
  EXPECT_TRUE(contains(r.out, "quantization: none (float), attention split: no")) << r.out;
  EXPECT_TRUE(contains(r.out, "4 -> 4")) << r.out;
  for (const char* phase : {"load", "build", "preprocess", "plan", "write", "total"}) {
    EXPECT_TRUE(contains(r.out, std::string("\n") + phase + " ")) << phase << "\n" << r.out;
  }
  HS_EXPECT_OK(artifact::load_artifact(path));
}

}  // namespace
}  // namespace hs::backend
