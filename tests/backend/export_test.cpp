// The export pipeline end to end: stories260K float, 16a8w and 16a4w-block32 artifacts load
// with the hybrid pair of graphs and 2L cache inputs and outputs each; the summary's counts;
// option errors; and a killed export leaving nothing behind.
#include "headsplit/backend/export.h"

#include <filesystem>
#include <fstream>

#include "backend/backend_testing.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/kernels/gemm_bf16.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

int64_t count_prefix(const artifact::GraphDesc& g, const std::vector<int32_t>& io,
                     const std::string& a, const std::string& b) {
  int64_t n = 0;
  for (int32_t t : io) {
    const std::string& name = g.tensors[static_cast<size_t>(t)].name;
    n += name.rfind(a, 0) == 0 || name.rfind(b, 0) == 0;
  }
  return n;
}

// The checks every hybrid export of a model with L layers passes.
void expect_hybrid(const artifact::Program& p, int64_t layers, int64_t prefill_ar_len) {
  ASSERT_EQ(p.graphs.size(), 2u);
  EXPECT_EQ(p.graphs[0].name, "prefill");
  EXPECT_EQ(p.graphs[0].ar_len, prefill_ar_len);
  EXPECT_EQ(p.graphs[1].name, "decode");
  EXPECT_EQ(p.graphs[1].ar_len, 1);
  EXPECT_EQ(p.metadata.ar_lengths, (std::vector<int64_t>{prefill_ar_len, 1}));
  for (const artifact::GraphDesc& g : p.graphs) {
    EXPECT_EQ(count_prefix(g, g.inputs, "k_cache.", "v_cache."), 2 * layers) << g.name;
    EXPECT_EQ(count_prefix(g, g.outputs, "k_new.", "v_new."), 2 * layers) << g.name;
    EXPECT_GT(g.arena_bytes, 0);
  }
}

