// The exact integer path of matmul_quantized on AVX2 (qgemm_exact.h), for x86-64 CPUs without
// AVX-512 VNNI; chosen at run time (CPU check + Highway's dispatched target is AVX2 or better,
// so ScopedSimdTarget can force the portable path). Same integers, same epilogues, same bits.
//
// Activations: n = x / act_scale (on the grid, else *ran = false) is stored as int16
//   v = n - s,  s = 0 when every n of the call fits int16, else s = min(n) + 32768
// (n spans at most 65535 values, so v always fits), and
//   D = sum_k n_k w_k = sum_k v_k w_k + s * sum_k w_k        (the w sum only when s != 0).
// vpmaddwd (i16 x i16 -> i32, sums of 2 products) multiplies v by the weights widened to int16:
//   int8:  16 k per group, natural order, vpmovsxbw.
//   int4:  64 k per group = 32 bytes = 16 words; word i holds k = 4i + j in bits 4j..4j+3, and
//          (word << (12 - 4j)) >>arith 12 is that nibble, sign-extended. So each token's v is laid
//          out per group as 4 rows j of 16: position 16 j + i holds k = 4i + j. In every vector
//          i16 lanes 0..7 are k < 32 (block 2g), lanes 8..15 the rest (block 2g + 1), so after
//          vpmaddwd the low 128-bit half sums block 2g and the high half block 2g + 1.
// Overflow of the 32-bit lanes: |v| <= 2^15, |w| <= 2^7 (int8) so one vpmaddwd lane is at most
// 2 * 2^22 = 2^23; int8 lanes are flushed to int64 every kFlushGroups = 128 groups, at most
// 2^30 < 2^31. int4: |w| <= 8, a lane gains at most 8 * 2^18 = 2^21 per group (4 vpmaddwd) and
// K <= 32768 gives at most 512 groups: 2^30. A block-32 sum of n w is at most 32 * 65535 * 8 <
// 2^24, and s * (a lane's 8 weights) at most 2^15 * 64 = 2^21.
// Tiles: R rows x T tokens; each widened weight vector is used for T tokens (decode: 4 x 1,
// prefill: 4 x 4 or 2 x 4). int4 block 32 reduces four lane vectors at once (block_sums: per
// 128-bit half, the four vectors' totals) and meets the scales in double lanes, acc[b mod 8] +=
// double(s) * double(D) in increasing b:
//   decode (tile_i4b_rows4): the 4 rows of one group -> [rows 0..3 of block 2g | of 2g + 1],
//     acc[b mod 8] a __m256d of the 4 rows, the rows' scales transposed per 8 blocks;
//   prefill (tile_i4b_tok4): the 4 tokens of one row and group -> [tokens 0..3 of 2g | 2g + 1],
//     acc[r][b mod 8] a __m256d of the 4 tokens, one broadcast scale per row and block;
//   single rows of single tokens (tile_i4): four groups of one (row, token) from a scratch row
//     -> [blocks 0,2,4,6 | 1,3,5,7].
// Instruction counts (callgrind, per call, 576x576): decode 247k -> 167k -> 159k (acc kept in
// memory between chunks), M = 32 4.72M -> 3.73M.
// Prefill (M >= kI4PanelMinM / kI8PanelMinM) leaves these tiles
// for qgemm_avx2_panel.cpp: tokens in lanes, vpmaddwd of a broadcast weight pair with 8 tokens'
// activation pairs, no horizontal reductions (int4 block 32, M = 32: 2.51M instructions).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "hwy/targets.h"
#include "qgemm_avx2_panel.h"
#include "qgemm_exact.h"

#include "avx2_target.h"

