// matmul_f32 against ref::linear / ref::conv2d_1x1 and a double-precision loop, on every SIMD
// target this CPU runs: hand-computed cases, exact small-integer property tests, a stated
// rounding tolerance for real values, thread-count and row-slice invariance, and bad input.
#include "headsplit/kernels/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "headsplit/kernels/reference.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"
#include "testing/testing.h"

namespace hs::kernels {
namespace {

using Floats = std::vector<float>;

struct Dims {
  int64_t m, n, k;
};

// The shape grid of the task: M covers both paths (dot < 8 <= panel), K covers tails, the k
// blocks (256) and odd sizes, N covers partial 4- and 6-row tiles and the 48-row n blocks.
std::vector<Dims> shape_grid() {
  std::vector<Dims> out;
  for (int64_t m : {1, 2, 7, 32, 33}) {
    for (int64_t k : {1, 5, 64, 172, 576, 1000}) {
      for (int64_t n : {1, 3, 17, 64, 100}) out.push_back({m, n, k});
    }
  }
  return out;
}

// Runs fn once per runnable SIMD target, with dispatch forced to it.
template <typename Fn>
void for_each_target(Fn&& fn) {
  for (const SimdTarget& target : runnable_simd_targets()) {
    ScopedSimdTarget scope(target);
    SCOPED_TRACE("simd target " + target.name);
    fn();
  }
}

Floats transpose(const Floats& a, int64_t rows, int64_t cols) {
  Floats t(a.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = a[r * cols + c];
  }
  return t;
}

// Calls matmul_f32 in `layout` with token-major x[M,K]; returns token-major y[M,N].
Floats run_f32(const Dims& d, ActLayout layout, const Floats& x, const Floats& w,
               const Floats& bias, ThreadPool* pool) {
  const bool tm = layout == ActLayout::kTokenMajor;
  const Floats xin = tm ? x : transpose(x, d.m, d.k);
  Floats y(static_cast<size_t>(d.m * d.n), -1234.f);
  const Status s = matmul_f32({d.m, d.n, d.k, layout}, xin, {w, bias}, y, pool);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
  return tm ? y : transpose(y, d.n, d.m);
}

Floats random_floats(std::mt19937& rng, size_t count, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Floats v(count);
  for (float& f : v) f = dist(rng);
  return v;
}

Floats random_ints(std::mt19937& rng, size_t count, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  Floats v(count);
  for (float& f : v) f = static_cast<float>(dist(rng));
  return v;
}

TEST(SimdInfo, DispatchesToTheBestRunnableTargetAndCanBeForced) {
  const std::vector<SimdTarget> runnable = runnable_simd_targets();
  ASSERT_FALSE(runnable.empty());
  EXPECT_EQ(simd_target_name(), runnable.front().name);
  EXPECT_EQ(runnable.back().name, "SCALAR");  // the portable path is always runnable
  const std::vector<SimdTarget> compiled = compiled_simd_targets();
  for (const SimdTarget& t : runnable) {
    bool found = false;
    for (const SimdTarget& c : compiled) found = found || c.id == t.id;
    EXPECT_TRUE(found) << t.name;
    ScopedSimdTarget scope(t);
    EXPECT_EQ(simd_target_name(), t.name);
  }
  EXPECT_EQ(simd_target_name(), runnable.front().name);  // restored
}

TEST(MatmulF32, HandComputedDotPath) {
  // x[2,3] = {{1,2,3},{4,5,6}}, W[2,3] = {{1,0,-1},{2,1,0.5}}, bias = {0.5,-1}
  // y[0] = {1 - 3 + 0.5, 2 + 2 + 1.5 - 1} = {-1.5, 4.5}
  // y[1] = {4 - 6 + 0.5, 8 + 5 + 3 - 1}   = {-1.5, 15}
  const Floats x = {1, 2, 3, 4, 5, 6}, w = {1, 0, -1, 2, 1, 0.5f}, bias = {0.5f, -1};
  for_each_target([&] {
    for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
      EXPECT_EQ(run_f32({2, 2, 3}, layout, x, w, bias, nullptr), (Floats{-1.5f, 4.5f, -1.5f, 15}));
      EXPECT_EQ(run_f32({2, 2, 3}, layout, x, w, {}, nullptr), (Floats{-2, 5.5f, -2, 16}));
    }
  });
}

TEST(MatmulF32, HandComputedPanelPath) {
  // M = 9 (panel path), x[m,k] = m + 1, W[n,k] = n - k, K = 4, N = 3, bias[n] = 10 n:
  // y[m,n] = (m + 1) * sum_k (n - k) + 10 n = (m + 1) * (4 n - 6) + 10 n.
  const Dims d{9, 3, 4};
  Floats x(36), w(12), bias = {0, 10, 20}, expected(27);
  for (int m = 0; m < 9; ++m) {
    for (int k = 0; k < 4; ++k) x[m * 4 + k] = static_cast<float>(m + 1);
  }
  for (int n = 0; n < 3; ++n) {
    for (int k = 0; k < 4; ++k) w[n * 4 + k] = static_cast<float>(n - k);
  }
  for (int m = 0; m < 9; ++m) {
    for (int n = 0; n < 3; ++n)
      expected[m * 3 + n] = static_cast<float>((m + 1) * (4 * n - 6) + 10 * n);
  }
  for_each_target([&] {
    EXPECT_EQ(run_f32(d, ActLayout::kTokenMajor, x, w, bias, nullptr), expected);
    EXPECT_EQ(run_f32(d, ActLayout::kChannelMajor, x, w, bias, nullptr), expected);
  });
}

// Small integers: every product and partial sum is exact in float32 (|sum| <= 1000 * 64 + 8 <
// 2^24), so any summation order gives the exact result: fast == reference, bit for bit.
TEST(MatmulF32, ExactOnSmallIntegersOverTheShapeGrid) {
  std::mt19937 rng(1234);
  ThreadPool pool(2);
  int index = 0;
  for (const Dims& d : shape_grid()) {
    SCOPED_TRACE(::testing::Message() << "M=" << d.m << " N=" << d.n << " K=" << d.k);
    const Floats x = random_ints(rng, d.m * d.k, -8, 8), w = random_ints(rng, d.n * d.k, -8, 8);
    const Floats bias = random_ints(rng, d.n, -8, 8);
    Floats expected(d.m * d.n), expected_nobias(d.m * d.n);
    ref::linear({d.m, d.k, d.n}, x.data(), w.data(), bias.data(), expected.data());
    ref::linear({d.m, d.k, d.n}, x.data(), w.data(), nullptr, expected_nobias.data());
    const bool with_bias = (index++ % 2) == 0;  // alternate; the other layout gets the other
    for_each_target([&] {
      EXPECT_EQ(run_f32(d, ActLayout::kTokenMajor, x, w, with_bias ? bias : Floats{}, &pool),
                with_bias ? expected : expected_nobias);
      EXPECT_EQ(run_f32(d, ActLayout::kChannelMajor, x, w, with_bias ? Floats{} : bias, &pool),
                with_bias ? expected_nobias : expected);
    });
  }
}

TEST(MatmulF32, ChannelMajorMatchesRefConv1x1Exactly) {
  std::mt19937 rng(77);
  const int64_t m = 33, n = 17, k = 172;
  const Floats xt = random_ints(rng, k * m, -8, 8), w = random_ints(rng, n * k, -8, 8);
  const Floats bias = random_ints(rng, n, -8, 8);
  Floats expected(n * m);
  ref::conv2d_1x1({1, k, n, m}, xt.data(), w.data(), bias.data(), expected.data());
  for_each_target([&] {
    Floats y(n * m);
    HS_ASSERT_OK(matmul_f32({m, n, k, ActLayout::kChannelMajor}, xt, {w, bias}, y, nullptr));
    EXPECT_EQ(y, expected);
  });
}

// Real values: |fast - exact| <= (K + 4) * 2^-24 * (sum_k |x w| + |bias|), the bound gemm.h
// states (float sum of K terms in any order: gamma_K; one more rounding for the bias; slack for
// the 1 / (1 - K u) factor). The exact value is computed in double (error ~K * 2^-53).
TEST(MatmulF32, RealValuesWithinTheStatedRoundingBound) {
  std::mt19937 rng(42);
  ThreadPool pool(2);
  int index = 0;
  for (const Dims& d : shape_grid()) {
    SCOPED_TRACE(::testing::Message() << "M=" << d.m << " N=" << d.n << " K=" << d.k);
    const Floats x = random_floats(rng, d.m * d.k, -1, 1), w = random_floats(rng, d.n * d.k, -1, 1);
    const Floats bias = random_floats(rng, d.n, -1, 1);
    const bool with_bias = (index++ % 2) == 0;
    std::vector<double> exact(d.m * d.n), bound(d.m * d.n);
    for (int64_t m = 0; m < d.m; ++m) {
      for (int64_t n = 0; n < d.n; ++n) {
        double sum = with_bias ? bias[n] : 0.0, mag = with_bias ? std::fabs(bias[n]) : 0.0;
        for (int64_t k = 0; k < d.k; ++k) {
          const double p = static_cast<double>(x[m * d.k + k]) * w[n * d.k + k];
          sum += p;
          mag += std::fabs(p);
        }
        exact[m * d.n + n] = sum;
        bound[m * d.n + n] = static_cast<double>(d.k + 4) * std::ldexp(1.0, -24) * mag;
      }
    }
    for_each_target([&] {
      for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
        const Floats y = run_f32(d, layout, x, w, with_bias ? bias : Floats{}, &pool);
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_LE(std::fabs(y[i] - exact[i]), bound[i]) << "element " << i;
        }
      }
    });
  }
}