TEST(Export, StoriesFloatAndQuantizedArtifactsLoad) {
  HS_REQUIRE_SHARED();
  frontend::LlamaModel model = testing::load_stories();
  const std::string calib = testing::calibration_file(2);
  const std::string dir = hs::testing::temp_dir();
  struct Case {
    std::string scheme;
    artifact::ElementType weights;  // of layer 0's w1
    int32_t kv_bits;
  };
  for (const Case& c :
       {Case{"none", artifact::ElementType::kF32, 0}, Case{"16a8w", artifact::ElementType::kI8, 16},
        Case{"16a4w-block32", artifact::ElementType::kI4, 16}}) {
    SCOPED_TRACE(c.scheme);
    ExportOptions options;
    options.prefill_ar_len = 16;
    options.context_len = 128;
    options.quant.scheme = c.scheme;
    options.quant.calibration_files = {calib};
    options.quant.progress = false;
    const std::string path = dir + "/stories-" + c.scheme + ".hsa";
    HS_ASSERT_OK_AND_ASSIGN(ExportSummary s, export_model(model, path, options));
    HS_ASSERT_OK_AND_ASSIGN(artifact::LoadedArtifact loaded, artifact::load_artifact(path));
    const artifact::Program& p = loaded.program();
    expect_hybrid(p, model.config.n_layers, 16);
    EXPECT_EQ(s.file_bytes, static_cast<int64_t>(std::filesystem::file_size(path)));
    EXPECT_EQ(s.weights, static_cast<int64_t>(p.weights.size()));
    EXPECT_EQ(p.metadata.quant_scheme, c.scheme == "none" ? "" : c.scheme);
    // Calibrated (by default) with bfloat16 projections where the CPU has AVX512_BF16.
    const std::string arithmetic = c.scheme == "none"                 ? ""
                                   : kernels::bf16_matmul_supported() ? "bf16"
                                                                      : "f32";
    EXPECT_EQ(s.calibration_arithmetic, arithmetic);
    if (arithmetic.empty()) {
      EXPECT_EQ(p.metadata.extra.count("calibration_arithmetic"), 0u);
    } else {
      EXPECT_EQ(p.metadata.extra.at("calibration_arithmetic"), arithmetic);
      EXPECT_NE(
          format_export_summary(s).find(fmt::format("calibrated with {} projections",
                                                    arithmetic == "bf16" ? "bfloat16" : "float32")),
          std::string::npos)
          << format_export_summary(s);
    }
    EXPECT_EQ(p.metadata.kv_cache_bits, c.kv_bits);
    EXPECT_EQ(p.metadata.context_len, 128);
    EXPECT_TRUE(p.metadata.split_applied);
    EXPECT_EQ(p.metadata.model_source, model.source);
    EXPECT_EQ(p.tokenizer.pieces, model.tokenizer->pieces);
    bool found = false;
    for (const artifact::WeightDesc& w : p.weights) {
      if (w.name != "layers.0.ffn.w1.weight") continue;
      found = true;
      EXPECT_EQ(w.dtype, c.weights);
    }
    EXPECT_TRUE(found);
    // Summary: per layer 4 attention projections become H + 2 Hkv + 1 = 17.
    ASSERT_EQ(s.graphs.size(), 2u);
    for (const GraphSummary& g : s.graphs) {
      EXPECT_EQ(g.attention_projections_before, 4);
      EXPECT_EQ(g.attention_projections_after, 8 + 2 * 4 + 1);
      EXPECT_EQ(g.cache_inputs, 10);
      EXPECT_EQ(g.cache_outputs, 10);
      EXPECT_LT(g.arena_bytes, g.arena_tensor_bytes);
      EXPECT_EQ(g.ops_before.at("softmax"), 5);
      EXPECT_EQ(g.ops_after.at("softmax"), 5 * 8);
    }
    std::vector<std::string> phases;
    for (const PhaseTiming& t : s.phases) phases.push_back(t.name);
    std::vector<std::string> expected = {"build", "preprocess", "plan", "write"};
    if (c.scheme != "none") expected.insert(expected.begin() + 1, {"calibrate", "quantize"});
    EXPECT_EQ(phases, expected);
  }
}

// QuantOptions::calibration_precision = kF32: float32 projections on every CPU, recorded.
TEST(Export, Float32CalibrationIsRecorded) {
  frontend::LlamaModel model = testing::random_stories(5);
  ExportOptions options;
  options.prefill_ar_len = 4;
  options.context_len = 16;
  options.quant.scheme = "16a8w";
  options.quant.calibration_prompt = "One day, a girl found a ball.";
  options.quant.calibration_precision = ptq::CalibrationPrecision::kF32;
  options.quant.progress = false;
  const std::string path = hs::testing::temp_dir() + "/f32-calibration.hsa";
  HS_ASSERT_OK_AND_ASSIGN(ExportSummary s, export_model(model, path, options));
  EXPECT_EQ(s.calibration_arithmetic, "f32");
  HS_ASSERT_OK_AND_ASSIGN(artifact::LoadedArtifact loaded, artifact::load_artifact(path));
  EXPECT_EQ(loaded.program().metadata.extra.at("calibration_arithmetic"), "f32");
}

TEST(Export, NoSplitKeepsMhaAndDecodeOnlyHasOneGraph) {
  frontend::LlamaModel model = testing::random_stories(3);
  ExportOptions options;
  options.prefill_ar_len = 1;
  options.context_len = 32;
  options.preprocess.split = false;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport p, prepare_export(model, options));
  ASSERT_EQ(p.lowered.program.graphs.size(), 1u);
  EXPECT_EQ(p.lowered.program.graphs[0].name, "decode");
  EXPECT_EQ(p.summary.graphs[0].attention_projections_after, 4);
  EXPECT_FALSE(p.lowered.program.metadata.split_applied);
  // N = 1 exports the decode graph only.
  EXPECT_EQ(frontend::step_lengths(model, 32, 1).value().ar_lens, (std::vector<int64_t>{1}));
}

