// matmul_quantized (int8 / int4 weights, per-channel and per-block scales) against
// ref::dequantize + ref::linear and a double-precision loop, on every SIMD target this CPU
// runs; int4 packing; thread-count and row-slice invariance; bad input.
#include "headsplit/kernels/qgemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "headsplit/kernels/reference.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"
#include "testing/testing.h"

namespace hs::kernels {
namespace {

using Floats = std::vector<float>;
using Bytes = std::vector<std::byte>;

struct Dims {
  int64_t m, n, k;
};

// A weight format: bits and block (0 = per channel).
struct Scheme {
  WeightBits bits;
  int64_t block;
};

std::string scheme_name(const Scheme& s) {
  return "int" + std::to_string(static_cast<int>(s.bits)) +
         (s.block == 0 ? " per-channel" : " block " + std::to_string(s.block));
}

// Block 20 is not a multiple of 16 (int4's scalar path); blocks 16/32/64 leave partial last
// blocks for most K of the grid.
std::vector<Scheme> schemes() {
  std::vector<Scheme> out;
  for (WeightBits bits : {WeightBits::kInt8, WeightBits::kInt4}) {
    for (int64_t block : {0, 16, 32, 64, 20}) out.push_back({bits, block});
  }
  return out;
}

std::vector<Dims> shape_grid() {
  std::vector<Dims> out;
  for (int64_t m : {1, 2, 7, 32, 33}) {
    for (int64_t k : {1, 5, 64, 172, 576, 1000}) {
      for (int64_t n : {1, 3, 17, 64, 100}) out.push_back({m, n, k});
    }
  }
  return out;
}

template <typename Fn>
void for_each_target(Fn&& fn) {
  for (const SimdTarget& target : runnable_simd_targets()) {
    ScopedSimdTarget scope(target);
    SCOPED_TRACE("simd target " + target.name);
    fn();
  }
}

int64_t blocks_per_row(const Scheme& s, int64_t k) {
  return s.block == 0 ? 1 : (k + s.block - 1) / s.block;
}

// Quantized weights of one case: q[N,K] (one value per int8), their storage and scales.
struct Weights {
  Scheme scheme;
  std::vector<int8_t> q;
  Bytes data;  // int8 [N,K] or packed int4 [N, ceil(K/2)]
  Floats scales;
  float scale(int64_t n, int64_t k, int64_t kdim) const {
    return scheme.block == 0 ? scales[n]
                             : scales[n * blocks_per_row(scheme, kdim) + k / scheme.block];
  }
};

// Random q in the format's range and scales from `scale_of`.
template <typename ScaleFn>
Weights make_weights(std::mt19937& rng, const Scheme& s, const Dims& d, ScaleFn&& scale_of) {
  Weights w{s, {}, {}, {}};
  const bool int8 = s.bits == WeightBits::kInt8;
  std::uniform_int_distribution<int> qdist(int8 ? -127 : -8, int8 ? 127 : 7);
  w.q.resize(d.n * d.k);
  for (int8_t& v : w.q) v = static_cast<int8_t>(qdist(rng));
  if (int8) {
    w.data.resize(w.q.size());
    std::memcpy(w.data.data(), w.q.data(), w.q.size());
  } else {
    w.data.resize(d.n * int4_row_bytes(d.k));
    EXPECT_TRUE(pack_int4(w.q, d.n, d.k, w.data).ok());
  }
  w.scales.resize(d.n * blocks_per_row(s, d.k));
  for (float& f : w.scales) f = scale_of(rng);
  return w;
}

Floats transpose(const Floats& a, int64_t rows, int64_t cols) {
  Floats t(a.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = a[r * cols + c];
  }
  return t;
}

// matmul_quantized in `layout` with token-major x[M,K]; returns token-major y[M,N].
Floats run_q(const Dims& d, ActLayout layout, const Floats& x, const Weights& w, const Floats& bias,
             ThreadPool* pool) {
  const bool tm = layout == ActLayout::kTokenMajor;
  const Floats xin = tm ? x : transpose(x, d.m, d.k);
  Floats y(d.m * d.n, -1234.f);
  const QuantizedWeights qw{w.scheme.bits, w.data, w.scales, w.scheme.block, bias};
  const Status s = matmul_quantized({d.m, d.n, d.k, layout}, xin, qw, y, pool);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
  return tm ? y : transpose(y, d.n, d.m);
}

// The project reference: ref::dequantize to float W, then ref::linear.
Floats reference(const Dims& d, const Floats& x, const Weights& w, const Floats& bias) {
  opset::QuantParams spec;
  spec.kind = w.scheme.block == 0 ? opset::QuantKind::kPerAxis : opset::QuantKind::kPerBlock;
  spec.qmin = w.scheme.bits == WeightBits::kInt8 ? -127 : -8;
  spec.qmax = w.scheme.bits == WeightBits::kInt8 ? 127 : 7;
  spec.axis = 0;
  spec.block_axis = 1;
  spec.block = w.scheme.block;
  spec.scales.assign(w.scales.begin(), w.scales.end());
  const int64_t shape[] = {d.n, d.k};
  Floats wf(d.n * d.k), y(d.m * d.n);
  ref::dequantize(reinterpret_cast<const std::byte*>(w.q.data()),
                  w.scheme.bits == WeightBits::kInt8 ? opset::DType::kI8 : opset::DType::kI4, shape,
                  spec, wf.data());
  ref::linear({d.m, d.k, d.n}, x.data(), wf.data(), bias.empty() ? nullptr : bias.data(), y.data());
  return y;
}

Floats random_ints(std::mt19937& rng, size_t count, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  Floats v(count);
  for (float& f : v) f = static_cast<float>(dist(rng));
  return v;
}

TEST(PackInt4, HandComputedBytes) {
  // Row 0: k = 0..4 = {1, -2, 7, -8, 3}: bytes {0xE1, 0x87, 0x03} (odd K: padding nibble 0).
  // Row 1: {-1, 0, 0, 0, -8}: bytes {0x0F, 0x00, 0x08}.
  const std::vector<int8_t> q = {1, -2, 7, -8, 3, -1, 0, 0, 0, -8};
  Bytes packed(6);
  HS_ASSERT_OK(pack_int4(q, 2, 5, packed));
  const Bytes expected = {std::byte{0xE1}, std::byte{0x87}, std::byte{0x03},
                          std::byte{0x0F}, std::byte{0x00}, std::byte{0x08}};
  EXPECT_EQ(packed, expected);
}

TEST(PackInt4, RejectsBadSizesAndValues) {
  Bytes packed(6);
  const Status bad_value =
      pack_int4(std::vector<int8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5, packed);
  EXPECT_EQ(bad_value.kind(), ErrorKind::kOutOfRange);
  EXPECT_NE(bad_value.error().message().find("q[1,2] = 8 is outside -8..7"), std::string::npos)
      << bad_value.error().message();
  const Status bad_q = pack_int4(std::vector<int8_t>(9), 2, 5, packed);
  EXPECT_EQ(bad_q.kind(), ErrorKind::kShape);
  EXPECT_NE(bad_q.error().message().find("q has 9 values, expected N*K = 2*5 = 10"),
            std::string::npos);
  Bytes small(5);
  const Status bad_packed = pack_int4(std::vector<int8_t>(10), 2, 5, small);
  EXPECT_EQ(bad_packed.kind(), ErrorKind::kShape);
  EXPECT_NE(bad_packed.error().message().find("packed has 5 bytes, expected N*ceil(K/2) = 2*3 = 6"),
            std::string::npos);
}

TEST(MatmulQuantized, HandComputed) {
  // x[2,3] = {{1,2,3},{4,5,6}}, Wq[2,3] = {{1,0,-1},{2,1,-8}}, bias = {0.5,-1}.
  // int8 per channel, scales {2, 0.5}:
  //   y[0] = {2 * (1 - 3) + 0.5, 0.5 * (2 + 2 - 24) - 1} = {-3.5, -11}
  //   y[1] = {2 * (4 - 6) + 0.5, 0.5 * (8 + 5 - 48) - 1} = {-3.5, -18.5}
  // int4 blocks of 2 (scales per row {s(k<2), s(k=2)}: row 0 {1, 4}, row 1 {0.25, 2}):
  //   y[0] = {1 + 0 - 12 + 0.5, 0.25 * (2 + 2) - 48 - 1} = {-10.5, -48}
  //   y[1] = {4 - 24 + 0.5, 0.25 * (8 + 5) - 96 - 1} = {-19.5, -93.75}
  const Floats x = {1, 2, 3, 4, 5, 6}, bias = {0.5f, -1};
  const std::vector<int8_t> q = {1, 0, -1, 2, 1, -8};
  Bytes i8(6), i4(4);
  std::memcpy(i8.data(), q.data(), 6);
  HS_ASSERT_OK(pack_int4(q, 2, 3, i4));
  for_each_target([&] {
    for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
      const Dims d{2, 2, 3};
      const Weights w8{{WeightBits::kInt8, 0}, q, i8, {2, 0.5f}};
      EXPECT_EQ(run_q(d, layout, x, w8, bias, nullptr), (Floats{-3.5f, -11, -3.5f, -18.5f}));
      const Weights w4{{WeightBits::kInt4, 2}, q, i4, {1, 4, 0.25f, 2}};
      EXPECT_EQ(run_q(d, layout, x, w4, bias, nullptr), (Floats{-10.5f, -48, -19.5f, -93.75f}));
    }
  });
}

// Small integers and power-of-two scales: every s * Wq * x and every partial sum is a multiple
// of 2^-2 below 2^21 in magnitude (|sum| <= 1000 * 4 * 127 * 2 + 8), so exact in float32 in any
// order: fast == ref::dequantize + ref::linear, bit for bit.
TEST(MatmulQuantized, ExactOnSmallIntegersOverTheShapeGrid) {
  std::mt19937 rng(2024);
  ThreadPool pool(2);
  auto pow2_scale = [](std::mt19937& r) {
    return std::ldexp(1.f, std::uniform_int_distribution<int>(-2, 1)(r));
  };
  int index = 0;
  for (const Scheme& s : schemes()) {
    SCOPED_TRACE(scheme_name(s));
    for (const Dims& d : shape_grid()) {
      SCOPED_TRACE(::testing::Message() << "M=" << d.m << " N=" << d.n << " K=" << d.k);
      const Weights w = make_weights(rng, s, d, pow2_scale);
      const Floats x = random_ints(rng, d.m * d.k, -4, 4), bias = random_ints(rng, d.n, -8, 8);
      const Floats expected = reference(d, x, w, bias), expected_nobias = reference(d, x, w, {});
      const bool with_bias = (index++ % 2) == 0;  // alternate; the other layout gets the other
      for_each_target([&] {
        EXPECT_EQ(run_q(d, ActLayout::kTokenMajor, x, w, with_bias ? bias : Floats{}, &pool),
                  with_bias ? expected : expected_nobias);
        EXPECT_EQ(run_q(d, ActLayout::kChannelMajor, x, w, with_bias ? Floats{} : bias, &pool),
                  with_bias ? expected_nobias : expected);
      });
    }
  }
}

// Real values: |fast - exact| <= (K + 4) * 2^-24 * (sum_k |s Wq x| + |bias|), the bound qgemm.h
// states: a K-term float sum (gamma_K) whose terms carry at most one extra rounding each (the
// scale product), one rounding for the bias and slack. Exact value in double.
TEST(MatmulQuantized, RealValuesWithinTheStatedRoundingBound) {
  std::mt19937 rng(99);
  ThreadPool pool(2);
  std::uniform_real_distribution<float> xdist(-1, 1);
  auto real_scale = [](std::mt19937& r) {
    return std::uniform_real_distribution<float>(1e-3f, 0.1f)(r);
  };
  int index = 0;
  for (const Scheme& s : schemes()) {
    SCOPED_TRACE(scheme_name(s));
    for (const Dims& d : {Dims{1, 17, 1000}, Dims{2, 64, 172}, Dims{7, 3, 576}, Dims{32, 100, 1000},
                          Dims{33, 17, 172}, Dims{1, 100, 64}, Dims{32, 64, 5}}) {
      SCOPED_TRACE(::testing::Message() << "M=" << d.m << " N=" << d.n << " K=" << d.k);
      const Weights w = make_weights(rng, s, d, real_scale);
      Floats x(d.m * d.k), bias(d.n);
      for (float& f : x) f = xdist(rng);
      for (float& f : bias) f = xdist(rng);
      const bool with_bias = (index++ % 2) == 0;
      std::vector<double> exact(d.m * d.n), bound(d.m * d.n);
      for (int64_t m = 0; m < d.m; ++m) {
        for (int64_t n = 0; n < d.n; ++n) {
          double sum = with_bias ? bias[n] : 0.0, mag = with_bias ? std::fabs(bias[n]) : 0.0;
          for (int64_t k = 0; k < d.k; ++k) {
            const double p =
                static_cast<double>(w.scale(n, k, d.k)) * w.q[n * d.k + k] * x[m * d.k + k];
            sum += p;
            mag += std::fabs(p);
          }
          exact[m * d.n + n] = sum;
          bound[m * d.n + n] = static_cast<double>(d.k + 4) * std::ldexp(1.0, -24) * mag;
        }
      }
      for_each_target([&] {
        for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
          const Floats y = run_q(d, layout, x, w, with_bias ? bias : Floats{}, &pool);
          for (size_t i = 0; i < y.size(); ++i) {
            ASSERT_LE(std::fabs(y[i] - exact[i]), bound[i]) << "element " << i;
          }
        }
      });
    }
  }
}

