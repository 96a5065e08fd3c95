// Internal to the kernels: prefill of the exact path on AVX2 through int16 panels with the
// tokens in lanes (qgemm_avx2_panel.cpp), for int8 per channel and int4 per channel or block 32;
// chosen by matmul_avx2 (qgemm_avx2.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "qgemm_exact.h"

namespace hs::kernels::detail {

// Tokens from which matmul_avx2 takes the panels; fewer take the integer tiles. Callgrind,
// instructions per 576x576 call (channel-major x), panels / tiles: int4 block 32 M = 10 1.35M /
// 1.25M, M = 11 1.36M / 1.41M, M = 12 1.36M / 1.39M (shifted n: 1.58M / 1.55M), M = 13 1.36M /
// 1.55M, M = 15 1.37M / 1.87M (with the fused block-32 epilogue; before it the break-even was
// M = 16); int8 per channel M = 5 0.72M / 0.67M, M = 6 0.73M / 0.90M, M = 8 0.74M / 0.89M, M =
// 9 1.14M / 1.12M (the tiles' 2x4 tiles plus one single token against a 16-token panel: a near
// tie, 4% slower in time), M = 10 1.14M / 1.34M, M = 16 1.17M / 1.78M.
inline constexpr size_t kI4PanelMinM = 13;
inline constexpr size_t kI8PanelMinM = 6;

// Whether a call of `bits` weights (block: 0 per channel, or 32) with M tokens takes the panels:
// M at or above the format's threshold. Any activation shift s (qgemm_avx2.cpp: v = n - s is an
// int16): per channel adds s * sum w to D once, block 32 s * sum_b w to each block's D_b.
inline bool panels_take(int bits, size_t m) {
  const size_t min_m = bits == 8 ? kI8PanelMinM : kI4PanelMinM;
  return m >= min_m;
}

// y of the exact path for int8 per channel or int4 (block 0 or 32) weights, with the activations
// already on the grid: u [M][u_stride] holds n + offset for k < K (qgemm_avx2.cpp grid_u16),
// every n - shift in [-32768, 32767]. The same bits as the portable path.
Status matmul_avx2_panels(const MatmulCall& c, const QWeightsCall& q, int bits, const uint16_t* u,
                          size_t u_stride, int32_t offset, int32_t shift, double s_a);

}  // namespace hs::kernels::detail
