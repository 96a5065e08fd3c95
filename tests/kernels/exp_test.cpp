// exp_f32 against std::exp(float), bit for bit: a strided sweep of all 2^32 float bit patterns
// by default (every 193rd: 22 M values, all exponents, signs, NaN payloads, the underflow and
// overflow edges), every float with HS_EXP_EXHAUSTIVE=1. The SIMD path is tested directly
// (exp_f32_simd_unchecked, no startup check), so a CPU or C library where it does not match
// fails here rather than falling back silently.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "headsplit/kernels/exp.h"

namespace hs::kernels {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Runs `run` over bit patterns start, start + stride, ... below 2^32 in blocks (odd block
// lengths exercise the scalar tail) and counts mismatches against std::exp.
template <typename Run>
uint64_t mismatches(uint64_t start, uint64_t stride, Run run, uint32_t* first_bad) {
  constexpr size_t kBlock = 4093;
  std::vector<float> x(kBlock), y(kBlock);
  uint64_t bad = 0;
  for (uint64_t u = start; u < (uint64_t{1} << 32);) {
    size_t m = 0;
    for (; m < kBlock && u < (uint64_t{1} << 32); ++m, u += stride)
      x[m] = float_of(static_cast<uint32_t>(u));
    run(x.data(), y.data(), static_cast<int64_t>(m));
    for (size_t j = 0; j < m; ++j) {
      if (bits_of(y[j]) != bits_of(std::exp(x[j]))) {
        if (bad++ == 0) *first_bad = bits_of(x[j]);
      }
    }
  }
  return bad;
}

TEST(ExpF32, SimdPathIsStdExpBitForBit) {
  float probe = 0.f, out = 0.f;
  if (!exp_f32_simd_unchecked(&probe, &out, 1)) {
    GTEST_SKIP() << "no AVX2 + FMA path here";
  }
  const char* env = std::getenv("HS_EXP_EXHAUSTIVE");
  const bool all = env != nullptr && std::strcmp(env, "1") == 0;
  uint32_t first = 0;
  const uint64_t bad = mismatches(all ? 0 : 11, all ? 1 : 193, [](const float* x, float* y,
                                                                  int64_t n) {
    exp_f32_simd_unchecked(x, y, n);
  }, &first);
  EXPECT_EQ(bad, 0u) << "first mismatch at x bits 0x" << std::hex << first;
  // On a CPU where the SIMD path exists and matches, the startup check must have chosen it.
  if (bad == 0) {
    EXPECT_TRUE(exp_f32_is_vectorized());
  }
}

TEST(ExpF32, DispatchedKernelIsStdExpInPlaceAndAtEdges) {
  // The edges of glibc's branches, signed zeros, infinities, NaNs, and a softmax-like ramp.
  std::vector<float> x = {0.f, -0.f, 88.f, -88.f, 0x1.62e42ep6f, 0x1.62e430p6f, -0x1.9fe368p6f,
                          -0x1.9fe36ap6f, -0x1.9d1d9ep6f, -104.f, -87.f, -87.5f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(), std::nanf(""),
                          float_of(0xffc01234u), float_of(0x7f800001u), 1e-30f, -1e-30f,
                          float_of(0x4202422fu), float_of(0xc27c65d9u)};  // r's FMA matters
  for (int k = 0; k < 300; ++k) x.push_back(-90.f + 0.3f * static_cast<float>(k));
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = std::exp(x[i]);
  std::vector<float> y = x;
  exp_f32(y.data(), y.data(), static_cast<int64_t>(y.size()));  // in place
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(bits_of(y[i]), bits_of(want[i])) << "x = " << x[i] << " (index " << i << ")";
  // Every length up to 9 from every offset: the 4-lane body and the tail.
  for (size_t off = 0; off < 4; ++off) {
    for (int64_t n = 0; n <= 9; ++n) {
      std::vector<float> out(x.size(), 7.f);
      exp_f32(x.data() + off, out.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bits_of(out[i]), bits_of(want[off + i]));
      ASSERT_EQ(out[n], 7.f) << "wrote past n = " << n;
    }
  }
}

}  // namespace
}  // namespace hs::kernels
