// Int4 packing: a hand-computed case, range errors and a seeded round trip.
#include "headsplit/artifact/int4.h"

#include <random>

#include "testing/testing.h"

namespace hs::artifact {
namespace {

TEST(Int4, PacksLowNibbleFirstByHand) {
  std::vector<int8_t> values = {1, -1, 7, -8, -3};
  HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> packed, pack_int4(values, "w"));
  // byte 0 = 0x1 | 0xF << 4; byte 1 = 0x7 | 0x8 << 4; byte 2 = 0xD (-3), high nibble empty.
  ASSERT_EQ(packed.size(), 3u);
  EXPECT_EQ(static_cast<uint8_t>(packed[0]), 0xF1);
  EXPECT_EQ(static_cast<uint8_t>(packed[1]), 0x87);
  EXPECT_EQ(static_cast<uint8_t>(packed[2]), 0x0D);
  std::vector<int8_t> back(values.size());
  unpack_int4(packed, back);
  EXPECT_EQ(back, values);
}

TEST(Int4, OutOfRangeValueIsNamed) {
  std::vector<int8_t> values = {0, 3, 8};
  auto packed = pack_int4(values, "layers.0.wq");
  ASSERT_FALSE(packed.ok());
  EXPECT_EQ(packed.kind(), ErrorKind::kOutOfRange);
  EXPECT_EQ(packed.error().message(), "layers.0.wq: element 2 is 8, outside the int4 range -8..7");
  values[2] = -9;
  EXPECT_EQ(pack_int4(values, "w").kind(), ErrorKind::kOutOfRange);
}

TEST(Int4, SeededRoundTrip) {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 50; ++iter) {
    std::vector<int8_t> values(rng() % 40);
    for (int8_t& v : values) v = static_cast<int8_t>(static_cast<int>(rng() % 16) - 8);
    HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> packed, pack_int4(values, "w"));
    EXPECT_EQ(packed.size(), int4_packed_size(values.size()));
    std::vector<int8_t> back(values.size());
    unpack_int4(packed, back);
    EXPECT_EQ(back, values);
  }
}

}  // namespace
}  // namespace hs::artifact
