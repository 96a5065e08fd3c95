// The lookahead graph of `export --lookahead-ar`: which AR lengths are exported, graph names and
// order, quantization parameters shared with the other graphs, calibration unchanged by it (it
// runs on the prefill and decode graphs only, even when the lookahead graph is the largest), and
// option errors. A random stories260K-shaped model (no shared data needed).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "backend/backend_testing.h"
#include "headsplit/backend/export.h"
#include "headsplit/ir/types.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

TEST(LookaheadExport, ArLengths) {
  const frontend::LlamaModel model = testing::random_stories(5);
  auto lengths = [&](int64_t n, int64_t lookahead) {
    ExportOptions o;
    o.prefill_ar_len = n;
    o.lookahead_ar_len = lookahead;
    o.context_len = 128;
    const Result<frontend::StepLengths> got = export_step_lengths(model, o);
    EXPECT_TRUE(got.ok()) << got.error().message();
    return got.ok() ? got.value().ar_lens : std::vector<int64_t>{};
  };
  EXPECT_EQ(lengths(32, 0), (std::vector<int64_t>{32, 1}));
  EXPECT_EQ(lengths(32, 6), (std::vector<int64_t>{32, 1, 6}));
  EXPECT_EQ(lengths(32, 64), (std::vector<int64_t>{32, 1, 64}));
  EXPECT_EQ(lengths(32, 32), (std::vector<int64_t>{32, 1}));  // the prefill graph serves
  EXPECT_EQ(lengths(32, 1), (std::vector<int64_t>{32, 1}));
  EXPECT_EQ(lengths(1, 8), (std::vector<int64_t>{1, 8}));
}

// Every value's type (with its quantization parameters) in graph `g`, by name.
std::map<std::string, std::string> types(const ir::Graph& g) {
  std::map<std::string, std::string> out;
  for (int32_t v = 0; v < g.num_values(); ++v) {
    const ir::Value& value = g.value(static_cast<ir::ValueId>(v));
    out[value.name] = ir::type_str(value.type);
  }
  return out;
}

TEST(LookaheadExport, SharesParamsAndLeavesCalibrationAlone) {
  const frontend::LlamaModel model = testing::random_stories(5);
  ExportOptions options;
  options.prefill_ar_len = 8;
  options.context_len = 48;
  options.quant.scheme = "16a8w";
  options.quant.calibration_prompt =
      "Once upon a time there was a little dog. He liked to run in the park with his friends.";
  options.quant.progress = false;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport plain, prepare_export(model, options));
  options.lookahead_ar_len = 16;  // larger than the prefill graph
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport with, prepare_export(model, options));
  ASSERT_EQ(with.graphs.size(), 3u);
  EXPECT_EQ(with.graphs[0].name, "prefill");
  EXPECT_EQ(with.graphs[1].name, "decode");
  EXPECT_EQ(with.graphs[2].name, "lookahead");
  EXPECT_EQ(with.graphs[2].ar_len, 16);
  EXPECT_EQ(with.lowered.program.metadata.ar_lengths, (std::vector<int64_t>{8, 1, 16}));
  // Calibration is the same: the prefill and decode graphs get the same params as without.
  EXPECT_EQ(types(with.graphs[0].graph), types(plain.graphs[0].graph));
  EXPECT_EQ(types(with.graphs[1].graph), types(plain.graphs[1].graph));
  // The lookahead graph's quantized values carry the prefill graph's params (shapes aside).
  const auto prefill = types(with.graphs[0].graph), lookahead = types(with.graphs[2].graph);
  int64_t compared = 0;
  for (const auto& [name, type] : lookahead) {
    const auto it = prefill.find(name);
    if (it == prefill.end()) continue;
    const size_t q = type.find(" q<"), qp = it->second.find(" q<");  // the quant part
    if (q == std::string::npos || qp == std::string::npos) continue;
    EXPECT_EQ(type.substr(q), it->second.substr(qp)) << name;
    ++compared;
  }
  EXPECT_GT(compared, 100);
  // One copy of the weights for all three graphs.
  EXPECT_EQ(with.lowered.program.weights.size(), plain.lowered.program.weights.size());
}

TEST(LookaheadExport, OptionErrors) {
  const frontend::LlamaModel model = testing::random_stories(5);
  ExportOptions options;
  options.context_len = 32;
  options.prefill_ar_len = 8;
  options.lookahead_ar_len = 32;
  auto r = prepare_export(model, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message(),
            "lookahead ar length 32 must be smaller than the context length 32");
}

}  // namespace
}  // namespace hs::backend
