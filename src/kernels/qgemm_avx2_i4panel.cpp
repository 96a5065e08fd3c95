// int4 prefill (M >= kI4PanelMinM, every n an int16) of the exact path on AVX2 through int16
// panels with the tokens in lanes (qgemm_avx2_i4panel.h). The same integers and the same
// epilogues as the portable path (qgemm_exact.cpp), so the same bits.
//
// Integers: n in [-32768, 32767] (the caller checks; no shift s), int4 weights |w| <= 8. Per
// k pair, vpmaddwd of a row's broadcast (w_k, w_k+1) with 8 tokens' (n_k, n_k+1) gives
// w_k n_k + w_k+1 n_k+1 per token (at most 2 * 8 * 32768 = 2^19), summed by vpaddd over the 16
// pairs of a block: the block-32 dot product
//   D_b = sum_{k in block b} n_k w_k,  |D_b| <= 32 * 8 * 32768 = 2^23,
// exactly, in an int32 lane per token, with no horizontal reductions. Then, per block:
//   block 32:    acc[b mod 8] += double(s_b) * double(D_b) in increasing b (the product of a
//                24-bit scale and |D_b| < 2^24 is exact in double, so an FMA gives the same
//                bits), y = float(tree(acc) * s_a + bias);
//   per channel: acc[b mod 8] += double(D_b) (exact: |D| <= 32768 * 32768 * 8 < 2^53), so
//                tree(acc) = D exactly, y = float(double(s_w) * D * s_a + bias).
// (A float32 version of the same idea, exact by |partial sums| < 2^24, ran no faster than the
// integer tiles on AMD Zen 3: one FMA does 8 products and vpmaddwd 16, at the same 2 per cycle.)
// Shapes: x -> token panels of 16 tokens, per k pair 16 x (n_k, n_k+1) = 64 bytes (zero past
// K and past M), packed once per call. Per tile of kR = 6 weight rows: the rows widened once
// to int16 (wp[r][kp], zero past K) and used by every token panel; the register tile is 6 rows
// x 2 vectors of 8 tokens = 12 int32 accumulators (in asm: GCC spilled them). After each block
// the 12 vectors become 24 double vectors that meet acc[b mod 8][r][token] (a 6 KiB scratch).
// Instructions per k pair and tile (192 products): 2 token loads, 6 broadcasts, 12 vpmaddwd,
// 12 vpaddd; per block about 140 more (the double epilogue). Per 576x576 M = 32 call:
// 2.88M against 3.73M for the integer tiles (tile_i4b_tok4), callgrind.
#include "qgemm_avx2_i4panel.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HS_AVX2 1
#define HS_AVX2_FN __attribute__((target("avx2,fma,bmi2")))
#else
#define HS_AVX2 0
#endif

