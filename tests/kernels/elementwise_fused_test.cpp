// binary_fq_f32 / binary_scalar_fq_f32 (one pass) against binary_f32 / binary_scalar_f32 then
// fake_quantize_f32 (two passes): bit for bit, every op, tail lengths, in place, values off the
// grid, NaN and saturating ones.
#include <gtest/gtest.h>

#include "headsplit/kernels/simd_info.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "headsplit/kernels/elementwise.h"

namespace hs::kernels {
namespace {

std::vector<float> values(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.f, 3.f);
  std::vector<float> v(n);
  for (float& x : v) {
    const uint32_t r = rng() % 20;
    x = r == 0 ? std::numeric_limits<float>::quiet_NaN() : r == 1 ? 1e30f : r == 2 ? -0.f : g(rng);
  }
  return v;
}

TEST(ElementwiseFused, BinaryThenFakeQuantInOnePassIsTheSameBits) {
  std::mt19937 rng(3);
  const FakeQuantParams fqs[] = {{.scale = 0.0625f, .zero_point = 0, .qmin = -128, .qmax = 127},
                                 {.scale = 0.013f, .zero_point = 32768, .qmin = 0, .qmax = 65535},
                                 {.scale = 3.f, .zero_point = 7, .qmin = 0, .qmax = 15}};
  for (const FakeQuantParams& fq : fqs) {
    for (BinaryKind op : {BinaryKind::kAdd, BinaryKind::kSub, BinaryKind::kMul, BinaryKind::kDiv}) {
      for (size_t n = 0; n <= 37; ++n) {
        const std::vector<float> a = values(n, rng), b = values(n, rng);
        const float c = values(1, rng)[0] + 0.5f;
        auto two_pass = [&](auto&& op_fn) {
          std::vector<float> y(n);
          op_fn(y.data());
          fake_quantize_f32(y.data(), static_cast<int64_t>(n), fq.scale, fq.zero_point, fq.qmin, fq.qmax);
          return y;
        };
        const auto ni = static_cast<int64_t>(n);
        std::vector<float> y(n);
        binary_fq_f32(op, a.data(), b.data(), y.data(), ni, fq);
        auto want = two_pass([&](float* o) { binary_f32(op, a.data(), b.data(), o, ni); });
        EXPECT_EQ(std::memcmp(y.data(), want.data(), n * 4), 0) << "full n=" << n;
        for (bool rhs : {true, false}) {
          binary_scalar_fq_f32(op, a.data(), c, rhs, y.data(), ni, fq);
          want = two_pass([&](float* o) { binary_scalar_f32(op, a.data(), c, rhs, o, ni); });
          EXPECT_EQ(std::memcmp(y.data(), want.data(), n * 4), 0) << "scalar n=" << n << " rhs=" << rhs;
        }
        std::vector<float> inplace = a;  // y == a
        binary_fq_f32(op, inplace.data(), b.data(), inplace.data(), ni, fq);
        want = two_pass([&](float* o) { binary_f32(op, a.data(), b.data(), o, ni); });
        EXPECT_EQ(std::memcmp(inplace.data(), want.data(), n * 4), 0) << "in place n=" << n;
      }
    }
  }
}

// abs_max_bits_f32 against a scalar loop over the bits: every length to 70 (vector bodies and
// tails), at every offset of 0..3 floats (unaligned loads), with negative values, -0, infinities
// and NaNs (whose patterns are above every finite one) at random places.
TEST(ElementwiseFused, AbsMaxBitsIsTheLargestMagnitudeAndFlagsInfAndNaN) {
  std::mt19937 rng(11);
  for (size_t n = 0; n <= 70; ++n) {
    for (size_t offset = 0; offset < 4; ++offset) {
      std::vector<float> buf = values(n + offset, rng);
      for (float& x : buf) {
        if (rng() % 7 == 0) x = -x;
        if (rng() % 50 == 0) x = -std::numeric_limits<float>::infinity();
      }
      const float* x = buf.data() + offset;
      uint32_t expect = 0;
      for (size_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, x + i, 4);
        expect = std::max(expect, bits & 0x7fffffffu);
      }
      EXPECT_EQ(abs_max_bits_f32(x, 1, static_cast<int64_t>(n), 0), expect) << "n " << n;
    }
  }
  const std::vector<float> small{-3.f, 2.5f, -0.f};
  const uint32_t got = abs_max_bits_f32(small.data(), 1, 3, 0);
  float v;
  std::memcpy(&v, &got, 4);
  EXPECT_EQ(v, 3.f);
  EXPECT_EQ(abs_max_bits_f32(small.data(), 1, 0, 0), 0u);
  // Strided rows (a cache's dead columns: rows of len at stride ld): only [r ld, r ld + len)
  // count; a NaN and a huge value between the windows are never read.
  for (const int64_t len : {1, 7, 16, 33}) {
    const int64_t rows = 5, ld = len + 9;
    std::vector<float> buf = values(static_cast<size_t>(rows * ld), rng);
    uint32_t expect = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < ld; ++i) {
        float& x = buf[static_cast<size_t>(r * ld + i)];
        if (i >= len) {
          x = i == len ? std::numeric_limits<float>::quiet_NaN() : 1e38f;
          continue;
        }
        if (x != x) x = 1.f;  // only finite values inside the windows
        uint32_t bits;
        std::memcpy(&bits, &x, 4);
        expect = std::max(expect, bits & 0x7fffffffu);
      }
    }
    EXPECT_EQ(abs_max_bits_f32(buf.data(), rows, len, ld), expect) << "len " << len;
    EXPECT_LT(abs_max_bits_f32(buf.data(), rows, len, ld), 0x7f800000u);
  }
}

