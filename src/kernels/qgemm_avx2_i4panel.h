// Internal to the kernels: int4 prefill of the exact path on AVX2 through int16 panels with
// the tokens in lanes (qgemm_avx2_i4panel.cpp), chosen by matmul_avx2 (qgemm_avx2.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "qgemm_exact.h"

namespace hs::kernels::detail {

// Tokens from which matmul_avx2 runs int4 (per channel or block 32) through the panels; fewer
// take the integer tiles (callgrind at 576x576: M = 8 and 12 cost more instructions on the
// panels, M = 16 fewer).
inline constexpr size_t kI4PanelMinM = 16;

// y of the exact path for int4 weights (block 0 or 32), with the activations already on the
// grid: u [M][u_stride] holds n + offset for k < K (qgemm_avx2.cpp grid_u16), every n in
// [-32768, 32767] (the panels hold n as int16; other calls take the integer tiles with their
// shift s). The same bits as the portable path.
Status matmul_avx2_i4panel(const MatmulCall& c, const QWeightsCall& q, const uint16_t* u,
                           size_t u_stride, int32_t offset, double s_a);

}  // namespace hs::kernels::detail
