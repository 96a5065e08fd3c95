// Reference conv2d (1x1), linear and matmul: hand-computed cases, broadcast batch dims and
// the summation order promised by the determinism contract.
#include <gtest/gtest.h>

#include <vector>

#include "headsplit/kernels/reference.h"

namespace hs::kernels::ref {
namespace {

using Floats = std::vector<float>;

TEST(RefConv2d, HandComputedWithBias) {
  // x[N=1,Ci=2,S=2]: channel 0 = {1, 2}, channel 1 = {3, 4}.
  // w[Co=2,Ci=2] = {{1, 10}, {100, 1000}}, bias = {0.5, -1}.
  // y[0,0,:] = {1*1 + 10*3 + 0.5, 1*2 + 10*4 + 0.5} = {31.5, 42.5}
  // y[0,1,:] = {100*1 + 1000*3 - 1, 100*2 + 1000*4 - 1} = {3099, 4199}
  const Floats x = {1, 2, 3, 4}, w = {1, 10, 100, 1000}, bias = {0.5f, -1};
  Floats y(4, -7.f);
  conv2d_1x1({1, 2, 2, 2}, x.data(), w.data(), bias.data(), y.data());
  EXPECT_EQ(y, (Floats{31.5f, 42.5f, 3099, 4199}));
}

TEST(RefConv2d, TwoImagesWithoutBias) {
  // x[N=2,Ci=1,S=3]; w[Co=2,Ci=1] = {2, -1}: y[n,o,s] = w[o] * x[n,0,s].
  const Floats x = {1, 2, 3, 10, 20, 30}, w = {2, -1};
  Floats y(12);
  conv2d_1x1({2, 1, 2, 3}, x.data(), w.data(), nullptr, y.data());
  EXPECT_EQ(y, (Floats{2, 4, 6, -1, -2, -3, 20, 40, 60, -10, -20, -30}));
}

TEST(RefLinear, HandComputed) {
  // x[2,3] = {{1,2,3},{4,5,6}}, w[2,3] = {{1,0,-1},{0.5,0.5,0.5}}, bias = {1, 2}
  // y[0] = {1 - 3 + 1, 0.5*6 + 2} = {-1, 5};  y[1] = {4 - 6 + 1, 0.5*15 + 2} = {-1, 9.5}
  const Floats x = {1, 2, 3, 4, 5, 6}, w = {1, 0, -1, 0.5f, 0.5f, 0.5f}, bias = {1, 2};
  Floats y(4);
  linear({2, 3, 2}, x.data(), w.data(), bias.data(), y.data());
  EXPECT_EQ(y, (Floats{-1, 5, -1, 9.5f}));
  linear({2, 3, 2}, x.data(), w.data(), nullptr, y.data());
  EXPECT_EQ(y, (Floats{-2, 3, -2, 7.5f}));
}

TEST(RefLinear, SumsInIncreasingOrderThenAddsBias) {
  // acc = ((0 + 1) + 1e8) - 1e8: 1e8 + 1 rounds to 1e8 (ulp(1e8) = 8), so acc = 0 and
  // y = 0 + bias = 1. Summing in reverse order gives (1e8 - 1e8) + 1 + bias = 2; adding the
  // bias first gives ((1 + 1) + 1e8) - 1e8 = 0.
  const Floats x = {1, 1e8f, -1e8f}, w = {1, 1, 1}, bias = {1};
  float y = 0;
  linear({1, 3, 1}, x.data(), w.data(), bias.data(), &y);
  EXPECT_EQ(y, 1.f);
}

TEST(RefLinear, NoFusedMultiplyAdd) {
  // a = 1 + 2^-12. Rounded: a*a = 1 + 2^-11 (the 2^-24 term is a tie to even), and
  // (a*a) + (a*-a) = 0 exactly. A fused multiply-add would keep the 2^-24 and give -2^-24.
  const float a = 1.f + 0x1p-12f;
  const Floats x = {a, a}, w = {a, -a};
  float y = 1;
  linear({1, 2, 1}, x.data(), w.data(), nullptr, &y);
  EXPECT_EQ(y, 0.f);
}

TEST(RefMatMul, HandComputed2D) {
  // a[2,3] = {{1,2,3},{4,5,6}}, b[3,2] = {{1,0},{0,1},{1,1}}
  // y = {{1+3, 2+3}, {4+6, 5+6}} = {{4,5},{10,11}}
  const Floats a = {1, 2, 3, 4, 5, 6}, b = {1, 0, 0, 1, 1, 1};
  const std::vector<int64_t> as = {2, 3}, bs = {3, 2}, ys = {2, 2};
  Floats y(4);
  matmul({a.data(), as}, {b.data(), bs}, y.data(), ys);
  EXPECT_EQ(y, (Floats{4, 5, 10, 11}));
}

TEST(RefMatMul, BroadcastsBatchDims) {
  // a[2,1,1,2] (two row vectors), b[3,2,1] (three column vectors) -> y[2,3,1,1]:
  // y[i,j] = a[i] . b[j].
  const Floats a = {1, 2, 10, 20};
  const Floats b = {1, 0, 0, 1, 1, 1};
  const std::vector<int64_t> as = {2, 1, 1, 2}, bs = {3, 2, 1}, ys = {2, 3, 1, 1};
  Floats y(6);
  matmul({a.data(), as}, {b.data(), bs}, y.data(), ys);
  EXPECT_EQ(y, (Floats{1, 2, 3, 10, 20, 30}));
}

TEST(RefMatMul, RankThreeAgainstRankTwo) {
  // a[2,1,2] @ b[2,2] (b shared by both batches); b = {{1,2},{3,4}}.
  // a[0] = {1,1} -> {4,6};  a[1] = {0,-1} -> {-3,-4}
  const Floats a = {1, 1, 0, -1}, b = {1, 2, 3, 4};
  const std::vector<int64_t> as = {2, 1, 2}, bs = {2, 2}, ys = {2, 1, 2};
  Floats y(4);
  matmul({a.data(), as}, {b.data(), bs}, y.data(), ys);
  EXPECT_EQ(y, (Floats{4, 6, -3, -4}));
}

}  // namespace
}  // namespace hs::kernels::ref