TEST(MatmulQuantized, ThreadCountAndRowSlicesDoNotChangeResults) {
  std::mt19937 rng(5);
  ThreadPool one(1), two(2);
  auto real_scale = [](std::mt19937& r) {
    return std::uniform_real_distribution<float>(1e-3f, 0.1f)(r);
  };
  for (const Scheme& s : schemes()) {
    SCOPED_TRACE(scheme_name(s));
    for (const Dims& d : {Dims{1, 100, 1000}, Dims{33, 100, 1000}, Dims{7, 96, 172}}) {
      const Weights w = make_weights(rng, s, d, real_scale);
      Floats x(d.m * d.k);
      for (float& f : x) f = std::uniform_real_distribution<float>(-1, 1)(rng);
      // Rows [37, 64) as their own weights (a head's slice of the output channels).
      const int64_t n0 = 37, n1 = 64, bpr = blocks_per_row(s, d.k);
      const int64_t row_bytes = s.bits == WeightBits::kInt8 ? d.k : int4_row_bytes(d.k);
      const Weights part{s, std::vector<int8_t>(w.q.begin() + n0 * d.k, w.q.begin() + n1 * d.k),
                         Bytes(w.data.begin() + n0 * row_bytes, w.data.begin() + n1 * row_bytes),
                         Floats(w.scales.begin() + n0 * bpr, w.scales.begin() + n1 * bpr)};
      for_each_target([&] {
        for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
          const Floats a = run_q(d, layout, x, w, {}, nullptr);
          const Floats b = run_q(d, layout, x, w, {}, &one);
          const Floats c = run_q(d, layout, x, w, {}, &two);
          EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
          EXPECT_EQ(std::memcmp(a.data(), c.data(), a.size() * 4), 0);
          const Floats p = run_q({d.m, n1 - n0, d.k}, layout, x, part, {}, &two);
          for (int64_t m = 0; m < d.m; ++m) {
            for (int64_t n = n0; n < n1; ++n) {
              ASSERT_EQ(p[m * (n1 - n0) + (n - n0)], a[m * d.n + n]) << "m " << m << " n " << n;
            }
          }
        }
      });
    }
  }
}

