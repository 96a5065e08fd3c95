// Shape helpers shared by the reference kernels (internal to the kernels library):
// broadcast strides and a row-major odometer that walks an output while tracking operand
// offsets.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "headsplit/kernels/reference.h"

namespace hs::kernels::ref::detail {

// Row-major element strides of `shape`.
std::vector<int64_t> row_major_strides(Dims shape);

// Strides of an operand of `shape` read at each index of `out_shape` under NumPy
// broadcasting: shapes are right-aligned; missing and size-1 axes get stride 0.
// HS_CHECKs that the shapes broadcast to `out_shape`.
std::vector<int64_t> broadcast_strides(Dims shape, Dims out_shape);

// Calls f(i, offsets) for every element i of `out_shape` in row-major order, where
// offsets[k] = sum over axes a of index[a] * strides[k][a].
template <size_t N, typename F>
void for_each_strided(Dims out_shape, const std::array<std::vector<int64_t>, N>& strides, F&& f) {
  const size_t rank = out_shape.size();
  const int64_t total = count(out_shape);
  std::vector<int64_t> index(rank, 0);
  std::array<int64_t, N> offsets{};
  for (int64_t i = 0; i < total; ++i) {
    f(i, offsets);
    for (size_t a = rank; a-- > 0;) {  // odometer: bump the last axis, carry leftwards
      ++index[a];
      for (size_t k = 0; k < N; ++k) offsets[k] += strides[k][a];
      if (index[a] < out_shape[a]) break;
      for (size_t k = 0; k < N; ++k) offsets[k] -= strides[k][a] * out_shape[a];
      index[a] = 0;
    }
  }
}

}  // namespace hs::kernels::ref::detail
