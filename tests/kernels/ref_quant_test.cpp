// Quantization: scalar rounding and clamping (kernels/quant.h) and whole-tensor
// fake-quantize / quantize / dequantize with per-tensor, per-axis and per-block parameters,
// all hand-computed.
#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "headsplit/kernels/quant.h"
#include "headsplit/kernels/reference.h"

namespace hs::kernels {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;
using Dims64 = std::vector<int64_t>;
using opset::DType;
using opset::QuantKind;
using QuantSpec = opset::QuantParams;

TEST(RoundHalfEven, TiesGoToEven) {
  EXPECT_EQ(round_half_even(2.5f), 2.f);
  EXPECT_EQ(round_half_even(3.5f), 4.f);
  EXPECT_EQ(round_half_even(-2.5f), -2.f);
  EXPECT_EQ(round_half_even(-3.5f), -4.f);
  EXPECT_EQ(round_half_even(0.5f), 0.f);
  EXPECT_EQ(round_half_even(1.5f), 2.f);
  EXPECT_EQ(round_half_even(2.4f), 2.f);
  EXPECT_EQ(round_half_even(2.6f), 3.f);
  EXPECT_EQ(round_half_even(-2.6f), -3.f);
  EXPECT_EQ(round_half_even(8388609.f), 8388609.f);  // 2^23 + 1: already an integer
}

TEST(RoundHalfEven, IgnoresTheFpRoundingMode) {
  // std::nearbyint would round 2.4 up to 3 and 2.5 to 3 under FE_UPWARD.
  volatile float a = 2.4f, b = 2.5f, c = -2.5f;  // volatile: no constant folding
  const int old = std::fegetround();
  ASSERT_EQ(std::fesetround(FE_UPWARD), 0);
  const float ra = round_half_even(a), rb = round_half_even(b), rc = round_half_even(c);
  std::fesetround(old);
  EXPECT_EQ(ra, 2.f);
  EXPECT_EQ(rb, 2.f);
  EXPECT_EQ(rc, -2.f);
}

TEST(QuantizeOne, RoundsAddsZeroPointAndClamps) {
  // 0.5 / 0.25 = 2, + zero point 10 = 12.
  EXPECT_EQ(quantize_one(0.5f, 0.25f, 10, 0, 255), 12);
  // 0.625 / 0.25 = 2.5 -> 2 (ties to even), + 10 = 12.
  EXPECT_EQ(quantize_one(0.625f, 0.25f, 10, 0, 255), 12);
  EXPECT_EQ(quantize_one(1000.f, 1.f, 0, -128, 127), 127);
  EXPECT_EQ(quantize_one(-1000.f, 1.f, 0, -128, 127), -128);
  EXPECT_EQ(quantize_one(-1000.f, 1.f, 0, -127, 127), -127);  // symmetric range
  EXPECT_EQ(quantize_one(std::numeric_limits<float>::infinity(), 1.f, 0, -8, 7), 7);
  EXPECT_EQ(quantize_one(std::nanf(""), 1.f, 0, -8, 7), -8);
  EXPECT_EQ(dequantize_one(130, 0.25f, 128), 0.5f);
  EXPECT_EQ(fake_quantize_one(0.3f, 0.25f, 0, 0, 255), 0.25f);
}

QuantSpec per_tensor(const Floats& s, const Ints& zp, int32_t qmin, int32_t qmax) {
  QuantSpec q;
  q.kind = QuantKind::kPerTensor;
  q.scales = s;
  q.zero_points = zp;
  q.qmin = qmin;
  q.qmax = qmax;
  return q;
}

TEST(FakeQuantize, PerTensorSymmetric) {
  // scale 0.5, range [-4,3]: x/s = {0.4, 0.5, 1.5, 2.5, 20, -20}
  //   -> q = {0, 0, 2, 2, 3 (clamped), -4 (clamped)} -> {0, 0, 1, 1, 1.5, -2}
  const Floats s = {0.5f};
  const Ints zp = {0};
  Floats x = {0.2f, 0.25f, 0.75f, 1.25f, 10, -10};
  const Dims64 shape = {2, 3};
  ref::fake_quantize(x.data(), shape, per_tensor(s, zp, -4, 3));
  EXPECT_EQ(x, (Floats{0, 0, 1, 1, 1.5f, -2}));
}

TEST(FakeQuantize, PerTensorAsymmetricUnsigned) {
  // scale 0.25, zero point 128, range [0,255]: x/s + 128 =
  //   {0, -32 -> 0, 255, 288 -> 255, 128.5 -> 128, 129.5 -> 130}
  //   real = 0.25 * (q - 128) = {-32, -32, 31.75, 31.75, 0, 0.5}
  const Floats s = {0.25f};
  const Ints zp = {128};
  Floats x = {-32, -40, 31.75f, 40, 0.125f, 0.375f};
  const Dims64 shape = {6};
  ref::fake_quantize(x.data(), shape, per_tensor(s, zp, 0, 255));
  EXPECT_EQ(x, (Floats{-32, -32, 31.75f, 31.75f, 0, 0.5f}));
}

TEST(FakeQuantize, PerAxisOnRows) {
  // x[2,3], axis 0, range [-8,7].
  // row 0: scale 1, zp 0: {2.5, -9, 3.5} -> q {2, -8, 4} -> {2, -8, 4}
  // row 1: scale 0.5, zp 2: x/s = {0.5, 6, -10} -> round {0, 6, -10} + 2 = {2, 8 -> 7, -8}
  //        -> 0.5 * (q - 2) = {0, 2.5, -5}
  const Floats s = {1, 0.5f};
  const Ints zp = {0, 2};
  QuantSpec q = per_tensor(s, zp, -8, 7);
  q.kind = QuantKind::kPerAxis;
  q.axis = 0;
  Floats x = {2.5f, -9, 3.5f, 0.25f, 3, -5};
  const Dims64 shape = {2, 3};
  ref::fake_quantize(x.data(), shape, q);
  EXPECT_EQ(x, (Floats{2, -8, 4, 0, 2.5f, -5}));
}

TEST(FakeQuantize, PerAxisOnColumns) {
  // x[2,3], axis 1, scales {1, 2, 4}, no zero points (symmetric), range [-128,127]:
  //   x/s = {{1.5, 1.5, 2.5}, {-1.5, -1.5, -2.5}} -> q {{2,2,2},{-2,-2,-2}}
  //   -> {{2, 4, 8}, {-2, -4, -8}}
  const Floats s = {1, 2, 4};
  QuantSpec q = per_tensor(s, {}, -128, 127);
  q.kind = QuantKind::kPerAxis;
  q.axis = 1;
  Floats x = {1.5f, 3, 10, -1.5f, -3, -10};
  const Dims64 shape = {2, 3};
  ref::fake_quantize(x.data(), shape, q);
  EXPECT_EQ(x, (Floats{2, 4, 8, -2, -4, -8}));
}

// [2,5] with block 2 along axis 1: 3 blocks per row, the last one holds one element.
// scales [channel][block] = {{1, 2, 4}, {0.5, 0.25, 8}}, range [-8,7], zero points 0.
//   row 0: {1.5, 2.5 | 5, 7 | 30}  / {1 | 2 | 4} = {1.5, 2.5 | 2.5, 3.5 | 7.5}
//          -> q {2, 2 | 2, 4 | 8 -> 7}  -> {2, 2, 4, 8, 28}
//   row 1: {0.25, -0.75 | 0.375, -0.125 | -100} / {0.5 | 0.25 | 8} = {0.5, -1.5 | 1.5, -0.5 |
//          -12.5} -> q {0, -2 | 2, 0 | -12 -> -8} -> {0, -1, 0.5, 0, -64}
const Floats kBlockScales = {1, 2, 4, 0.5f, 0.25f, 8};
const Floats kBlockX = {1.5f, 2.5f, 5, 7, 30, 0.25f, -0.75f, 0.375f, -0.125f, -100};
const Floats kBlockExpected = {2, 2, 4, 8, 28, 0, -1, 0.5f, 0, -64};

TEST(FakeQuantize, PerBlockWithPartialLastBlock) {
  QuantSpec q = per_tensor(kBlockScales, {}, -8, 7);
  q.kind = QuantKind::kPerBlock;
  q.axis = 0;
  q.block_axis = 1;
  q.block = 2;
  Floats x = kBlockX;
  const Dims64 shape = {2, 5};
  ref::fake_quantize(x.data(), shape, q);
  EXPECT_EQ(x, kBlockExpected);
}

TEST(FakeQuantize, PerBlockWithChannelsOnAxisOne) {
  // The same tensor transposed to [5,2]: channel axis 1, blocks along axis 0. Same scales
  // ([channel][block]), so the result is the transpose of the case above.
  QuantSpec q = per_tensor(kBlockScales, {}, -8, 7);
  q.kind = QuantKind::kPerBlock;
  q.axis = 1;
  q.block_axis = 0;
  q.block = 2;
  Floats x(10), expected(10);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 5; ++c) {
      x[static_cast<size_t>(c * 2 + r)] = kBlockX[static_cast<size_t>(r * 5 + c)];
      expected[static_cast<size_t>(c * 2 + r)] = kBlockExpected[static_cast<size_t>(r * 5 + c)];
    }
  }
  const Dims64 shape = {5, 2};
  ref::fake_quantize(x.data(), shape, q);
  EXPECT_EQ(x, expected);
}

