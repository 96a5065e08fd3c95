// Observer params and weight quantization: hand-computed cases (round half to even, clamping,
// per-channel, per-block with a partial last block), eps floors, bad input.
#include "headsplit/quant/params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "headsplit/kernels/qgemm.h"
#include "headsplit/kernels/quant.h"
#include "headsplit/kernels/reference.h"
#include "testing/testing.h"

namespace hs::quant {
namespace {

Range range_of(std::vector<float> v) {
  Range r;
  r.observe(v);
  return r;
}

std::vector<int8_t> ints(const QuantizedWeight& w) {
  std::vector<int8_t> q(w.data.size);
  std::memcpy(q.data(), w.data.bytes().data(), q.size());
  return q;
}

TEST(Range, TracksMinAndMaxAcrossCalls) {
  Range r;
  EXPECT_TRUE(r.empty());
  r.observe(std::vector<float>{0.5f, -2.0f, 1.0f});
  r.observe(std::vector<float>{3.0f});
  EXPECT_EQ(r.min, -2.0f);
  EXPECT_EQ(r.max, 3.0f);
  Range other = range_of({-7.0f, 0.0f});
  r.merge(other);
  EXPECT_EQ(r.min, -7.0f);
  EXPECT_EQ(r.max, 3.0f);
  r.merge(Range{});  // empty: no change
  EXPECT_EQ(r.min, -7.0f);
}

TEST(ActivationParams, HandComputedAsymmetric) {
  // [-1, 3] at 8 bits: scale = 4/255, zero point = 0 - round(-1 / (4/255)) = round(63.75) = 64.
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams p8, activation_params(range_of({-1.0f, 3.0f}), 8, "x"));
  EXPECT_EQ(p8.kind, ir::QuantKind::kPerTensor);
  EXPECT_EQ(p8.bits, 8);
  EXPECT_EQ(p8.qmin, 0);
  EXPECT_EQ(p8.qmax, 255);
  EXPECT_EQ(p8.scales[0], 4.0f / 255.0f);
  EXPECT_EQ(p8.zero_points[0], 64);
  EXPECT_EQ(activation_dtype(8), ir::DType::kU8);
  EXPECT_EQ(activation_dtype(16), ir::DType::kU16);

  // All positive [0.5, 2] at 16 bits: the range is widened to include 0: scale 2/65535, zp 0.
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams pos, activation_params(range_of({0.5f, 2.0f}), 16, "y"));
  EXPECT_EQ(pos.scales[0], 2.0f / 65535.0f);
  EXPECT_EQ(pos.zero_points[0], 0);
  EXPECT_EQ(pos.qmax, 65535);
  // All negative [-2, -1]: hi widened to 0, zero point at the top of the range.
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams neg,
                          activation_params(range_of({-2.0f, -1.0f}), 16, "z"));
  EXPECT_EQ(neg.scales[0], 2.0f / 65535.0f);
  EXPECT_EQ(neg.zero_points[0], 65535);
}

TEST(ActivationParams, RoundTripAndClamping) {
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams p, activation_params(range_of({-1.0f, 3.0f}), 8, "x"));
  const float s = p.scales[0];
  const int32_t zp = p.zero_points[0];
  // 0 is exact; values inside the range come back within half a step.
  EXPECT_EQ(kernels::fake_quantize_one(0.0f, s, zp, 0, 255), 0.0f);
  for (float x : {-1.0f, -0.3f, 0.01f, 1.7f, 2.99f}) {
    EXPECT_LE(std::fabs(kernels::fake_quantize_one(x, s, zp, 0, 255) - x), s / 2 * 1.0001f) << x;
  }
  // Outside the range: clamped to q = 255 (top) and q = 0 (bottom).
  EXPECT_EQ(kernels::quantize_one(10.0f, s, zp, 0, 255), 255);
  EXPECT_EQ(kernels::fake_quantize_one(10.0f, s, zp, 0, 255), s * static_cast<float>(255 - 64));
  EXPECT_EQ(kernels::quantize_one(-5.0f, s, zp, 0, 255), 0);
  EXPECT_EQ(kernels::fake_quantize_one(-5.0f, s, zp, 0, 255), s * -64.0f);
}