namespace hs::kernels::detail {

#if HS_AVX2
namespace {

constexpr size_t kFlushGroups = 128;  // int8: 32-bit lanes reach at most 2^30 (see above)
constexpr size_t kRowUnit = 12;       // for_rows granularity: whole 4-row and 3-row tiles

struct Ctx {
  const MatmulCall* c;
  const QWeightsCall* q;
  size_t gk;          // k per group: 16 (int8) or 64 (int4)
  size_t groups;      // G = ceil(K / gk)
  size_t row_bytes;   // weight bytes per row
  size_t full;        // groups whose weights are read in place (the rest: zero-padded copy)
  const int16_t* act; // [M][G * gk] v, laid out per group, zero past K
  int32_t shift;      // s
  double s_a;
};

HS_AVX2_FN inline __m256i load(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Sum of the eight int32 lanes, in int64 (eight lanes of up to 2^30 overflow int32).
HS_AVX2_FN inline int64_t hsum64(__m256i v) {
  const __m256i s = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                     _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
  const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
}

// finish_blocks (qgemm_exact.cpp) inline, the same operations in the same order (as
// finish_channel_inline: the empty asm keeps t * s_a + bias from contracting into an FMA).
// acc_e = acc[0, 2, 4, 6], acc_o = acc[1, 3, 5, 7]:
// tree = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)).
HS_AVX2_FN inline float finish_bl(__m256d acc_e, __m256d acc_o, double s_a, float bias) {
  const __m256d p = _mm256_add_pd(acc_e, acc_o);  // a0+a1, a2+a3, a4+a5, a6+a7
  const __m128d q = _mm_hadd_pd(_mm256_castpd256_pd128(p), _mm256_extractf128_pd(p, 1));
  double t = _mm_cvtsd_f64(q) + _mm_cvtsd_f64(_mm_unpackhi_pd(q, q));
  t *= s_a;
  __asm__("" : "+x"(t));
  return static_cast<float>(t + static_cast<double>(bias));
}

// Weight bytes of the last group of each of R rows, zero past the row (int4 with odd K: the
// padding nibble zeroed too, for the weight sums).
template <size_t R>
void copy_tails(const Ctx& x, const uint8_t* w, uint8_t (*tail)[32]) {
  const size_t gbytes = x.gk == 16 ? 16 : 32, at = x.full * gbytes;
  if (x.full == x.groups) return;
  for (size_t r = 0; r < R; ++r) {
    copy_row_tail(w + r * x.row_bytes + at, x.row_bytes - at, x.gk == 64 && x.c->k % 2 == 1,
                  tail[r], 32);
  }
}

// One group of 16 k: acc[r][t] += w[r] . a[t] (8 lanes of 2 products), accw[r] += sum w[r].
template <size_t R, size_t T, bool kCorr>
HS_AVX2_FN __attribute__((always_inline)) inline void step_i8(const uint8_t* const (&src)[R],
                                                              const int16_t* const (&a)[T],
                                                              size_t g, __m256i (&acc)[R][T],
                                                              __m256i (&accw)[R]) {
  for (size_t r = 0; r < R; ++r) {
    const __m256i wv =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src[r])));
    if constexpr (kCorr) {
      accw[r] = _mm256_add_epi32(accw[r], _mm256_madd_epi16(wv, _mm256_set1_epi16(1)));
    }
    for (size_t t = 0; t < T; ++t) {
      acc[r][t] = _mm256_add_epi32(_mm256_madd_epi16(wv, load(a[t] + g * 16)), acc[r][t]);
    }
  }
}

