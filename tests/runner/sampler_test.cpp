// Sampler: greedy argmax with ties, the fixed splitmix64 stream, seeded reproducibility,
// top-k = 1 equals greedy, top-p keeps the smallest set reaching p, temperature shapes the
// distribution, option errors.
#include "headsplit/runner/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "testing/testing.h"

namespace hs::runner {
namespace {

std::vector<double> frequencies(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) counts[static_cast<size_t>(sampler.sample(logits))] += 1.0;
  for (double& c : counts) c /= draws;
  return counts;
}

TEST(Sampler, SplitMix64IsTheReferenceStream) {
  // splitmix64 (Vigna) from state 0: the published first outputs.
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next_u64(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.next_u64(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.next_u64(), 0x06c45d188009454fULL);
  // next_double = top 53 bits * 2^-53.
  SplitMix64 a(0);
  EXPECT_EQ(a.next_double(), static_cast<double>(0xe220a8397b1dcdafULL >> 11) / 9007199254740992.0);
}

TEST(Sampler, GreedyIsArgmaxLowestIdOnTies) {
  HS_ASSERT_OK_AND_ASSIGN(Sampler s, Sampler::create({}));
  EXPECT_TRUE(s.greedy());
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{-5.0f}), 0);
  EXPECT_EQ(s.sample(std::vector<float>{-1.0f, -0.5f, -0.5f}), 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(s.sample(std::vector<float>{nan, 1.0f, 2.0f}), 2);
  EXPECT_EQ(argmax(std::vector<float>{0.0f, 0.0f}), 0);
}

TEST(Sampler, SeededDrawsRepeat) {
  std::mt19937 rng(7);  // test-only logits
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(50);
  for (float& x : logits) x = normal(rng);
  SamplerOptions options{.temperature = 0.9f, .top_k = 20, .top_p = 0.95f, .seed = 1234};
  HS_ASSERT_OK_AND_ASSIGN(Sampler a, Sampler::create(options));
  HS_ASSERT_OK_AND_ASSIGN(Sampler b, Sampler::create(options));
  options.seed = 1235;
  HS_ASSERT_OK_AND_ASSIGN(Sampler c, Sampler::create(options));
  std::vector<int32_t> da, db, dc;
  for (int i = 0; i < 200; ++i) {
    da.push_back(a.sample(logits));
    db.push_back(b.sample(logits));
    dc.push_back(c.sample(logits));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(Sampler, TopKOneIsGreedy) {
  std::mt19937 rng(11);                            // test-only logits
  std::uniform_int_distribution<int> level(0, 7);  // few levels: many ties
  HS_ASSERT_OK_AND_ASSIGN(Sampler greedy, Sampler::create({}));
  HS_ASSERT_OK_AND_ASSIGN(Sampler top1,
                          Sampler::create({.temperature = 1.5f, .top_k = 1, .seed = 3}));
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<float> logits(30);
    for (float& x : logits) x = static_cast<float>(level(rng));
    EXPECT_EQ(top1.sample(logits), greedy.sample(logits)) << "trial " << trial;
  }
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  // probs 0.4, 0.3, 0.2, 0.1; top_k = 2 keeps ids 0, 1 with 4/7, 3/7.
  std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f), std::log(0.1f)};
  HS_ASSERT_OK_AND_ASSIGN(Sampler s, Sampler::create({.temperature = 1.0f, .top_k = 2, .seed = 5}));
  std::vector<double> f = frequencies(s, logits, 20000);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_EQ(f[3], 0.0);
  // Binomial sd at n = 20000 is 0.0035; 0.02 is more than 5 sd (seeded, so deterministic).
  EXPECT_NEAR(f[0], 4.0 / 7.0, 0.02);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // probs 0.5, 0.3, 0.15, 0.05 (temperature 1). Cumulative 0.5, 0.8, 0.95, 1.0:
  //   top_p 0.7 -> {0, 1} (0.5 < 0.7 <= 0.8), renormalized 0.625 / 0.375
  //   top_p 0.4 -> {0}
  //   top_p 0.9 -> {0, 1, 2}
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  HS_ASSERT_OK_AND_ASSIGN(Sampler p07, Sampler::create({.temperature = 1.0f, .top_p = 0.7f}));
  std::vector<double> f = frequencies(p07, logits, 20000);
  EXPECT_GT(f[1], 0.0);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_EQ(f[3], 0.0);
  // Binomial sd 0.0034 at n = 20000; tolerance 0.02 (seeded, so deterministic).
  EXPECT_NEAR(f[0], 0.625, 0.02);

  HS_ASSERT_OK_AND_ASSIGN(Sampler p04, Sampler::create({.temperature = 1.0f, .top_p = 0.4f}));
  EXPECT_EQ(frequencies(p04, logits, 2000)[0], 1.0);

  HS_ASSERT_OK_AND_ASSIGN(Sampler p09, Sampler::create({.temperature = 1.0f, .top_p = 0.9f}));
  f = frequencies(p09, logits, 20000);
  EXPECT_GT(f[2], 0.0);
  EXPECT_EQ(f[3], 0.0);
  EXPECT_NEAR(f[2], 0.15 / 0.95, 0.02);
}

TEST(Sampler, TemperatureShapesTheDistribution) {
  // logits 0, ln 2, ln 4: at T = 1 probs 1/7, 2/7, 4/7; at T = 2 probs ∝ 1, √2, 2.
  std::vector<float> logits = {0.0f, std::log(2.0f), std::log(4.0f)};
  constexpr int kDraws = 50000;
  // Binomial sd <= 0.0023 at n = 50000; tolerance 0.01 is over 4 sd (seeded: deterministic).
  constexpr double kTol = 0.01;
  HS_ASSERT_OK_AND_ASSIGN(Sampler t1, Sampler::create({.temperature = 1.0f, .seed = 42}));
  std::vector<double> f = frequencies(t1, logits, kDraws);
  EXPECT_NEAR(f[0], 1.0 / 7.0, kTol);
  EXPECT_NEAR(f[1], 2.0 / 7.0, kTol);
  EXPECT_NEAR(f[2], 4.0 / 7.0, kTol);
  HS_ASSERT_OK_AND_ASSIGN(Sampler t2, Sampler::create({.temperature = 2.0f, .seed = 42}));
  f = frequencies(t2, logits, kDraws);
  const double z = 1.0 + std::sqrt(2.0) + 2.0;
  EXPECT_NEAR(f[0], 1.0 / z, kTol);
  EXPECT_NEAR(f[1], std::sqrt(2.0) / z, kTol);
  EXPECT_NEAR(f[2], 2.0 / z, kTol);
}

TEST(Sampler, OptionErrorsNameTheOption) {
  auto t = Sampler::create({.temperature = -1.0f});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(t.error().message(), "sampler: temperature must be >= 0, got -1");
  auto nan = Sampler::create({.temperature = std::numeric_limits<float>::quiet_NaN()});
  EXPECT_EQ(nan.kind(), ErrorKind::kInvalidArgument);
  auto k = Sampler::create({.top_k = -2});
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().message(), "sampler: top_k must be >= 0, got -2");
  auto p0 = Sampler::create({.top_p = 0.0f});
  ASSERT_FALSE(p0.ok());
  EXPECT_EQ(p0.error().message(), "sampler: top_p must be in (0, 1], got 0");
  EXPECT_FALSE(Sampler::create({.top_p = 1.5f}).ok());
}

}  // namespace
}  // namespace hs::runner