template <typename S>
std::vector<S> as_values(const std::vector<std::byte>& bytes) {
  std::vector<S> v(bytes.size() / sizeof(S));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

TEST(QuantizeStorage, U8RoundTrip) {
  // scale 0.25, zp 128: {-32, 31.75, 0.5} -> {0, 255, 130}
  const Floats s = {0.25f}, x = {-32, 31.75f, 0.5f};
  const Ints zp = {128};
  const QuantSpec q = per_tensor(s, zp, 0, 255);
  const Dims64 shape = {3};
  std::vector<std::byte> bytes(3);
  ref::quantize(x.data(), shape, q, DType::kU8, bytes.data());
  EXPECT_EQ(as_values<uint8_t>(bytes), (std::vector<uint8_t>{0, 255, 130}));
  Floats y(3);
  ref::dequantize(bytes.data(), DType::kU8, shape, q, y.data());
  EXPECT_EQ(y, x);
}

TEST(QuantizeStorage, U16FromUnalignedStorage) {
  // scale 1, range [0,65535]: {0, 65535, 300.5 -> 300, 70000 -> 65535}
  const Floats s = {1}, x = {0, 65535, 300.5f, 70000};
  const QuantSpec q = per_tensor(s, {}, 0, 65535);
  const Dims64 shape = {4};
  std::vector<std::byte> bytes(9);
  ref::quantize(x.data(), shape, q, DType::kU16, bytes.data() + 1);  // odd address
  std::vector<std::byte> tail(bytes.begin() + 1, bytes.end());
  EXPECT_EQ(as_values<uint16_t>(tail), (std::vector<uint16_t>{0, 65535, 300, 65535}));
  Floats y(4);
  ref::dequantize(bytes.data() + 1, DType::kU16, shape, q, y.data());
  EXPECT_EQ(y, (Floats{0, 65535, 300, 65535}));
}

TEST(QuantizeStorage, I16AndI8) {
  // i16, scale 2: {-65536 -> -32768 (clamped), 3 -> 1.5 -> 2, 5 -> 2.5 -> 2} -> {-65536, 4, 4}
  const Floats s2 = {2}, x = {-65536, 3, 5};
  const QuantSpec q16 = per_tensor(s2, {}, -32768, 32767);
  const Dims64 shape = {3};
  std::vector<std::byte> b16(6);
  ref::quantize(x.data(), shape, q16, DType::kI16, b16.data());
  EXPECT_EQ(as_values<int16_t>(b16), (std::vector<int16_t>{-32768, 2, 2}));
  Floats y(3);
  ref::dequantize(b16.data(), DType::kI16, shape, q16, y.data());
  EXPECT_EQ(y, (Floats{-65536, 4, 4}));
  // i8 per-axis [3,1], scales {1, 0.5, 0.25}, range [-127,127]: {200, -1, 1} -> {127, -2, 4}
  const Floats s8 = {1, 0.5f, 0.25f}, x8 = {200, -1, 1};
  QuantSpec q8 = per_tensor(s8, {}, -127, 127);
  q8.kind = QuantKind::kPerAxis;
  const Dims64 shape8 = {3, 1};
  std::vector<std::byte> b8(3);
  ref::quantize(x8.data(), shape8, q8, DType::kI8, b8.data());
  EXPECT_EQ(as_values<int8_t>(b8), (std::vector<int8_t>{127, -2, 4}));
  ref::dequantize(b8.data(), DType::kI8, shape8, q8, y.data());
  EXPECT_EQ(y, (Floats{127, -1, 1}));
}

TEST(QuantizeStorage, I4PerBlock) {
  // Per-block i4 values one per int8 byte, kBlockScales layout: the stored q of the
  // per-block case above is {2,2,2,4,7, 0,-2,2,0,-8}.
  QuantSpec q = per_tensor(kBlockScales, {}, -8, 7);
  q.kind = QuantKind::kPerBlock;
  q.axis = 0;
  q.block_axis = 1;
  q.block = 2;
  const Dims64 shape = {2, 5};
  std::vector<std::byte> b(10);
  ref::quantize(kBlockX.data(), shape, q, DType::kI4, b.data());
  EXPECT_EQ(as_values<int8_t>(b), (std::vector<int8_t>{2, 2, 2, 4, 7, 0, -2, 2, 0, -8}));
  Floats y(10);
  ref::dequantize(b.data(), DType::kI4, shape, q, y.data());
  EXPECT_EQ(y, kBlockExpected);
  EXPECT_EQ(opset::dtype_size(DType::kI4), 1);
  EXPECT_EQ(opset::dtype_size(DType::kU16), 2);
}

// quantize walks runs of elements sharing their parameters; every element must still get its
// own: dequantize(quantize(x)) equals fake_quantize(x) (which looks each element's parameters
// up alone) on x[3,10,4] with per-axis parameters on each axis and per-block ones with the
// block axis inside, outside and between the channels, partial last blocks included. Every
// parameter set has its own scale, so a wrong one shows.
TEST(QuantizeStorage, RunsOfSharedParametersOnEveryLayout) {
  const Dims64 shape = {3, 10, 4};
  Floats x(120);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) - 50.f;
  struct Layout {
    QuantKind kind;
    int axis, block_axis;
    int64_t block;
  };
  const Layout layouts[] = {
      {QuantKind::kPerAxis, 0, 0, 0},  {QuantKind::kPerAxis, 1, 0, 0},
      {QuantKind::kPerAxis, 2, 0, 0},  {QuantKind::kPerBlock, 0, 1, 3},
      {QuantKind::kPerBlock, 2, 1, 4}, {QuantKind::kPerBlock, 1, 0, 2},
      {QuantKind::kPerBlock, 1, 2, 3}, {QuantKind::kPerBlock, 0, 2, 1},
  };
  for (const Layout& l : layouts) {
    QuantSpec q = per_tensor({1}, {}, -32768, 32767);
    q.kind = l.kind;
    q.axis = l.axis;
    int64_t params = shape[static_cast<size_t>(l.axis)];
    if (l.kind == QuantKind::kPerBlock) {
      q.block_axis = l.block_axis;
      q.block = l.block;
      params *= (shape[static_cast<size_t>(l.block_axis)] + l.block - 1) / l.block;
    }
    q.scales.clear();
    for (int64_t p = 0; p < params; ++p) q.scales.push_back(0.01f * static_cast<float>(p + 1));
    q.zero_points.clear();
    std::vector<std::byte> b(240);
    ref::quantize(x.data(), shape, q, DType::kI16, b.data());
    Floats y(120), fake = x;
    ref::dequantize(b.data(), DType::kI16, shape, q, y.data());
    ref::fake_quantize(fake.data(), shape, q);
    EXPECT_EQ(y, fake) << "axis " << l.axis << " block axis " << l.block_axis << " block "
                       << l.block;
  }
}