// The work split never changes a bit: no pool, 1 thread and 2 threads agree exactly.
TEST(MatmulF32, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(7);
  ThreadPool one(1), two(2);
  for (const Dims& d :
       {Dims{1, 100, 1000}, Dims{7, 64, 576}, Dims{33, 100, 1000}, Dims{32, 999, 300}}) {
    const Floats x = random_floats(rng, d.m * d.k, -1, 1), w = random_floats(rng, d.n * d.k, -1, 1);
    const Floats bias = random_floats(rng, d.n, -1, 1);
    for_each_target([&] {
      for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
        const Floats a = run_f32(d, layout, x, w, bias, nullptr);
        const Floats b = run_f32(d, layout, x, w, bias, &one);
        const Floats c = run_f32(d, layout, x, w, bias, &two);
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
        EXPECT_EQ(std::memcmp(a.data(), c.data(), a.size() * 4), 0);
      }
    });
  }
}

// Slicing W by rows (one head's output channels) gives bit-identical rows of y: what keeps the
// MHA -> SHA split exact on the fast kernels.
TEST(MatmulF32, RowSlicesAreBitIdentical) {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  for (const Dims& d : {Dims{1, 96, 200}, Dims{32, 96, 300}}) {
    const Floats x = random_floats(rng, d.m * d.k, -1, 1), w = random_floats(rng, d.n * d.k, -1, 1);
    for_each_target([&] {
      const Floats full = run_f32(d, ActLayout::kTokenMajor, x, w, {}, &pool);
      const int64_t n0 = 37, n1 = 64;  // rows [37, 64): not aligned to any tile
      const Floats ws(w.begin() + n0 * d.k, w.begin() + n1 * d.k);
      const Floats part = run_f32({d.m, n1 - n0, d.k}, ActLayout::kTokenMajor, x, ws, {}, &pool);
      for (int64_t m = 0; m < d.m; ++m) {
        for (int64_t n = n0; n < n1; ++n) {
          ASSERT_EQ(part[m * (n1 - n0) + (n - n0)], full[m * d.n + n]) << "m " << m << " n " << n;
        }
      }
    });
  }
}