namespace hs::kernels::detail {

#if HS_AVX2
namespace {

#ifndef HS_I4P_R
#define HS_I4P_R 6
#define HS_I4P_V 2
#endif
constexpr size_t kR = HS_I4P_R;     // weight rows per tile (broadcast)
constexpr size_t kVmax = HS_I4P_V;  // token vectors per tile
constexpr size_t kTok = 8 * kVmax;  // tokens per panel
constexpr size_t kBk = 32;          // k per block

// The calls' shared facts.
struct Panels {
  const MatmulCall* c;
  const QWeightsCall* q;
  size_t nb;           // blocks of 32 k: ceil(K / 32)
  size_t kp;           // nb * 32
  const int16_t* act;  // [ceil(M / kTok)][kp / 2][kTok][2]
  double s_a;
  bool blocks;  // block 32 (else per channel)
};

// act[p][k / 2][t][k % 2] = n of token 16 p + t at k (= u - offset, int16 here) for k < K and
// 16 p + t < M, 0 elsewhere: per k pair, 16 tokens x 2 k = 64 bytes. Per 8 tokens and 16 k:
// 8 rows of 8 (n_k, n_k+1) pairs, transposed (32-bit lanes) to 8 vectors of 8 tokens' pairs.
HS_AVX2_FN void pack_tokens(const Panels& x, const uint16_t* u, size_t us, int32_t offset,
                            int16_t* act) {
  const size_t M = x.c->m, K = x.c->k, kp = x.kp, panels = (M + kTok - 1) / kTok;
  const __m256i off = _mm256_set1_epi16(static_cast<int16_t>(static_cast<uint16_t>(offset)));
  for (size_t p = 0; p < panels; ++p) {
    for (size_t t0 = 0; t0 < kTok; t0 += 8) {
      for (size_t k0 = 0; k0 < kp; k0 += 16) {
        __m256i r[8];
        for (size_t i = 0; i < 8; ++i) {
          const size_t m = p * kTok + t0 + i;
          if (m >= M) {
            r[i] = _mm256_setzero_si256();
            continue;
          }
          // n = u - offset in wrapping 16-bit arithmetic (the true n is an int16 here)
          r[i] = _mm256_sub_epi16(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(u + m * us + k0)), off);
          if (k0 + 16 > K) {  // zero past K (u there is not n + offset)
            alignas(32) int16_t t[16];
            _mm256_store_si256(reinterpret_cast<__m256i*>(t), r[i]);
            for (size_t k = K > k0 ? K - k0 : 0; k < 16; ++k) t[k] = 0;
            r[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
          }
        }
        __m256i t[8], q[8];
        for (size_t i = 0; i < 8; i += 2) {
          t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
          t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
        }
        for (size_t i = 0; i < 8; i += 4) {
          q[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);          // pairs 0 | 4
          q[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);      // 1 | 5
          q[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);  // 2 | 6
          q[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);  // 3 | 7
        }
        auto* dst = reinterpret_cast<__m256i*>(act + ((p * kp + k0) * kTok) + t0 * 2);
        constexpr size_t kStep = kTok * 2 / 16;  // __m256i per k pair
        for (size_t j = 0; j < 4; ++j) {
          _mm256_storeu_si256(dst + j * kStep, _mm256_permute2x128_si256(q[j], q[4 + j], 0x20));
          _mm256_storeu_si256(dst + (4 + j) * kStep,
                              _mm256_permute2x128_si256(q[j], q[4 + j], 0x31));
        }
      }
    }
  }
}

// 16 bytes of packed int4 (low nibble = even k) -> 32 int16 q in [-8, 7], natural k order.
HS_AVX2_FN inline void unpack32(const uint8_t* src, int16_t* dst) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  const __m128i low = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  // (nibble ^ 8) - 8 sign-extends 4 bits to 8.
  const __m128i lo = _mm_sub_epi8(_mm_xor_si128(_mm_and_si128(b, low), eight), eight);
  const __m128i hi =
      _mm_sub_epi8(_mm_xor_si128(_mm_and_si128(_mm_srli_epi16(b, 4), low), eight), eight);
  auto* d = reinterpret_cast<__m256i*>(dst);
  _mm256_storeu_si256(d, _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(lo, hi)));      // k 0..15
  _mm256_storeu_si256(d + 1, _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(lo, hi)));  // k 16..31
}

// The tile's rows [n0, n0 + kR) as int16: wp[r][kp] (zero past K; rows at or past n_end:
// zero), and for block 32 their scales as doubles, sp[b][r].
HS_AVX2_FN void pack_rows(const Panels& x, size_t n0, size_t n_end, int16_t* wp, double* sp) {
  const size_t K = x.c->k, rb = (K + 1) / 2, full = K / kBk, nb = x.nb;
  for (size_t r = 0; r < kR; ++r) {
    int16_t* dst = wp + r * x.kp;
    const size_t n = n0 + r;
    if (n >= n_end) {
      std::memset(dst, 0, x.kp * sizeof(int16_t));
      if (x.blocks) {
        for (size_t b = 0; b < nb; ++b) sp[b * kR + r] = 0.0;
      }
      continue;
    }
    const uint8_t* row = x.q->data + n * rb;
    for (size_t b = 0; b < full; ++b) unpack32(row + b * 16, dst + b * kBk);
    if (full < nb) {  // the last block: bytes past the row zero, odd K's padding nibble too
      alignas(16) uint8_t tail[16] = {};
      const size_t have = rb - full * 16;
      std::memcpy(tail, row + full * 16, have);
      if (K % 2 == 1) tail[have - 1] &= 0x0f;
      unpack32(tail, dst + full * kBk);
    }
    if (x.blocks) {
      const float* sc = x.q->scales + n * nb;
      for (size_t b = 0; b < nb; ++b) sp[b * kR + r] = static_cast<double>(sc[b]);
    }
  }
}

