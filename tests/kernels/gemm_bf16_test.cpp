// matmul_bf16 against a double-precision loop over the bfloat16-rounded operands (the bound of
// gemm_bf16.h), bf16_bits against hand-computed roundings, layout / thread / row-slice
// invariance, the forced-AVX2 refusal and bad input. Skipped (not passed) on CPUs without
// AVX512_BF16.
#include "headsplit/kernels/gemm_bf16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs::kernels {
namespace {

using Floats = std::vector<float>;

float bf(float v) { return std::bit_cast<float>(static_cast<uint32_t>(bf16_bits(v)) << 16); }

TEST(Bf16Bits, RoundsToNearestEven) {
  EXPECT_EQ(bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(bf16_bits(-2.0f), 0xc000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.0.
  EXPECT_EQ(bf16_bits(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to the even 1 + 2^-6.
  EXPECT_EQ(bf16_bits(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(bf16_bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // above the tie: up
  EXPECT_EQ(bf16_bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(bf16_bits(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to infinity
  const uint16_t nan = bf16_bits(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(std::bit_cast<float>(static_cast<uint32_t>(nan) << 16)));
  // A NaN whose payload is only in the low 16 bits stays a NaN (not infinity).
  const uint16_t low_nan = bf16_bits(std::bit_cast<float>(0x7f800001u));
  EXPECT_TRUE(std::isnan(std::bit_cast<float>(static_cast<uint32_t>(low_nan) << 16)));
}

TEST(ToBf16, PadsOddRowsAndChecksSizes) {
  auto m = to_bf16(Floats{1, 2, 3, 4, 5, 6}, 2, 3);
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->padded_k(), 4);
  EXPECT_EQ(std::vector<uint32_t>(m->pairs().begin(), m->pairs().end()),
            (std::vector<uint32_t>{0x40003f80, 0x00004040, 0x40a04080, 0x000040c0}));
  EXPECT_EQ(to_bf16(Floats(5), 2, 3).error().kind(), ErrorKind::kShape);
  EXPECT_EQ(to_bf16(Floats(), -1, 3).error().kind(), ErrorKind::kInvalidArgument);
}

// to_bf16 (the conversion instruction on AVX512_BF16 CPUs) rounds as bf16_bits: random values,
// ties both ways, infinities, values that round up to infinity and NaN, over row lengths that
// cover the 32-value steps, their tails and the odd pad. (Denormals are left out: the
// instruction may flush them, and matmul_bf16 treats denormal inputs as zero either way.)
TEST(ToBf16, RoundsEveryValueAsBf16Bits) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> bits(0x00800000u, 0x7f7fffffu);  // normal magnitudes
  for (int64_t k : {1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 172}) {
    const int64_t n = 3;
    std::vector<float> w(static_cast<size_t>(n * k));
    for (size_t i = 0; i < w.size(); ++i) {
      float v = std::bit_cast<float>(bits(rng));
      switch (i % 8) {
        case 1: v = std::bit_cast<float>(std::bit_cast<uint32_t>(v) & 0xffff8000u); break;  // tie
        case 2: v = -v; break;
        case 3: v = std::numeric_limits<float>::infinity(); break;
        case 4: v = std::numeric_limits<float>::max(); break;
        case 5: v = std::bit_cast<float>(0xffc00001u); break;  // a negative NaN
        default: break;
      }
      w[i] = v;
    }
    auto m = to_bf16(w, n, k);
    ASSERT_TRUE(m.ok());
    const int64_t kp2 = m->padded_k() / 2;
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < m->padded_k(); ++c) {
        const uint32_t pair = m->pairs()[static_cast<size_t>(r * kp2 + c / 2)];
        const auto got = static_cast<uint16_t>(c % 2 == 0 ? pair & 0xffffu : pair >> 16);
        const uint16_t want = c < k ? bf16_bits(w[static_cast<size_t>(r * k + c)]) : 0;
        ASSERT_EQ(got, want) << "K=" << k << " row " << r << " input " << c;
      }
    }
  }
}

class MatmulBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!bf16_matmul_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  }
};

struct Dims {
  int64_t m, n, k;
};

// y token-major [M,N] from token-major x[M,K], through `layout`.
Floats run(const Dims& d, ActLayout layout, const Floats& x, const Bf16Matrix& w,
           const Floats& bias, ThreadPool* pool) {
  Floats xin = x;
  if (layout == ActLayout::kChannelMajor) {
    for (int64_t m = 0; m < d.m; ++m)
      for (int64_t k = 0; k < d.k; ++k) xin[k * d.m + m] = x[m * d.k + k];
  }
  Floats y(static_cast<size_t>(d.m * d.n), std::nanf(""));
  const Status s = matmul_bf16({d.m, d.n, d.k, layout}, xin, w, bias, y, pool);
  EXPECT_TRUE(s.ok()) << s.error().message();
  if (layout == ActLayout::kTokenMajor) return y;
  Floats out(y.size());
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t m = 0; m < d.m; ++m) out[m * d.n + n] = y[n * d.m + m];
  return out;
}

Floats random_floats(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> dist(0.f, 1.f);
  Floats v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Every y element within the gemm_bf16.h bound of the exact sum of the rounded products, on
// both paths (M < 8 and >= 8, partial panels), odd K (the pad input), tails of 16 pairs,
// partial 6-row tiles, with and without bias, in both layouts.
TEST_F(MatmulBf16, WithinTheStatedBoundOfTheRoundedProducts) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (int64_t m : {1, 2, 3, 7, 8, 31, 32, 33, 70}) {
    for (int64_t k : {1, 2, 31, 33, 172, 576}) {
      for (int64_t n : {1, 5, 13, 64}) {
        const Dims d{m, n, k};
        const Floats x = random_floats(rng, static_cast<size_t>(m * k));
        const Floats wf = random_floats(rng, static_cast<size_t>(n * k));
        const Floats bias =
            (m + n) % 2 == 0 ? random_floats(rng, static_cast<size_t>(n)) : Floats{};
        auto w = to_bf16(wf, n, k);
        ASSERT_TRUE(w.ok());
        for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
          const Floats y = run(d, layout, x, *w, bias, (m + k) % 3 == 0 ? &pool : nullptr);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double exact = 0, mag = 0;
              for (int64_t q = 0; q < k; ++q) {
                const double p = static_cast<double>(bf(x[i * k + q])) * bf(wf[j * k + q]);
                exact += p;
                mag += std::fabs(p);
              }
              if (!bias.empty()) {
                exact += bias[j];
                mag += std::fabs(bias[j]);
              }
              const double bound = (k + 4) * 0x1p-24 * mag + k * 0x1p-126;
              ASSERT_LE(std::fabs(y[i * n + j] - exact), bound)
                  << "M=" << m << " N=" << n << " K=" << k << " at (" << i << "," << j << ")";
            }
          }
        }
      }
    }
  }
}

// Small integers (exact in bfloat16, and every partial sum exact in float32): y is exact.
TEST_F(MatmulBf16, SmallIntegersAreExact) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> v(-8, 8);
  for (int64_t m : {1, 5, 8, 40}) {
    const Dims d{m, 11, 67};
    Floats x(static_cast<size_t>(d.m * d.k)), wf(static_cast<size_t>(d.n * d.k));
    for (float& f : x) f = static_cast<float>(v(rng));
    for (float& f : wf) f = static_cast<float>(v(rng));
    const Bf16Matrix w = to_bf16(wf, d.n, d.k).value();
    const Floats y = run(d, ActLayout::kChannelMajor, x, w, {}, nullptr);
    for (int64_t i = 0; i < d.m; ++i) {
      for (int64_t j = 0; j < d.n; ++j) {
        float exact = 0;
        for (int64_t q = 0; q < d.k; ++q) exact += x[i * d.k + q] * wf[j * d.k + q];
        ASSERT_EQ(y[i * d.n + j], exact) << "M=" << m << " (" << i << "," << j << ")";
      }
    }
  }
}

