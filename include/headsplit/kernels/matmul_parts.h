// The attention matmul (QKᵀ, P·V and other small batched float matmuls) with a right-hand
// side assembled from parts, so that concat(cache, new) is read in place and u8/u16 cache
// columns are dequantized in registers (Highway SIMD, dispatched at run time).
//
// Exactness: each output element is `acc = 0; acc = acc + a[m,k] * b[k,n]` for k increasing,
// with separate multiply and add (no FMA; its source file is compiled with -ffp-contract=off),
// exactly ref::matmul on the materialized operands, so results are bit-identical to it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "headsplit/kernels/thread_pool.h"
#include "headsplit/opset/types.h"

namespace hs::kernels {

// One operand part of a batched matmul's right-hand side B[K,N].
struct MatmulPart {
  opset::DType storage = opset::DType::kF32;  // f32, or integer storage u8/i8/u16/i16
  float scale = 1.f;                          // integer storage: real = scale * (q - zp)
  int32_t zero_point = 0;
  int64_t batch_stride = 0;  // elements between the part's source batches
  int64_t begin = 0;         // first column (concat on N) or row (concat on K) it covers
  int64_t extent = 0;        // columns (N) or rows (K) it covers
  int64_t ld = 0;            // concat on N: the source's row length (0: extent), so that a
                             // part may cover a column range of a wider source
};

// y[b] = A[b] · B[b] for every batch b, A [M,K] dense float, B [K,N] assembled from parts
// concatenated along N (`concat_on_n`, each part [K, extent]) or along K (each part
// [extent, N]). Batch b reads A at a + a_offsets[b] and part p at
// part_ptrs[p] + b_batches[b] * batch_stride elements; y[b] is at y + b*M*N.
struct MatmulShapeInfo {
  int64_t m = 0, k = 0, n = 0;
  bool concat_on_n = true;
  int64_t batches = 1;
  const int64_t* a_offsets = nullptr;  // [batches]
  const int64_t* b_batches = nullptr;  // [batches]
};
// 1 <= n_parts <= 8.
void matmul_parts(const MatmulShapeInfo& shape, const float* a, const MatmulPart* parts,
                  const std::byte* const* part_ptrs, int64_t n_parts, float* y, ThreadPool* pool);

}  // namespace hs::kernels
