// Prefill of the exact path on AVX2 through int16 panels with the tokens in lanes
// (qgemm_avx2_panel.h): int8 per channel, int4 per channel or block 32, M >= the format's
// threshold. The same integers and the same epilogues as the portable path (qgemm_exact.cpp),
// so the same bits.
//
// Integers: the panels hold v = n - s in [-32768, 32767] (qgemm_avx2.cpp's shift: s = 0 when
// every n is an int16, else s = min(n) + 32768; D = sum v w + s sum w), |w| <= 2^7 (int8) or 8
// (int4; its 32 k per block in the position order of qgemm_avx2_panel_parts.h, in weights and
// tokens alike).
// Per k pair, vpmaddwd of a row's broadcast (w_k, w_k+1) with 8 tokens' (v_k, v_k+1) gives
//   w_k v_k + w_k+1 v_k+1  per token, at most 2 * 2^15 * 2^7 = 2^23 (int8; int4: 2^19),
// summed by vpaddd in an int32 lane per token: no horizontal reductions. One asm block is the
// 16 pairs of 32 k. Then:
//   block 32 (int4): the lanes of a block sum to sum v w (|.| <= 16 * 2^19 = 2^23); s != 0 adds
//     cw = s * sum_b w (|s| < 2^17, |sum_b w| <= 256: below 2^25), so they hold D_b = sum n w
//     (|D_b| <= 32 * 65535 * 8 < 2^24; int32 arithmetic, exact). D_b meets its scale,
//     acc[b mod 8] += double(s_b) * double(D_b) in increasing b (a 24-bit scale times |D_b| <
//     2^24 is exact in double, so an FMA gives the same bits; the first visit of a slot is an
//     FMA onto +0, as 0 + x), y = float(tree(acc) * s_a + bias);
//   per channel: the lanes run over kFlush blocks before they are added to a double, D' +=
//     double(lane). The largest lane after j pairs is j * 2^23 (v = -32768, w = -128), below
//     2^31 for j <= 255: int8 flushes every 15 blocks (240 pairs, at most 2013265920; 16 blocks,
//     256 pairs, reach 2^31 and wrap), int4 every 128 blocks (2^30). D' = sum v w is an integer
//     with |D'| <= 32768 * 2^22 = 2^37, and D = D' + double(s) * double(sum w) (|s| < 2^17,
//     |sum w| <= 2^22): every step is exact below 2^53, so y = float(double(s_w) * D * s_a +
//     bias), finish_channel's operations in its order.
// Block 32 cannot flush 2 blocks at once: each D_b has its own scale and the slots' sums round.
// Shapes: x -> token panels of kTok = 16 tokens, per k pair 16 x (v_k, v_k+1) = 64 bytes (zero
// past K and past M), packed once per call. Per tile of kR = 6 weight rows: the rows widened
// once to int16 (wp[r][kp], zero past K) and used by every token panel; the register tile is
// 6 rows x 2 vectors of 8 tokens = 12 int32 accumulators (asm: GCC spilled them). acc: block 32
// [8][6][16] doubles (6 KiB), per channel [6][16].
// Instructions per k pair and tile (192 products): 2 token loads, 6 broadcasts, 12 vpmaddwd,
// 12 vpaddd; block 32 (block_6x16_scaled, the block and its epilogue in one asm statement): per
// block 500 + 90 (the double epilogue; was about 170 in intrinsics). Per 576x576 M = 32 call,
// channel-major x (callgrind): int4 block 32 2.51M (2.97M before, 3.73M for the integer tiles),
// shifted (n over 0..65535) 2.76M (4.22M through tile_i4b_tok4); int8 per channel 2.18M against
// 3.55M (tile_i8<2, 4>). Smaller M: kI8PanelMinM (qgemm_avx2_panel.h). On CPUs with AVX-512
// VNNI (and VL) the per-channel blocks (int8, int4 per channel, LPBQ) add the pair products
// with vpdpwssd: 20 instructions per k pair instead of 32; AMD Zen 4, M = 32, weights in cache
// (kernels_bench, HS_BENCH_HOT=1, median of 5): int8 576x576 148-162 -> 121-123 us, 576x1536
// 380-434 -> 311-312; int4 LPBQ 576x576 154-210 -> 127-131, 576x1536 415-536 -> 322-368.
#include "qgemm_avx2_panel.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "qgemm_avx2_panel_parts.h"