// An element does not depend on the layout, the pool, N or the other rows: a row slice of W
// gives the same bits as the whole (the calibration graph slices nothing, but the split one
// may), and the pool splits rows only.
TEST_F(MatmulBf16, LayoutPoolAndRowSliceGiveTheSameBits) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  for (int64_t m : {1, 4, 32, 45}) {
    const Dims d{m, 300, 200};
    const Floats x = random_floats(rng, static_cast<size_t>(d.m * d.k));
    const Floats wf = random_floats(rng, static_cast<size_t>(d.n * d.k));
    const Bf16Matrix w = to_bf16(wf, d.n, d.k).value();
    const Floats a = run(d, ActLayout::kTokenMajor, x, w, {}, nullptr);
    EXPECT_EQ(run(d, ActLayout::kChannelMajor, x, w, {}, &pool), a);
    const int64_t r0 = 37, rows = 50;
    const Floats slice(wf.begin() + r0 * d.k, wf.begin() + (r0 + rows) * d.k);
    const Floats b =
        run({m, rows, d.k}, ActLayout::kTokenMajor, x, *to_bf16(slice, rows, d.k), {}, nullptr);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < rows; ++j) ASSERT_EQ(b[i * rows + j], a[i * d.n + r0 + j]);
  }
}

TEST_F(MatmulBf16, BadSizesAreErrorsAndLeaveYUntouched) {
  const Bf16Matrix w = to_bf16(Floats(12, 1.f), 3, 4).value();
  Floats y(6, 5.f);
  EXPECT_EQ(matmul_bf16({2, 3, 4}, Floats(7), w, {}, y, nullptr).error().kind(), ErrorKind::kShape);
  EXPECT_EQ(matmul_bf16({2, 3, 5}, Floats(10), w, {}, y, nullptr).error().kind(),
            ErrorKind::kShape);  // W's K is 4
  EXPECT_EQ(matmul_bf16({2, 3, 4}, Floats(8), w, Floats(2), y, nullptr).error().kind(),
            ErrorKind::kShape);
  EXPECT_EQ(y, Floats(6, 5.f));
}

TEST(MatmulBf16Target, RefusesWhenTheTargetIsForcedBelowAvx3) {
  for (const SimdTarget& t : runnable_simd_targets()) {
    if (t.name == "AVX3" || t.name == "AVX3_DL") continue;
    ScopedSimdTarget scope(t);
    EXPECT_FALSE(bf16_matmul_supported()) << t.name;
    Floats y(1);
    EXPECT_EQ(
        matmul_bf16({1, 1, 1}, Floats{1}, *to_bf16(Floats{1}, 1, 1), {}, y, nullptr).error().kind(),
        ErrorKind::kUnsupported);
  }
}

}  // namespace
}  // namespace hs::kernels
