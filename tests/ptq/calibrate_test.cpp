// Calibration input and the window loop: text files and prompt, empty input, windows of long
// text, the SmartMask prefill + decode loop against an AR-1-only run, the observed table.
#include "headsplit/ptq/calibrate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/kernels/gemm_bf16.h"
#include "headsplit/support/file.h"
#include "ptq/ptq_testing.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = hs::testing::temp_dir() + "/" + name;
  EXPECT_TRUE(write_file_atomic(path, text).ok());
  return path;
}

// The float prefill (AR-4) and decode (AR-1) graphs of a random stories260K at C = 16
// (windows of 12 tokens), as the calibration tests below run them.
std::vector<ir::Graph> stories_graphs() {
  const frontend::LlamaModel m =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 3);
  frontend::BuildOptions b;
  b.context_len = 16;
  auto graphs = build_graphs(m, b, std::vector<int64_t>{4, 1});
  EXPECT_TRUE(graphs.ok()) << graphs.error().message();
  return graphs.ok() ? std::move(graphs).value() : std::vector<ir::Graph>{};
}

std::unique_ptr<irexec::GraphStepModel> float_model(const frontend::LlamaModel& m,
                                                    std::vector<int64_t> ar_lens, int64_t context,
                                                    ir::KernelSet kernels) {
  frontend::BuildOptions b;
  b.context_len = context;
  auto graphs = build_graphs(m, b, ar_lens);
  EXPECT_TRUE(graphs.ok()) << graphs.error().message();
  irexec::GraphStepModelOptions o;
  o.interpreter.kernels = kernels;
  auto model = irexec::GraphStepModel::create(std::move(graphs).value(), o);
  EXPECT_TRUE(model.ok()) << model.error().message();
  return std::move(model).value();
}

TEST(CalibrationText, LinesOfFilesThenThePrompt) {
  const std::string a = write_temp("a.txt", "first sample\n\n   \nsecond\r\n");
  const std::string b = write_temp("b.txt", "third");
  const std::vector<std::string> files = {a, b};
  HS_ASSERT_OK_AND_ASSIGN(auto texts, calibration_texts(files, "the prompt"));
  EXPECT_EQ(texts, (std::vector<std::string>{"first sample", "second", "third", "the prompt"}));
  HS_ASSERT_OK_AND_ASSIGN(auto only_prompt, calibration_texts({}, "hello"));
  EXPECT_EQ(only_prompt, (std::vector<std::string>{"hello"}));
}

TEST(CalibrationText, EmptyInputIsAClearError) {
  const std::string blank = write_temp("blank.txt", "\n  \n\t\n");
  const std::vector<std::string> files = {blank};
  auto r = calibration_texts(files, "  ");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message().find("empty calibration input"), std::string::npos);
  EXPECT_NE(r.error().message().find("blank.txt"), std::string::npos) << r.error().message();
  auto none = calibration_texts({}, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(none.error().message().find("empty calibration input"), std::string::npos);
  const std::vector<std::string> missing = {hs::testing::temp_dir() + "/no-such-file.txt"};
  auto m = calibration_texts(missing, "prompt");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("no-such-file.txt"), std::string::npos);

  // No tokens at all reaches calibrate() as a clear error too.
  frontend::LlamaModel model =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 1);
  auto step = float_model(model, {4, 1}, 16, ir::KernelSet::kReference);
  for (const auto& samples :
       {std::vector<std::vector<int32_t>>{}, std::vector<std::vector<int32_t>>{{}, {}}}) {
    auto c = calibrate(*step, samples, {.progress = false});
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(c.error().message().find("empty calibration input"), std::string::npos);
  }
}

TEST(Windows, SplitIntoCeilNOverW) {
  std::vector<int32_t> t(10);
  for (int i = 0; i < 10; ++i) t[static_cast<size_t>(i)] = i;
  auto w4 = split_windows(t, 4);
  ASSERT_EQ(w4.size(), 3u);
  EXPECT_EQ(w4[0].size(), 4u);
  EXPECT_EQ(w4[2].size(), 2u);
  EXPECT_EQ(w4[2][0], 8);
  EXPECT_EQ(split_windows(t, 5).size(), 2u);
  EXPECT_EQ(split_windows(t, 10).size(), 1u);
  EXPECT_EQ(split_windows(t, 64).size(), 1u);
  EXPECT_TRUE(split_windows(std::span<const int32_t>(), 4).empty());
}