TEST(MatmulF32, LargeMAndKBlocksExact) {
  // M = 300 > the 256-token m block, K = 600 spans three k blocks, N = 50 > one 48-row block.
  std::mt19937 rng(3);
  const Dims d{300, 50, 600};
  const Floats x = random_ints(rng, d.m * d.k, -4, 4), w = random_ints(rng, d.n * d.k, -4, 4);
  Floats expected(d.m * d.n);
  ref::linear({d.m, d.k, d.n}, x.data(), w.data(), nullptr, expected.data());
  ThreadPool pool(2);
  for_each_target([&] {
    EXPECT_EQ(run_f32(d, ActLayout::kTokenMajor, x, w, {}, &pool), expected);
    EXPECT_EQ(run_f32(d, ActLayout::kChannelMajor, x, w, {}, &pool), expected);
  });
}

// The panel path's contract, bit for bit: every y element is one multiply-add chain over k in
// increasing order started from +0, then + bias (FMA on targets with it: AVX2/AVX3; a rounded
// product then a rounded sum elsewhere). Checked by memcmp against that loop on seeded real
// values over shapes not multiples of any tile or block: M around the 16-token panels and the
// 256-token m blocks, N around the 6-row tiles and 48-row n blocks, K crossing the k blocks.
Floats chain_reference(const Dims& d, const Floats& x, const Floats& w, const Floats& bias,
                       bool fused) {
  Floats y(static_cast<size_t>(d.m * d.n));
  for (int64_t m = 0; m < d.m; ++m) {
    for (int64_t n = 0; n < d.n; ++n) {
      float acc = 0.f;
      for (int64_t k = 0; k < d.k; ++k) {
        if (fused) {
          acc = std::fma(x[m * d.k + k], w[n * d.k + k], acc);
        } else {
          volatile float product = x[m * d.k + k] * w[n * d.k + k];  // no contraction
          acc = acc + product;
        }
      }
      y[m * d.n + n] = bias.empty() ? acc : acc + bias[n];
    }
  }
  return y;
}

