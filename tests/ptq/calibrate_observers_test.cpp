// calibrate()'s observers against a plain observer: the table must hold, for every real
// non-constant value of the graphs, exactly the min/max a Range::observe over every output of
// every step gives, although calibrate() does not observe the outputs of range-preserving ops
// (reshape, expand, ...: the GQA expansion of the caches) and observes with SIMD.
#include <gtest/gtest.h>

#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/ptq/quantize_model.h"
#include "ptq/ptq_testing.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

std::unique_ptr<irexec::GraphStepModel> model_of(const frontend::LlamaModel& m,
                                                 frontend::AttentionForm form) {
  frontend::BuildOptions b;
  b.context_len = 24;
  b.form = form;
  const std::vector<int64_t> ar_lens = {4, 1};
  auto graphs = build_graphs(m, b, ar_lens);
  HS_CHECK(graphs.ok(), graphs.ok() ? "" : graphs.error().message());
  auto model = irexec::GraphStepModel::create(std::move(graphs).value(), {});
  HS_CHECK(model.ok(), model.ok() ? "" : model.error().message());
  return std::move(model).value();
}

// Every real non-constant value's range by name, from an observer on every node output.
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

TEST(CalibrateObservers, TableEqualsObservingEveryOutput) {
  const frontend::LlamaModel m =
      frontend::make_random_llama(frontend::named_config("stories260k").value(), 5);
  // Two samples of 37 tokens: windows of 20 (C 24 - N 4) and 17 each.
  const auto samples = testing::random_samples(512, 2, 37, 9);
  for (auto form : {frontend::AttentionForm::kMha, frontend::AttentionForm::kShaFromSource}) {
    SCOPED_TRACE(form == frontend::AttentionForm::kMha ? "mha" : "sha");
    auto model = model_of(m, form);
    HS_ASSERT_OK_AND_ASSIGN(quant::CalibrationTable got,
                            calibrate(*model, samples, {.decode_tokens = 2, .progress = false}));
    const quant::CalibrationTable want = observe_everything(*model, samples);
    // Graph inputs (caches, mask) get an entry but are never observed, in both.
    for (const auto& [name, range] : got.ranges()) {
      if (want.find(name) == nullptr) {
        EXPECT_TRUE(range.empty()) << name;
      }
    }
    int64_t expanded = 0;
    for (const auto& [name, range] : want.ranges()) {
      const quant::Range* r = got.find(name);
      ASSERT_NE(r, nullptr) << name;
      EXPECT_FALSE(r->empty()) << name;
      EXPECT_EQ(r->min, range.min) << name;
      EXPECT_EQ(r->max, range.max) << name;
      expanded += name.find("expand") != std::string::npos;
    }
    // The MHA graph has the GQA expansion whose range is taken from its input.
    if (form == frontend::AttentionForm::kMha) {
      EXPECT_GT(expanded, 0);
    }
  }
}

}  // namespace
}  // namespace hs::ptq