// Text longer than the context: C = 16 and N = 4 give windows of W = 12 tokens; a sample of 30
// tokens is 3 windows (12, 12, 6), each with 4 decode tokens (prefill 8, 8, 2 in 2, 2, 1 steps).
TEST(Calibrate, LongTextIsSplitIntoWindows) {
  frontend::LlamaModel m =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 2);
  auto step = float_model(m, {4, 1}, 16, ir::KernelSet::kFast);
  auto samples = testing::random_samples(512, 1, 30, 8);
  samples.push_back({1, 5, 9});  // a short one: one window, decode 2 (w - 1)
  CalibrationStats stats;
  HS_ASSERT_OK_AND_ASSIGN(
      quant::CalibrationTable table,
      calibrate(*step, samples, {.decode_tokens = 4, .progress = false}, &stats));
  EXPECT_EQ(window_length(step->info()), 12);
  EXPECT_EQ(stats.samples, 2);
  EXPECT_EQ(stats.windows, 3 + 1);
  EXPECT_EQ(stats.tokens, 33);
  EXPECT_EQ(stats.decode_tokens, 4 * 3 + 2);
  EXPECT_EQ(stats.prefill_tokens, 8 + 8 + 2 + 1);
  EXPECT_EQ(stats.prefill_steps, 2 + 2 + 1 + 1);
  EXPECT_EQ(stats.decode_steps, 14);
  EXPECT_GT(stats.seconds, 0.0);
  // Every real non-constant value of both graphs was observed, under its name.
  for (int64_t t : {4, 1}) {
    const ir::Graph& g = *step->graph(t);
    for (ir::ValueId id = 0; id < g.num_values(); ++id) {
      const ir::Value& v = g.value(id);
      if (!v.type.is_real() || v.is_constant() || g.is_graph_input(id)) continue;
      const quant::Range* r = table.find(v.name);
      ASSERT_NE(r, nullptr) << v.name;
      EXPECT_FALSE(r->empty()) << v.name;
    }
  }
  const quant::Range* probs = table.find("layers.0.attn.probs");
  ASSERT_NE(probs, nullptr);
  EXPECT_GE(probs->min, 0.0f);
  EXPECT_LE(probs->max, 1.0f);
  EXPECT_EQ(table.find("tokens"), nullptr) << "integer inputs are not observed";
}

// calibrate_graphs with windows on several threads (one step model each, kernels on their
// thread) gives exactly the table and counts of one thread: min/max ranges do not depend on
// which thread saw which window. Several samples and windows, so every thread gets some.
TEST(Calibrate, ParallelWindowsGiveTheSameTable) {
  const std::vector<ir::Graph> graphs = stories_graphs();
  ASSERT_FALSE(graphs.empty());
  auto samples = testing::random_samples(512, 7, 30, 11);
  quant::CalibrationTable tables[2];
  CalibrationStats stats[2];
  const int threads[2] = {1, 3};
  for (int i = 0; i < 2; ++i) {
    CalibrationOptions o{.decode_tokens = 3, .progress = false};
    o.threads = threads[i];
    HS_ASSERT_OK_AND_ASSIGN(tables[i],
                            calibrate_graphs(graphs, samples, o, ir::KernelSet::kFast, &stats[i]));
  }
  EXPECT_EQ(stats[1].windows, stats[0].windows);
  EXPECT_GT(stats[0].windows, 7);
  EXPECT_EQ(stats[1].tokens, stats[0].tokens);
  EXPECT_EQ(stats[1].prefill_steps, stats[0].prefill_steps);
  EXPECT_EQ(stats[1].decode_steps, stats[0].decode_steps);
  ASSERT_EQ(tables[1].size(), tables[0].size());
  for (const auto& [name, r] : tables[0].ranges()) {
    const quant::Range* p = tables[1].find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->min, r.min) << name;
    EXPECT_EQ(p->max, r.max) << name;
  }
}

