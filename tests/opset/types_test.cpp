// Tests of opset/types.h: dtypes, shapes, type_str and check_quant.
#include "headsplit/opset/types.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "testing/testing.h"

namespace hs::opset {
namespace {

using ::testing::HasSubstr;

TEST(DType, NamesRoundTrip) {
  for (DType d : {DType::kF32, DType::kI32, DType::kBool, DType::kU8, DType::kI8, DType::kU16,
                  DType::kI16, DType::kI4}) {
    HS_ASSERT_OK_AND_ASSIGN(DType parsed, parse_dtype(dtype_name(d)));
    EXPECT_EQ(parsed, d);
  }
  auto bad = parse_dtype("f16");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kParse);
  EXPECT_THAT(bad.error().message(), HasSubstr("'f16'"));
}

TEST(DType, SizesAndRanges) {
  EXPECT_EQ(dtype_size(DType::kF32), 4);
  EXPECT_EQ(dtype_size(DType::kU16), 2);
  EXPECT_EQ(dtype_size(DType::kI4), 1);
  EXPECT_EQ(dtype_min(DType::kI4), -8);
  EXPECT_EQ(dtype_max(DType::kI4), 7);
  EXPECT_EQ(dtype_min(DType::kI8), -128);
  EXPECT_EQ(dtype_max(DType::kU16), 65535);
  EXPECT_TRUE(dtype_is_integer_storage(DType::kI4));
  EXPECT_FALSE(dtype_is_integer_storage(DType::kI32));
  EXPECT_FALSE(dtype_is_integer_storage(DType::kBool));
}

TEST(Shape, ElementsAndText) {
  EXPECT_EQ(num_elements({}), 1);
  EXPECT_EQ(num_elements({2, 3, 4}), 24);
  EXPECT_EQ(num_elements({2, 0, 4}), 0);
  EXPECT_EQ(shape_str({1, 8, 16}), "[1,8,16]");
  EXPECT_EQ(shape_str({}), "[]");
  TensorType t = TensorType::f32({2, 3, 4});
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.rank(), 3);
}

TEST(NormalizeAxis, InAndOutOfRange) {
  EXPECT_EQ(*normalize_axis(-1, 3, "x"), 2);
  EXPECT_EQ(*normalize_axis(-3, 3, "x"), 0);
  EXPECT_EQ(*normalize_axis(2, 3, "x"), 2);
  auto bad = normalize_axis(3, 3, "softmax");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kShape);
  EXPECT_EQ(bad.error().message(), "softmax: axis 3 out of range for rank 3");
  EXPECT_FALSE(normalize_axis(-4, 3, "x").ok());
}

TEST(TypeStr, AllQuantKinds) {
  EXPECT_EQ(type_str(TensorType::f32({1, 2})), "f32[1,2]");
  EXPECT_EQ(type_str(TensorType::boolean({})), "bool[]");
  TensorType pt{DType::kU16, {1, 4}, QuantParams::per_tensor(0.5f, 32768, 16, 0, 65535)};
  EXPECT_EQ(type_str(pt),
            "u16[1,4] q<per_tensor, bits=16, range=[0,65535], scales=[0.5], zero_points=[32768]>");
  TensorType pa{DType::kI8, {2, 3}, QuantParams::per_axis(0, {0.25f, 0.1f}, {0, 0}, 8, -127, 127)};
  EXPECT_EQ(type_str(pa),
            "i8[2,3] q<per_axis, bits=8, range=[-127,127], axis=0, "
            "scales=[0.25,0.1], zero_points=[0,0]>");
  TensorType pb{DType::kI4, {2, 5}, QuantParams::per_block(0, 1, 4, {1, 2, 3, 4}, 4, -8, 7)};
  EXPECT_EQ(type_str(pb),
            "i4[2,5] q<per_block, bits=4, range=[-8,7], axis=0, block_axis=1, "
            "block=4, scales=[1,2,3,4], zero_points=[0,0,0,0]>");
}

// --- check_quant --------------------------------------------------------------------------

TensorType per_axis_i8(std::vector<float> scales, std::vector<int32_t> zps) {
  return {DType::kI8,
          {4, 2},
          QuantParams::per_axis(0, std::move(scales), std::move(zps), 8, -127, 127)};
}

// Expects check_quant(type, "wq") to fail with kShape and a message naming the tensor and
// containing `detail`.
void expect_rejected(const TensorType& type, const std::string& detail) {
  Status st = check_quant(type, "wq");
  ASSERT_FALSE(st.ok()) << type_str(type);
  EXPECT_EQ(st.kind(), ErrorKind::kShape);
  EXPECT_THAT(st.error().message(), HasSubstr("wq: "));
  EXPECT_THAT(st.error().message(), HasSubstr(detail));
}

TEST(CheckQuant, AcceptsValidParams) {
  HS_EXPECT_OK(check_quant(TensorType::f32({3}), "x"));
  HS_EXPECT_OK(check_quant(TensorType::i32({3}), "x"));
  HS_EXPECT_OK(
      check_quant({DType::kU16, {1, 4}, QuantParams::per_tensor(1e-4f, 32768, 16, 0, 65535)}, "x"));
  HS_EXPECT_OK(check_quant(per_axis_i8({1, 2, 3, 4}, {0, 0, 0, 0}), "x"));
  // Per-axis on a non-zero axis: [2,3] axis 1 -> 3 channels.
  HS_EXPECT_OK(check_quant(
      {DType::kU8, {2, 3}, QuantParams::per_axis(1, {1, 1, 1}, {0, 128, 255}, 8, 0, 255)}, "x"));
  // 4-bit values in i8 storage.
  HS_EXPECT_OK(check_quant({DType::kI8, {2}, QuantParams::per_tensor(1.0f, 0, 4, -8, 7)}, "x"));
  // Per-block [4,172] block 32: ceil(172/32) = 6 blocks per row, the last one has 12 elements.
  std::vector<float> scales(4 * 6, 0.5f);
  HS_EXPECT_OK(
      check_quant({DType::kI4, {4, 172}, QuantParams::per_block(0, 1, 32, scales, 4, -8, 7)}, "x"));
  // Exact multiple: [4,64] block 32 -> 2 blocks per row.
  HS_EXPECT_OK(check_quant(
      {DType::kI4, {4, 64}, QuantParams::per_block(0, 1, 32, std::vector<float>(8, 1), 4, -8, 7)},
      "x"));
}