#include "avx2_target.h"

namespace hs::kernels::detail {

#if HS_AVX2
namespace {

using panel::kBk;
using panel::kR;
using panel::kTok;
using panel::kVmax;
using panel::Panels;

// Per channel: blocks of 32 k summed in the int32 lanes before a flush to double (see above).
constexpr size_t kFlushI8 = 15;
constexpr size_t kFlushI4 = 128;

// One block (16 k pairs) of the 6 x 16 tile: c[r][v] += sum_j (w_r,2j, w_r,2j+1) . (tokens
// 8v..8v+7 at k 2j, 2j+1), and of the 6 x 8 tile (the last panel of 1..8 tokens). In asm: GCC
// keeps neither the broadcasts in order nor the 12 accumulators in registers here (it spills
// and adds moves). Per k pair: the token loads, then per row a vpbroadcastd and per vector
//   AVX2: vpmaddwd + vpaddd                  (6 x 16: 32 instructions for 192 products)
//   AVX-512 VNNI + VL: one vpdpwssd (EVEX, 256-bit): c + (p0 + p1) modulo 2^32, the bits of
//     vpmaddwd then vpaddd (both wrap; the flush interval keeps every lane exact anyway)
//                                            (6 x 16: 20 instructions)
// clang-format off
#define HS_P_ROW(mem, c0, c1)                                                   \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "vpmaddwd %%ymm0, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %[" c0 "], %[" c0 "]\n\t"                                      \
  "vpmaddwd %%ymm1, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %[" c1 "], %[" c1 "]\n\t"
#define HS_V_ROW(mem, c0, c1)                                                   \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "%{evex%} vpdpwssd %%ymm0, %%ymm2, %[" c0 "]\n\t"                              \
  "%{evex%} vpdpwssd %%ymm1, %%ymm2, %[" c1 "]\n\t"
#define HS_PAIR(ROW, ao, wo)                                                    \
  "vmovdqu " ao "(%[a]), %%ymm0\n\t"                                             \
  "vmovdqu " ao "+32(%[a]), %%ymm1\n\t"                                          \
  ROW(wo "(%[w0])", "c00", "c01")                                              \
  ROW(wo "(%[w0],%[s])", "c10", "c11")                                         \
  ROW(wo "(%[w0],%[s],2)", "c20", "c21")                                       \
  ROW(wo "(%[w3])", "c30", "c31")                                              \
  ROW(wo "(%[w3],%[s])", "c40", "c41")                                         \
  ROW(wo "(%[w3],%[s],2)", "c50", "c51")
#define HS_P_ROW1(mem, c0)                                                      \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "vpmaddwd %%ymm0, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %[" c0 "], %[" c0 "]\n\t"
#define HS_V_ROW1(mem, c0)                                                      \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "%{evex%} vpdpwssd %%ymm0, %%ymm2, %[" c0 "]\n\t"
#define HS_PAIR1(ROW, ao, wo)                                                   \
  "vmovdqu " ao "(%[a]), %%ymm0\n\t"                                             \
  ROW(wo "(%[w0])", "c0") ROW(wo "(%[w0],%[s])", "c1")                        \
  ROW(wo "(%[w0],%[s],2)", "c2") ROW(wo "(%[w3])", "c3")                      \
  ROW(wo "(%[w3],%[s])", "c4") ROW(wo "(%[w3],%[s],2)", "c5")
// The 16 k pairs of the block unrolled (token offsets 64 j bytes, weight offsets 4 j; the 6 x 8
// tile reads the first 8 tokens of the 16-token panel).
#define HS_PAIRS(PAIR, ROW)                                                     \
  PAIR(ROW, "0", "0") PAIR(ROW, "64", "4") PAIR(ROW, "128", "8")              \
  PAIR(ROW, "192", "12") PAIR(ROW, "256", "16") PAIR(ROW, "320", "20")        \
  PAIR(ROW, "384", "24") PAIR(ROW, "448", "28") PAIR(ROW, "512", "32")        \
  PAIR(ROW, "576", "36") PAIR(ROW, "640", "40") PAIR(ROW, "704", "44")        \
  PAIR(ROW, "768", "48") PAIR(ROW, "832", "52") PAIR(ROW, "896", "56")        \
  PAIR(ROW, "960", "60")
#define HS_BLOCK_6X16(ROW)                                                      \
  __asm__(HS_PAIRS(HS_PAIR, ROW)                                                \
      : [c00] "+x"(c[0][0]), [c01] "+x"(c[0][1]), [c10] "+x"(c[1][0]), [c11] "+x"(c[1][1]), \
        [c20] "+x"(c[2][0]), [c21] "+x"(c[2][1]), [c30] "+x"(c[3][0]), [c31] "+x"(c[3][1]), \
        [c40] "+x"(c[4][0]), [c41] "+x"(c[4][1]), [c50] "+x"(c[5][0]), [c51] "+x"(c[5][1]) \
      : [a] "r"(a), [w0] "r"(w), [w3] "r"(w3), [s] "r"(stride)                   \
      : "xmm0", "xmm1", "xmm2", "xmm3", "memory")  /* reads the panels */
#define HS_BLOCK_6X8(ROW)                                                       \
  __asm__(HS_PAIRS(HS_PAIR1, ROW)                                               \
      : [c0] "+x"(c[0][0]), [c1] "+x"(c[1][0]), [c2] "+x"(c[2][0]), [c3] "+x"(c[3][0]), \
        [c4] "+x"(c[4][0]), [c5] "+x"(c[5][0])                                   \
      : [a] "r"(a), [w0] "r"(w), [w3] "r"(w3), [s] "r"(stride)                   \
      : "xmm0", "xmm2", "xmm3", "memory")
// clang-format on

template <bool kVnni>
HS_AVX2_FN __attribute__((always_inline)) inline void block_6x16(const int16_t* w, size_t kp,
                                                                 const int16_t* a,
                                                                 __m256i (&c)[6][2]) {
  const int16_t* w3 = w + 3 * kp;
  const size_t stride = kp * sizeof(int16_t);
  if constexpr (kVnni) {
    HS_BLOCK_6X16(HS_V_ROW);
  } else {
    HS_BLOCK_6X16(HS_P_ROW);
  }
}

template <bool kVnni>
HS_AVX2_FN __attribute__((always_inline)) inline void block_6x8(const int16_t* w, size_t kp,
                                                                const int16_t* a,
                                                                __m256i (&c)[6][1]) {
  const int16_t* w3 = w + 3 * kp;
  const size_t stride = kp * sizeof(int16_t);
  if constexpr (kVnni) {
    HS_BLOCK_6X8(HS_V_ROW1);
  } else {
    HS_BLOCK_6X8(HS_P_ROW1);
  }
}
#undef HS_BLOCK_6X8
#undef HS_BLOCK_6X16
#undef HS_PAIRS
#undef HS_PAIR1
#undef HS_V_ROW1
#undef HS_P_ROW1
#undef HS_PAIR
#undef HS_V_ROW
#undef HS_P_ROW

// Block 32, 6 rows x 16 tokens, one block and its epilogue in one asm statement (GCC spilled
// two of the 12 accumulators around the intrinsics epilogue and copied the rest): ymm4..15 are
// c[r][v] (r = 0..5, v = 0, 1), ymm0/1 the token vectors, ymm2 the broadcast, ymm3 a product.
// The first k pair writes the accumulators (vpmaddwd, no zeroing); kCorr adds cw[r] = s *
// sum_b w (the lanes then hold D_b = sum n w, |D_b| < 2^24); then per row and vector
//   p[r][v][0..7] = double(c[r][v]) * s_b[r] + (kFirst ? +0 : p[r][v][0..7])     (one FMA,
// exact product) into the slot p = acc[b mod 8]. Per block 500 + 90 (+ 18 kCorr) instructions.
// clang-format off
#define HS_F_ROW0(mem, c0, c1)                                                  \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "vpmaddwd %%ymm0, %%ymm2, %%" c0 "\n\t"                                        \
  "vpmaddwd %%ymm1, %%ymm2, %%" c1 "\n\t"
#define HS_F_ROW(mem, c0, c1)                                                   \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "vpmaddwd %%ymm0, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %%" c0 ", %%" c0 "\n\t"                                        \
  "vpmaddwd %%ymm1, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %%" c1 ", %%" c1 "\n\t"
#define HS_F_LOAD(ao)                                                           \
  "vmovdqu " ao "(%[a]), %%ymm0\n\t"                                             \
  "vmovdqu " ao "+32(%[a]), %%ymm1\n\t"
#define HS_F_PAIR0                                                              \
  HS_F_LOAD("0")                                                                \
  HS_F_ROW0("(%[w0])", "ymm4", "ymm5") HS_F_ROW0("(%[w0],%[s])", "ymm6", "ymm7") \
  HS_F_ROW0("(%[w0],%[s],2)", "ymm8", "ymm9") HS_F_ROW0("(%[w3])", "ymm10", "ymm11") \
  HS_F_ROW0("(%[w3],%[s])", "ymm12", "ymm13") HS_F_ROW0("(%[w3],%[s],2)", "ymm14", "ymm15")
#define HS_F_PAIR(ao, wo)                                                       \
  HS_F_LOAD(ao)                                                                 \
  HS_F_ROW(wo "(%[w0])", "ymm4", "ymm5") HS_F_ROW(wo "(%[w0],%[s])", "ymm6", "ymm7") \
  HS_F_ROW(wo "(%[w0],%[s],2)", "ymm8", "ymm9") HS_F_ROW(wo "(%[w3])", "ymm10", "ymm11") \
  HS_F_ROW(wo "(%[w3],%[s])", "ymm12", "ymm13") HS_F_ROW(wo "(%[w3],%[s],2)", "ymm14", "ymm15")
#define HS_F_PAIRS                                                              \
  HS_F_PAIR0 HS_F_PAIR("64", "4") HS_F_PAIR("128", "8")                         \
  HS_F_PAIR("192", "12") HS_F_PAIR("256", "16") HS_F_PAIR("320", "20")          \
  HS_F_PAIR("384", "24") HS_F_PAIR("448", "28") HS_F_PAIR("512", "32")          \
  HS_F_PAIR("576", "36") HS_F_PAIR("640", "40") HS_F_PAIR("704", "44")          \
  HS_F_PAIR("768", "48") HS_F_PAIR("832", "52") HS_F_PAIR("896", "56")          \
  HS_F_PAIR("960", "60")
// c[r][0..1] += broadcast cw[r]
#define HS_F_CORR(ro, c0, c1)                                                   \
  "vpbroadcastd " ro "(%[cw]), %%ymm2\n\t"                                       \
  "vpaddd %%ymm2, %%" c0 ", %%" c0 "\n\t"                                        \
  "vpaddd %%ymm2, %%" c1 ", %%" c1 "\n\t"
#define HS_F_CORRS                                                              \
  HS_F_CORR("0", "ymm4", "ymm5") HS_F_CORR("4", "ymm6", "ymm7")                 \
  HS_F_CORR("8", "ymm8", "ymm9") HS_F_CORR("12", "ymm10", "ymm11")              \
  HS_F_CORR("16", "ymm12", "ymm13") HS_F_CORR("20", "ymm14", "ymm15")
// One vector of 8 tokens (int32 c) -> p[off .. off + 64 bytes): p = double(c) * s + the addend
// (a0, a1: ymm3 = +0 on a slot's first visit, else p itself).
#define HS_F_VEC(cx, cy, off, a0, a1)                                           \
  "vcvtdq2pd %%" cx ", %%ymm0\n\t"                                               \
  "vextracti128 $1, %%" cy ", %%xmm1\n\t"                                        \
  "vcvtdq2pd %%xmm1, %%ymm1\n\t"                                                 \
  "vfmadd213pd " a0 ", %%ymm2, %%ymm0\n\t"                                       \
  "vfmadd213pd " a1 ", %%ymm2, %%ymm1\n\t"                                       \
  "vmovupd %%ymm0, " off "(%[p])\n\t"                                            \
  "vmovupd %%ymm1, " off "+32(%[p])\n\t"
#define HS_F_VEC_FIRST(cx, cy, off) HS_F_VEC(cx, cy, off, "%%ymm3", "%%ymm3")
#define HS_F_VEC_ACC(cx, cy, off) HS_F_VEC(cx, cy, off, off "(%[p])", off "+32(%[p])")
#define HS_F_EPI(VEC)                                                           \
  "vbroadcastsd (%[q0]), %%ymm2\n\t"                                             \
  VEC("xmm4", "ymm4", "0") VEC("xmm5", "ymm5", "64")                            \
  "vbroadcastsd (%[q0],%[qs]), %%ymm2\n\t"                                       \
  VEC("xmm6", "ymm6", "128") VEC("xmm7", "ymm7", "192")                         \
  "vbroadcastsd (%[q0],%[qs],2), %%ymm2\n\t"                                     \
  VEC("xmm8", "ymm8", "256") VEC("xmm9", "ymm9", "320")                         \
  "vbroadcastsd (%[q3]), %%ymm2\n\t"                                             \
  VEC("xmm10", "ymm10", "384") VEC("xmm11", "ymm11", "448")                     \
  "vbroadcastsd (%[q3],%[qs]), %%ymm2\n\t"                                       \
  VEC("xmm12", "ymm12", "512") VEC("xmm13", "ymm13", "576")                     \
  "vbroadcastsd (%[q3],%[qs],2), %%ymm2\n\t"                                     \
  VEC("xmm14", "ymm14", "640") VEC("xmm15", "ymm15", "704")
// clang-format on

// w: the tile's rows at block b (row stride kp int16), a: the panel at block b, q: the scales
// of block b, sp[r][b] (row stride nb doubles), cw: s * sum_b w per row (kCorr), p: slot b mod 8
// ([6][16] doubles).
template <bool kFirst, bool kCorr>
HS_AVX2_FN __attribute__((always_inline)) inline void block_6x16_scaled(
    const int16_t* w, size_t kp, const int16_t* a, const double* q, size_t nb, const int32_t* cw,
    double* p) {
  const int16_t* w3 = w + 3 * kp;
  const size_t stride = kp * sizeof(int16_t);
  const double* q3 = q + 3 * nb;
  const size_t qs = nb * sizeof(double);
  // clang-format off
#define HS_F_ASM(body)                                                                         \
  __asm__ volatile(body                                                                        \
      : : [a] "r"(a), [w0] "r"(w), [w3] "r"(w3), [s] "r"(stride), [q0] "r"(q), [q3] "r"(q3),   \
          [qs] "r"(qs), [cw] "r"(cw), [p] "r"(p)                                               \
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",         \
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory")
  if constexpr (kFirst && kCorr) {
    HS_F_ASM(HS_F_PAIRS HS_F_CORRS "vxorpd %%ymm3, %%ymm3, %%ymm3\n\t" HS_F_EPI(HS_F_VEC_FIRST));
  } else if constexpr (kFirst) {
    HS_F_ASM(HS_F_PAIRS "vxorpd %%ymm3, %%ymm3, %%ymm3\n\t" HS_F_EPI(HS_F_VEC_FIRST));
  } else if constexpr (kCorr) {
    HS_F_ASM(HS_F_PAIRS HS_F_CORRS HS_F_EPI(HS_F_VEC_ACC));
  } else {
    HS_F_ASM(HS_F_PAIRS HS_F_EPI(HS_F_VEC_ACC));
  }
#undef HS_F_ASM
  // clang-format on
}
#undef HS_F_EPI
#undef HS_F_VEC_ACC
#undef HS_F_VEC_FIRST
#undef HS_F_VEC
#undef HS_F_CORRS
#undef HS_F_CORR
#undef HS_F_PAIRS
#undef HS_F_PAIR
#undef HS_F_PAIR0
#undef HS_F_LOAD
#undef HS_F_ROW
#undef HS_F_ROW0



// One block (16 k pairs) of V vectors of 8 tokens: c[r][v] += the block's pair products.
template <size_t V, bool kVnni = false>
HS_AVX2_FN __attribute__((always_inline)) inline void block(const int16_t* w, size_t kp,
                                                            const int16_t* a, __m256i (&c)[kR][V]) {
  static_assert(kR == 6 && kTok == 16 && (V == 1 || V == 2), "the asm blocks are 6 x 16, 6 x 8");
  if constexpr (V == 2) {
    block_6x16<kVnni>(w, kp, a, c);
  } else {
    block_6x8<kVnni>(w, kp, a, c);
  }
}

// The 12 (or 6) int32 vectors as 24 (12) double vectors: p[(r V + v) 8 + lane] = c[r][v] (the
// first of a slot) or += (exact: integers below 2^53; block 32 scales by s[r ss] first).
template <size_t V, bool kScaled>
HS_AVX2_FN __attribute__((always_inline)) inline void to_doubles(const __m256i (&c)[kR][V],
                                                                 const double* s, size_t ss,
                                                                 bool first, double* p0) {
  for (size_t r = 0; r < kR; ++r) {
    __m256d sv = _mm256_setzero_pd();
    if constexpr (kScaled) sv = _mm256_broadcast_sd(s + r * ss);
    for (size_t v = 0; v < V; ++v) {
      double* p = p0 + (r * V + v) * 8;
      const __m256d lo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(c[r][v]));
      const __m256d hi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(c[r][v], 1));
      // The first visit is an FMA (or add) onto +0: the same bits as 0 + x, -0 included.
      const __m256d a0 = first ? _mm256_setzero_pd() : _mm256_loadu_pd(p);
      const __m256d a1 = first ? _mm256_setzero_pd() : _mm256_loadu_pd(p + 4);
      if constexpr (kScaled) {
        _mm256_storeu_pd(p, _mm256_fmadd_pd(lo, sv, a0));
        _mm256_storeu_pd(p + 4, _mm256_fmadd_pd(hi, sv, a1));
      } else {
        _mm256_storeu_pd(p, _mm256_add_pd(a0, lo));
        _mm256_storeu_pd(p + 4, _mm256_add_pd(a1, hi));
      }
    }
  }
}