TEST(MatmulF32, PanelPathIsOneMultiplyAddChainPerElement) {
  std::mt19937 rng(21);
  ThreadPool pool(2);
  std::vector<Dims> dims;
  for (int64_t m : {8, 15, 17, 32, 47, 257}) {
    for (int64_t n : {1, 5, 7, 47, 49}) {
      for (int64_t k : {1, 15, 255, 257, 600}) dims.push_back({m, n, k});
    }
  }
  for (const Dims& d : dims) {
    SCOPED_TRACE("M " + std::to_string(d.m) + " N " + std::to_string(d.n) + " K " +
                 std::to_string(d.k));
    const Floats x = random_floats(rng, d.m * d.k, -1, 1), w = random_floats(rng, d.n * d.k, -1, 1);
    const Floats bias = random_floats(rng, d.n, -1, 1);
    const Floats fused = chain_reference(d, x, w, {}, true);
    const Floats fused_bias = chain_reference(d, x, w, bias, true);
    const Floats plain = chain_reference(d, x, w, {}, false);
    const Floats plain_bias = chain_reference(d, x, w, bias, false);
    for_each_target([&] {
      const bool has_fma = simd_target_name().rfind("AVX", 0) == 0;
      for (ActLayout layout : {ActLayout::kTokenMajor, ActLayout::kChannelMajor}) {
        const Floats y = run_f32(d, layout, x, w, {}, &pool);
        const Floats yb = run_f32(d, layout, x, w, bias, nullptr);
        EXPECT_EQ(std::memcmp(y.data(), (has_fma ? fused : plain).data(), y.size() * 4), 0);
        EXPECT_EQ(std::memcmp(yb.data(), (has_fma ? fused_bias : plain_bias).data(), yb.size() * 4),
                  0);
      }
    });
  }
}

TEST(MatmulF32, EmptyDimensions) {
  // K = 0: y = bias (or 0). M = 0 or N = 0: nothing to do.
  Floats y(6, -1.f);
  HS_ASSERT_OK(matmul_f32({2, 3, 0}, {}, {{}, Floats{1, 2, 3}}, y, nullptr));
  EXPECT_EQ(y, (Floats{1, 2, 3, 1, 2, 3}));
  HS_ASSERT_OK(matmul_f32({2, 3, 0, ActLayout::kChannelMajor}, {}, {{}, {}}, y, nullptr));
  EXPECT_EQ(y, (Floats(6, 0.f)));
  HS_ASSERT_OK(matmul_f32({0, 3, 4}, {}, {Floats(12, 1.f), {}}, {}, nullptr));
  HS_ASSERT_OK(matmul_f32({2, 0, 4}, Floats(8, 1.f), {{}, {}}, {}, nullptr));
}

TEST(MatmulF32, BadInputIsAnErrorNamingTheOperand) {
  const Floats x(6, 1.f), w(6, 1.f), bias(2, 0.f);
  Floats y(4, -7.f);
  auto expect_error = [&](const Status& s, ErrorKind kind, std::string_view needle) {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.kind(), kind);
    EXPECT_NE(s.error().message().find(needle), std::string::npos) << s.error().message();
    EXPECT_EQ(y, Floats(4, -7.f));  // untouched
  };
  expect_error(matmul_f32({2, 2, 3}, Floats(5), {w, {}}, y, nullptr), ErrorKind::kShape,
               "x has 5 elements, expected 6 = 2*3 (M*K)");
  expect_error(matmul_f32({2, 2, 3, ActLayout::kChannelMajor}, Floats(5), {w, {}}, y, nullptr),
               ErrorKind::kShape, "x has 5 elements, expected 6 = 3*2 (K*M)");
  expect_error(matmul_f32({2, 2, 3}, x, {Floats(7), {}}, y, nullptr), ErrorKind::kShape,
               "w has 7 elements, expected N*K = 2*3 = 6");
  expect_error(matmul_f32({2, 2, 3}, x, {w, Floats(3)}, y, nullptr), ErrorKind::kShape,
               "bias has 3 elements, expected N = 2");
  Floats y5(5);
  const Status s = matmul_f32({2, 2, 3}, x, {w, bias}, y5, nullptr);
  EXPECT_EQ(s.kind(), ErrorKind::kShape);
  EXPECT_NE(s.error().message().find("y has 5 elements, expected 4"), std::string::npos);
  expect_error(matmul_f32({-1, 2, 3}, x, {w, {}}, y, nullptr), ErrorKind::kInvalidArgument,
               "negative dimension in M=-1");
  expect_error(matmul_f32({int64_t{1} << 62, 4, 8}, x, {w, {}}, y, nullptr),
               ErrorKind::kInvalidArgument, "overflows");
}

}  // namespace
}  // namespace hs::kernels
