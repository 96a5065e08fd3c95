// exp_f32 / silu_f32 against std::exp and ref::silu, bit for bit, and the softmax kernels
// (which take their exps from exp_f32) against ref::softmax. The sweep covers every float bit
// pattern at a stride (HS_EXP_EXHAUSTIVE=1 in the environment: all 2^32 of them, ~1 minute).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/reference.h"

namespace hs::kernels {
namespace {

float from_bits(uint32_t b) {
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}
uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

// Compares exp_f32 and silu_f32 with the scalar forms on x[0, n); counts mismatches.
int64_t mismatches(const std::vector<float>& x, std::vector<float>& y, std::vector<float>& want) {
  const auto n = static_cast<int64_t>(x.size());
  int64_t bad = 0;
  exp_f32(x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[static_cast<size_t>(i)]);
    if (bits(e) != bits(y[static_cast<size_t>(i)])) {
      if (bad < 5) ADD_FAILURE() << "exp(" << x[static_cast<size_t>(i)] << "): " << y[static_cast<size_t>(i)] << " != " << e;
      ++bad;
    }
  }
  silu_f32(x.data(), y.data(), n);
  ref::silu(x.data(), n, want.data());
  for (int64_t i = 0; i < n; ++i) {
    if (bits(want[static_cast<size_t>(i)]) != bits(y[static_cast<size_t>(i)])) {
      if (bad < 5) ADD_FAILURE() << "silu(" << x[static_cast<size_t>(i)] << ")";
      ++bad;
    }
  }
  return bad;
}

TEST(ExpF32, SameBitsAsStdExpOverASweepOfAllFloats) {
  const bool all = std::getenv("HS_EXP_EXHAUSTIVE") != nullptr;
  const uint64_t stride = all ? 1 : 1021;  // prime: every exponent, varied low bits
  constexpr size_t kBatch = 1 << 16;
  std::vector<float> x, y(kBatch), want(kBatch);
  x.reserve(kBatch);
  int64_t bad = 0, tested = 0;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += stride) {
    x.push_back(from_bits(static_cast<uint32_t>(b)));
    if (x.size() == kBatch) {
      bad += mismatches(x, y, want);
      tested += static_cast<int64_t>(x.size());
      x.clear();
    }
  }
  bad += mismatches(x, y, want);
  tested += static_cast<int64_t>(x.size());
  EXPECT_EQ(bad, 0) << "of " << tested << " inputs (vector lanes: " << exp_f32_vectorized() << ")";
}

// Where glibc runs __expf_fma (x86-64 with AVX2 and FMA), the lanes must pass the check at
// first use; if they silently fell back to std::exp the kernels would be right but slow.
TEST(ExpF32, VectorLanesAreOnWhereGlibcRunsItsFmaPath) {
#if defined(__x86_64__) && defined(__GLIBC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_TRUE(exp_f32_vectorized());
    return;
  }
#endif
  GTEST_SKIP() << "not x86-64 glibc with AVX2 + FMA";
}

// The two inputs where glibc's algorithm without FMA contraction rounds differently from the
// FMA form (all 2^32 floats searched): the lanes must give libm's value there.
TEST(ExpF32, InputsWhereContractionMattersMatchLibm) {
  std::vector<float> x;
  for (uint32_t b : {0x4202422fu, 0xc27c65d9u}) x.push_back(from_bits(b));
  std::vector<float> padded(16, 0.5f);  // a full vector group
  padded[3] = x[0];
  padded[12] = x[1];
  std::vector<float> y(padded.size()), want(padded.size());
  EXPECT_EQ(mismatches(padded, y, want), 0);
}

TEST(ExpF32, EdgeValuesTailsAndInPlace) {
  // Slow-path lanes (|x| >= 88, inf, NaN) mixed into vector groups, every tail length.
  const std::vector<float> special = {0.f, -0.f, 88.f, -88.f, 88.72f, 89.f, -103.97f, -104.f,
                                      -150.f, std::numeric_limits<float>::infinity(),
                                      -std::numeric_limits<float>::infinity(),
                                      std::numeric_limits<float>::quiet_NaN(),
                                      std::numeric_limits<float>::denorm_min(), 1e-30f, -87.9f};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-20.f, 20.f);
  for (size_t n = 0; n <= 40; ++n) {
    std::vector<float> x(n), y(n), want(n);
    for (size_t i = 0; i < n; ++i) x[i] = (rng() % 3 == 0) ? special[rng() % special.size()] : u(rng);
    EXPECT_EQ(mismatches(x, y, want), 0) << "n = " << n;
    std::vector<float> inplace = x;
    exp_f32(inplace.data(), inplace.data(), static_cast<int64_t>(n));
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(bits(inplace[i]), bits(std::exp(x[i]))) << i;
  }
}

TEST(ExpF32, SoftmaxRowsEqualTheReference) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.f, 8.f);
  for (int64_t n : {1, 3, 8, 9, 31, 64, 257}) {
    const int64_t rows = 5;
    std::vector<float> x(static_cast<size_t>(rows * n)), y(x.size()), want(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const uint32_t r = rng() % 16;
      x[i] = r == 0 ? -1e9f : r == 1 ? -95.f : g(rng);  // masked, slow-path and plain columns
    }
    x[static_cast<size_t>(n / 2)] = -std::numeric_limits<float>::infinity();
    softmax_rows_f32(x.data(), y.data(), rows, n, nullptr);
    ref::softmax({.outer = rows, .n = n, .inner = 1}, x.data(), want.data());
    EXPECT_EQ(std::memcmp(y.data(), want.data(), x.size() * 4), 0) << "n = " << n;
  }
}

}  // namespace
}  // namespace hs::kernels
