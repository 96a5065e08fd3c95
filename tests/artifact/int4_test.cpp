// Int4 row packing: hand-computed cases (even and odd row length), range and size errors, the
// equality with flat packing for even K, and a seeded round trip over random shapes.
#include "headsplit/artifact/int4.h"

#include <random>

#include "testing/testing.h"

namespace hs::artifact {
namespace {

uint8_t byte_at(const std::vector<std::byte>& packed, size_t i) {
  return static_cast<uint8_t>(packed[i]);
}

TEST(Int4, RowsOfAShape) {
  std::vector<int64_t> matrix = {3, 9}, conv = {4, 6, 1, 1}, scalar = {}, empty = {0, 5};
  EXPECT_EQ(int4_rows(matrix).rows, 3u);
  EXPECT_EQ(int4_rows(matrix).k, 9u);
  EXPECT_EQ(int4_rows(conv).k, 6u);
  EXPECT_EQ(int4_rows(scalar).rows, 1u);
  EXPECT_EQ(int4_rows(scalar).k, 1u);
  EXPECT_EQ(int4_packed_size(int4_rows(empty)), 0u);
  EXPECT_EQ(int4_packed_size(int4_rows(matrix)), 15u);  // 3 rows * ceil(9/2)
}

TEST(Int4, PacksLowNibbleFirstByHand) {
  // One row of 5: byte 0 = 0x1 | 0xF << 4; byte 1 = 0x7 | 0x8 << 4; byte 2 = 0xD (-3), high
  // nibble padding.
  std::vector<int8_t> values = {1, -1, 7, -8, -3};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> packed, pack_int4(values, {1, 5}, "w"));
  ASSERT_EQ(packed.size(), 3u);
  EXPECT_EQ(byte_at(packed, 0), 0xF1);
  EXPECT_EQ(byte_at(packed, 1), 0x87);
  EXPECT_EQ(byte_at(packed, 2), 0x0D);
  std::vector<int8_t> back(values.size());
  unpack_int4(packed, {1, 5}, back);
  EXPECT_EQ(back, values);
}

TEST(Int4, OddRowsArePaddedPerRowByHand) {
  // Two rows of 3: [1, 2, 3] -> 0x21 0x03; [-1, -2, -3] -> 0xEF 0x0D. Flat packing would have
  // put element 3 (-1) in the high nibble of byte 1.
  std::vector<int8_t> values = {1, 2, 3, -1, -2, -3};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> packed, pack_int4(values, {2, 3}, "w"));
  ASSERT_EQ(packed.size(), 4u);
  EXPECT_EQ(byte_at(packed, 0), 0x21);
  EXPECT_EQ(byte_at(packed, 1), 0x03);
  EXPECT_EQ(byte_at(packed, 2), 0xEF);
  EXPECT_EQ(byte_at(packed, 3), 0x0D);
  std::vector<int8_t> back(values.size());
  unpack_int4(packed, {2, 3}, back);
  EXPECT_EQ(back, values);
}

TEST(Int4, EvenRowsEqualFlatPacking) {
  std::vector<int8_t> values = {1, 2, 3, 4, -5, -6, 7, -8};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> rows, pack_int4(values, {2, 4}, "w"));
  HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> flat, pack_int4(values, {1, 8}, "w"));
  EXPECT_EQ(rows, flat);
}

TEST(Int4, OutOfRangeValueIsNamed) {
  std::vector<int8_t> values = {0, 3, 8, 1};
  auto packed = pack_int4(values, {2, 2}, "layers.0.wq");
  ASSERT_FALSE(packed.ok());
  EXPECT_EQ(packed.kind(), ErrorKind::kOutOfRange);
  EXPECT_EQ(packed.error().message(),
            "layers.0.wq: element 2 (row 1, column 0) is 8, outside the int4 range -8..7");
  values[2] = -9;
  EXPECT_EQ(pack_int4(values, {2, 2}, "w").kind(), ErrorKind::kOutOfRange);
}

TEST(Int4, WrongValueCountIsAShapeError) {
  std::vector<int8_t> values = {0, 1, 2};
  auto packed = pack_int4(values, {2, 2}, "w1");
  ASSERT_FALSE(packed.ok());
  EXPECT_EQ(packed.kind(), ErrorKind::kShape);
  EXPECT_EQ(packed.error().message(), "w1: 3 int4 values for 2 rows of 2");
}

TEST(Int4, SeededRoundTrip) {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 100; ++iter) {
    Int4Rows shape{rng() % 6, rng() % 12};
    std::vector<int8_t> values(shape.rows * shape.k);
    for (int8_t& v : values) v = static_cast<int8_t>(static_cast<int>(rng() % 16) - 8);
    HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> packed, pack_int4(values, shape, "w"));
    ASSERT_EQ(packed.size(), shape.rows * ((shape.k + 1) / 2));
    // Padding nibbles are zero.
    if (shape.k % 2 == 1) {
      for (uint64_t r = 0; r < shape.rows; ++r) {
        EXPECT_EQ(byte_at(packed, r * ((shape.k + 1) / 2) + shape.k / 2) >> 4, 0);
      }
    }
    std::vector<int8_t> back(values.size());
    unpack_int4(packed, shape, back);
    EXPECT_EQ(back, values);
  }
}

}  // namespace
}  // namespace hs::artifact
