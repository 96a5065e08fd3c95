// Attentions that skip the score columns the SmartMask mask kills (step_planner_columns.cpp):
// the outputs (logits and cache updates) are the same bytes as computing every column, for
// quantized and float stories260K artifacts, split and unsplit, decode and prefill graphs, at
// several n_past, and the skip really happens (GraphExecutor::skipped_columns); a float cache
// holding NaN in a dead slot gives the full run's bytes (k: no skip; v: P·V reads every row).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/runner/kv_manager.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/runtime/executor.h"
#include "step_recorder.h"
#include "executor_io.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {


struct Config {
  std::string scheme;
  bool split = true;
};

class DeadColumns : public ::testing::TestWithParam<Config> {};

TEST_P(DeadColumns, SkippingGivesTheSameBytesAsComputingEveryColumn) {
  HS_REQUIRE_SHARED();
  const auto& e = hs::testing::exported(GetParam().scheme, GetParam().split);
  ASSERT_NE(e.artifact, nullptr);
  const artifact::ModelMetadata& meta = e.artifact->program().metadata;
  kernels::ThreadPool pool(2);
  for (const artifact::GraphDesc& g : e.artifact->program().graphs) {
    HS_ASSERT_OK_AND_ASSIGN(auto skip, GraphExecutor::create(e.artifact, g.name, {.pool = &pool}));
    HS_ASSERT_OK_AND_ASSIGN(
        auto full,
        GraphExecutor::create(e.artifact, g.name, {.pool = &pool, .skip_dead_columns = false}));
    // Every attention qualifies: per head when split, per layer otherwise.
    EXPECT_EQ(skip->summary().column_skips,
              meta.n_layers * (GetParam().split ? meta.n_heads : 1))
        << g.name;
    EXPECT_EQ(full->summary().column_skips, 0) << g.name;
    const int64_t c = skip->inputs()[static_cast<size_t>(skip->input_index("attention_mask"))]
                          .shape.back();
    const int64_t p = c - g.ar_len;  // cache slots
    int64_t total_skipped = 0, total_attentions = 0;
    for (int64_t n_past : {int64_t{0}, int64_t{1}, int64_t{37}, p - 1, p}) {
      const auto in = causal_inputs(*skip, n_past, static_cast<uint64_t>(n_past) + 11);
      HS_ASSERT_OK_AND_ASSIGN(auto a, execute_bytes(*skip, in));
      // Each attention skips the dead run when its bound holds for every row (random caches
      // and queries: not always); at least one does whenever something is dead.
      const int64_t skipped = skip->skipped_columns();
      EXPECT_EQ(skipped % (p - n_past == 0 ? 1 : p - n_past), 0) << g.name;
      if (n_past < p) {
        EXPECT_GT(skipped, 0) << g.name << " n_past " << n_past;
      } else {
        EXPECT_EQ(skipped, 0) << g.name;
      }
      total_skipped += skipped / std::max<int64_t>(1, p - n_past);
      total_attentions += n_past < p ? skip->summary().column_skips : 0;
      HS_ASSERT_OK_AND_ASSIGN(auto b, execute_bytes(*full, in));
      EXPECT_EQ(full->skipped_columns(), 0);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(a[i] == b[i]) << g.name << " output '" << skip->outputs()[i].name
                                  << "' differs at n_past " << n_past;
      }
    }
    std::printf("%s: %lld of %lld attention runs skipped the dead columns\n", g.name.c_str(),
                static_cast<long long>(total_skipped), static_cast<long long>(total_attentions));
    // A mask row that attends to nothing outside the dead run: no skip, the same bytes.
    auto in = causal_inputs(*skip, 5, 3);
    const int mi = skip->input_index("attention_mask");
    if (skip->inputs()[static_cast<size_t>(mi)].type == artifact::ElementType::kF32) {
      std::fill_n(reinterpret_cast<float*>(in[static_cast<size_t>(mi)].data()), c, -255.f);
    } else {
      std::fill_n(reinterpret_cast<uint16_t*>(in[static_cast<size_t>(mi)].data()), c,
                  runner::AttentionMask::kMasked);
    }
    HS_ASSERT_OK_AND_ASSIGN(auto a, execute_bytes(*skip, in));
    EXPECT_EQ(skip->skipped_columns(), 0) << g.name;
    HS_ASSERT_OK_AND_ASSIGN(auto b, execute_bytes(*full, in));
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i] == b[i]) << g.name;
    // A float cache with NaN in a dead slot (position p - 1 of every head): in k, the scores
    // have no bound and compute every column; in v, the scores may skip but P·V computes every
    // row (0 * NaN = NaN, as in the full run). The same bytes (NaNs) either way.
    if (GetParam().scheme != "none") continue;
    for (const std::string cache : {"k_cache", "v_cache"}) {
      in = causal_inputs(*skip, 5, 3);
      int64_t poisoned = 0;
      for (size_t i = 0; i < skip->inputs().size(); ++i) {
        const IoDesc& d = skip->inputs()[i];
        if (d.name.rfind(cache, 0) != 0) continue;
        auto* x = reinterpret_cast<float*>(in[i].data());
        const int64_t n = d.bytes / 4, nan_slot = p - 1;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        if (cache == "k_cache") {  // [.., Dh, P]
          for (int64_t j = nan_slot; j < n; j += p) x[j] = nan;
        } else {  // [.., P, Dh]
          const int64_t dh = d.shape.back();
          for (int64_t h = 0; h < n; h += p * dh) std::fill_n(x + h + nan_slot * dh, dh, nan);
        }
        ++poisoned;
      }
      ASSERT_GT(poisoned, 0) << cache;
      HS_ASSERT_OK_AND_ASSIGN(a, execute_bytes(*skip, in));
      if (cache == "k_cache") {
        EXPECT_EQ(skip->skipped_columns(), 0) << g.name;
      }
      HS_ASSERT_OK_AND_ASSIGN(b, execute_bytes(*full, in));
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(std::memcmp(a[i].data(), b[i].data(), a[i].size()), 0)
            << g.name << " " << cache << " " << skip->outputs()[i].name;
      }
    }
  }
}

