// Fast matmul with int8 or int4 weights and float32 activations (the runtime's quantized
// projections: 16a8w, 16a4w, 16a4w-block). Weights are converted to float in registers (or a
// small L1 tile), never dequantized as a whole. Same shapes and layouts as gemm.h:
//
//   token-major   x[M,K] -> y[M,N]:  y[m,n] = sum_k s(n,k) * Wq[n,k] * x[m,k]  (+ bias[n])
//   channel-major x[K,M] -> y[N,M]:  y[n,m] = the same sum                     (+ bias[n])
//
//   s(n,k) = scales[n]                   per output channel (block == 0), scales [N]
//   s(n,k) = scales[n * nb + k / block]  per block along K, nb = ceil(K / block), scales [N,nb];
//                                        the last block of a row may be partial.
// Symmetric: zero point 0 (real weight = s * Wq).
//
// Weight storage:
//   int8: Wq int8 [N,K] row-major.
//   int4: [N, ceil(K/2)] bytes; byte j of row n holds k = 2j in its low nibble and k = 2j+1 in
//         its high nibble, each a signed 4-bit value (-8..7). When K is odd the high nibble of
//         a row's last byte is padding and ignored.
//
// Numerics: float32 sums as in gemm.h. Where the scale is applied: dot path (M < 8) per
// channel, once per row after the sum; int4 per block, once per block's partial sum; int8 per
// block and the panel path (M >= 8), to each converted weight (s * Wq, one rounding). Error
// bound: (K + 4) * 2^-24 * (sum_k |s(n,k) * Wq[n,k] * x[m,k]| + |bias[n]|), checked by the
// tests; results are independent of the pool and of the other rows, as in gemm.h. The int4 dot
// path scales x by exact powers of two (2^-28, 2^-4) to save shifts when unpacking nibbles, so
// activations below 2^-98 in magnitude lose bits there (real activations never get near).
// Per-block int4 with a block that is not a multiple of 16 takes a slower scalar-conversion
// path (correct, not fast).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "headsplit/kernels/gemm.h"
#include "headsplit/support/result.h"