// int8 per channel: R rows from n0 x T tokens from m0.
template <size_t R, size_t T, bool kCorr>
HS_AVX2_FN void tile_i8(const Ctx& x, size_t n0, size_t m0) {
  const MatmulCall& c = *x.c;
  const uint8_t* w = x.q->data + n0 * c.k;
  alignas(32) uint8_t tail[R][32];
  copy_tails<R>(x, w, tail);
  const int16_t* a[T];
  for (size_t t = 0; t < T; ++t) a[t] = x.act + (m0 + t) * x.groups * 16;
  int64_t d[R][T] = {};
  int64_t sw[R] = {};
  for (size_t g0 = 0; g0 < x.groups; g0 += kFlushGroups) {
    const size_t g1 = std::min(x.groups, g0 + kFlushGroups);
    __m256i acc[R][T], accw[R];
    for (size_t r = 0; r < R; ++r) {
      accw[r] = _mm256_setzero_si256();
      for (size_t t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_si256();
    }
    // Groups read in place, then (last chunk) the zero-padded tail group.
    const size_t in_place = std::min(g1, std::max(g0, x.full));
    for (size_t g = g0; g < in_place; ++g) {
      // Rows of 1-2 KiB are too short for the hardware prefetchers, so the next tile (the R
      // rows after these, contiguous) is prefetched at the rate this one is read (qgemm_int8).
      // A tile beyond kL1Tile bytes goes to L2 only (qgemm_exact.h).
      prefetch_tile_line(w + R * c.k + R * g * 16, R * c.k > kL1Tile);
      const uint8_t* src[R];
      for (size_t r = 0; r < R; ++r) src[r] = w + r * c.k + g * 16;
      step_i8<R, T, kCorr>(src, a, g, acc, accw);
    }
    if (in_place < g1) {
      const uint8_t* src[R];
      for (size_t r = 0; r < R; ++r) src[r] = tail[r];
      step_i8<R, T, kCorr>(src, a, in_place, acc, accw);
    }
    for (size_t r = 0; r < R; ++r) {
      if constexpr (kCorr) sw[r] += hsum64(accw[r]);
      for (size_t t = 0; t < T; ++t) d[r][t] += hsum64(acc[r][t]);
    }
  }
  for (size_t r = 0; r < R; ++r) {
    const size_t n = n0 + r;
    const float bias = c.bias != nullptr ? c.bias[n] : 0.f;
    for (size_t t = 0; t < T; ++t) {
      const int64_t dd = d[r][t] + int64_t{x.shift} * sw[r];
      store_y(c, m0 + t, n, finish_channel_inline(dd, x.q->scales[n], x.s_a, bias));
    }
  }
}

// The int4 tiles: tile_i4, tile_i4b_rows4, tile_i4b_tok4 (this file's second half).
#include "qgemm_avx2_i4-inl.h"  // NOLINT(build/include): inside the anonymous namespace on purpose

template <size_t R, size_t T, bool kCorr>
HS_AVX2_FN void tile(const Ctx& x, size_t n0, size_t m0, int32_t* comb) {
  if constexpr (T == 4) {
    if (x.gk == 64 && x.q->block != 0) {
      tile_i4b_tok4<R, kCorr>(x, n0, m0);
      return;
    }
  }
  if constexpr (R == 4 && T == 1) {
    if (x.gk == 64 && x.q->block != 0) {
      if (x.q->lpbq_mult != nullptr) {
        tile_i4lpbq_rows4<kCorr>(x, n0, m0);
      } else {
        tile_i4b_rows4<kCorr>(x, n0, m0);
      }
      return;
    }
  }
  if (x.gk == 16) {
    tile_i8<R, T, kCorr>(x, n0, m0);
  } else if (x.q->block == 0) {
    tile_i4<R, T, kCorr, false>(x, n0, m0, comb);
  } else {
    tile_i4<R, T, kCorr, true>(x, n0, m0, comb);
  }
}

// Rows [b0, b1) for tokens [m0, m0 + T): R-row tiles, then single rows.
template <size_t R, size_t T, bool kCorr>
HS_AVX2_FN void rows_of(const Ctx& x, size_t b0, size_t b1, size_t m0, int32_t* comb) {
  size_t n0 = b0;
  for (; n0 + R <= b1; n0 += R) tile<R, T, kCorr>(x, n0, m0, comb);
  for (; n0 < b1; ++n0) tile<1, T, kCorr>(x, n0, m0, comb);
}

// Rows [n_begin, n_end) in blocks whose weights stay in L2 (about 128 KiB); per block, T-token
// tiles (their activations stay in L1) over R-row tiles, then single tokens.
template <size_t R, size_t T, bool kCorr>
HS_AVX2_FN void run_rows(const Ctx& x, size_t n_begin, size_t n_end, int32_t* comb) {
  const size_t M = x.c->m;
  const size_t nb = std::max<size_t>(R, (size_t{128} << 10) / x.row_bytes / R * R);
  for (size_t b0 = n_begin; b0 < n_end; b0 += nb) {
    const size_t b1 = std::min(n_end, b0 + nb);
    size_t m = 0;
    if constexpr (T > 1) {
      for (; m + T <= M; m += T) rows_of<R, T, kCorr>(x, b0, b1, m, comb);
    }
    // Single tokens: 4-row tiles (int4 block 32: the rows-in-lanes decode tile), as for M = 1.
    for (; m < M; ++m) rows_of<(R > 2 ? 4 : R), 1, kCorr>(x, b0, b1, m, comb);
  }
}

// The grid check and conversion of a run of x: u = n + offset (n = round(x / scale), the
// nearest, ties to even) as uint16, lo / hi the range of u, bad: some x != n * scale. kRecip:
// n = round(x * (1 / scale)) instead of the division (grid_u16 states when that finds the
// same n). Lanes past len are 0 = 0 * scale with n = 0: they pass and are not stored.
struct GridLanes {
  __m256 sv, inv;
  __m256i off, lane, lo, hi, bad;
};

template <bool kRecip>
HS_AVX2_FN __attribute__((always_inline)) inline void grid_run(const float* xs, size_t len,
                                                               uint16_t* us, GridLanes& g) {
  size_t k = 0;
  auto one = [&](__m256 xv, __m256i mask) HS_AVX2_FN {
    const __m256 q = kRecip ? _mm256_mul_ps(xv, g.inv) : _mm256_div_ps(xv, g.sv);
    const __m256i nv = _mm256_cvtps_epi32(q);  // nearest, ties to even
    const __m256 back = _mm256_mul_ps(_mm256_cvtepi32_ps(nv), g.sv);
    const __m256i uv = _mm256_add_epi32(nv, g.off);
    g.bad = _mm256_or_si256(g.bad, _mm256_castps_si256(_mm256_cmp_ps(back, xv, _CMP_NEQ_UQ)));
    // u outside [0, 65535] (n near +-2^31 from a huge x included) makes lo < 0 or hi > 65535.
    g.lo = _mm256_min_epi32(g.lo, _mm256_blendv_epi8(g.lo, uv, mask));
    g.hi = _mm256_max_epi32(g.hi, _mm256_and_si256(uv, mask));
    return _mm_packus_epi32(_mm256_castsi256_si128(uv), _mm256_extracti128_si256(uv, 1));
  };
  const __m256i all = _mm256_set1_epi32(-1);
  for (; k + 8 <= len; k += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(us + k), one(_mm256_loadu_ps(xs + k), all));
  }
  if (k < len) {
    const __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(len - k)), g.lane);
    alignas(16) uint16_t t[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), one(_mm256_maskload_ps(xs + k, mask), mask));
    std::memcpy(us + k, t, (len - k) * sizeof(uint16_t));
  }
}

