// Fast float32 matmul with transposed weights: the linear / 1×1-conv projections of the
// llama graph (SIMD, threaded over output channels). Checked against ref::linear and
// ref::conv2d_1x1 in tests/kernels/gemm_test.cpp; speed in bench/kernels_bench.cpp.
//
//   W[N,K] row-major (N outputs, K inputs), bias[N] or empty.
//   token-major   x[M,K] -> y[M,N]:  y[m,n] = sum_k x[m,k] * W[n,k]  (+ bias[n])   (linear)
//   channel-major x[K,M] -> y[N,M]:  y[n,m] = sum_k W[n,k] * x[k,m]  (+ bias[n])   (1×1 conv,
//                                                                     M = T positions)
//
// Numerics. Every y element is a float32 sum of the K float32 products, then + bias[n] once:
//   M >= 8 (panel path, prefill / calibration): one FMA per k in increasing k from 0,
//     acc = fma(x[m,k], W[n,k], acc);
//   M < 8 (dot path, decode): Lanes interleaved partial sums (FMA) over the first
//     K - K % Lanes inputs, a horizontal sum, then the remaining inputs in increasing k.
// Both are within (K + 4) * 2^-24 * (sum_k |x[m,k] * W[n,k]| + |bias[n]|) of the exact value
// (the standard bound gamma_K for a K-term float sum, plus the bias rounding and slack); the
// tests check that bound against a double-precision loop, and exact equality with ref::linear
// when every partial sum is exact (small integers).
// An element's value depends only on x[m,:], W[n,:], bias[n], whether M < 8, and the SIMD
// target: not on N or on which other rows the call computes (slicing W per head gives
// bit-identical rows), and not on the pool or its thread count (the work split is over whole
// rows and each row is computed by one fixed sequence of operations).
#pragma once

#include <cstdint>
#include <span>

#include "headsplit/support/result.h"

namespace hs::kernels {

class ThreadPool;

enum class ActLayout : uint8_t {
  kTokenMajor,    // x[M,K], y[M,N]: a linear layer over M tokens
  kChannelMajor,  // x[K,M], y[N,M]: a 1×1 conv over M = T positions
};

// M from which matmul_f32 takes the panel path (one FMA chain per element, see above).
inline constexpr int64_t kMatmulPanelMinM = 8;

struct MatmulShape {
  int64_t m = 0;  // tokens (T)
  int64_t n = 0;  // output channels (rows of W)
  int64_t k = 0;  // input channels
  ActLayout layout = ActLayout::kTokenMajor;
};

struct F32Weights {
  std::span<const float> w;     // [N,K]
  std::span<const float> bias;  // [N] or empty
};

// Scratch: x is packed once per call into a per-thread grow-only buffer (about M*K floats,
// kept for the thread's life); each pool thread also keeps ~60 KiB of tiles.
//
// y = x · Wᵀ (+ bias) as above, on `pool` (null: the calling thread only). Errors: kInvalidArgument
// for a negative dimension, kShape when a span's size does not match the shape (x, y, w, bias);
// y is not touched then. y must not overlap x, W or bias.
Status matmul_f32(const MatmulShape& shape, std::span<const float> x, const F32Weights& weights,
                  std::span<float> y, ThreadPool* pool);

}  // namespace hs::kernels