HS_AVX2_FN inline void zero(__m256i* c, size_t count) {
  for (size_t i = 0; i < count; ++i) c[i] = _mm256_setzero_si256();
}

// Block 32: acc[j][r][8 V] (j = b mod 8) += s_b * D_b over all blocks, for the tile's rows wp
// (scales sp[r][b]; s != 0: cw[b][r] = s * sum_b w) and the panel's tokens ap.
template <size_t V>
HS_AVX2_FN void tile_blocks(const Panels& x, const int16_t* wp, const double* sp,
                            const int32_t* cw, const int16_t* ap, double* acc) {
  constexpr size_t kAccJ = kR * V * 8;  // doubles per slot j
  const size_t nb = x.nb, first = std::min<size_t>(nb, 8);
  // Slots j < min(nb, 8) start with block j; the rest stay 0.
  if (nb < 8) std::memset(acc + nb * kAccJ, 0, (8 - nb) * kAccJ * sizeof(double));
  if constexpr (V == 2) {
    auto run = [&](auto first_block, auto corr, size_t b0, size_t b1) HS_AVX2_FN {
      for (size_t b = b0; b < b1; ++b) {
        block_6x16_scaled<decltype(first_block)::value, decltype(corr)::value>(
            wp + b * kBk, x.kp, ap + b * kBk * kTok, sp + b, nb, cw + b * kR,
            acc + (b % 8) * kAccJ);
      }
    };
    using T = std::true_type;
    using F = std::false_type;
    if (x.shift != 0) {
      run(T{}, T{}, 0, first);
      run(F{}, T{}, first, nb);
    } else {
      run(T{}, F{}, 0, first);
      run(F{}, F{}, first, nb);
    }
  } else {
    for (size_t b = 0; b < nb; ++b) {
      __m256i c[kR][V];
      zero(&c[0][0], kR * V);
      block<V>(wp + b * kBk, x.kp, ap + b * kBk * kTok, c);
      if (x.shift != 0) {  // D_b = sum v w + s sum_b w (exact in int32, see pack_rows)
        for (size_t r = 0; r < kR; ++r) {
          for (size_t v = 0; v < V; ++v) {
            c[r][v] = _mm256_add_epi32(c[r][v], _mm256_set1_epi32(cw[b * kR + r]));
          }
        }
      }
      to_doubles<V, true>(c, sp + b, nb, b < 8, acc + (b % 8) * kAccJ);
    }
  }
}