// ut [K][M] (channel-major) -> u [M][kp] (8 x 8 blocks of uint16 through SSE unpacks).
HS_AVX2_FN void transpose_u16(const uint16_t* ut, size_t K, size_t M, uint16_t* u, size_t kp) {
  size_t k0 = 0;
  for (; k0 + 8 <= K; k0 += 8) {
    size_t m0 = 0;
    for (; m0 + 8 <= M; m0 += 8) {
      __m128i r[8], a[8], b[8];
      for (size_t i = 0; i < 8; ++i) {
        r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ut + (k0 + i) * M + m0));
      }
      for (size_t i = 0; i < 8; i += 2) {  // 16-bit pairs (k i, k i+1) per m
        a[i] = _mm_unpacklo_epi16(r[i], r[i + 1]);      // m 0..3
        a[i + 1] = _mm_unpackhi_epi16(r[i], r[i + 1]);  // m 4..7
      }
      for (size_t h = 0; h < 2; ++h) {  // h: m 0..3 or 4..7
        b[4 * h] = _mm_unpacklo_epi32(a[h], a[2 + h]);      // m 4h, 4h+1: k 0..3
        b[4 * h + 1] = _mm_unpackhi_epi32(a[h], a[2 + h]);  // m 4h+2, 4h+3: k 0..3
        b[4 * h + 2] = _mm_unpacklo_epi32(a[4 + h], a[6 + h]);      // k 4..7
        b[4 * h + 3] = _mm_unpackhi_epi32(a[4 + h], a[6 + h]);
      }
      for (size_t h = 0; h < 2; ++h) {
        for (size_t j = 0; j < 2; ++j) {
          const size_t m = m0 + 4 * h + 2 * j;
          const __m128i lo = b[4 * h + j], hi = b[4 * h + 2 + j];
          _mm_storeu_si128(reinterpret_cast<__m128i*>(u + m * kp + k0),
                           _mm_unpacklo_epi64(lo, hi));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(u + (m + 1) * kp + k0),
                           _mm_unpackhi_epi64(lo, hi));
        }
      }
    }
    for (; m0 < M; ++m0) {
      for (size_t i = 0; i < 8; ++i) u[m0 * kp + k0 + i] = ut[(k0 + i) * M + m0];
    }
  }
  for (; k0 < K; ++k0) {
    for (size_t m = 0; m < M; ++m) u[m * kp + k0] = ut[k0 * M + m];
  }
}