// One block (16 k pairs) of the 6 x 16 tile: c[r][v] += sum_j (w_r,2j, w_r,2j+1) . (tokens
// 8v..8v+7 at k 2j, 2j+1). In asm: GCC keeps neither the broadcasts in order nor the 12
// accumulators in registers here (it spills and adds moves); per k pair this is 2 token loads,
// then per row a vpbroadcastd, 2 vpmaddwd and 2 vpaddd: 32 instructions for 192 products.
// clang-format off
#define HS_I4P_ROW(mem, c0, c1)                                                   \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "vpmaddwd %%ymm0, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %[" c0 "], %[" c0 "]\n\t"                                      \
  "vpmaddwd %%ymm1, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %[" c1 "], %[" c1 "]\n\t"
#define HS_I4P_PAIR(ao, wo)                                                       \
  "vmovdqu " ao "(%[a]), %%ymm0\n\t"                                             \
  "vmovdqu " ao "+32(%[a]), %%ymm1\n\t"                                          \
  HS_I4P_ROW(wo "(%[w0])", "c00", "c01")                                         \
  HS_I4P_ROW(wo "(%[w0],%[s])", "c10", "c11")                                    \
  HS_I4P_ROW(wo "(%[w0],%[s],2)", "c20", "c21")                                  \
  HS_I4P_ROW(wo "(%[w3])", "c30", "c31")                                         \
  HS_I4P_ROW(wo "(%[w3],%[s])", "c40", "c41")                                    \
  HS_I4P_ROW(wo "(%[w3],%[s],2)", "c50", "c51")

HS_AVX2_FN __attribute__((always_inline)) inline void block_6x16(const int16_t* w, size_t kp, const int16_t* a,
                                  __m256i (&c)[6][2]) {
  const int16_t* w3 = w + 3 * kp;
  const size_t stride = kp * sizeof(int16_t);
  // The 16 k pairs of the block unrolled (token offsets 64 j bytes, weight offsets 4 j).
  // clang-format off
  __asm__(
      HS_I4P_PAIR("0", "0") HS_I4P_PAIR("64", "4") HS_I4P_PAIR("128", "8")
      HS_I4P_PAIR("192", "12") HS_I4P_PAIR("256", "16") HS_I4P_PAIR("320", "20")
      HS_I4P_PAIR("384", "24") HS_I4P_PAIR("448", "28") HS_I4P_PAIR("512", "32")
      HS_I4P_PAIR("576", "36") HS_I4P_PAIR("640", "40") HS_I4P_PAIR("704", "44")
      HS_I4P_PAIR("768", "48") HS_I4P_PAIR("832", "52") HS_I4P_PAIR("896", "56")
      HS_I4P_PAIR("960", "60")
      : [c00] "+x"(c[0][0]), [c01] "+x"(c[0][1]), [c10] "+x"(c[1][0]), [c11] "+x"(c[1][1]),
        [c20] "+x"(c[2][0]), [c21] "+x"(c[2][1]), [c30] "+x"(c[3][0]), [c31] "+x"(c[3][1]),
        [c40] "+x"(c[4][0]), [c41] "+x"(c[4][1]), [c50] "+x"(c[5][0]), [c51] "+x"(c[5][1])
      : [a] "r"(a), [w0] "r"(w), [w3] "r"(w3), [s] "r"(stride)
      : "xmm0", "xmm1", "xmm2", "xmm3", "memory");  // reads the panels
  // clang-format on
}
#undef HS_I4P_PAIR
#undef HS_I4P_ROW

