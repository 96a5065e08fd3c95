// The packing of the AVX2 int16 panels (qgemm_avx2_panel_parts.h): tokens into 16-token panels
// of k pairs, weight rows (int8 or int4) widened to int16 (int4 in the position order of qgemm_avx2_panel_parts.h).
#include <cstring>

#include "qgemm_avx2_panel_parts.h"

#include "avx2_target.h"

namespace hs::kernels::detail::panel {

#if HS_AVX2

namespace {

// Token m's v at k0 .. k0 + 15 (= u - offset - s in wrapping 16-bit arithmetic: the true v is
// an int16), zero past K (u there is not n + offset) and for m >= M. u's rows hold K rounded up
// to 16 (int8) or 64 (int4), which can be less than kp: nothing at or past K is read.
HS_AVX2_FN inline __m256i load_v(const Panels& x, const uint16_t* u, size_t us, __m256i sub,
                                 size_t m, size_t k0) {
  const size_t M = x.c->m, K = x.c->k;
  if (m >= M || k0 >= K) return _mm256_setzero_si256();
  __m256i v =
      _mm256_sub_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(u + m * us + k0)), sub);
  if (k0 + 16 > K) {
    alignas(32) int16_t t[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
    for (size_t k = K > k0 ? K - k0 : 0; k < 16; ++k) t[k] = 0;
    v = _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
  }
  return v;
}

// 8 tokens' rows r[i] of 16 positions -> 8 vectors of 8 tokens' position pairs at dst (stride
// one k pair of the panel: kTok * 2 int16).
HS_AVX2_FN inline void transpose_store(const __m256i (&r)[8], int16_t* out) {
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
  auto* dst = reinterpret_cast<__m256i*>(out);
  constexpr size_t kStep = kTok * 2 / 16;  // __m256i per k pair
  for (size_t j = 0; j < 4; ++j) {
    _mm256_storeu_si256(dst + j * kStep, _mm256_permute2x128_si256(q[j], q[4 + j], 0x20));
    _mm256_storeu_si256(dst + (4 + j) * kStep, _mm256_permute2x128_si256(q[j], q[4 + j], 0x31));
  }
}

}  // namespace

// Per 8 tokens and 32 k: 8 rows of 16 (v_k, v_k+1) pairs, transposed (32-bit lanes) to 16
// vectors of 8 tokens' pairs. int4: the position order first (even k, then odd k).
HS_AVX2_FN void pack_tokens(const Panels& x, const uint16_t* u, size_t us, int32_t offset,
                            int16_t* act) {
  const size_t M = x.c->m, kp = x.kp, panels = (M + kTok - 1) / kTok;
  const int32_t sub = offset + x.shift;
  const __m256i off = _mm256_set1_epi16(static_cast<int16_t>(static_cast<uint16_t>(sub)));
  // Within each 128-bit lane: even words to the low 64 bits, odd words to the high.
  const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0,
                                         1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  for (size_t p = 0; p < panels; ++p) {
    for (size_t t0 = 0; t0 < kTok; t0 += 8) {
      for (size_t k0 = 0; k0 < kp; k0 += kBk) {
        __m256i lo[8], hi[8];  // positions 0..15, 16..31 of the block
        for (size_t i = 0; i < 8; ++i) {
          const size_t m = p * kTok + t0 + i;
          lo[i] = load_v(x, u, us, off, m, k0);
          hi[i] = load_v(x, u, us, off, m, k0 + 16);
          if (x.bits == 4) {  // k 0..15, 16..31 -> even k 0..30, odd k 1..31
            const __m256i a = _mm256_shuffle_epi8(lo[i], split);  // [0 2 4 6 1 3 5 7 | 8 ..]
            const __m256i b = _mm256_shuffle_epi8(hi[i], split);  // [16 18 .. | 24 ..]
            lo[i] = _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(a, b), 0xd8);
            hi[i] = _mm256_permute4x64_epi64(_mm256_unpackhi_epi64(a, b), 0xd8);
          }
        }
        int16_t* out = act + (p * kp + k0) * kTok + t0 * 2;
        transpose_store(lo, out);
        transpose_store(hi, out + 16 * kTok);
      }
    }
  }
}

namespace {

// 16 bytes of packed int4 (byte i: k = 2i in the low nibble, 2i + 1 in the high) -> 32 int16 q
// in [-8, 7] in the position order: position i holds k = 2i, position 16 + i holds k = 2i + 1. Per 32 k:
// vpmovzxbw, then per nibble a shift left and an arithmetic shift right (sign extension).
HS_AVX2_FN inline void unpack_i4(const uint8_t* src, int16_t* dst) {
  const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  auto* d = reinterpret_cast<__m256i*>(dst);
  _mm256_storeu_si256(d, _mm256_srai_epi16(_mm256_slli_epi16(w, 12), 12));     // k = 2i
  _mm256_storeu_si256(d + 1, _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 12));  // k = 2i + 1
}

// 32 bytes of int8 -> 32 int16 (vpmovsxbw).
HS_AVX2_FN inline void widen_i8(const uint8_t* src, int16_t* dst) {
  auto* d = reinterpret_cast<__m256i*>(dst);
  const auto* s = reinterpret_cast<const __m128i*>(src);
  _mm256_storeu_si256(d, _mm256_cvtepi8_epi16(_mm_loadu_si128(s)));
  _mm256_storeu_si256(d + 1, _mm256_cvtepi8_epi16(_mm_loadu_si128(s + 1)));
}