// CalibrationPrecision::kBf16: the projections run in bfloat16 where the CPU has AVX512_BF16
// (stats.bf16), on one thread or several (one shared store of weight copies), and every range
// stays within the bfloat16 error of the float32 table's. Tolerance: each product is off by at
// most 2^-8 relative (both operands rounded to 8 significant bits); through the 5 layers of
// stories260K the ranges here move by under 1% of their magnitude, and 2^-5 leaves margin for
// other seeds, while a projection that read a wrong weight or the wrong inputs moves ranges by
// their own size. With captured inputs (SeqMSE / GPTQ) the projections stay float32: the table
// is then bit-identical.
TEST(Calibrate, Bf16ProjectionsGiveRangesWithinTheBf16Error) {
  const std::vector<ir::Graph> graphs = stories_graphs();
  ASSERT_FALSE(graphs.empty());
  const auto samples = testing::random_samples(512, 5, 30, 17);
  CalibrationOptions f32{.decode_tokens = 3, .progress = false};
  f32.precision = CalibrationPrecision::kF32;
  CalibrationStats f32_stats;
  HS_ASSERT_OK_AND_ASSIGN(const quant::CalibrationTable want,
                          calibrate_graphs(graphs, samples, f32, ir::KernelSet::kFast, &f32_stats));
  EXPECT_FALSE(f32_stats.bf16);
  for (const int threads : {1, 2}) {
    SCOPED_TRACE(fmt::format("{} threads", threads));
    CalibrationOptions o = f32;
    o.precision = CalibrationPrecision::kBf16;
    o.threads = threads;
    CalibrationStats stats;
    HS_ASSERT_OK_AND_ASSIGN(const quant::CalibrationTable got,
                            calibrate_graphs(graphs, samples, o, ir::KernelSet::kFast, &stats));
    EXPECT_EQ(stats.bf16, kernels::bf16_matmul_supported());
    ASSERT_EQ(got.size(), want.size());
    bool differs = false;
    for (const auto& [name, r] : want.ranges()) {
      const quant::Range* p = got.find(name);
      ASSERT_NE(p, nullptr) << name;
      if (!(r.min <= r.max)) {  // never observed (the caches' input names): still empty
        EXPECT_FALSE(p->min <= p->max) << name;
        continue;
      }
      const float tol = 0x1p-5f * std::max(std::fabs(r.min), std::fabs(r.max)) + 1e-6f;
      EXPECT_NEAR(p->min, r.min, tol) << name;
      EXPECT_NEAR(p->max, r.max, tol) << name;
      differs |= p->min != r.min || p->max != r.max;
    }
    EXPECT_EQ(differs, stats.bf16) << "bfloat16 projections leave a trace in the ranges";
  }
  // Capturing projection inputs: float32 whatever the precision asked for.
  std::string first_input;  // the input of the graph's first projection
  for (ir::NodeId n = 0; n < graphs.front().num_nodes() && first_input.empty(); ++n) {
    const ir::Node& node = graphs.front().node(n);
    if (!node.erased && (node.op == ir::OpKind::kConv2d || node.op == ir::OpKind::kLinear))
      first_input = graphs.front().value(node.inputs[0]).name;
  }
  ASSERT_FALSE(first_input.empty());
  CalibrationOptions o = f32;
  o.precision = CalibrationPrecision::kBf16;
  o.capture = {first_input};
  quant::ActivationSamples captured;
  CalibrationStats stats;
  HS_ASSERT_OK_AND_ASSIGN(
      const quant::CalibrationTable got,
      calibrate_graphs(graphs, samples, o, ir::KernelSet::kFast, &stats, &captured));
  EXPECT_FALSE(stats.bf16);
  for (const auto& [name, r] : want.ranges()) {
    const quant::Range* p = got.find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->min, r.min) << name;
    EXPECT_EQ(p->max, r.max) << name;
  }
}

// A failing window is reported as in a sequential run: the first failing one in order.
TEST(Calibrate, ParallelWindowsReportTheFirstFailingWindow) {
  const std::vector<ir::Graph> graphs = stories_graphs();
  ASSERT_FALSE(graphs.empty());
  auto samples = testing::random_samples(512, 6, 20, 5);
  samples[2][3] = 100000;  // outside the vocabulary: sample 2, its first window
  samples[4][1] = -1;
  CalibrationOptions o{.decode_tokens = 2, .progress = false};
  o.threads = 2;
  auto r = calibrate_graphs(graphs, samples, o, ir::KernelSet::kFast);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("calibration sample 2 window"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("100000"), std::string::npos) << r.error().message();
}