// The same for 6 rows x 8 tokens (the last panel of 1..8 tokens): 19 instructions per k pair.
// clang-format off
#define HS_I4P_ROW1(mem, c0)                                                      \
  "vpbroadcastd " mem ", %%ymm2\n\t"                                             \
  "vpmaddwd %%ymm0, %%ymm2, %%ymm3\n\t"                                          \
  "vpaddd %%ymm3, %[" c0 "], %[" c0 "]\n\t"
#define HS_I4P_PAIR1(ao, wo)                                                      \
  "vmovdqu " ao "(%[a]), %%ymm0\n\t"                                             \
  HS_I4P_ROW1(wo "(%[w0])", "c0") HS_I4P_ROW1(wo "(%[w0],%[s])", "c1")            \
  HS_I4P_ROW1(wo "(%[w0],%[s],2)", "c2") HS_I4P_ROW1(wo "(%[w3])", "c3")          \
  HS_I4P_ROW1(wo "(%[w3],%[s])", "c4") HS_I4P_ROW1(wo "(%[w3],%[s],2)", "c5")
// clang-format on

HS_AVX2_FN __attribute__((always_inline)) inline void block_6x8(const int16_t* w, size_t kp,
                                                                const int16_t* a,
                                                                __m256i (&c)[6][1]) {
  const int16_t* w3 = w + 3 * kp;
  const size_t stride = kp * sizeof(int16_t);
  // Token offsets 64 j bytes (the panel is 16 tokens wide; this tile reads the first 8).
  // clang-format off
  __asm__(
      HS_I4P_PAIR1("0", "0") HS_I4P_PAIR1("64", "4") HS_I4P_PAIR1("128", "8")
      HS_I4P_PAIR1("192", "12") HS_I4P_PAIR1("256", "16") HS_I4P_PAIR1("320", "20")
      HS_I4P_PAIR1("384", "24") HS_I4P_PAIR1("448", "28") HS_I4P_PAIR1("512", "32")
      HS_I4P_PAIR1("576", "36") HS_I4P_PAIR1("640", "40") HS_I4P_PAIR1("704", "44")
      HS_I4P_PAIR1("768", "48") HS_I4P_PAIR1("832", "52") HS_I4P_PAIR1("896", "56")
      HS_I4P_PAIR1("960", "60")
      : [c0] "+x"(c[0][0]), [c1] "+x"(c[1][0]), [c2] "+x"(c[2][0]), [c3] "+x"(c[3][0]),
        [c4] "+x"(c[4][0]), [c5] "+x"(c[5][0])
      : [a] "r"(a), [w0] "r"(w), [w3] "r"(w3), [s] "r"(stride)
      : "xmm0", "xmm2", "xmm3", "memory");  // reads the panels
  // clang-format on
}
#undef HS_I4P_PAIR1
#undef HS_I4P_ROW1

