// Internal to the kernels: the exact integer path of matmul_quantized (qgemm.h, "Activation
// grid"). x is first mapped to integers n = x / act_scale (every x must be on the grid, else
// the float path runs); the dot products are exact integers; one shared epilogue turns them
// into floats, so every path (portable C++, AVX-512 VNNI, AVX2) and every M gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace hs::kernels::detail
