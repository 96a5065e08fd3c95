// Internal to the kernels: int4 prefill of the exact path on AVX2 through exact float32 panels
// (qgemm_avx2_i4panel.cpp), chosen by matmul_avx2 (qgemm_avx2.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "qgemm_exact.h"

namespace hs::kernels::detail {

// Tokens from which matmul_avx2 runs int4 (per channel or block 32) through the float panels;
// fewer take the integer tiles (callgrind and CPU time at 576x576: see the .cpp).
inline constexpr size_t kI4PanelMinM = 8;
// The panels hold n as int16: every n of the call in [-32768, 32767] (else the integer tiles
// with their shift s run).

// y of the exact path for int4 weights (block 0 or 32), with the activations already on the
// grid: u [M][u_stride] holds n + offset for k < K (qgemm_avx2.cpp grid_u16), every n an
// int16. The same bits as the portable path.
Status matmul_avx2_i4panel(const MatmulCall& c, const QWeightsCall& q, const uint16_t* u,
                           size_t u_stride, int32_t offset, double s_a);

}  // namespace hs::kernels::detail