// or_abs_bits_columns_f32 against a scalar OR per column, on every SIMD target: widths around
// the 4-vector steps and their tails, 1-5 strided rows, columns that are all +-0 (0) or hold one
// nonzero value in one row (non-zero), -0 and NaN among them; padding between rows never read.
TEST(ElementwiseFused, OrAbsBitsColumnsIsZeroExactlyForAllZeroColumns) {
  std::mt19937 rng(13);
  for (const SimdTarget& target : runnable_simd_targets()) {
    ScopedSimdTarget scope(target);
    SCOPED_TRACE(target.name);
    for (int64_t n : {0, 1, 15, 16, 63, 64, 65, 130}) {
      for (int64_t rows : {1, 2, 5}) {
        const int64_t ld = n + 3;
        std::vector<float> buf(static_cast<size_t>(rows * ld), 0.f);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < ld; ++j) {
            float& x = buf[static_cast<size_t>(r * ld + j)];
            if (j >= n) {
              x = std::numeric_limits<float>::quiet_NaN();  // padding
            } else if (rng() % 3 == 0) {
              const uint32_t kind = rng() % 4;
              x = kind == 0 ? -0.f
                  : kind == 1 ? std::numeric_limits<float>::quiet_NaN()
                              : std::ldexp(1.f, static_cast<int>(rng() % 200) - 140);
            }
          }
        }
        std::vector<int32_t> got(static_cast<size_t>(n) + 1, -7);
        or_abs_bits_columns_f32(buf.data(), rows, n, ld, got.data());
        for (int64_t j = 0; j < n; ++j) {
          int32_t want = 0;
          for (int64_t r = 0; r < rows; ++r) {
            int32_t bits;
            std::memcpy(&bits, &buf[static_cast<size_t>(r * ld + j)], 4);
            want |= bits;
          }
          EXPECT_EQ(got[static_cast<size_t>(j)], want & 0x7fffffff) << "n " << n << " col " << j;
        }
        EXPECT_EQ(got[static_cast<size_t>(n)], -7) << "wrote past n";
      }
    }
  }
}

}  // namespace
}  // namespace hs::kernels