// sum_k w of a widened row (nb blocks of 32 int16 with |w| <= 128). vpmaddwd with ones: a lane
// gains at most 2 * 128 per 16 k, so at most 2^8 * 32768 / 16 = 2^19 over K <= 32768; the sum is
// at most 32768 * 128 = 2^22.
HS_AVX2_FN int32_t sum_row(const int16_t* dst, size_t nb) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s = _mm256_setzero_si256();
  for (size_t k = 0; k < nb * kBk; k += 16) {
    s = _mm256_add_epi32(
        s, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(dst + k)), ones));
  }
  const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xb1)));
}

// One weight row [K] -> dst[kp] int16, zero past K: the full blocks read in place, the last
// block from a zero-padded copy (int4 with odd K: its padding nibble masked too). Returns
// sum_k w when kSum (|sum| <= 32768 * 128 = 2^22), else 0.
template <int kBits, bool kSum>
HS_AVX2_FN int32_t widen_row(const uint8_t* row, size_t K, size_t nb, int16_t* dst) {
  constexpr size_t kBytes = kBk * kBits / 8;  // bytes per block of 32 k
  const size_t rb = kBits == 8 ? K : (K + 1) / 2, full = K / kBk;
  auto widen = [](const uint8_t* src, int16_t* d) HS_AVX2_FN {
    if constexpr (kBits == 8) {
      widen_i8(src, d);
    } else {
      unpack_i4(src, d);
    }
  };
  for (size_t b = 0; b < full; ++b) widen(row + b * kBytes, dst + b * kBk);
  if (full < nb) {
    alignas(32) uint8_t tail[kBytes];
    copy_row_tail(row + full * kBytes, rb - full * kBytes, kBits == 4 && K % 2 == 1, tail, kBytes);
    widen(tail, dst + full * kBk);
  }
  if constexpr (!kSum) return 0;
  return sum_row(dst, nb);
}

}  // namespace

HS_AVX2_FN void pack_rows(const Panels& x, size_t n0, size_t n_end, int16_t* wp, double* sp,
                          int32_t* cw) {
  const size_t K = x.c->k, nb = x.nb;
  for (size_t r = 0; r < kR; ++r) {
    int16_t* dst = wp + r * x.kp;
    const size_t n = n0 + r;
    if (n >= n_end) {
      std::memset(dst, 0, x.kp * sizeof(int16_t));
      if (x.blocks) {
        std::memset(sp + r * nb, 0, nb * sizeof(double));
        if (x.shift != 0) {
          for (size_t b = 0; b < nb; ++b) cw[b * kR + r] = 0;
        }
      } else if (x.shift != 0) {
        sp[r] = 0.0;
      }
      continue;
    }
    const uint8_t* row = x.q->data + n * (x.bits == 8 ? K : (K + 1) / 2);
    if (x.lpbq) {  // m_b q per block (|m_b q| <= 128), then sum_k w for the shift
      widen_row<4, false>(row, K, nb, dst);
      const uint8_t* m = x.q->lpbq_mult + n * nb;
      for (size_t b = 0; b < nb; ++b) {
        auto* d = reinterpret_cast<__m256i*>(dst + b * kBk);
        const __m256i mb = _mm256_set1_epi16(static_cast<int16_t>(m[b]));
        _mm256_storeu_si256(d, _mm256_mullo_epi16(_mm256_loadu_si256(d), mb));
        _mm256_storeu_si256(d + 1, _mm256_mullo_epi16(_mm256_loadu_si256(d + 1), mb));
      }
      if (x.shift != 0) sp[r] = static_cast<double>(sum_row(dst, nb));
      continue;
    }
    if (x.shift != 0 && !x.blocks) {  // per channel (matmul_avx2_panels): sp[r] = sum_k w
      const int32_t sum =
          x.bits == 8 ? widen_row<8, true>(row, K, nb, dst) : widen_row<4, true>(row, K, nb, dst);
      sp[r] = static_cast<double>(sum);
    } else if (x.bits == 8) {
      widen_row<8, false>(row, K, nb, dst);
    } else {
      widen_row<4, false>(row, K, nb, dst);
    }
    if (!x.blocks) continue;
    // Block 32: the scales as doubles, sp[r][b] (exact), 4 at a time.
    const float* sc = x.q->scales + n * nb;
    double* sd = sp + r * nb;
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) _mm256_storeu_pd(sd + b, _mm256_cvtps_pd(_mm_loadu_ps(sc + b)));
    for (; b < nb; ++b) sd[b] = static_cast<double>(sc[b]);
    if (x.shift == 0) continue;
    // Shifted activations: cw[b][r] = s * sum_{k in block b} w (|sum| <= 32 * 8 = 256, |s| <
    // 2^17: below 2^25, exact in int32), which makes a block's lanes sum to D_b = sum n w.
    const __m256i ones = _mm256_set1_epi16(1);
    for (b = 0; b < nb; ++b) {
      const auto* wb = reinterpret_cast<const __m256i*>(dst + b * kBk);
      const __m256i s2 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_loadu_si256(wb), ones),
                                          _mm256_madd_epi16(_mm256_loadu_si256(wb + 1), ones));
      const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s2), _mm256_extracti128_si256(s2, 1));
      const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
      cw[b * kR + r] = x.shift * _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xb1)));
    }
  }
}

#else  // !HS_AVX2: never called (avx2_supported() is false)

void pack_tokens(const Panels&, const uint16_t*, size_t, int32_t, int16_t*) {}
void pack_rows(const Panels&, size_t, size_t, int16_t*, double*, int32_t*) {}

#endif  // HS_AVX2

}  // namespace hs::kernels::detail::panel
