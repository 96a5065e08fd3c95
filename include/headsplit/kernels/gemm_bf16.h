// BFloat16 matmul for CPUs with AVX512_BF16 (AMD Zen 4 / Zen 5, Intel Cooper Lake and Sapphire
// Rapids on): vdpbf16ps multiplies pairs of bfloat16 values into float32 sums, twice the
// multiply-adds per instruction of a float32 FMA, and the weights it reads are half the bytes.
// For calibration, where only the observed ranges matter and speed does: the operands are
// rounded to bfloat16 (8 significant bits), so this is NOT the float32 result of gemm.h.
//
// Same shapes and layouts as gemm.h, with W given as a Bf16Matrix (converted once, reused):
//   token-major   x[M,K] -> y[M,N]:  y[m,n] = sum_k bf(x[m,k]) * bf(W[n,k])  (+ bias[n])
//   channel-major x[K,M] -> y[N,M]:  y[n,m] = the same sum                   (+ bias[n])
// bf(v) = v rounded to the nearest bfloat16, ties to even (a NaN stays a NaN).
//
// Numerics. Each product of two bfloat16 values is exact in float32; the K products are summed
// in float32 by vdpbf16ps, two k at a time, in increasing k (per-lane partial sums on the dot
// path, M < 8, added at the end), then + bias[n] once. The instruction flushes denormal inputs
// and results to zero. So y is within (K + 4) * 2^-24 * (sum_k |bf(x[m,k]) * bf(W[n,k])| +
// |bias[n]|) + K * 2^-126 of the exact sum of the rounded products, and within about 2^-8 *
// sum_k |x[m,k] * W[n,k]| more of the float32 product sum (each operand's rounding is at most
// 2^-9 relative). A y element depends only on x[m,:], W[n,:], bias[n] and whether M < 8; not on
// N, on the other rows, or on the pool (tests/kernels/gemm_bf16_test.cpp).
#pragma once

#include <cstdint>
#include <span>

#include "headsplit/kernels/gemm.h"
#include "headsplit/support/buffer.h"
#include "headsplit/support/result.h"

namespace hs::kernels {

// True when this CPU runs matmul_bf16: AVX-512 F/BW/VL with AVX512_BF16, and the dispatched
// SIMD target is AVX3 or better (a ScopedSimdTarget forcing AVX2 or below turns it off).
bool bf16_matmul_supported();

// W[N,K] as bfloat16 pairs: pairs[n * Kp/2 + q] holds bf(W[n][2q]) in its low 16 bits and
// bf(W[n][2q+1]) in its high 16 bits, Kp = K + K % 2 (the pad input is +0).
// Held in anonymous memory, on huge pages from 2 MiB up (the decode steps stream all of it).
struct Bf16Matrix {
  int64_t n = 0, k = 0;
  AnonymousPages storage;
  int64_t padded_k() const { return k + k % 2; }
  std::span<const uint32_t> pairs() const {
    return {reinterpret_cast<const uint32_t*>(storage.data()),
            static_cast<size_t>(n * padded_k() / 2)};
  }
};

// bf(w) for W[N,K] row-major, rows split over `pool` (null: the calling thread). Errors:
// negative dimension, or w.size() != N * K.
Result<Bf16Matrix> to_bf16(std::span<const float> w, int64_t n, int64_t k,
                           ThreadPool* pool = nullptr);

// The nearest bfloat16 of v (ties to even; NaN -> a quiet NaN), as its bits.
uint16_t bf16_bits(float v);

// y = bf(x) · bf(W)ᵀ (+ bias) on `pool` (null: the calling thread). Errors: kUnsupported when
// !bf16_matmul_supported(); kShape/kInvalidArgument as matmul_f32 (sizes against shape, W's N
// and K); y untouched then. y must not overlap x, W or bias.
Status matmul_bf16(const MatmulShape& shape, std::span<const float> x, const Bf16Matrix& w,
                   std::span<const float> bias, std::span<float> y, ThreadPool* pool);

}  // namespace hs::kernels