// ref::quantize rounds without libm; its integers must be quantize_one's for every value:
// ties at both parities and signs, near-ties, zeros of both signs, the 2^23 boundary where
// every float is an integer, values past the int32 range, infinities, NaN, and a spread of
// bit patterns, at scales 1, 0.37 and 3e-5 with zero points 0 and 7 (i16 storage, wide range).
TEST(QuantizeStorage, SameIntegersAsQuantizeOne) {
  Floats x = {0.f,
              -0.f,
              0.5f,
              -0.5f,
              1.5f,
              -1.5f,
              2.5f,
              -2.5f,
              0.49999997f,
              -0.49999997f,
              0.50000006f,
              -0.50000006f,
              1e-30f,
              -1e-30f,
              8388607.5f,
              -8388607.5f,
              8388608.f,
              -8388609.f,
              16777215.f,
              3e9f,
              -3e9f,
              std::numeric_limits<float>::infinity(),
              -std::numeric_limits<float>::infinity(),
              std::numeric_limits<float>::quiet_NaN(),
              4194303.5f,
              -4194304.5f};
  uint32_t bits = 12345;
  for (int i = 0; i < 20000; ++i) {
    bits = bits * 1664525u + 1013904223u;
    float v;
    std::memcpy(&v, &bits, sizeof v);
    x.push_back(v);
    x.push_back(static_cast<float>(static_cast<int32_t>(bits % 2001) - 1000) * 0.25f);
  }
  const Dims64 shape = {static_cast<int64_t>(x.size())};
  for (const float scale : {1.f, 0.37f, 3e-5f}) {
    for (const int32_t zp : {0, 7}) {
      const QuantSpec q = per_tensor({scale}, {zp}, -32768, 32767);
      std::vector<std::byte> b(x.size() * 2);
      ref::quantize(x.data(), shape, q, DType::kI16, b.data());
      const std::vector<int16_t> got = as_values<int16_t>(b);
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(got[i], quantize_one(x[i], scale, zp, -32768, 32767))
            << "x = " << x[i] << " scale " << scale << " zero point " << zp;
      }
      // A narrow range (int8 weights): most values clamp to -127 or 127.
      const QuantSpec q8 = per_tensor({scale}, {zp}, -127, 127);
      std::vector<std::byte> b8(x.size());
      ref::quantize(x.data(), shape, q8, DType::kI8, b8.data());
      const std::vector<int8_t> got8 = as_values<int8_t>(b8);
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(got8[i], quantize_one(x[i], scale, zp, -127, 127))
            << "x = " << x[i] << " scale " << scale << " zero point " << zp;
      }
    }
  }
}

}  // namespace
}  // namespace hs::kernels