// Per channel: acc[r][8 V] = D, the lanes flushed every kFlushI8 / kFlushI4 blocks.
template <size_t V>
HS_AVX2_FN void tile_channel(const Panels& x, const int16_t* wp, const int16_t* ap, double* acc) {
  const size_t flush = x.bits == 8 || x.lpbq ? kFlushI8 : kFlushI4;  // |w| <= 128 or 8
  for (size_t b0 = 0; b0 < x.nb; b0 += flush) {
    const size_t b1 = std::min(x.nb, b0 + flush);
    __m256i c[kR][V];
    zero(&c[0][0], kR * V);
    if (x.vnni) {
      for (size_t b = b0; b < b1; ++b) block<V, true>(wp + b * kBk, x.kp, ap + b * kBk * kTok, c);
    } else {
      for (size_t b = b0; b < b1; ++b) block<V>(wp + b * kBk, x.kp, ap + b * kBk * kTok, c);
    }
    to_doubles<V, false>(c, nullptr, 0, b0 == 0, acc);
  }
}

// y of the tile's rows [n0, n1) and tokens [m0, m1) from acc (kSlots = 8: block 32's slots,
// finish_blocks; 1: D, finish_channel), the same operations in the same order per lane.
template <size_t V, size_t kSlots>
HS_AVX2_FN void finish(const Panels& x, const double* acc, const double* sp, size_t n0, size_t n1,
                       size_t m0, size_t m1) {
  constexpr size_t kAccJ = kR * V * 8, kT = 8 * V;
  const MatmulCall& c = *x.c;
  const __m256d s_a = _mm256_set1_pd(x.s_a);
  alignas(32) float yt[kR][kT];
  for (size_t r = 0; r < n1 - n0; ++r) {
    const size_t n = n0 + r;
    const __m256d bias = _mm256_set1_pd(c.bias != nullptr ? static_cast<double>(c.bias[n]) : 0.0);
    const float s_w = x.lpbq ? x.q->lpbq_scales[n] : x.q->scales[n];
    const __m256d sw = _mm256_set1_pd(kSlots == 8 ? 0.0 : static_cast<double>(s_w));
    // Per channel: D = sum v w + s sum w, exactly (|s sum w| < 2^17 * 2^22, |D| <= 2^37).
    const __m256d corr =
        _mm256_set1_pd(kSlots == 1 && x.shift != 0 ? static_cast<double>(x.shift) * sp[r] : 0.0);
    for (size_t quad = 0; quad < 2 * V; ++quad) {
      const double* ar = acc + r * V * 8 + 4 * quad;
      __m256d tot;
      if constexpr (kSlots == 8) {
        __m256d a[8];
        for (size_t j = 0; j < 8; ++j) a[j] = _mm256_loadu_pd(ar + j * kAccJ);
        tot = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3])),
                            _mm256_add_pd(_mm256_add_pd(a[4], a[5]), _mm256_add_pd(a[6], a[7])));
      } else {
        tot = _mm256_mul_pd(sw, _mm256_add_pd(_mm256_loadu_pd(ar), corr));  // s_w * D, D exact
      }
      tot = _mm256_mul_pd(tot, s_a);
      __asm__("" : "+x"(tot));  // not contracted with the bias add (two roundings)
      _mm_store_ps(&yt[r][4 * quad], _mm256_cvtpd_ps(_mm256_add_pd(tot, bias)));
    }
  }
  const size_t rows = n1 - n0, toks = m1 - m0;
  if (c.layout == ActLayout::kTokenMajor) {
    for (size_t t = 0; t < toks; ++t) {
      float* yr = c.y + (m0 + t) * c.n + n0;
      for (size_t r = 0; r < rows; ++r) yr[r] = yt[r][t];
    }
  } else {
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(c.y + (n0 + r) * c.m + m0, yt[r], toks * sizeof(float));
  }
}