TEST(ActivationParams, EpsFloorsForConstantActivations) {
  // A constant-zero activation has an empty span: the scale is the floor, not 0 or NaN.
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams z8, activation_params(range_of({0.0f, 0.0f}), 8, "z"));
  EXPECT_EQ(z8.scales[0], std::ldexp(1.0f, -21));
  EXPECT_EQ(z8.zero_points[0], 0);
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams z16, activation_params(range_of({0.0f}), 16, "z"));
  EXPECT_EQ(z16.scales[0], std::ldexp(1.0f, -29));
  EXPECT_EQ(kernels::fake_quantize_one(0.0f, z16.scales[0], z16.zero_points[0], 0, 65535), 0.0f);
  // A tiny constant: the span 1e-9 / 255 is below the 8-bit floor, so the floor is used.
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams tiny, activation_params(range_of({1e-9f}), 8, "t"));
  EXPECT_EQ(tiny.scales[0], std::ldexp(1.0f, -21));
  // A constant 3.0: the range [0, 3] (zero included) gives 3/255 and 3.0 maps to q = 255.
  HS_ASSERT_OK_AND_ASSIGN(ir::QuantParams c, activation_params(range_of({3.0f, 3.0f}), 8, "c"));
  EXPECT_EQ(c.scales[0], 3.0f / 255.0f);
  EXPECT_EQ(kernels::quantize_one(3.0f, c.scales[0], c.zero_points[0], 0, 255), 255);
}

TEST(ActivationParams, BadRangesNameTheValue) {
  auto empty = activation_params(Range{}, 16, "value 'layers.0.h'");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(empty.error().message().find("value 'layers.0.h'"), std::string::npos);
  auto nan = activation_params(range_of({1.0f, std::nanf("")}), 16, "value 'n'");
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.error().message().find("NaN"), std::string::npos) << nan.error().message();
  auto inf = activation_params(range_of({1.0f, INFINITY}), 16, "value 'i'");
  ASSERT_FALSE(inf.ok());
  EXPECT_NE(inf.error().message().find("not finite"), std::string::npos);
  EXPECT_FALSE(activation_params(range_of({1.0f}), 12, "b").ok());
}

TEST(MaskParams, AttendIsZeroAndMaskedIsMinus255) {
  const ir::QuantParams m = mask_params();
  EXPECT_EQ(m.bits, 16);
  EXPECT_EQ(m.zero_points[0], 65535);
  EXPECT_EQ(m.scales[0], 255.0f / 65535.0f);
  EXPECT_EQ(kernels::dequantize_one(65535, m.scales[0], m.zero_points[0]), 0.0f);
  EXPECT_NEAR(kernels::dequantize_one(0, m.scales[0], m.zero_points[0]), -255.0f, 1e-4f);
}

TEST(QuantizeWeight, PerChannelInt8HandComputed) {
  // Row 0: max |w| = 63.5 -> scale 0.5; -1.25 / 0.5 = -2.5 is a tie: half to even gives -2.
  // Row 1: all zero -> the weight floor 2^-29, every q = 0 (no division by zero, no NaN).
  // Row 2: max |w| = 3.5 -> scale 3.5/127; 1 -> 36.29 -> 36, -2 -> -72.57 -> -73,
  //        3 -> 108.86 -> 109, -3.5 -> -127.
  const std::vector<float> w = {63.5f, -1.25f, 0.75f, 10.0f, 0, 0, 0, 0, 1.0f, -2.0f, 3.0f, -3.5f};
  HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight q, quantize_weight(w, {3, 4}, {8, 0}, "w"));
  EXPECT_EQ(q.type.dtype, ir::DType::kI8);
  EXPECT_EQ(q.type.shape, (ir::Shape{3, 4}));
  EXPECT_EQ(q.type.quant.kind, ir::QuantKind::kPerAxis);
  EXPECT_EQ(q.type.quant.axis, 0);
  EXPECT_EQ(q.type.quant.qmin, -127);
  EXPECT_EQ(q.type.quant.qmax, 127);
  EXPECT_EQ(q.type.quant.scales, (std::vector<float>{0.5f, std::ldexp(1.0f, -29), 3.5f / 127.0f}));
  EXPECT_EQ(q.type.quant.zero_points, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(ints(q), (std::vector<int8_t>{127, -2, 2, 20, 0, 0, 0, 0, 36, -73, 109, -127}));
  HS_EXPECT_OK(ir::check_quant(q.type, "w"));
  // Round trip of row 0: exact where w is a multiple of the scale; the tie loses half a step.
  const std::vector<int8_t> qs = ints(q);
  EXPECT_EQ(0.5f * qs[0], 63.5f);
  EXPECT_EQ(0.5f * qs[1], -1.0f);
  EXPECT_EQ(0.5f * qs[3], 10.0f);
}

TEST(QuantizeWeight, PerChannelInt4HandComputed) {
  // max |w| = 3.5 -> scale 0.5: 3.5 -> 7, -1 -> -2, 0.25 -> 0.5 -> tie -> 0, -3.25 -> -6.5 -> -6.
  const std::vector<float> w = {3.5f, -1.0f, 0.25f, -3.25f};
  HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight q, quantize_weight(w, {1, 4, 1, 1}, {4, 0}, "w"));
  EXPECT_EQ(q.type.dtype, ir::DType::kI4);
  EXPECT_EQ(q.type.quant.qmin, -7);
  EXPECT_EQ(q.type.quant.qmax, 7);
  EXPECT_EQ(q.type.quant.bits, 4);
  EXPECT_EQ(q.type.quant.scales, (std::vector<float>{0.5f}));
  EXPECT_EQ(ints(q), (std::vector<int8_t>{7, -2, 0, -6}));
}