// Maps every token of x onto the grid: u = n + offset as uint16 in `u` [M][kp] (zero past K);
// false when some x is off the grid. nmin / nmax: the range of n. Channel-major x (M > 1) is
// checked and converted in its own order into ut [K][M], then transposed.
// n = round(x * r), r = float(1 / scale), finds the same n as round(x / scale) when x =
// float(scale * n) with |n| < 2^17 (qgemm_exact.cpp's bound) and scale in [2^-60, 2^60]: x * r
// is n (1 + e) with |e| <= 3 * 2^-24 (+ higher order), so |x r - n| < 2^17 * 3 * 2^-24 < 1/2.
// Such an n is unique (qgemm_exact.cpp), so every x that passes one check passes the other.
// Outside that scale range (1 / scale could overflow or lose bits) it divides.
HS_AVX2_FN bool grid_u16(const Ctx& x, ActGrid grid, size_t kp, uint16_t* u, uint16_t* ut,
                         int32_t* nmin, int32_t* nmax) {
  const MatmulCall& c = *x.c;
  GridLanes g;
  g.sv = _mm256_set1_ps(grid.scale);
  g.inv = _mm256_set1_ps(1.f / grid.scale);
  g.off = _mm256_set1_epi32(grid.offset);
  g.lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  g.lo = _mm256_set1_epi32(65535);
  g.hi = _mm256_set1_epi32(0);
  g.bad = _mm256_setzero_si256();
  const float a = std::fabs(grid.scale);
  const bool recip = a >= 0x1p-60f && a <= 0x1p60f;
  auto span = [&](const float* xs, size_t len, uint16_t* us) HS_AVX2_FN {
    recip ? grid_run<true>(xs, len, us, g) : grid_run<false>(xs, len, us, g);
  };
  if (c.layout == ActLayout::kChannelMajor && c.m > 1) {
    span(c.x, c.m * c.k, ut);
    transpose_u16(ut, c.k, c.m, u, kp);
  } else {
    for (size_t m = 0; m < c.m; ++m) span(c.x + m * c.k, c.k, u + m * kp);
  }
  for (size_t m = 0; m < c.m; ++m) std::memset(u + m * kp + c.k, 0, (kp - c.k) * sizeof(uint16_t));
  alignas(32) int32_t l[8], h[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), g.lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(h), g.hi);
  int32_t umin = l[0], umax = h[0];
  for (int i = 1; i < 8; ++i) {
    umin = std::min(umin, l[i]);
    umax = std::max(umax, h[i]);
  }
  if (!_mm256_testz_si256(g.bad, g.bad) || umin < 0 || umax > 65535) return false;
  *nmin = umin - grid.offset;
  *nmax = umax - grid.offset;
  return true;
}

