// Calibration on KernelSet::kFast, where the interpreter skips the GQA repeat of the KV
// caches (unsqueeze -> expand -> reshape feeding the attention matmuls): every value an
// observer still sees has exactly the range calibrate() records, and each skipped value
// gets the range of the KV value it repeats.
#include <gtest/gtest.h>

#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/ptq/quantize_model.h"
#include "ptq/ptq_testing.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

std::unique_ptr<irexec::GraphStepModel> fast_mha_model(const frontend::LlamaModel& m) {
  frontend::BuildOptions b;
  b.context_len = 24;
  b.form = frontend::AttentionForm::kMha;
  const std::vector<int64_t> ar_lens = {4, 1};
  auto graphs = build_graphs(m, b, ar_lens);
  HS_CHECK(graphs.ok(), graphs.ok() ? "" : graphs.error().message());
  irexec::GraphStepModelOptions o;
  o.interpreter.kernels = ir::KernelSet::kFast;
  auto model = irexec::GraphStepModel::create(std::move(graphs).value(), o);
  HS_CHECK(model.ok(), model.ok() ? "" : model.error().message());
  return std::move(model).value();
}

// Every real value the observer is called with, by name.
quant::CalibrationTable observe_everything(irexec::GraphStepModel& model,
                                           std::span<const std::vector<int32_t>> samples) {
  quant::CalibrationTable table;
  for (int64_t t : model.info().ar_lens) {
    const ir::Graph* g = model.graph(t);
    HS_CHECK(model
                 .set_observer(t,
                               [&table, g](ir::ValueId id, const ir::Tensor& x) {
                                 const ir::Value& v = g->value(id);
                                 if (v.type.is_real()) table.at(v.name).observe(x.f);
                               })
                 .ok(),
             "set_observer");
  }
  const int64_t window = window_length(model.info());
  for (const auto& s : samples) {
    for (auto w : split_windows(s, window)) HS_CHECK(run_window(model, w, 2, nullptr).ok(), "run");
  }
  for (int64_t t : model.info().ar_lens) HS_CHECK(model.set_observer(t, nullptr).ok(), "clear");
  return table;
}

// "layers.0.attn.k_all.expand" -> "layers.0.attn.k_all"; "" when not a repeat value.
std::string repeat_source(const std::string& name) {
  for (const char* suffix : {".unsq", ".expand", ".rep"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) return name.substr(0, name.size() - s.size());
  }
  return "";
}

TEST(CalibrateRepeatKv, SkippedRepeatsTakeTheirSourceRange) {
  // stories260K: H 8, Hkv 4 (G 2).
  const frontend::LlamaModel m =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 5);
  const auto samples = testing::random_samples(512, 2, 37, 9);
  auto model = fast_mha_model(m);
  HS_ASSERT_OK_AND_ASSIGN(quant::CalibrationTable got,
                          calibrate(*model, samples, {.decode_tokens = 2, .progress = false}));
  const quant::CalibrationTable want = observe_everything(*model, samples);
  for (const auto& [name, range] : want.ranges()) {
    const quant::Range* r = got.find(name);
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(r->min, range.min) << name;
    EXPECT_EQ(r->max, range.max) << name;
    EXPECT_TRUE(repeat_source(name).empty()) << name << " was observed: not fused";
  }
  int64_t skipped = 0;
  for (const auto& [name, range] : got.ranges()) {
    if (want.find(name) != nullptr) continue;
    const std::string source = repeat_source(name);
    if (source.empty()) {
      EXPECT_TRUE(range.empty()) << name;  // graph inputs (caches, mask): never observed
      continue;
    }
    ++skipped;
    const quant::Range* s = want.find(source);
    ASSERT_NE(s, nullptr) << source;
    EXPECT_FALSE(range.empty()) << name;
    EXPECT_EQ(range.min, s->min) << name;
    EXPECT_EQ(range.max, s->max) << name;
  }
  // Two chains (K, V) of three values per layer of stories260K's 5.
  EXPECT_EQ(skipped, 5 * 2 * 3);
}

}  // namespace
}  // namespace hs::ptq