// acc[j][r][8 V] (j = b mod 8) for the tile's rows wp and V vectors of tokens ap, over all
// blocks: D in int32 lanes (exact), then acc[j] += s_b * D (block 32) or D (per channel) in
// double. Per k pair: vpbroadcastd of a row's (w_k, w_k+1), vpmaddwd with 8 tokens' (n_k,
// n_k+1), vpaddd: no horizontal reductions.
template <size_t V, bool kBlocks>
HS_AVX2_FN void tile(const Panels& x, const int16_t* wp, const double* sp, const int16_t* ap,
                     double* acc) {
  constexpr size_t kAccJ = kR * V * 8;  // doubles per j
  // Slots j < min(nb, 8) start with block j (below); the rest stay 0.
  if (x.nb < 8) std::memset(acc + x.nb * kAccJ, 0, (8 - x.nb) * kAccJ * sizeof(double));
  const size_t kp = x.kp;
  for (size_t b = 0; b < x.nb; ++b) {
    __m256i c[kR][V];
    for (size_t r = 0; r < kR; ++r) {
      for (size_t v = 0; v < V; ++v) c[r][v] = _mm256_setzero_si256();
    }
    const int16_t* w = wp + b * kBk;
    const int16_t* a = ap + b * kBk * kTok;
    if constexpr (kR == 6 && kTok == 16 && V == 2) {
      block_6x16(w, kp, a, c);
    } else if constexpr (kR == 6 && kTok == 16 && V == 1) {
      block_6x8(w, kp, a, c);
    } else {
      for (size_t j = 0; j < kBk / 2; ++j) {
        __m256i av[V];
        for (size_t v = 0; v < V; ++v) {
          av[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + (j * kTok + 8 * v) * 2));
        }
        for (size_t r = 0; r < kR; ++r) {
          int32_t pair;
          std::memcpy(&pair, w + r * kp + 2 * j, sizeof(pair));
          const __m256i wv = _mm256_set1_epi32(pair);
          for (size_t v = 0; v < V; ++v) {
            c[r][v] = _mm256_add_epi32(c[r][v], _mm256_madd_epi16(wv, av[v]));
          }
        }
      }
    }
    double* aj = acc + (b % 8) * kAccJ;
    // The first block of slot j: acc[j] = 0 + s * D as an FMA onto +0 (the same bits, -0
    // included); later blocks read acc[j] back.
    const bool first = b < 8;
    for (size_t r = 0; r < kR; ++r) {
      __m256d s = _mm256_setzero_pd();
      if constexpr (kBlocks) s = _mm256_broadcast_sd(sp + b * kR + r);
      for (size_t v = 0; v < V; ++v) {
        double* p = aj + (r * V + v) * 8;
        const __m256d lo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(c[r][v]));
        const __m256d hi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(c[r][v], 1));
        const __m256d a0 = first ? _mm256_setzero_pd() : _mm256_loadu_pd(p);
        const __m256d a1 = first ? _mm256_setzero_pd() : _mm256_loadu_pd(p + 4);
        if constexpr (kBlocks) {
          _mm256_storeu_pd(p, _mm256_fmadd_pd(lo, s, a0));
          _mm256_storeu_pd(p + 4, _mm256_fmadd_pd(hi, s, a1));
        } else {
          _mm256_storeu_pd(p, _mm256_add_pd(a0, lo));
          _mm256_storeu_pd(p + 4, _mm256_add_pd(a1, hi));
        }
      }
    }
  }
}

// y of the tile's rows [n0, n1) and tokens [m0, m1) from acc (the layout of tile<V>):
// finish_blocks or finish_channel per lane, in the same operations and order.
template <size_t V, bool kBlocks>
HS_AVX2_FN void finish(const Panels& x, const double* acc, size_t n0, size_t n1, size_t m0,
                       size_t m1) {
  constexpr size_t kAccJ = kR * V * 8, kT = 8 * V;
  const MatmulCall& c = *x.c;
  const __m256d s_a = _mm256_set1_pd(x.s_a);
  alignas(32) float yt[kR][kT];
  for (size_t r = 0; r < n1 - n0; ++r) {
    const size_t n = n0 + r;
    const __m256d bias = _mm256_set1_pd(c.bias != nullptr ? static_cast<double>(c.bias[n]) : 0.0);
    const __m256d sw = _mm256_set1_pd(kBlocks ? 0.0 : static_cast<double>(x.q->scales[n]));
    for (size_t quad = 0; quad < 2 * V; ++quad) {
      const double* ar = acc + r * V * 8 + 4 * quad;
      __m256d a[8];
      for (size_t j = 0; j < 8; ++j) a[j] = _mm256_loadu_pd(ar + j * kAccJ);
      __m256d tot =
          _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(a[0], a[1]), _mm256_add_pd(a[2], a[3])),
                        _mm256_add_pd(_mm256_add_pd(a[4], a[5]), _mm256_add_pd(a[6], a[7])));
      if constexpr (!kBlocks) tot = _mm256_mul_pd(sw, tot);  // double(s_w) * double(D), D exact
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
HS_AVX2_FN void tile_and_finish(const Panels& x, const int16_t* wp, const double* sp, size_t p,
                                double* acc, size_t n0, size_t n1) {
  const int16_t* ap = x.act + p * x.kp * kTok;
  const size_t m0 = p * kTok, m1 = std::min(x.c->m, m0 + kTok);
  if (x.blocks) {
    tile<V, true>(x, wp, sp, ap, acc);
    finish<V, true>(x, acc, n0, n1, m0, m1);
  } else {
    tile<V, false>(x, wp, sp, ap, acc);
    finish<V, false>(x, acc, n0, n1, m0, m1);
  }
}

}  // namespace

