// Internal to the AVX2 int16 panels (qgemm_avx2_panel.cpp): the call's shared facts, the tile
// shape and the packing of tokens and weight rows to int16 (qgemm_avx2_panel_pack.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "qgemm_exact.h"

namespace hs::kernels::detail::panel {

inline constexpr size_t kR = 6;     // weight rows per tile (one broadcast each per k pair)
inline constexpr size_t kVmax = 2;  // vectors of 8 tokens per tile
inline constexpr size_t kTok = 16;  // tokens per panel (8 * kVmax)
inline constexpr size_t kBk = 32;   // k per block (16 k pairs: one asm block)

struct Panels {
  const MatmulCall* c;
  const QWeightsCall* q;
  int bits;            // 8 (per channel) or 4 (per channel or block 32)
  bool blocks;         // int4 block 32 with float scales (else per channel)
  // int4 block 32 with LPBQ factors (qgemm.h): run as per channel, the rows' weights times their
  // blocks' multipliers (m_b q in [-128, 112], int8's range and flush interval) and c_n as the
  // row's scale: y = finish_channel(sum_b m_b D_b, c_n), the per-block formula's bits.
  bool lpbq;
  bool vnni;           // per channel: vpdpwssd blocks (AVX-512 VNNI + VL: vnni_supported())
  size_t nb;           // blocks of 32 k: ceil(K / 32)
  size_t kp;           // nb * 32: k per packed row and token
  const int16_t* act;  // token panels [ceil(M / kTok)][kp / 2][kTok][2]
  int32_t shift;       // s: the panels hold v = n - s
  double s_a;
};

// int4 position order: the 32 k of a block are stored in the order even k, then odd k (position
// i < 16 holds k = 2i, position 16 + i holds k = 2i + 1) in both the weight rows and the token
// panels, so the nibbles widen with two shifts each; a block's sum over its 32 positions is
// the same integer. int8: natural order.
// act[p][k / 2][t][k % 2] = v = n - s of token kTok p + t at position k (int4: the position
// order above; = u - offset - s, an int16) for k < K and kTok p + t < M, 0 elsewhere: per k
// pair, 16 tokens x 2 k = 64 bytes. Once per call.
void pack_tokens(const Panels& x, const uint16_t* u, size_t u_stride, int32_t offset, int16_t* act);

// The tile's rows [n0, n0 + kR) as int16: wp[r][kp] (int8: vpmovsxbw; int4: nibbles sign
// extended, LPBQ: times their block's multiplier; zero past K and in rows at or past n_end),
// and sp: block 32, their scales as
// doubles, sp[r][b] (rows of nb); per channel with s != 0, sp[r] = sum_k w (exact). Block 32
// with s != 0: cw[b][r] = s * sum_{k in block b} w (int32, exact). Once per 6-row tile, reused
// by every token panel.
void pack_rows(const Panels& x, size_t n0, size_t n_end, int16_t* wp, double* sp, int32_t* cw);

}  // namespace hs::kernels::detail::panel