TEST(CheckQuant, RejectsWrongScaleCount) {
  expect_rejected(per_axis_i8({1, 2, 3}, {0, 0, 0}), "per_axis has 3 scales, expected 4");
  std::vector<float> scales(4 * 5, 0.5f);  // 5 blocks per row would ignore the partial block
  expect_rejected({DType::kI4, {4, 172}, QuantParams::per_block(0, 1, 32, scales, 4, -8, 7)},
                  "per_block has 20 scales, expected 24 for shape [4,172]");
  TensorType two{DType::kU8, {2}, QuantParams::per_tensor(1.0f, 0, 8, 0, 255)};
  two.quant.scales.push_back(2.0f);
  two.quant.zero_points.push_back(0);
  expect_rejected(two, "per_tensor has 2 scales, expected 1");
}

TEST(CheckQuant, RejectsZeroPointCountMismatch) {
  expect_rejected(per_axis_i8({1, 2, 3, 4}, {0, 0, 0}), "3 zero points for 4 scales");
}

TEST(CheckQuant, RejectsAxisOutOfRange) {
  TensorType t{DType::kI8, {4, 2}, QuantParams::per_axis(2, {1, 1}, {0, 0}, 8, -127, 127)};
  expect_rejected(t, "quant axis 2 out of range for rank 2");
  t.quant.axis = -1;
  expect_rejected(t, "quant axis -1 out of range for rank 2");
}

TEST(CheckQuant, RejectsEmptyRange) {
  expect_rejected({DType::kU8, {2}, QuantParams::per_tensor(1.0f, 5, 8, 5, 5)},
                  "integer range [5,5] is empty or outside u8 [0,255]");
  expect_rejected({DType::kU8, {2}, QuantParams::per_tensor(1.0f, 5, 8, 9, 5)},
                  "integer range [9,5]");
}

TEST(CheckQuant, RejectsRangeOutsideStorage) {
  expect_rejected({DType::kI8, {2}, QuantParams::per_tensor(1.0f, 0, 8, -200, 127)},
                  "integer range [-200,127] is empty or outside i8 [-128,127]");
  expect_rejected({DType::kI4, {2}, QuantParams::per_tensor(1.0f, 0, 4, -8, 8)},
                  "outside i4 [-8,7]");
  expect_rejected({DType::kU8, {2}, QuantParams::per_tensor(1.0f, 0, 8, -1, 255)},
                  "outside u8 [0,255]");
}

TEST(CheckQuant, RejectsZeroPointOutOfRange) {
  expect_rejected(per_axis_i8({1, 2, 3, 4}, {0, 0, 128, 0}),
                  "zero_point[2] = 128 outside "
                  "[-127,127]");
  expect_rejected({DType::kU8, {2}, QuantParams::per_tensor(1.0f, -1, 8, 0, 255)},
                  "zero_point[0] = -1 outside [0,255]");
}

TEST(CheckQuant, RejectsBadScales) {
  expect_rejected(per_axis_i8({1, 0, 3, 4}, {0, 0, 0, 0}), "scale[1] = 0 is not a positive");
  expect_rejected(per_axis_i8({1, 2, -3, 4}, {0, 0, 0, 0}), "scale[2] = -3 is not a positive");
  float nan = std::numeric_limits<float>::quiet_NaN();
  float inf = std::numeric_limits<float>::infinity();
  expect_rejected(per_axis_i8({nan, 2, 3, 4}, {0, 0, 0, 0}), "scale[0] = nan");
  expect_rejected(per_axis_i8({1, 2, 3, inf}, {0, 0, 0, 0}), "scale[3] = inf");
}

TEST(CheckQuant, RejectsBadBlocks) {
  std::vector<float> scales(4 * 6, 0.5f);
  expect_rejected({DType::kI4, {4, 172}, QuantParams::per_block(0, 0, 32, scales, 4, -8, 7)},
                  "block axis 0 invalid (rank 2, channel axis 0)");
  expect_rejected({DType::kI4, {4, 172}, QuantParams::per_block(0, 2, 32, scales, 4, -8, 7)},
                  "block axis 2 invalid");
  expect_rejected({DType::kI4, {4, 172}, QuantParams::per_block(0, 1, 0, scales, 4, -8, 7)},
                  "block size 0 must be positive");
}

TEST(CheckQuant, RejectsStorageMismatch) {
  // Integer storage needs params; params need integer storage; bits must fit the storage.
  expect_rejected({DType::kI8, {2}, {}}, "i8 tensor has no quantization parameters");
  expect_rejected({DType::kF32, {2}, QuantParams::per_tensor(1.0f, 0, 8, 0, 255)},
                  "storage type f32");
  expect_rejected({DType::kI8, {2}, QuantParams::per_tensor(1.0f, 0, 16, -127, 127)},
                  "bit width 16 does not fit storage type i8");
  expect_rejected({DType::kI8, {2}, QuantParams::per_tensor(1.0f, 0, 7, -63, 63)},
                  "bit width 7 is not 4, 8 or 16");
}

}  // namespace
}  // namespace hs::opset
