// Internal to the runtime: the SIMD kernels of the runtime's own ops (Highway, dispatched at
// run time to the best target the CPU supports, like the kernels library).
//
// Exactness: every kernel here performs, per output element, the same IEEE operations in the
// same order as the reference kernel it replaces (no FMA contraction, no reassociation), so
// results are bit-identical to the reference kernels and the interpreter:
//   fake-quant / quantize: q = clamp(round_half_even(x / scale) + zp, qmin, qmax) (a NaN
//     becomes qmin), real = scale * (q - zp)                                (kernels/quant.h)
//   binary: one float op per element                                 (ref::binary)
//   matmul: acc = 0; for k increasing: acc = acc + a[m,k] * b[k,n]       (ref::matmul)
#pragma once

#include <cstddef>
#include <cstdint>

#include "plan.h"

namespace hs::runtime::detail {

// x[n] <- dequantize(quantize(x)) in place, per-tensor params.
void fake_quantize_f32(float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                       int32_t qmax);
// Integer storage (u8, i8, u16, i16) of x[n] into y (native endian, maybe unaligned).
void quantize_f32(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                  int32_t qmax, Elem storage, std::byte* y);
// y[n] = scale * (q - zero_point) for integer storage x (maybe unaligned).
void dequantize_to_f32(const std::byte* x, Elem storage, int64_t n, float scale, int32_t zero_point,
                       float* y);

// Softmax over the last axis of x[rows, n] into y, bit-identical to ref::softmax: the same
// max, std::exp (skipped where it underflows to exactly 0), sum and division, in order. Rows
// are split over the pool when there is enough work.
void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, kernels::ThreadPool* pool);

enum class BinaryKind : uint8_t { kAdd, kSub, kMul, kDiv };
// y[i] = a[i] op b[i] for i < n.
void binary_f32(BinaryKind op, const float* a, const float* b, float* y, int64_t n);
// y[i] = a[i] op b (b_is_rhs) or y[i] = b op a[i] (otherwise) for i < n.
void binary_scalar_f32(BinaryKind op, const float* a, float b, bool b_is_rhs, float* y, int64_t n);

// One operand part of a batched matmul's right-hand side B[K,N] (see AttentionMatmul).
struct MatmulPart {
  Source source;             // contiguous [batches..., rows, cols] of this part
  int64_t batch_stride = 0;  // elements between the part's source batches
  int64_t begin = 0;         // first column (concat on N) or row (concat on K) it covers
  int64_t extent = 0;        // columns (N) or rows (K) it covers
};

// y[b] = A[b] · B[b] for every batch b, A [M,K] dense float, B [K,N] assembled from parts
// concatenated along N (`concat_on_n`, each part [K, extent]) or along K (each part
// [extent, N]). Batch b reads A at a + a_offsets[b] and part p at
// part_ptr + b_batches[b] * batch_stride; y[b] is at y + b*M*N. This is how the attention
// reads concat(cache, new) in place: the cache part is the u8/u16 graph input itself, its
// columns dequantized in registers. The result is bit-identical to ref::matmul on the
// materialized operands (same operations per element, k increasing).
struct MatmulShapeInfo {
  int64_t m = 0, k = 0, n = 0;
  bool concat_on_n = true;
  int64_t batches = 1;
  const int64_t* a_offsets = nullptr;  // [batches]
  const int64_t* b_batches = nullptr;  // [batches]
};
void matmul_parts(const MatmulShapeInfo& shape, const float* a, const MatmulPart* parts,
                  const std::byte* const* part_ptrs, int64_t n_parts, float* y,
                  kernels::ThreadPool* pool);

}  // namespace hs::runtime::detail
