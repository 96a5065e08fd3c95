// Reference softmax, reduce_min and rms_norm: hand-computed rows, masked entries, strided
// (non-last) axes, rows of one element.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "headsplit/kernels/reference.h"

namespace hs::kernels::ref {
namespace {

using Floats = std::vector<float>;
using Dims64 = std::vector<int64_t>;

TEST(RefSoftmax, MaskedEntriesGetExactZero) {
  // Row {0, -255, 0}: m = 0, e = {1, exp(-255) = 0 (underflows in float), 1}, s = 2,
  // y = {0.5, 0, 0.5}.
  const Floats x = {0, -255, 0};
  Floats y(3);
  softmax({1, 3, 1}, x.data(), y.data());
  EXPECT_EQ(y, (Floats{0.5f, 0.f, 0.5f}));
}

TEST(RefSoftmax, SubtractsTheRowMax) {
  // Without the max shift exp(1000) overflows to inf and y = inf/inf = NaN; with it e = 1:
  // two rows of {1000, 1000} give 1/2 each, one row of four gives 1/4 each.
  const Floats x = {1000, 1000, 1000, 1000};
  Floats y(4);
  softmax({2, 2, 1}, x.data(), y.data());
  EXPECT_EQ(y, (Floats{0.5f, 0.5f, 0.5f, 0.5f}));
  softmax({1, 4, 1}, x.data(), y.data());
  EXPECT_EQ(y, (Floats{0.25f, 0.25f, 0.25f, 0.25f}));
}

TEST(RefSoftmax, RowOfOneElement) {
  const Floats x = {-3, 7};
  Floats y(2);
  softmax({2, 1, 1}, x.data(), y.data());
  EXPECT_EQ(y, (Floats{1, 1}));
}

TEST(RefSoftmax, NonLastAxis) {
  // x[3,2] softmax over axis 0 (columns): column 0 = {0, 0, -255} -> {0.5, 0.5, 0};
  // column 1 = {5, 5, 5} -> 1/3 each (e = 1, s = 3, y = 1/3 in float).
  const Floats x = {0, 5, 0, 5, -255, 5};
  Floats y(6);
  softmax(axis_dims(Dims64{3, 2}, 0), x.data(), y.data());
  const float third = 1.f / 3.f;
  EXPECT_EQ(y, (Floats{0.5f, third, 0.5f, third, 0, third}));
}

TEST(RefSoftmax, FollowsTheDocumentedExpression) {
  // y_j = exp(x_j - m) / (e_0 + e_1 + e_2), summed left to right.
  const Floats x = {0.5f, -1.25f, 2.f};
  Floats y(3);
  softmax({1, 3, 1}, x.data(), y.data());
  const float e0 = std::exp(0.5f - 2.f), e1 = std::exp(-1.25f - 2.f), e2 = std::exp(0.f);
  const float s = (e0 + e1) + e2;
  EXPECT_EQ(y, (Floats{e0 / s, e1 / s, e2 / s}));
}

TEST(RefReduceMin, BothAxes) {
  // x[2,3] = {{3, -1, 2}, {0, 5, -4}}: min over axis 1 = {-1, -4}; over axis 0 = {0,-1,-4}.
  const Floats x = {3, -1, 2, 0, 5, -4};
  const Dims64 s = {2, 3};
  Floats y1(2), y0(3);
  reduce_min(axis_dims(s, 1), x.data(), y1.data());
  reduce_min(axis_dims(s, 0), x.data(), y0.data());
  EXPECT_EQ(y1, (Floats{-1, -4}));
  EXPECT_EQ(y0, (Floats{0, -1, -4}));
}

TEST(RefRmsNorm, HandComputed) {
  // Row {2,2,2,2}, eps 0: ss = 16, 16/4 = 4, r = 1/2, y = (2 * 0.5) * w = w.
  // Row {1,-1,1,-1}, eps 3: ss = 4, 4/4 + 3 = 4, r = 1/2, y = {0.5,-0.5,0.5,-0.5} * w.
  const Floats x = {2, 2, 2, 2, 1, -1, 1, -1}, w = {1, 2, 3, 0.5f};
  Floats y(8);
  rms_norm(1, 4, x.data(), w.data(), 0.f, y.data());
  EXPECT_EQ(Floats(y.begin(), y.begin() + 4), w);
  rms_norm(2, 4, x.data(), w.data(), 3.f, y.data());
  // Row 0 with eps 3: ss/4 + 3 = 7, r = 1/sqrt(7).
  const float r = 1.f / std::sqrt(7.f);
  EXPECT_EQ(
      y, (Floats{(2 * r) * 1, (2 * r) * 2, (2 * r) * 3, (2 * r) * 0.5f, 0.5f, -1, 1.5f, -0.25f}));
}

TEST(RefLayerNorm, HandComputedWithAndWithoutBias) {
  // Row {1,3,1,3}, eps 3: mean 2, deviations {-1,1,-1,1}, var 1, 1 + 3 = 4, r = 1/2:
  //   y = {-0.5,0.5,-0.5,0.5} * w (+ b).
  // Row {5,5,5,5}: deviations 0, var 0, r = 1/sqrt(3): y = 0 * w (+ b) = b.
  const Floats x = {1, 3, 1, 3, 5, 5, 5, 5}, w = {1, 2, 4, -2}, b = {0.25f, -1, 0, 3};
  Floats y(8);
  layer_norm(2, 4, x.data(), w.data(), b.data(), 3.f, y.data());
  EXPECT_EQ(y, (Floats{-0.25f, 0, -2, 2, 0.25f, -1, 0, 3}));
  layer_norm(2, 4, x.data(), w.data(), nullptr, 3.f, y.data());
  EXPECT_EQ(y, (Floats{-0.5f, 1, -2, -1, 0, 0, 0, 0}));
  // Row {1,2,3,4}, eps 0.75: mean 2.5, var (2.25+0.25+0.25+2.25)/4 = 1.25, r = 1/sqrt(2).
  const Floats x2 = {1, 2, 3, 4}, ones = {1, 1, 1, 1};
  Floats y2(4);
  layer_norm(1, 4, x2.data(), ones.data(), nullptr, 0.75f, y2.data());
  const float r = 1.f / std::sqrt(2.f);
  EXPECT_EQ(y2, (Floats{-1.5f * r, -0.5f * r, 0.5f * r, 1.5f * r}));
}

TEST(RefAxisDims, SplitsAroundTheAxis) {
  const Dims64 s = {2, 3, 4, 5};
  const AxisDims d = axis_dims(s, 2);
  EXPECT_EQ(d.outer, 6);
  EXPECT_EQ(d.n, 4);
  EXPECT_EQ(d.inner, 5);
  EXPECT_EQ(count(s), 120);
  EXPECT_EQ(count(Dims64{}), 1);
}

}  // namespace
}  // namespace hs::kernels::ref