TEST(QuantizeWeight, PerBlockWithPartialLastBlockHandComputed) {
  // [2, 5, 1, 1] conv weight, blocks of 2 along axis 1: {0,1}, {2,3}, {4} (partial).
  // Row 0: {7, -3.5} -> scale 1, q 7, -4 (tie -3.5 -> -4); {1.75, 0.5} -> 0.25, q 7, 2;
  //        {-14} -> 2, q -7.
  // Row 1: {0, 0} -> floor 2^-29, q 0, 0; {3.5, -1.5} -> 0.5, q 7, -3; {0} -> floor, q 0.
  const std::vector<float> w = {7.0f, -3.5f, 1.75f, 0.5f, -14.0f, 0, 0, 3.5f, -1.5f, 0};
  HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight q, quantize_weight(w, {2, 5, 1, 1}, {4, 2, false}, "w"));
  const float floor = std::ldexp(1.0f, -29);
  EXPECT_EQ(q.type.dtype, ir::DType::kI4);
  EXPECT_EQ(q.type.quant.kind, ir::QuantKind::kPerBlock);
  EXPECT_EQ(q.type.quant.axis, 0);
  EXPECT_EQ(q.type.quant.block_axis, 1);
  EXPECT_EQ(q.type.quant.block, 2);
  EXPECT_EQ(q.type.quant.scales, (std::vector<float>{1.0f, 0.25f, 2.0f, floor, 0.5f, floor}));
  EXPECT_EQ(ints(q), (std::vector<int8_t>{7, -4, 7, 2, -7, 0, 0, 7, -3, 0}));
  HS_EXPECT_OK(ir::check_quant(q.type, "w"));
}

// F = 172 with blocks of 32 (stories260K's w2 [D, F]): 5 full blocks and one of 12 per row.
// Each block's scale is the max |w| of exactly its own elements / 7, and every value comes
// back within half a step of its block.
TEST(QuantizeWeight, PerBlockPropertyOnStoriesFfnShape) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  const int64_t rows = 64, cols = 172, block = 32, blocks = 6;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& x : w) x = normal(rng);
  w[171] = 1.0f;  // only the partial block of row 0 sees this
  HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight q,
                          quantize_weight(w, {rows, cols, 1, 1}, {4, block, false}, "w2"));
  ASSERT_EQ(q.type.quant.scales.size(), static_cast<size_t>(rows * blocks));
  const std::vector<int8_t> qs = ints(q);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      float amax = 0;
      for (int64_t c = b * block; c < std::min(cols, (b + 1) * block); ++c) {
        amax = std::max(amax, std::fabs(w[static_cast<size_t>(r * cols + c)]));
      }
      const float s = q.type.quant.scales[static_cast<size_t>(r * blocks + b)];
      ASSERT_EQ(s, amax / 7.0f) << "row " << r << " block " << b;
      for (int64_t c = b * block; c < std::min(cols, (b + 1) * block); ++c) {
        const auto i = static_cast<size_t>(r * cols + c);
        ASSERT_LE(std::abs(qs[i]), 7);
        ASSERT_LE(std::fabs(s * qs[i] - w[i]), s / 2 * 1.0001f) << "element " << i;
      }
    }
  }
  EXPECT_EQ(q.type.quant.scales[5], 1.0f / 7.0f);
  EXPECT_LT(q.type.quant.scales[4], 0.1f);
}

// LPBQ (the default for blocks): per row c = max_b s_b / 16, m_b = clamp(round(s_b / c), 1, 16),
// scales c * m_b, and the integers rounded against those (not the observer's s_b).
// Row 0: blocks {2.1, 2} {7, -1} {4.9}: s = 0.3, 1, 0.7; c = 1/16; m = round(4.8) = 5,
//        16, round(11.2) = 11 -> 0.3125, 1, 0.6875; q = 7 6 | 7 -1 | 7 (2 / 0.3125 = 6.4;
//        against s_b it would be round(6.67) = 7).
// Row 1: {0, 0} {3.5, -1.5} {0}: s = 2^-29, 0.5, 2^-29; c = 1/32; m = 1 (clamped up from
//        2^-24), 16, 1 -> 1/32, 0.5, 1/32; q = 0 0 | 7 -3 | 0.
TEST(QuantizeWeight, PerBlockLpbqHandComputed) {
  const std::vector<float> w = {2.1f, 2.0f, 7.0f, -1.0f, 4.9f, 0, 0, 3.5f, -1.5f, 0};
  HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight q, quantize_weight(w, {2, 5, 1, 1}, {4, 2}, "w"));
  EXPECT_EQ(q.type.quant.scales,
            (std::vector<float>{0.3125f, 1.0f, 0.6875f, 0.03125f, 0.5f, 0.03125f}));
  EXPECT_EQ(ints(q), (std::vector<int8_t>{7, 6, 7, -1, 7, 0, 0, 7, -3, 0}));
  HS_EXPECT_OK(ir::check_quant(q.type, "w"));
  // c keeps 16 significant bits: max s = 1 + 2^-20 gives c = 1/16 (not (1 + 2^-20) / 16).
  std::vector<float> s = {1.0f + std::ldexp(1.0f, -20), 0.5f};
  lpbq_scales(s, 1, 2);
  EXPECT_EQ(s, (std::vector<float>{1.0f, 0.5f}));
}