template <size_t V>
HS_AVX2_FN void tile_and_finish(const Panels& x, const int16_t* wp, const double* sp,
                                const int32_t* cw, size_t p, double* acc, size_t n0, size_t n1) {
  const int16_t* ap = x.act + p * x.kp * kTok;
  const size_t m0 = p * kTok, m1 = std::min(x.c->m, m0 + kTok);
  if (x.blocks) {
    tile_blocks<V>(x, wp, sp, cw, ap, acc);
    finish<V, 8>(x, acc, sp, n0, n1, m0, m1);
  } else {
    tile_channel<V>(x, wp, ap, acc);
    finish<V, 1>(x, acc, sp, n0, n1, m0, m1);
  }
}

}  // namespace

Status matmul_avx2_panels(const MatmulCall& c, const QWeightsCall& q, int bits, const uint16_t* u,
                          size_t u_stride, int32_t offset, int32_t shift, double s_a) {
  Panels x{};
  x.c = &c;
  x.q = &q;
  x.bits = bits;
  x.lpbq = bits == 4 && q.block == 32 && q.lpbq_mult != nullptr;
  x.vnni = vnni_supported();
  x.blocks = bits == 4 && q.block != 0 && !x.lpbq;
  x.nb = (c.k + kBk - 1) / kBk;
  x.kp = x.nb * kBk;
  x.shift = shift;
  x.s_a = s_a;
  const size_t panels = (c.m + kTok - 1) / kTok;
  const size_t act_floats = (panels * x.kp * kTok + 1) / 2;
  auto* act = reinterpret_cast<int16_t*>(thread_scratch(ScratchSlot::kPackedX, act_floats));
  if (act == nullptr) return out_of_memory("matmul_quantized", act_floats);
  panel::pack_tokens(x, u, u_stride, offset, act);
  x.act = act;
  // Per thread: the tile's rows wp [kR][kp] int16, scales sp [kR][nb] doubles and block
  // corrections cw [nb][kR] int32 (kTile), acc [8][kR][16] doubles (kStage).
  const size_t tile_floats = kR * x.kp / 2 + 3 * kR * x.nb, acc_floats = 2 * 8 * kR * kTok;
  std::atomic<bool> oom{false};
  for_rows(c, kR, [&](size_t n_begin, size_t n_end) {
    auto* wp = reinterpret_cast<int16_t*>(thread_scratch(ScratchSlot::kTile, tile_floats));
    auto* acc = reinterpret_cast<double*>(thread_scratch(ScratchSlot::kStage, acc_floats));
    if (wp == nullptr || acc == nullptr) {
      oom = true;
      return;
    }
    auto* sp = reinterpret_cast<double*>(wp + kR * x.kp);  // kp is a multiple of 32: aligned
    auto* cw = reinterpret_cast<int32_t*>(sp + kR * x.nb);
    for (size_t n0 = n_begin; n0 < n_end; n0 += kR) {
      const size_t n1 = std::min(n_end, n0 + kR);
      panel::pack_rows(x, n0, n1, wp, sp, cw);
      // The next tile's weight rows (contiguous bytes), requested now so that they arrive
      // from DRAM while this tile computes: a prefill chunk reads every weight once, and the
      // packing would otherwise wait for each line.
      if (n1 < n_end) {
        const size_t row_bytes = x.bits == 8 ? c.k : (c.k + 1) / 2;
        const auto* next = reinterpret_cast<const char*>(x.q->data + n1 * row_bytes);
        const size_t bytes = std::min(n_end - n1, kR) * row_bytes;
        for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(next + off, _MM_HINT_T0);
      }
      for (size_t p = 0; p < panels; ++p) {
        // The last panel of 1..8 tokens: the 6 x 8 tile.
        if (c.m - p * kTok > 8) {
          tile_and_finish<kVmax>(x, wp, sp, cw, p, acc, n0, n1);
        } else {
          tile_and_finish<1>(x, wp, sp, cw, p, acc, n0, n1);
        }
      }
    }
  });
  if (oom) return out_of_memory("matmul_quantized", tile_floats + acc_floats);
  return ok_status();
}

#else  // !HS_AVX2

Status matmul_avx2_panels(const MatmulCall&, const QWeightsCall&, int, const uint16_t*, size_t,
                          int32_t, int32_t, double) {
  return Error(ErrorKind::kInternal, "matmul_quantized: the AVX2 int16 panels need x86-64");
}

#endif  // HS_AVX2

}  // namespace hs::kernels::detail
