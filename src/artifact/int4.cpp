// Two 4-bit signed values per byte, low nibble first, rows padded to whole bytes (the
// kInt4Packed weight layout, identical to kernels/qgemm.h's int4 rows).
#include "headsplit/artifact/int4.h"

#include "headsplit/support/result.h"

namespace hs::artifact {

Int4Rows int4_rows(std::span<const int64_t> shape) {
  uint64_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<uint64_t>(d);
  uint64_t rows = shape.empty() ? 1 : static_cast<uint64_t>(shape[0]);
  return Int4Rows{rows, rows == 0 ? 0 : numel / rows};
}

Result<std::vector<std::byte>> pack_int4(std::span<const int8_t> values, Int4Rows rows,
                                         std::string_view what) {
  if (values.size() != rows.rows * rows.k) {
    return errorf(ErrorKind::kShape, "{}: {} int4 values for {} rows of {}", what, values.size(),
                  rows.rows, rows.k);
  }
  const uint64_t row_bytes = int4_row_bytes(rows.k);
  std::vector<std::byte> packed(int4_packed_size(rows), std::byte{0});
  for (uint64_t r = 0; r < rows.rows; ++r) {
    for (uint64_t j = 0; j < rows.k; ++j) {
      const uint64_t i = r * rows.k + j;
      const int8_t v = values[i];
      if (v < -8 || v > 7) {
        return errorf(ErrorKind::kOutOfRange,
                      "{}: element {} (row {}, column {}) is {}, outside the int4 range -8..7",
                      what, i, r, j, static_cast<int>(v));
      }
      auto nibble = static_cast<uint8_t>(static_cast<uint8_t>(v) & 0x0f);
      packed[r * row_bytes + j / 2] |=
          std::byte{static_cast<uint8_t>(j % 2 == 0 ? nibble : nibble << 4)};
    }
  }
  return packed;
}

void unpack_int4(std::span<const std::byte> packed, Int4Rows rows, std::span<int8_t> out) {
  HS_CHECK(packed.size() == int4_packed_size(rows) && out.size() == rows.rows * rows.k,
           "packed int4 size mismatch");
  const uint64_t row_bytes = int4_row_bytes(rows.k);
  for (uint64_t r = 0; r < rows.rows; ++r) {
    for (uint64_t j = 0; j < rows.k; ++j) {
      auto byte = static_cast<uint8_t>(packed[r * row_bytes + j / 2]);
      auto nibble = static_cast<uint8_t>(j % 2 == 0 ? byte & 0x0f : byte >> 4);
      // Sign-extend the 4-bit two's complement value.
      out[r * rows.k + j] =
          static_cast<int8_t>(nibble >= 8 ? static_cast<int>(nibble) - 16 : nibble);
    }
  }
}

}  // namespace hs::artifact