TEST(MatmulQuantized, Int4OddKIgnoresThePaddingNibble) {
  std::mt19937 rng(11);
  auto one_scale = [](std::mt19937&) { return 0.5f; };
  for (int64_t m : {1, 32}) {
    const Dims d{m, 9, 173};
    Weights w = make_weights(rng, {WeightBits::kInt4, 32}, d, one_scale);
    const Floats x = random_ints(rng, d.m * d.k, -4, 4);
    const Floats expected = reference(d, x, w, {});
    for (int64_t n = 0; n < d.n; ++n) {  // garbage in every row's padding nibble
      w.data[n * int4_row_bytes(d.k) + int4_row_bytes(d.k) - 1] |= std::byte{0xA0};
    }
    for_each_target(
        [&] { EXPECT_EQ(run_q(d, ActLayout::kTokenMajor, x, w, {}, nullptr), expected); });
  }
}

TEST(MatmulQuantized, BlockOfOneAndBlockLargerThanK) {
  std::mt19937 rng(12);
  auto pow2_scale = [](std::mt19937& r) {
    return std::ldexp(1.f, std::uniform_int_distribution<int>(-2, 1)(r));
  };
  for (const Scheme& s : {Scheme{WeightBits::kInt8, 1}, Scheme{WeightBits::kInt4, 1},
                          Scheme{WeightBits::kInt8, 4096}, Scheme{WeightBits::kInt4, 4096}}) {
    SCOPED_TRACE(scheme_name(s));
    for (int64_t m : {1, 33}) {
      const Dims d{m, 17, 300};
      const Weights w = make_weights(rng, s, d, pow2_scale);
      const Floats x = random_ints(rng, d.m * d.k, -4, 4);
      const Floats expected = reference(d, x, w, {});
      for_each_target(
          [&] { EXPECT_EQ(run_q(d, ActLayout::kTokenMajor, x, w, {}, nullptr), expected); });
    }
  }
}