namespace hs::kernels {

enum class WeightBits : uint8_t { kInt4 = 4, kInt8 = 8 };

struct QuantizedWeights {
  WeightBits bits = WeightBits::kInt8;
  std::span<const std::byte> data;  // int8 [N,K] or packed int4 [N, ceil(K/2)]
  std::span<const float> scales;    // [N] (block == 0) or [N, ceil(K/block)]
  int64_t block = 0;                // 0: per output channel; > 0: block size along K
  std::span<const float> bias;      // [N] or empty
  // Activation grid (optional; act_scale > 0 enables it). When every x equals
  // act_scale * n exactly for an integer n with u = n + act_offset in [0, 65535] (x is the
  // fake-quantized value of a per-tensor 16- or 8-bit activation: n = q - zero_point,
  // act_offset = zero_point - qmin), the exact integer path runs instead of the float one:
  //   D(n,b) = sum_{k in block b} n_k * Wq[n,k]                          (exact, integers)
  //   per channel: y = float(double(s_n) * D * act_scale + bias[n])     (double, this order)
  //   per block:   acc[j] = sum_{b = j mod 8, increasing} s(n,b) * D(n,b)  (double),
  //                y = float(tree(acc[0..7]) * act_scale + bias[n]),
  //                tree = ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7))
  // The result is the same for every M, every row range, thread count and SIMD path (AVX-512
  // VNNI, AVX2 or portable); otherwise (some x off the grid) the float path runs. The portable
  // implementation is a plain scalar loop (exact, slow): callers that want speed request the
  // path only when quantized_exact_is_fast() says a SIMD implementation runs it.
  float act_scale = 0.f;
  int32_t act_offset = 0;
  // Optional, int4 per block with the exact path: the scales' LPBQ factors (lpbq_factor below),
  // row_scales [N] and multipliers [N, ceil(K/block)], which must satisfy
  //   scales[n * nb + b] == row_scales[n] * mult[n * nb + b]   (exactly, mult in 1..16)
  // and lpbq_factor's bound. The AVX2 decode tile then reads the 1-byte multipliers instead of
  // the float scales and sums D = sum_b mult_b * D(n,b) as an integer: since every partial sum
  // of the per-block formula above is an exact double under the bound, tree(acc) = c * D and
  //   y = float(double(c) * D * act_scale + bias[n])  is the per-block formula's result, bit for bit.
  std::span<const float> lpbq_row_scales;
  std::span<const uint8_t> lpbq_mult;
  // Optional with the factors: lpbq_row_sums() of the weights, [N]. With them, CPUs with AVX-512
  // VNNI run the decode (M < 4) with the multipliers folded into the weights (qgemm_vnni_i4.cpp).
  std::span<const int32_t> lpbq_row_sums;
};

// The LPBQ factors of per-block int4 scales [N, nb] (nb = ceil(K / block)): per row
// c = max_b(s_b) / 16 and m_b = s_b / c, when every m_b is an integer in 1..16 and
// C * K * 8 * 65535 * 16 < 2^53 for c = C * 2^e with C odd (so every partial sum of a row's
// exact integer path, |q| <= 8, |n| <= 65535, is an exact double). False (outputs unspecified)
// when some row is not of that form: the caller keeps the float scales alone.
bool lpbq_factor(std::span<const float> scales, int64_t n, int64_t k, int64_t block,
                 std::vector<float>& row_scales, std::vector<uint8_t>& mult);

// Per row n, sum_k mult[n, k / block] * Wq[n, k] (int4 weights as above, K <= 32768), the
// weight sum the VNNI decode needs (QuantizedWeights::lpbq_row_sums). Empty when the sizes do
// not fit (data [N, ceil(K/2)], mult [N, ceil(K/block)]) or K > 32768.
std::vector<int32_t> lpbq_row_sums(std::span<const std::byte> data, std::span<const uint8_t> mult,
                                   int64_t n, int64_t k, int64_t block);
// True when calls of M tokens read lpbq_row_sums on this CPU (M < 4, AVX-512 VNNI, Highway's
// dispatched target AVX3); elsewhere callers need not compute them.
bool lpbq_row_sums_used(int64_t m);

// y = dequant(Wq) applied to x as above, on `pool` (null: the calling thread only). Errors:
// kInvalidArgument for a negative dimension or block, or bits other than 4 and 8; kShape when
// a span's size does not match (x, y, data, scales, bias); y is not touched then.
Status matmul_quantized(const MatmulShape& shape, std::span<const float> x,
                        const QuantizedWeights& weights, std::span<float> y, ThreadPool* pool);

// True when the exact integer path (act_scale > 0) runs on a SIMD implementation here (x86-64
// with AVX2/FMA/BMI2, or AVX512-VNNI/BW/VL/DQ, see ExactIsa) for int8 per channel and int4 per
// channel or block 32 weights with K <= 32768.
bool quantized_exact_is_fast(WeightBits bits, int64_t block, int64_t k);

// The x86 implementation of the exact integer path on a CPU that runs both (every AVX-512 VNNI
// CPU has AVX2): both give the same bits. kAvx2 (the default) is the int16 vpmaddwd kernels
// (decode tiles with rows in lanes, prefill panels with tokens in lanes); kVnni the AVX-512
// vpdpbusd kernels (qgemm_vnni.cpp). Measured on AMD Zen 4 (SmolLM2 shape, 1 thread), the AVX2
// kernels run decode 2.1x (int8) and 1.5x (int4 block 32) and prefill 2.0x / 1.65x faster, so
// VNNI runs only when asked for: set_exact_isa(kVnni), or HS_QGEMM_VNNI=1 in the environment
// (read once, at the first call). For tests and comparisons; thread-safe.
enum class ExactIsa : uint8_t { kAvx2, kVnni };
void set_exact_isa(ExactIsa isa);
ExactIsa exact_isa();
// The kAvx2 default still runs the int4 LPBQ decode (M < 4, with lpbq_row_sums) on AVX-512 VNNI
// where the CPU has it (qgemm_vnni_i4.cpp: weights times multipliers by table lookup, vpdpbusd),
// and there the per-channel prefill panels add their pair products with vpdpwssd (one
// instruction for vpmaddwd + vpaddd, the same bits). What runs the exact path here, for reports:
// "AVX2 int16" (", AVX-512 VNNI prefill panels and int4 LPBQ decode" where those run),
// "AVX-512 VNNI" or "portable".
const char* exact_path_name();

// Bytes per packed int4 row: ceil(K / 2).
constexpr int64_t int4_row_bytes(int64_t k) { return (k + 1) / 2; }

// Packs q[N,K] (values -8..7, one per int8) into int4 rows as above; the padding nibble of an
// odd-K row is 0. kShape if the sizes do not fit, kOutOfRange naming the first value outside
// -8..7.
Status pack_int4(std::span<const int8_t> q, int64_t n, int64_t k, std::span<std::byte> packed);

}  // namespace hs::kernels
