// Two 4-bit signed values per byte, low nibble first (the kInt4Packed weight layout).
#include "headsplit/artifact/int4.h"

#include "headsplit/support/result.h"

namespace hs::artifact {

Result<std::vector<std::byte>> pack_int4(std::span<const int8_t> values, std::string_view what) {
  std::vector<std::byte> packed(int4_packed_size(values.size()), std::byte{0});
  for (size_t i = 0; i < values.size(); ++i) {
    int8_t v = values[i];
    if (v < -8 || v > 7) {
      return errorf(ErrorKind::kOutOfRange, "{}: element {} is {}, outside the int4 range -8..7",
                    what, i, static_cast<int>(v));
    }
    auto nibble = static_cast<uint8_t>(static_cast<uint8_t>(v) & 0x0f);
    packed[i / 2] |= std::byte{static_cast<uint8_t>(i % 2 == 0 ? nibble : nibble << 4)};
  }
  return packed;
}

void unpack_int4(std::span<const std::byte> packed, std::span<int8_t> out) {
  HS_CHECK(packed.size() == int4_packed_size(out.size()), "packed int4 size mismatch");
  for (size_t i = 0; i < out.size(); ++i) {
    auto byte = static_cast<uint8_t>(packed[i / 2]);
    auto nibble = static_cast<uint8_t>(i % 2 == 0 ? byte & 0x0f : byte >> 4);
    // Sign-extend the 4-bit two's complement value.
    out[i] = static_cast<int8_t>(nibble >= 8 ? static_cast<int>(nibble) - 16 : nibble);
  }
}

}  // namespace hs::artifact