TEST(MatmulQuantized, BadInputIsAnErrorNamingTheOperand) {
  const Floats x(6, 1.f);
  Floats y(4, -7.f);
  const Bytes i8(6), i4(4);
  const Floats scales(2, 1.f);
  auto expect_error = [&](const QuantizedWeights& w, ErrorKind kind, std::string_view needle) {
    const Status s = matmul_quantized({2, 2, 3}, x, w, y, nullptr);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.kind(), kind);
    EXPECT_NE(s.error().message().find(needle), std::string::npos) << s.error().message();
    EXPECT_EQ(y, Floats(4, -7.f));  // untouched
  };
  expect_error({WeightBits::kInt8, Bytes(5), scales, 0, {}}, ErrorKind::kShape,
               "int8 data has 5 bytes, expected 6 = 2*3 (N*K)");
  expect_error({WeightBits::kInt4, i8, scales, 0, {}}, ErrorKind::kShape,
               "int4 data has 6 bytes, expected 4 = 2*2 (N*ceil(K/2))");
  expect_error({WeightBits::kInt8, i8, Floats(3), 0, {}}, ErrorKind::kShape,
               "scales has 3 elements, expected N = 2 (per channel)");
  expect_error({WeightBits::kInt4, i4, scales, 2, {}}, ErrorKind::kShape,
               "scales has 2 elements, expected N*ceil(K/block) = 2*2 = 4 (block 2)");
  expect_error({WeightBits::kInt8, i8, scales, -1, {}}, ErrorKind::kInvalidArgument,
               "block must be >= 0");
  expect_error({static_cast<WeightBits>(5), i8, scales, 0, {}}, ErrorKind::kInvalidArgument,
               "bits must be 4 or 8, got 5");
  expect_error({WeightBits::kInt8, i8, scales, 0, Floats(1)}, ErrorKind::kShape,
               "bias has 1 elements, expected N = 2");
  const Status bad_x =
      matmul_quantized({2, 2, 3}, Floats(7), {WeightBits::kInt8, i8, scales, 0, {}}, y, nullptr);
  EXPECT_EQ(bad_x.kind(), ErrorKind::kShape);
  EXPECT_NE(bad_x.error().message().find("x has 7 elements"), std::string::npos);
}

}  // namespace
}  // namespace hs::kernels
