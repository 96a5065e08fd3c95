// Reference elementwise kernels: hand-computed broadcast cases for add/sub/mul/div, eq and
// where; neg, silu, tanh and gelu (exact and tanh forms).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "headsplit/kernels/reference.h"

namespace hs::kernels::ref {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;
using Dims64 = std::vector<int64_t>;

TEST(RefBinary, SameShape) {
  const Floats a = {1, 2, 3, 4}, b = {4, 3, 2, 1};
  const Dims64 s = {2, 2};
  Floats y(4);
  binary(BinaryOp::kAdd, {a.data(), s}, {b.data(), s}, y.data(), s);
  EXPECT_EQ(y, (Floats{5, 5, 5, 5}));
  binary(BinaryOp::kSub, {a.data(), s}, {b.data(), s}, y.data(), s);
  EXPECT_EQ(y, (Floats{-3, -1, 1, 3}));
  binary(BinaryOp::kMul, {a.data(), s}, {b.data(), s}, y.data(), s);
  EXPECT_EQ(y, (Floats{4, 6, 6, 4}));
  binary(BinaryOp::kDiv, {a.data(), s}, {b.data(), s}, y.data(), s);
  EXPECT_EQ(y, (Floats{0.25f, 2.f / 3.f, 1.5f, 4}));
}

TEST(RefBinary, BroadcastsRowAgainstMatrix) {
  // a[2,3] + b[3]: b is added to each row.
  const Floats a = {1, 2, 3, 4, 5, 6}, b = {10, 20, 30};
  const Dims64 as = {2, 3}, bs = {3};
  Floats y(6);
  binary(BinaryOp::kAdd, {a.data(), as}, {b.data(), bs}, y.data(), as);
  EXPECT_EQ(y, (Floats{11, 22, 33, 14, 25, 36}));
  // b[3] - a[2,3]: operand order matters.
  binary(BinaryOp::kSub, {b.data(), bs}, {a.data(), as}, y.data(), as);
  EXPECT_EQ(y, (Floats{9, 18, 27, 6, 15, 24}));
}

TEST(RefBinary, BroadcastsBothOperands) {
  // a[2,1] * b[1,3] = outer product [2,3].
  const Floats a = {2, -1}, b = {1, 2, 3};
  const Dims64 as = {2, 1}, bs = {1, 3}, ys = {2, 3};
  Floats y(6);
  binary(BinaryOp::kMul, {a.data(), as}, {b.data(), bs}, y.data(), ys);
  EXPECT_EQ(y, (Floats{2, 4, 6, -1, -2, -3}));
}

TEST(RefBinary, ScalarAndMiddleAxisBroadcast) {
  // x[2,1,2] / s[] (rank 0): every element divided by 4.
  const Floats x = {1, 2, 3, 4}, s = {4};
  const Dims64 xs = {2, 1, 2}, ss = {};
  Floats y(4);
  binary(BinaryOp::kDiv, {x.data(), xs}, {s.data(), ss}, y.data(), xs);
  EXPECT_EQ(y, (Floats{0.25f, 0.5f, 0.75f, 1}));
  // x[2,1,2] + m[3,1] -> [2,3,2]: y[i,j,k] = x[i,0,k] + m[j,0].
  const Floats m = {0, 10, 20};
  const Dims64 ms = {3, 1}, ys = {2, 3, 2};
  Floats z(12);
  binary(BinaryOp::kAdd, {x.data(), xs}, {m.data(), ms}, z.data(), ys);
  EXPECT_EQ(z, (Floats{1, 2, 11, 12, 21, 22, 3, 4, 13, 14, 23, 24}));
}

TEST(RefEqual, BroadcastsAndGivesZeroOne) {
  // mask[1,4] == 0[1] -> {0,1,1,0}
  const Floats mask = {65535, 0, 0, 1}, zero = {0};
  const Dims64 ms = {1, 4}, zs = {1};
  Ints y(4, 7);
  equal({mask.data(), ms}, {zero.data(), zs}, y.data(), ms);
  EXPECT_EQ(y, (Ints{0, 1, 1, 0}));
}

TEST(RefWhere, BroadcastsThreeOperands) {
  // cond[2,1] picks a[2,3] for row 0 and b[] (the scalar -5) for row 1.
  const Ints cond = {1, 0};
  const Floats a = {1, 2, 3, 4, 5, 6}, b = {-5};
  const Dims64 cs = {2, 1}, as = {2, 3}, bs = {};
  Floats y(6);
  where({cond.data(), cs}, {a.data(), as}, {b.data(), bs}, y.data(), as);
  EXPECT_EQ(y, (Floats{1, 2, 3, -5, -5, -5}));
  // Any nonzero condition is true.
  const Ints cond2 = {0, 2, 0, -1, 0, 1};
  where({cond2.data(), as}, {a.data(), as}, {b.data(), bs}, y.data(), as);
  EXPECT_EQ(y, (Floats{-5, 2, -5, 4, -5, 6}));
}

TEST(RefUnary, Neg) {
  const Floats x = {1, -2, 0};
  Floats y(3);
  neg(x.data(), 3, y.data());
  EXPECT_EQ(y, (Floats{-1, 2, -0.f}));
  EXPECT_TRUE(std::signbit(y[2]));
}

TEST(RefUnary, Silu) {
  // silu(0) = 0 / (1 + 1) = 0; silu(-200): exp(200) overflows to inf, -200 / inf = -0;
  // silu(100): exp(-100) ~ 3.7e-44 is below half an ulp of 1, so 100 / 1 = 100.
  // silu(1) and silu(-1) follow the documented expression x / (1 + exp(-x)).
  const Floats x = {0, -200, 100, 1, -1};
  Floats y(5);
  silu(x.data(), 5, y.data());
  EXPECT_EQ(y[0], 0.f);
  EXPECT_EQ(y[1], 0.f);
  EXPECT_TRUE(std::signbit(y[1]));
  EXPECT_EQ(y[2], 100.f);
  EXPECT_EQ(y[3], 1.f / (1.f + std::exp(-1.f)));
  EXPECT_EQ(y[4], -1.f / (1.f + std::exp(1.f)));
  // Sanity against the real value silu(1) = 0.7310585786...
  EXPECT_NEAR(y[3], 0.7310585786, 1e-7);  // float rounding of a transcendental
}

TEST(RefUnary, Tanh) {
  // tanh(+-0) keeps the sign; tanh(+-20) rounds to +-1 in float; tanh(0.5) = 0.46211715726...
  const Floats x = {0, -0.f, 20, -20, 0.5f};
  Floats y(5);
  tanh(x.data(), 5, y.data());
  EXPECT_EQ(y[0], 0.f);
  EXPECT_TRUE(std::signbit(y[1]));
  EXPECT_EQ(y[2], 1.f);
  EXPECT_EQ(y[3], -1.f);
  EXPECT_NEAR(y[4], 0.46211715726000974, 1e-7);
}

TEST(RefUnary, GeluExactAndTanhForms) {
  // Real values (double precision, erf and tanh forms):
  //   x     exact                  tanh
  //   1     0.8413447460685429     0.8411919906082768
  //  -1    -0.15865525393145707   -0.15880800939172324
  //   2     1.9544997361036416     1.954597694087775
  //  -3    -0.00404969409489031   -0.0036373920817729943
  // gelu(0) = 0; gelu(10) = 10 (erf and tanh round to 1); gelu(-10) = -5 * 0 = -0.
  const Floats x = {1, -1, 2, -3, 0, 10, -10};
  const double exact[] = {0.8413447460685429, -0.15865525393145707, 1.9544997361036416,
                          -0.00404969409489031};
  const double approx[] = {0.8411919906082768, -0.15880800939172324, 1.954597694087775,
                           -0.0036373920817729943};
  Floats ye(7), yt(7);
  gelu(x.data(), 7, GeluApprox::kNone, ye.data());
  gelu(x.data(), 7, GeluApprox::kTanh, yt.data());
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(ye[i], exact[i], 2e-7) << i;  // float rounding of a transcendental
    EXPECT_NEAR(yt[i], approx[i], 2e-7) << i;
  }
  // The two forms differ by more than float rounding at x = -3 (0.4e-3): the attribute matters.
  EXPECT_GT(std::fabs(ye[3] - yt[3]), 1e-4f);
  for (const Floats* y : {&ye, &yt}) {
    EXPECT_EQ((*y)[4], 0.f);
    EXPECT_EQ((*y)[5], 10.f);
    EXPECT_EQ((*y)[6], 0.f);
    EXPECT_TRUE(std::signbit((*y)[6]));
  }
  // The documented float expressions, bit for bit.
  EXPECT_EQ(ye[0], 0.5f * (1.f + std::erf(1.f * 0.70710678f)));
  EXPECT_EQ(yt[2], (0.5f * 2.f) * (1.f + std::tanh(0.79788456f * (2.f + 0.044715f * 8.f))));
}

}  // namespace
}  // namespace hs::kernels::ref