TEST_P(DeadColumns, GreedyGenerationEqualsComputingEveryColumn) {
  HS_REQUIRE_SHARED();
  const auto& e = hs::testing::exported(GetParam().scheme, GetParam().split);
  ASSERT_NE(e.artifact, nullptr);
  const auto tok = hs::testing::make_tokenizer(e);
  HS_ASSERT_OK_AND_ASSIGN(auto a, ArtifactStepModel::create(e.artifact, {.threads = 2}));
  HS_ASSERT_OK_AND_ASSIGN(
      auto b, ArtifactStepModel::create(e.artifact, {.threads = 2, .skip_dead_columns = false}));
  const std::string prompt = "Once upon a time, there was a little girl named Lily.";
  HS_ASSERT_OK_AND_ASSIGN(Recorded x, record_greedy(*a, *tok, prompt, {.max_new_tokens = 24}));
  HS_ASSERT_OK_AND_ASSIGN(Recorded y, record_greedy(*b, *tok, prompt, {.max_new_tokens = 24}));
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_TRUE(x.logits == y.logits);
}

INSTANTIATE_TEST_SUITE_P(Stories260K, DeadColumns,
                         ::testing::Values(Config{"16a8w", true}, Config{"16a4w-block32", true},
                                           Config{"16a8w", false}, Config{"none", true},
                                           Config{"none", false}),
                         [](const auto& info) {
                           std::string name = info.param.scheme + (info.param.split ? "_split" : "_mha");
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The kernel: rows whose dead columns are below max + kSoftmaxExpZeroBelow (here garbage in
// x, which the live softmax must not read) give the same bits as the full softmax.
TEST(DeadColumns, LiveSoftmaxEqualsTheFullSoftmax) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> live(-30.f, 30.f);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t rows = 1 + static_cast<int64_t>(rng() % 4), n = 2 + static_cast<int64_t>(rng() % 90);
    int64_t d0 = static_cast<int64_t>(rng() % static_cast<uint32_t>(n));
    int64_t d1 = d0 + 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(n - d0));
    if (d1 - d0 == n) --d1;  // keep one live column
    std::vector<float> x(static_cast<size_t>(rows * n)), y_full(x.size()), y_live(x.size());
    for (float& v : x) v = live(rng);
    std::vector<float> garbage = x;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = d0; j < d1; ++j) {
        x[static_cast<size_t>(r * n + j)] = -200.f;  // dead: exp underflows to 0
        garbage[static_cast<size_t>(r * n + j)] = std::numeric_limits<float>::quiet_NaN();
      }
    }
    kernels::softmax_rows_f32(x.data(), y_full.data(), rows, n, nullptr);
    kernels::softmax_rows_live_f32(garbage.data(), y_live.data(), rows, n, d0, d1, nullptr);
    ASSERT_EQ(std::memcmp(y_full.data(), y_live.data(), y_full.size() * 4), 0)
        << "trial " << trial << " n " << n << " dead [" << d0 << ", " << d1 << ")";
  }
}

}  // namespace
}  // namespace hs::runtime::testing
