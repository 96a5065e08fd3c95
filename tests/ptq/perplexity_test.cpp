// ptq::perplexity on hand-computed logits: the windows and targets of each stride, the error
// estimate, KL divergence and same-top against a reference, equality with ptq::evaluate when
// the stride is the window, and range errors.
#include "headsplit/ptq/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>

#include "headsplit/ptq/evaluate.h"
#include "ptq/ptq_testing.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

using testing::FixedLogits;

const std::vector<std::vector<int32_t>> kText = {{1, 0, 1, 0, 1, 0}};

// p(0) = 3/4, p(1) = 1/4.
FixedLogits skewed() { return FixedLogits(1.0f + std::log(3.0f), 1.0f); }

TEST(Perplexity, NonOverlappingWindowsEqualEvaluate) {
  FixedLogits m = skewed();
  // W = 4, S = 4: windows [0,4) and [4,6); targets 1,2,3 (0,1,0) and 5 (0).
  HS_ASSERT_OK_AND_ASSIGN(auto s, perplexity(m, nullptr, kText, {.progress = false}));
  EXPECT_EQ(s.window, 4);
  EXPECT_EQ(s.stride, 4);
  EXPECT_EQ(s.windows, 2);
  EXPECT_EQ(s.scored, 4);
  const double nll = 3 * std::log(4.0 / 3.0) + std::log(4.0);
  EXPECT_NEAR(s.perplexity(), std::exp(nll / 4), 1e-6);
  std::vector<runner::StepModel*> models = {&m};
  const std::vector<std::string> names = {"m"};
  HS_ASSERT_OK_AND_ASSIGN(auto e, evaluate(models, names, kText, {.progress = false}));
  EXPECT_EQ(s.perplexity(), e[0].perplexity()) << "the same windows, the same figure";
  EXPECT_EQ(s.scored, e[0].scored_tokens);
  // err = PPL * sqrt(var(nll) / (N - 1)), nll in {ln 4/3 (x3), ln 4}.
  const double mean = nll / 4,
               sq = (3 * std::pow(std::log(4.0 / 3.0), 2) + std::pow(std::log(4.0), 2)) / 4;
  EXPECT_NEAR(s.perplexity_error(), std::exp(mean) * std::sqrt((sq - mean * mean) / 3), 1e-6);
}

TEST(Perplexity, StrideScoresEveryTokenOnce) {
  FixedLogits m = skewed();
  // W = 4, S = 2: windows [0,4) scores targets 1..3, [2,6) scores 4 and 5: every token but the
  // first, once.
  HS_ASSERT_OK_AND_ASSIGN(auto s, perplexity(m, nullptr, kText, {.stride = 2, .progress = false}));
  EXPECT_EQ(s.windows, 2);
  EXPECT_EQ(s.scored, 5);
  const double nll = 3 * std::log(4.0 / 3.0) + 2 * std::log(4.0);  // targets 0,1,0,1,0
  EXPECT_NEAR(s.perplexity(), std::exp(nll / 5), 1e-6);
  HS_ASSERT_OK_AND_ASSIGN(
      auto w3, perplexity(m, nullptr, kText, {.window = 3, .stride = 1, .progress = false}));
  EXPECT_EQ(w3.windows, 4);  // [0,3) [1,4) [2,5) [3,6)
  EXPECT_EQ(w3.scored, 5);
}

TEST(Perplexity, KlDivergenceFromReference) {
  FixedLogits m = skewed();
  FixedLogits ref(1.0f, 1.0f);  // p = 1/2
  HS_ASSERT_OK_AND_ASSIGN(auto s, perplexity(m, &ref, kText, {.progress = false}));
  ASSERT_EQ(s.kld.size(), 4u);
  // KL(ref || m) = 1/2 ln((1/2)/(3/4)) + 1/2 ln((1/2)/(1/4)) = 1/2 ln(4/3) per row.
  for (double k : s.kld) EXPECT_NEAR(k, 0.5 * std::log(4.0 / 3.0), 1e-6);
  EXPECT_NEAR(s.mean_kld_error(), 0.0, 1e-9);
  EXPECT_EQ(s.same_top_fraction(), 1.0);  // argmax 0 for both
  EXPECT_NEAR(s.reference_perplexity(), 2.0, 1e-9);
  EXPECT_NEAR(s.reference_perplexity_error(), 0.0, 1e-9);
  HS_ASSERT_OK_AND_ASSIGN(auto self, perplexity(m, &m, kText, {.progress = false}));
  for (double k : self.kld) EXPECT_NEAR(k, 0.0, 1e-12);
  EXPECT_EQ(self.reference_perplexity(), self.perplexity());
}

TEST(Perplexity, RangeErrors) {
  FixedLogits m = skewed();
  auto big = perplexity(m, nullptr, kText, {.window = 5, .progress = false});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().message(),
            "perplexity: window 5 is outside [2, 4] (C - N = 8 - 4 of the model)");
  auto stride = perplexity(m, nullptr, kText, {.window = 3, .stride = 4, .progress = false});
  ASSERT_FALSE(stride.ok());
  EXPECT_EQ(stride.error().message(), "perplexity: stride 4 is outside [1, 3] (the window)");
  const std::vector<std::vector<int32_t>> one = {{1}};
  EXPECT_FALSE(perplexity(m, nullptr, one, {.progress = false}).ok());
}

}  // namespace
}  // namespace hs::ptq