// The stories260K w2 shape [64, 172], blocks of 32 (a partial last block), random weights:
// with LPBQ the integers are w rounded against the final scales; every row's scales are c * m
// with m in 1..16
// (one block at 16) and c of at most 16 significant bits; each is within c / 2 of the
// observer's scale (or c, when that was below c / 2); QNN's builder derivation (c = max / 16,
// m = round(s / c)) gives them back unchanged; kernels::lpbq_factor accepts them.
TEST(QuantizeWeight, PerBlockLpbqPropertyOnStoriesFfnShape) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  const int64_t rows = 64, cols = 172, block = 32, blocks = 6;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& x : w) x = normal(rng);
  for (int64_t r = 0; r < rows; r += 5) w[static_cast<size_t>(r * cols + 40)] = 0.9f;  // spread
  HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight lp, quantize_weight(w, {rows, cols}, {4, block}, "w2"));
  HS_ASSERT_OK_AND_ASSIGN(QuantizedWeight fr,
                          quantize_weight(w, {rows, cols}, {4, block, false}, "w2"));
  std::vector<std::byte> want(w.size());
  kernels::ref::quantize(w.data(), lp.type.shape, lp.type.quant, lp.type.dtype, want.data());
  EXPECT_EQ(0, std::memcmp(lp.data.bytes().data(), want.data(), want.size()));
  EXPECT_NE(ints(lp), ints(fr));
  const std::vector<float>& s = lp.type.quant.scales;
  const std::vector<float>& s0 = fr.type.quant.scales;
  int moved = 0;
  for (int64_t r = 0; r < rows; ++r) {
    float smax = 0;
    for (int64_t b = 0; b < blocks; ++b) smax = std::max(smax, s[static_cast<size_t>(r * blocks + b)]);
    const float c = smax / 16.0f;
    int e = 0;
    const double frac = std::frexp(static_cast<double>(c), &e);
    EXPECT_EQ(std::ldexp(frac, 16), std::nearbyint(std::ldexp(frac, 16))) << "row " << r;
    for (int64_t b = 0; b < blocks; ++b) {
      const auto i = static_cast<size_t>(r * blocks + b);
      const double m = static_cast<double>(s[i]) / c;
      ASSERT_EQ(m, std::nearbyint(m)) << "row " << r << " block " << b;
      ASSERT_GE(m, 1.0);
      ASSERT_LE(m, 16.0);
      EXPECT_EQ(std::nearbyint(s[i] / c), m);  // the builder's derivation, in float
      if (s0[i] < c / 2) {
        EXPECT_EQ(s[i], c);
      } else {
        EXPECT_LE(std::fabs(s[i] - s0[i]), c / 2 * 1.0001f) << "row " << r << " block " << b;
      }
      moved += s[i] != s0[i];
    }
  }
  EXPECT_GT(moved, rows);  // the form changes most scales
  std::vector<float> c;
  std::vector<uint8_t> m;
  EXPECT_TRUE(kernels::lpbq_factor(s, rows, cols, block, c, m));
  EXPECT_FALSE(kernels::lpbq_factor(s0, rows, cols, block, c, m));
}

TEST(QuantizeWeight, BadInputIsAnError) {
  auto nan = quantize_weight(std::vector<float>{1.0f, std::nanf("")}, {1, 2}, {8, 0}, "weight 'x'");
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(nan.error().message().find("weight 'x'"), std::string::npos);
  auto rank1 = quantize_weight(std::vector<float>{1.0f, 2.0f}, {2}, {4, 32}, "weight 'b'");
  ASSERT_FALSE(rank1.ok());
  EXPECT_EQ(rank1.kind(), ErrorKind::kShape);
  auto bits = quantize_weight(std::vector<float>{1.0f}, {1, 1}, {2, 0}, "weight 'c'");
  ASSERT_FALSE(bits.ok());
  EXPECT_EQ(bits.kind(), ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace hs::quant