Status matmul_avx2_i4panel(const MatmulCall& c, const QWeightsCall& q, const uint16_t* u,
                           size_t u_stride, int32_t offset, double s_a) {
  Panels x{};
  x.c = &c;
  x.q = &q;
  x.nb = (c.k + kBk - 1) / kBk;
  x.kp = x.nb * kBk;
  x.s_a = s_a;
  x.blocks = q.block != 0;
  const size_t panels = (c.m + kTok - 1) / kTok;
  const size_t act_floats = (panels * x.kp * kTok + 1) / 2;
  auto* act = reinterpret_cast<int16_t*>(thread_scratch(ScratchSlot::kPackedX, act_floats));
  if (act == nullptr) return out_of_memory("matmul_quantized", act_floats);
  pack_tokens(x, u, u_stride, offset, act);
  x.act = act;
  // Per thread: the tile's rows wp [kR][kp] floats and scales sp [nb][kR] doubles (kTile),
  // acc [8][kR][16] doubles (kStage).
  const size_t tile_floats = kR * x.kp / 2 + 2 * kR * x.nb, acc_floats = 2 * 8 * kR * kTok;
  std::atomic<bool> oom{false};
  for_rows(c, kR, [&](size_t n_begin, size_t n_end) {
    auto* wp = reinterpret_cast<int16_t*>(thread_scratch(ScratchSlot::kTile, tile_floats));
    auto* acc = reinterpret_cast<double*>(thread_scratch(ScratchSlot::kStage, acc_floats));
    if (wp == nullptr || acc == nullptr) {
      oom = true;
      return;
    }
    auto* sp = reinterpret_cast<double*>(wp + kR * x.kp);  // kp is a multiple of 32: aligned
    for (size_t n0 = n_begin; n0 < n_end; n0 += kR) {
      const size_t n1 = std::min(n_end, n0 + kR);
      pack_rows(x, n0, n1, wp, sp);
      for (size_t p = 0; p < panels; ++p) {
        const size_t vecs = std::min(kVmax, (c.m - p * kTok + 7) / 8);
        if (vecs == kVmax) {
          tile_and_finish<kVmax>(x, wp, sp, p, acc, n0, n1);
        } else if constexpr (kVmax > 1) {
          if (vecs == 1) {
            tile_and_finish<1>(x, wp, sp, p, acc, n0, n1);
          } else if constexpr (kVmax > 2) {
            if (vecs == 2) {
              tile_and_finish<(kVmax > 2 ? 2 : 1)>(x, wp, sp, p, acc, n0, n1);
            } else {
              tile_and_finish<(kVmax > 3 ? 3 : 1)>(x, wp, sp, p, acc, n0, n1);
            }
          }
        }
      }
    }
  });
  if (oom) return out_of_memory("matmul_quantized", tile_floats + acc_floats);
  return ok_status();
}

#else  // !HS_AVX2

Status matmul_avx2_i4panel(const MatmulCall&, const QWeightsCall&, const uint16_t*, size_t, int32_t,
                           double) {
  return Error(ErrorKind::kInternal, "matmul_quantized: the AVX2 int4 panels need x86-64");
}

#endif  // HS_AVX2

}  // namespace hs::kernels::detail