// v = u - (offset + s) (wrapping 16-bit arithmetic; the true v fits int16) in the group layout
// of x.gk (int8: natural; int4: position 16 j + i of a group holds k = 4i + j), past K: 0.
HS_AVX2_FN void layout_v(const Ctx& x, size_t kp, const uint16_t* u, size_t ck, int32_t sub) {
  const __m256i subv = _mm256_set1_epi16(static_cast<int16_t>(static_cast<uint16_t>(sub)));
  auto* act = const_cast<int16_t*>(x.act);
  // The 4 x 16 transpose of int4 groups: within 128 bits, words (i, j) at 4i + j go to
  // [j0: i0 i1 | j1: i0 i1 | j2 .. | j3 ..] (2 words each), then 64-bit pieces are gathered.
  const __m256i shuf = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0,
                                        1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  for (size_t m = 0; m < x.c->m; ++m) {
    const uint16_t* um = u + m * kp;
    int16_t* am = act + m * kp;
    if (x.gk == 16) {
      for (size_t k = 0; k < kp; k += 16) {
        __m256i v = _mm256_sub_epi16(load(um + k), subv);
        if (k + 16 > ck) {  // zero past K (u = 0 there would give -sub)
          alignas(32) int16_t t[16];
          _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
          for (size_t i = ck - std::min(ck, k); i < 16; ++i) t[i] = 0;
          v = load(t);
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(am + k), v);
      }
      continue;
    }
    for (size_t k = 0; k < kp; k += 64) {
      __m256i q[4];  // q[p]: words i = 4p .. 4p + 3 (128-bit half h: i = 4p + 2h, +1)
      for (int p = 0; p < 4; ++p) {
        __m256i v = _mm256_sub_epi16(load(um + k + 16 * p), subv);
        if (k + 16 * (p + 1) > ck) {
          alignas(32) int16_t t[16];
          _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
          const size_t from = k + 16 * p;
          for (size_t i = ck > from ? ck - from : 0; i < 16; ++i) t[i] = 0;
          v = load(t);
        }
        // each 128-bit half: [j0 of its 2 words | j1 | j2 | j3], 32 bits (2 words) each
        q[p] = _mm256_shuffle_epi8(v, shuf);
      }
      // 32-bit piece (p, h, j) holds i = 4p + 2h, 4p + 2h + 1 of row j; row j wants the pieces
      // in order p, h. Per 128-bit half h: unpack j pieces across p.
      const __m256i a01 = _mm256_unpacklo_epi32(q[0], q[1]);  // h: [j0 p0, j0 p1, j1 p0, j1 p1]
      const __m256i b01 = _mm256_unpackhi_epi32(q[0], q[1]);  // h: [j2 p0, j2 p1, j3 p0, j3 p1]
      const __m256i a23 = _mm256_unpacklo_epi32(q[2], q[3]);
      const __m256i b23 = _mm256_unpackhi_epi32(q[2], q[3]);
      const __m256i j0 = _mm256_unpacklo_epi64(a01, a23);  // h: [j0 p0, p1, p2, p3]
      const __m256i j1 = _mm256_unpackhi_epi64(a01, a23);
      const __m256i j2 = _mm256_unpacklo_epi64(b01, b23);
      const __m256i j3 = _mm256_unpackhi_epi64(b01, b23);
      // Row j wants [p0 h0, p0 h1, p1 h0, p1 h1, ...]: 32-bit lanes (h0: 0..3, h1: 4..7).
      const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
      int16_t* ag = am + k;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ag), _mm256_permutevar8x32_epi32(j0, perm));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ag + 16),
                          _mm256_permutevar8x32_epi32(j1, perm));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ag + 32),
                          _mm256_permutevar8x32_epi32(j2, perm));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ag + 48),
                          _mm256_permutevar8x32_epi32(j3, perm));
    }
  }
}

}  // namespace

bool avx2_supported() {
  static const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("bmi2");
  // The dispatched target (not hwy::SupportedTargets(): CPUID per call) is AVX2 or better
  // (Highway numbers better x86 targets with lower bits; EMU128 and SCALAR are above them).
  const int64_t t = dispatched_simd_target();
  return cpu && t > 0 && t <= HWY_AVX2;
}

