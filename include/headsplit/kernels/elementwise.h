// Fast (Highway SIMD) elementwise kernels on float32 buffers, dispatched at run time to the
// best target the CPU supports: fake quantization, quantization into and dequantization from
// integer storage with per-tensor params, row softmax and the binary ops. The runtime runs
// them; the interpreter keeps the reference kernels (reference.h).
//
// Exactness: every kernel here performs, per output element, the same IEEE operations in the
// same order as the reference kernel it replaces (no FMA contraction, no reassociation), so
// results are bit-identical to the reference kernels and the interpreter:
//   fake-quant / quantize: q = clamp(round_half_even(x / scale) + zp, qmin, qmax) (a NaN
//     becomes qmin), real = scale * (q - zp)                                (kernels/quant.h)
//   binary: one float op per element                                 (ref::binary)
//   softmax: ref::softmax's max, std::exp, sum and division, in order
#pragma once

#include <cstddef>
#include <cstdint>

#include "headsplit/kernels/thread_pool.h"
#include "headsplit/opset/types.h"

namespace hs::kernels {

// x[n] <- dequantize(quantize(x)) in place, per-tensor params.
void fake_quantize_f32(float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                       int32_t qmax);
// Integer storage (u8, i8, u16, i16) of x[n] into y (native endian, maybe unaligned).
void quantize_f32(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                  int32_t qmax, opset::DType storage, std::byte* y);
// y[n] = scale * (q - zero_point) for integer storage x (u8, i8, u16, i16; maybe unaligned).
void dequantize_to_f32(const std::byte* x, opset::DType storage, int64_t n, float scale,
                       int32_t zero_point, float* y);

// Softmax over the last axis of x[rows, n] into y, bit-identical to ref::softmax: the same
// max, std::exp (skipped where it underflows to exactly 0), sum and division, in order. Rows
// are split over the pool when there is enough work.
void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, ThreadPool* pool);

// exp(t) is taken as exactly 0 for t below this (std::exp underflows to 0 there anyway).
inline constexpr float kSoftmaxExpZeroBelow = -104.0f;

// softmax_rows_f32 when the columns [dead_begin, dead_end) of every row are known to be dead:
// their x (not read; it may be garbage) is below max_row + kSoftmaxExpZeroBelow, so their exp is
// 0 and they are not the row's max. Then y is bit-identical to softmax_rows_f32 on the full row:
// the same max over the live columns, the same exps and sum in increasing column order (the
// dead terms would add exact zeros), dead y = 0.
void softmax_rows_live_f32(const float* x, float* y, int64_t rows, int64_t n, int64_t dead_begin,
                           int64_t dead_end, ThreadPool* pool);

// y[i] = std::exp(x[i]) for i < n, bit for bit: on x86-64 with AVX2 + FMA, eight lanes of
// glibc's expf algorithm (exp_f32.cpp), after a check at first use that they match this
// process's libm; otherwise std::exp itself. x == y is allowed.
void exp_f32(const float* x, float* y, int64_t n);
// y[i] = x[i] / (1 + std::exp(-x[i])) for i < n, bit-identical to ref::silu (exp_f32's lanes).
void silu_f32(const float* x, float* y, int64_t n);
// Whether exp_f32 / silu_f32 run the vector lanes here (false: std::exp per element).
bool exp_f32_vectorized();

// max over r < rows, i < n of the bits of x[r * ld + i] with the sign cleared (0 when there
// are none): for finite values the largest magnitude (bit patterns of non-negative floats order
// as the values), and at least 0x7f800000 when one is inf or NaN. Any bits are allowed (it
// reads x as integers). One row: rows = 1 (ld unused).
uint32_t abs_max_bits_f32(const float* x, int64_t rows, int64_t n, int64_t ld);

// out[j] = the OR over r < rows of the bits of x[r * ld + j] with the sign cleared, j < n: 0
// exactly when column j is all +-0 (any bits are allowed; x is read as integers).
void or_abs_bits_columns_f32(const float* x, int64_t rows, int64_t n, int64_t ld, int32_t* out);

enum class BinaryKind : uint8_t { kAdd, kSub, kMul, kDiv };
// y[i] = a[i] op b[i] for i < n.
void binary_f32(BinaryKind op, const float* a, const float* b, float* y, int64_t n);
// y[i] = a[i] op b (b_is_rhs) or y[i] = b op a[i] (otherwise) for i < n.
void binary_scalar_f32(BinaryKind op, const float* a, float b, bool b_is_rhs, float* y, int64_t n);

// Per-tensor fake quantization params (fake_quantize_f32's arguments).
struct FakeQuantParams {
  float scale = 1.f;
  int32_t zero_point = 0, qmin = 0, qmax = 0;
};
// binary_f32 / binary_scalar_f32 then fake_quantize_f32 on y, in one pass: the same bits.
void binary_fq_f32(BinaryKind op, const float* a, const float* b, float* y, int64_t n,
                   const FakeQuantParams& fq);
void binary_scalar_fq_f32(BinaryKind op, const float* a, float b, bool b_is_rhs, float* y,
                          int64_t n, const FakeQuantParams& fq);

}  // namespace hs::kernels