// Threads take the longest windows first; a later failing window that is handed out first
// (sample 4: one full 12-token window) must not hide an earlier short one (sample 2: 5
// tokens, handed out last), which still runs and is the one reported.
TEST(Calibrate, LongestFirstOrderStillReportsTheFirstFailingWindow) {
  const std::vector<ir::Graph> graphs = stories_graphs();
  ASSERT_FALSE(graphs.empty());
  auto samples = testing::random_samples(512, 6, 20, 5);
  for (auto& s : samples) s.resize(std::min<size_t>(s.size(), 9));
  samples[2].resize(5);
  samples[4].resize(12);
  samples[4].assign(12, 7);
  samples[2][3] = 100000;
  samples[4][0] = -1;
  for (const int threads : {2, 3}) {
    CalibrationOptions o{.decode_tokens = 2, .progress = false};
    o.threads = threads;
    auto r = calibrate_graphs(graphs, samples, o, ir::KernelSet::kFast);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("calibration sample 2 window"), std::string::npos)
        << threads << " threads: " << r.error().message();
  }
}

// The hybrid loop (prefill AR-8 chunks, then AR-1 decode) gives every position's logits, and
// they match an AR-1-only run of the same window (reference kernels; the tolerance covers the
// different position of cached vs current columns in softmax sums, 1e-4 as in irexec's tests).
TEST(RunWindow, HybridLoopMatchesAr1Only) {
  frontend::LlamaModel m =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 4);
  auto hybrid = float_model(m, {8, 1}, 32, ir::KernelSet::kReference);
  auto ar1 = float_model(m, {1}, 32, ir::KernelSet::kReference);
  const auto window = testing::random_samples(512, 1, 21, 9)[0];
  std::map<int64_t, std::vector<float>> a, b;
  WindowStats ws;
  HS_ASSERT_OK(run_window(
      *hybrid, window, 3,
      [&](int64_t pos, std::span<const float> row) {
        EXPECT_EQ(a.count(pos), 0u) << "position " << pos << " reported twice";
        a[pos].assign(row.begin(), row.end());
      },
      &ws));
  EXPECT_EQ(ws.prefill_tokens, 18);
  EXPECT_EQ(ws.prefill_steps, 3);
  EXPECT_EQ(ws.decode_tokens, 3);
  HS_ASSERT_OK(run_window(*ar1, window, 3, [&](int64_t pos, std::span<const float> row) {
    b[pos].assign(row.begin(), row.end());
  }));
  ASSERT_EQ(a.size(), window.size());
  ASSERT_EQ(b.size(), window.size());
  for (auto& [pos, row] : a) {
    for (size_t j = 0; j < row.size(); ++j) {
      ASSERT_NEAR(row[j], b[pos][j], 1e-4f) << "position " << pos << " logit " << j;
    }
  }
  // Too long for the prefill bound C - N = 24, and bad token ids, are errors.
  std::vector<int32_t> long_window(25, 3);
  auto too_long = run_window(*hybrid, long_window, 0, nullptr);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(too_long.error().message().find("25 tokens"), std::string::npos);
  std::vector<int32_t> bad_id = {1, 512};
  auto bad = run_window(*hybrid, bad_id, 0, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("id 512"), std::string::npos) << bad.error().message();
}

// The progress line counts tokens and shows a rate and an ETA while calibrating, then the
// total time. stderr is not a terminal here, so a line is printed per 10% step: the first
// window (12 of 33 tokens, 36%) prints one with an ETA, and finish() prints "done in".
TEST(Calibrate, ProgressLineHasRateAndEta) {
  frontend::LlamaModel m =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 2);
  auto step = float_model(m, {4, 1}, 16, ir::KernelSet::kFast);
  const auto samples = testing::random_samples(512, 1, 33, 8);  // windows of 12, 12, 9
  ::testing::internal::CaptureStderr();
  CalibrationStats stats;
  auto table = calibrate(*step, samples, {.decode_tokens = 2, .progress = true}, &stats);
  const std::string err = ::testing::internal::GetCapturedStderr();
  HS_ASSERT_OK(table);
  EXPECT_EQ(stats.windows, 3);
  EXPECT_NE(err.find("calibrate  12/33 tokens   36%"), std::string::npos) << err;
  EXPECT_NE(err.find(" tokens/s  eta "), std::string::npos) << err;
  EXPECT_NE(err.find("calibrate  33/33 tokens  done in "), std::string::npos) << err;
}

}  // namespace
}  // namespace hs::ptq
