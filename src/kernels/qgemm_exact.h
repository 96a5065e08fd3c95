// Internal to the kernels: the exact integer path of matmul_quantized (qgemm.h, "Activation
// grid"). x is first mapped to integers n = x / act_scale (every x must be on the grid, else
// the float path runs); the dot products are exact integers; one shared epilogue turns them
// into floats, so every path (portable C++, AVX-512 VNNI, AVX2) and every M gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "matmul_internal.h"

namespace hs::kernels::detail {

struct ActGrid {
  float scale = 0.f;   // x = scale * n
  int32_t offset = 0;  // u = n + offset in [0, 65535]
};

// Runs the exact path when every x is on the grid; *ran = false (y untouched) otherwise.
Status matmul_exact(const MatmulCall& c, const QWeightsCall& q, int bits, ActGrid grid, bool* ran);

// The shared epilogues (qgemm.h): per channel y = float(double(s_w) * d * s_a + bias); per block
// y = float(tree(acc[0..7]) * s_a + bias). Out of line so every path runs the same code.
float finish_channel(int64_t d, float s_w, double s_a, float bias);
float finish_blocks(const double* acc8, double s_a, float bias);

// finish_channel inline for the SIMD tiles: the same operations in the same order (the empty asm
// keeps the compiler from contracting t * s_a + bias into an FMA, which would round once).
inline float finish_channel_inline(int64_t d, float s_w, double s_a, float bias) {
  double t = static_cast<double>(s_w) * static_cast<double>(d);
  t *= s_a;
  __asm__("" : "+x"(t));
  return static_cast<float>(t + static_cast<double>(bias));
}

// The last, partial group of a weight row for the SIMD tiles: out[0, size) = the row's bytes
// from `from` (have of them), zero after; int4 with an odd K (odd_int4) also zeroes the padding
// nibble of the row's last byte, so weight sums see only real weights.
inline void copy_row_tail(const uint8_t* from, size_t have, bool odd_int4, uint8_t* out,
                          size_t size) {
  std::memset(out, 0, size);
  std::memcpy(out, from, have);
  if (odd_int4) out[have - 1] &= 0x0f;
}

// The decode tiles prefetch the next tile while they read this one: into L1 for tiles up to
// kL1Tile bytes, into L2 beyond. A longer tile's rows sit far apart (4 rows of 4 KiB: a multiple
// of 4 KiB), so the current and next tiles' lines map to the same L1 sets at every step and
// L1-prefetched lines were evicted before use (qgemm_vnni_i4.cpp has the figures).
// The L1 prefetch is non-temporal: the weights are read once per token, and a temporal fill
// pushes out of the outer caches what the token reuses (the plan's step data, the KV cache).
// AMD Zen 4, SmolLM2-135M 16a8w decode, 1 thread, medians of 5: split 170.5 -> 184.1 tok/s,
// unsplit 186.8 -> 193.8; perf: the steps' own first loads (MatmulStep::run) 905 -> 405
// samples and the attention's cache reads (NColumns) 2285 -> 1595. Llama-3.2-1B: unchanged.
// Every decode tile's weight prefetch goes through here (qgemm_avx2.cpp, its int4 tiles,
// qgemm_vnni.cpp, qgemm_vnni_i4.cpp). Row blocks re-read for a second token tile (M = 5, 1
// thread, kernels_bench) are no slower: int8 2048x8192 1,450 against 1,488 us, int4 LPBQ
// 2,069 against 2,057.
inline constexpr size_t kL1Tile = 8192;
inline void prefetch_tile_line(const void* p, bool to_l2) {
  if (to_l2) {
    __builtin_prefetch(p, 0, 2);  // prefetcht1
  } else {
    __builtin_prefetch(p, 0, 0);  // prefetchnta (into L1, not kept in the outer caches)
  }
}

// y[m, n] of the call's layout.
inline void store_y(const MatmulCall& c, size_t m, size_t n, float v) {
  if (c.layout == ActLayout::kTokenMajor) {
    c.y[m * c.n + n] = v;
  } else {
    c.y[n * c.m + m] = v;
  }
}

// The formats both SIMD paths cover (the rest take the portable path): int8 per channel, int4
// per channel or block 32, K <= kExactSimdMaxK (their 32-bit lane sums' overflow bounds).
inline constexpr size_t kExactSimdMaxK = 32768;
bool exact_simd_handles(const MatmulCall& c, const QWeightsCall& q, int bits);

// The AVX-512 VNNI path (qgemm_vnni.cpp): nullptr-safe query and entry. vnni_supported() is
// false off x86-64, on CPUs without AVX512-VNNI/BW/VL and when Highway's dispatched target
// (ScopedSimdTarget) is not AVX3.
bool vnni_supported();
// *ran = false when some x is off the grid.
Status matmul_vnni(const MatmulCall& c, const QWeightsCall& q, int bits, ActGrid grid, bool* ran);

// The AVX2 path (qgemm_avx2.cpp), for x86-64 CPUs without VNNI; the same contract:
// avx2_supported() is false off x86-64, without AVX2/FMA/BMI2 and when Highway's dispatched
// target is worse than AVX2.
bool avx2_supported();
Status matmul_avx2(const MatmulCall& c, const QWeightsCall& q, int bits, ActGrid grid, bool* ran);

// The implementation matmul_exact takes for the formats exact_simd_handles covers: AVX2 where it
// runs unless ExactIsa asks for VNNI (qgemm.h), VNNI where only it runs, else the portable loop.
enum class ExactSimd : uint8_t { kPortable, kAvx2, kVnni };
ExactSimd exact_simd();

// The decode of int4 block 32 with LPBQ factors and row sums on AVX-512 VNNI (qgemm_vnni_i4.cpp),
// which matmul_avx2 takes for M < kVnniLpbqMaxM tokens on CPUs where vnni_supported(): the
// multipliers folded into the weights by table lookup, vpdpbusd on the bytes of u = n + offset
// (u [M][kp], zero past K, kp = 64 * ceil(K / 64)). Same bits as every other path.
inline constexpr size_t kVnniLpbqMaxM = 4;
bool vnni_lpbq_takes(const MatmulCall& c, const QWeightsCall& q);
Status matmul_vnni_lpbq(const MatmulCall& c, const QWeightsCall& q, const uint16_t* u, size_t kp,
                        int32_t offset, double s_a);

}  // namespace hs::kernels::detail
