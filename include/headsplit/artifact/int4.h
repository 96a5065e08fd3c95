// Packing of 4-bit signed weights for the artifact's kInt4Packed layout, row by row (the
// layout of kernels/qgemm.h): a tensor of shape [rows, ...] is rows = shape[0] rows of
// K = numel / rows elements (a scalar is one row). Each row takes ceil(K / 2) bytes; element
// 2j of a row sits in the low nibble of the row's byte j, element 2j+1 in its high nibble
// (two's complement, -8..7); when K is odd the high nibble of the row's last byte is padding
// and zero. For even K this equals packing the flattened tensor. The IR keeps i4 one element
// per byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "headsplit/support/result.h"

namespace hs::artifact {

// The row view of an i4 tensor: rows = shape[0] (1 for a scalar), k = numel / rows
// (0 when the tensor is empty).
struct Int4Rows {
  uint64_t rows = 0;
  uint64_t k = 0;
};
// The caller guarantees the dims are >= 0 and their product does not overflow.
Int4Rows int4_rows(std::span<const int64_t> shape);

// Bytes per packed row: ceil(k / 2).
inline uint64_t int4_row_bytes(uint64_t k) { return k / 2 + k % 2; }
// Bytes of a packed tensor: rows * ceil(k / 2).
inline uint64_t int4_packed_size(Int4Rows r) { return r.rows * int4_row_bytes(r.k); }

// Packs values[rows, k] (row-major, each in [-8, 7]); kOutOfRange (naming `what`, the flat
// index, its row and column, and the value) otherwise. values.size() must be rows * k
// (kShape otherwise).
Result<std::vector<std::byte>> pack_int4(std::span<const int8_t> values, Int4Rows rows,
                                         std::string_view what);

// Unpacks rows * k elements into `out`; the caller guarantees out.size() == rows * k and
// packed.size() == int4_packed_size(rows).
void unpack_int4(std::span<const std::byte> packed, Int4Rows rows, std::span<int8_t> out);

}  // namespace hs::artifact
