// Packing of 4-bit signed weights for the artifact's kInt4Packed layout: element 2k in the
// low nibble of byte k, element 2k+1 in the high nibble (two's complement, -8..7); an odd
// element count leaves the last high nibble zero. The IR keeps i4 one element per byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "headsplit/support/result.h"

namespace hs::artifact {

// Bytes needed for `count` packed elements: ceil(count / 2).
inline uint64_t int4_packed_size(uint64_t count) { return count / 2 + count % 2; }

// Packs values in [-8, 7]; kOutOfRange (naming `what`, the index and the value) otherwise.
Result<std::vector<std::byte>> pack_int4(std::span<const int8_t> values, std::string_view what);

// Unpacks `out.size()` elements; the caller guarantees packed.size() == int4_packed_size.
void unpack_int4(std::span<const std::byte> packed, std::span<int8_t> out);

}  // namespace hs::artifact