TEST(Export, ShaFromSourceWithPerHeadCaches) {
  frontend::LlamaModel model = testing::random_stories(3);
  ExportOptions options;
  options.prefill_ar_len = 4;
  options.context_len = 32;
  options.form = frontend::AttentionForm::kShaFromSource;
  options.cache_layout = frontend::CacheLayout::kPerHead;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport p, prepare_export(model, options));
  for (const GraphSummary& g : p.summary.graphs) {
    EXPECT_EQ(g.cache_inputs, 2 * 5 * 4);  // 2 L Hkv
    EXPECT_EQ(g.cache_outputs, 2 * 5 * 4);
  }
  EXPECT_EQ(p.lowered.program.metadata.extra.at("cache_layout"), "per-head");
  EXPECT_FALSE(p.lowered.program.metadata.split_applied);
}

TEST(Export, OptionErrorsAreNamed) {
  frontend::LlamaModel model = testing::random_stories(3);
  ExportOptions options;
  options.context_len = 32;
  options.prefill_ar_len = 32;
  auto too_long = prepare_export(model, options);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(too_long.error().message(),
            "ar length 32 must be at least 1 and smaller than the context length 32");
  options.prefill_ar_len = 8;
  options.quant.scheme = "12a8w";
  options.quant.calibration_prompt = "x";
  auto bad_scheme = prepare_export(model, options);
  ASSERT_FALSE(bad_scheme.ok());
  EXPECT_EQ(bad_scheme.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(bad_scheme.error().message().find("12a8w"), std::string::npos);
  options.quant.scheme = "none";
  model.tokenizer.reset();
  model.source = "random.bin";
  auto no_tokenizer = prepare_export(model, options);
  ASSERT_FALSE(no_tokenizer.ok());
  EXPECT_EQ(no_tokenizer.kind(), ErrorKind::kNotFound);
  EXPECT_EQ(no_tokenizer.error().message().rfind("random.bin: the model has no tokenizer", 0), 0u);
}

TEST(Export, KilledExportLeavesNothingAndKeepsAnExistingArtifact) {
  frontend::LlamaModel model = testing::random_stories(4);
  ExportOptions options;
  options.prefill_ar_len = 4;
  options.context_len = 16;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport p, prepare_export(model, options));
  ASSERT_GT(p.lowered.program.weights.size(), 10u);
  const std::string dir = hs::testing::temp_dir() + "/killed";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/model.hsa";

  // Killed half-way through the weights: no artifact, no temporary file.
  int64_t calls = 0;
  ExportObserver kill;
  kill.before_weight = [&calls](int64_t index, int64_t count) -> Status {
    ++calls;
    if (index == count / 2) return Error(ErrorKind::kIo, "killed (test)");
    return ok_status();
  };
  auto killed = write_export(p, path, kill);
  ASSERT_FALSE(killed.ok());
  EXPECT_EQ(killed.kind(), ErrorKind::kIo);
  EXPECT_NE(killed.error().message().find("killed (test)"), std::string::npos);
  EXPECT_EQ(calls, static_cast<int64_t>(p.lowered.program.weights.size()) / 2 + 1);
  EXPECT_TRUE(testing::list_dir(dir).empty());

  // A complete export, then a killed one over it: the first stays byte for byte.
  HS_ASSERT_OK(write_export(p, path));
  const std::vector<std::byte> before = testing::read_bytes(path);
  calls = 0;
  ASSERT_FALSE(write_export(p, path, kill).ok());
  EXPECT_EQ(testing::read_bytes(path), before);
  EXPECT_EQ(testing::list_dir(dir), std::vector<std::string>{"model.hsa"});
  HS_EXPECT_OK(artifact::load_artifact(path));
}

}  // namespace
}  // namespace hs::backend