Status matmul_avx2(const MatmulCall& c, const QWeightsCall& q, int bits, ActGrid grid, bool* ran) {
  *ran = false;
  Ctx x{};
  x.c = &c;
  x.q = &q;
  x.gk = bits == 8 ? 16 : 64;
  x.groups = (c.k + x.gk - 1) / x.gk;
  x.row_bytes = bits == 8 ? c.k : (c.k + 1) / 2;
  x.full = c.k / x.gk;
  x.s_a = grid.scale;
  const size_t kp = x.groups * x.gk;
  // act [M * kp] i16 | u [M * kp] u16 | channel-major x: ut [K * M] u16, in floats (64-byte
  // pieces).
  const size_t act_f = (c.m * kp * 2 + 63) / 64 * 16;
  const size_t ut_f = c.layout == ActLayout::kChannelMajor && c.m > 1 ? (c.m * c.k + 1) / 2 : 0;
  float* base = thread_scratch(ScratchSlot::kExactAct, 2 * act_f + ut_f);
  if (base == nullptr) return out_of_memory("matmul_quantized", 2 * act_f + ut_f);
  auto* act = reinterpret_cast<int16_t*>(base);
  auto* u = reinterpret_cast<uint16_t*>(base + act_f);
  auto* ut = reinterpret_cast<uint16_t*>(base + 2 * act_f);
  int32_t nmin = 0, nmax = 0;
  if (!grid_u16(x, grid, kp, u, ut, &nmin, &nmax)) return ok_status();
  *ran = true;
  x.shift = nmin >= -32768 && nmax <= 32767 ? 0 : nmin + 32768;
  // Decode of int4 block 32 with LPBQ factors on AVX-512 VNNI CPUs: qgemm_vnni_i4.cpp.
  if (bits == 4 && vnni_lpbq_takes(c, q)) {
    return matmul_vnni_lpbq(c, q, u, kp, grid.offset, grid.scale);
  }
  // Prefill: the panels of qgemm_avx2_panel.cpp.
  if (panels_take(bits, c.m)) {
    return matmul_avx2_panels(c, q, bits, u, kp, grid.offset, x.shift, grid.scale);
  }
  x.act = act;
  layout_v(x, kp, u, c.k, grid.offset + x.shift);
  const bool blocks = bits == 4 && q.block != 0;
  const bool corr = x.shift != 0;
  const size_t comb_floats = 12 * x.groups * 8;
  std::atomic<bool> oom{false};
  for_rows(c, kRowUnit, [&](size_t n_begin, size_t n_end) {
    int32_t* comb = nullptr;
    if (blocks) {
      comb = reinterpret_cast<int32_t*>(thread_scratch(ScratchSlot::kExactComb, comb_floats));
      if (comb == nullptr) {
        oom = true;
        return;
      }
    }
    // Decode: 4 rows x 1 token. Prefill: 4-token tiles of 2 rows (8 accumulators, 2 weight and
    // 4 activation vectors: 3 rows spill) or, int4 blocks (tokens in lanes, accumulators on
    // the stack), 4 rows (callgrind: 5% fewer instructions than 3).
    if (c.m == 1) {
      corr ? run_rows<4, 1, true>(x, n_begin, n_end, comb)
           : run_rows<4, 1, false>(x, n_begin, n_end, comb);
    } else if (bits == 8 || !blocks) {
      corr ? run_rows<2, 4, true>(x, n_begin, n_end, comb)
           : run_rows<2, 4, false>(x, n_begin, n_end, comb);
    } else {
      corr ? run_rows<4, 4, true>(x, n_begin, n_end, comb)
           : run_rows<4, 4, false>(x, n_begin, n_end, comb);
    }
  });
  if (oom) return out_of_memory("matmul_quantized", comb_floats);
  return ok_status();
}

#else  // !HS_AVX2

bool avx2_supported() { return false; }
Status matmul_avx2(const MatmulCall&, const QWeightsCall&, int, ActGrid, bool* ran) {
  *ran = false;
  return ok_status();
}

#endif  // HS_AVX2

}  // namespace hs::kernels::detail
