// Decode of the exact path for int4 block 32 with LPBQ factors (qgemm.h: scales = c_n * m_b,
// m_b in 1..16) on AVX-512 VNNI, 256-bit vectors (qgemm_exact.h: vnni_lpbq_takes). matmul_avx2
// hands it the activations u = n + offset (uint16, zero past K) of M < kVnniLpbqMaxM tokens.
//
// The multiplier goes into the weight: w'_k = m_b * q_k (q in -8..7, m in 0..16: w' in
// [-128, 112], a signed byte), looked up per nibble with vpshufb in a table of q * m (one
// 16-byte table per 128-bit half: a half of a 32-byte weight group is one block). u splits
// into bytes u = 256 h + l, both unsigned, so vpdpbusd (u8 x s8, 4 products per 32-bit lane)
// sums them against w' with no widening and no per-block reduction:
//   D = sum_b m_b D_b = sum_k n_k w'_k = 256 H + L - offset * S,
//   H = sum_k h_k w'_k,  L = sum_k l_k w'_k,  S = sum_k w'_k (QuantizedWeights::lpbq_row_sums),
// exact integers, then y = finish_channel(D, c_n): the bits of every other path.
// Layout: a packed int4 byte j holds k = 2j (low nibble) and 2j + 1 (high), so a group of 32
// weight bytes (64 k, blocks 2g and 2g + 1 in its 128-bit halves) meets, per token, four 32-byte
// activation planes: l and h of the even k, l and h of the odd k (position j: k = 64 g + 2j + e).
// Bounds: a lane gains at most 2 * 4 * 255 * 128 < 2^18 per group in each of H and L (the even
// and odd planes' accumulators are summed at the end) and K <= 32768 gives at most 512 groups:
// 2^27 per lane, eight lanes 2^30 < 2^31. D: |n| < 2^16, |w'| <= 128, K <= 2^15: |D| < 2^38.
// Per group and row: 1 load, 3 to split the nibbles, 1 table load (kPairs), 2 vpshufb and 4
// vpdpbusd (the AVX2 tile: 7 to widen, 4 vpmaddwd, 3 adds, a per-block reduction and vpmulld);
// 73 instructions per group of 4 rows. AMD Zen 4, M = 1, 1 thread, minimum of 9 runs
// (kernels_bench int4-lpbq-exact): weights in cache (HS_BENCH_HOT=1) 576x576 8.1 us and
// 576x1536 17.7 us against the AVX2 tile's 10.75 and 23.9; from DRAM 11.4 against 13.7 us and
// 26.4 against 26.1 (memory-bound there: 17 GB/s of the 19.7 GB/s a plain read reaches).
// The next tile is prefetched into L1 up to kL1Tile bytes and into L2 beyond: Llama-3.2-1B's
// down projection (2048 x 8192, rows of 4 KiB) ran 716-824 us from DRAM with L1 prefetches and
// 359-483 us with L2 ones (1 thread; 2 threads 428-548 -> 245-340); decode of the whole model
// at 1 thread 30.7 -> 38.9 tok/s (the int8 tile, qgemm_avx2.cpp, does the same).
// The prefetch runs two tiles ahead: a 4-row tile of SmolLM2 (K = 576) is 1,152 bytes, less than
// the ~1.7 KB a core's 17 GB/s moves in a 100 ns DRAM latency. SmolLM2-135M 16a4w-block32
// decode, 1 thread, medians of 9: split 193.8 -> 201.8 tok/s, unsplit 211.0 -> 221.4;
// Llama-3.2-1B 40.2 against 39.5 (noise).

#include "qgemm_exact.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HS_VNNI_I4 1
#define HS_VNNI_I4_FN __attribute__((target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512vnni")))
#else
#define HS_VNNI_I4 0
#endif

namespace hs::kernels::detail {

#if HS_VNNI_I4
namespace {

constexpr size_t kRowUnit = 12;  // for_rows granularity: whole 4-row tiles

// kPairs.t[17 a + b] = [a * q | b * q] for the 16 nibbles q (as signed 4-bit values): the
// 32-byte lookup table of a weight group whose blocks have multipliers a and b, m = 0..16 (0:
// the block past the last one of an odd block count, whose weights are zero anyway). One load
// per group: two 16-byte loads and an insert took about 20% more time per call.
struct Pairs {
  alignas(64) int8_t t[17 * 17][32];
};
constexpr Pairs make_pairs() {
  Pairs p{};
  for (int a = 0; a <= 16; ++a) {
    for (int b = 0; b <= 16; ++b) {
      for (int nib = 0; nib < 16; ++nib) {
        const int q = nib >= 8 ? nib - 16 : nib;
        p.t[17 * a + b][nib] = static_cast<int8_t>(a * q);
        p.t[17 * a + b][16 + nib] = static_cast<int8_t>(b * q);
      }
    }
  }
  return p;
}
constexpr Pairs kPairs = make_pairs();

struct Ctx {
  const MatmulCall* c;
  const QWeightsCall* q;
  size_t groups;     // G = ceil(K / 64)
  size_t full;       // groups read in place (the last partial one: a zero-padded copy)
  size_t row_bytes;  // ceil(K / 2)
  const uint8_t* planes;  // [M][G][4][32]: l even, l odd, h even, h odd
  int32_t offset;
  double s_a;
};

HS_VNNI_I4_FN inline __m256i load(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// u [M][kp] -> planes. Per group: the dwords (u_2j, u_2j+1) are bytes [l_e, h_e, l_o, h_o];
// vpshufb gathers each byte kind per 16-byte chunk (4 pairs), vpermd per 256-bit vector
// (8 pairs, as 4 qwords of one kind each), and unpacks + 128-bit permutes the 4 vectors.
HS_VNNI_I4_FN void layout_planes(const uint16_t* u, size_t kp, size_t m_count, uint8_t* planes) {
  const __m256i kinds = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                         0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i pairs = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t m = 0; m < m_count; ++m) {
    const uint16_t* um = u + m * kp;
    uint8_t* pm = planes + m * kp * 2;
    for (size_t k = 0; k < kp; k += 64) {
      __m256i v[4];  // v[i]: pairs 8i..8i+7 as qwords [l_e, h_e, l_o, h_o]
      for (size_t i = 0; i < 4; ++i) {
        v[i] = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(load(um + k + 16 * i), kinds), pairs);
      }
      const __m256i a01 = _mm256_unpacklo_epi64(v[0], v[1]);  // [l_e 0, 1 | l_o 0, 1]
      const __m256i b01 = _mm256_unpackhi_epi64(v[0], v[1]);  // [h_e 0, 1 | h_o 0, 1]
      const __m256i a23 = _mm256_unpacklo_epi64(v[2], v[3]);
      const __m256i b23 = _mm256_unpackhi_epi64(v[2], v[3]);
      uint8_t* g = pm + k * 2;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(g), _mm256_permute2x128_si256(a01, a23, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 32), _mm256_permute2x128_si256(a01, a23, 0x31));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 64), _mm256_permute2x128_si256(b01, b23, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 96), _mm256_permute2x128_si256(b01, b23, 0x31));
    }
  }
}

// The sum of the eight int32 lanes (|sum| < 2^31 by the bounds above).
HS_VNNI_I4_FN inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

// acc += the four u8 x s8 products of a and b per 32-bit lane (vpdpbusd). In asm: with the
// intrinsic GCC 12 copies each accumulator to a scratch register and back around every
// vpdpbusd (39 extra moves per 4-row group).
HS_VNNI_I4_FN __attribute__((always_inline)) inline void dpbusd(__m256i& acc, __m256i a, __m256i b) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

// One group of one row: 32 weight bytes at wb, its blocks' multipliers a and b, against the token's planes le, lo (l of the even / odd k) and he, ho, into a0..a3.
// Scalar accumulators (not an array): GCC 12 keeps them in registers then; with an acc[R][4]
// array it kept them on the stack.
HS_VNNI_I4_FN __attribute__((always_inline)) inline void row_group(
    const uint8_t* wb, size_t a, size_t b, __m256i le, __m256i lo, __m256i he,
    __m256i ho, __m256i& a0, __m256i& a1, __m256i& a2, __m256i& a3) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i w = load(wb);
  const __m256i tab = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPairs.t[17 * a + b]));
  const __m256i we = _mm256_shuffle_epi8(tab, _mm256_and_si256(w, low4));
  const __m256i wo = _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srli_epi16(w, 4), low4));
  dpbusd(a0, le, we);
  dpbusd(a1, lo, wo);
  dpbusd(a2, he, we);
  dpbusd(a3, ho, wo);
}

// Row n's result from its accumulators (l: a0 + a1, h: a2 + a3).
HS_VNNI_I4_FN inline void finish_row(const Ctx& x, size_t m, size_t n, __m256i a0, __m256i a1,
                                     __m256i a2, __m256i a3) {
  const MatmulCall& c = *x.c;
  const int64_t l = hsum(_mm256_add_epi32(a0, a1));
  const int64_t h = hsum(_mm256_add_epi32(a2, a3));
  const int64_t d = 256 * h + l - int64_t{x.offset} * x.q->lpbq_sums[n];
  store_y(c, m, n,
          finish_channel_inline(d, x.q->lpbq_scales[n], x.s_a, c.bias != nullptr ? c.bias[n] : 0.f));
}

// The last, partial group of row n's weights (zero-padded; block 2g + 1 may not exist).
HS_VNNI_I4_FN inline void tail_group(const Ctx& x, size_t n, const uint8_t* ag, __m256i& a0,
                                     __m256i& a1, __m256i& a2, __m256i& a3) {
  const size_t rb = x.row_bytes, nb = x.q->blocks, g = x.full, at = g * 32;
  alignas(32) uint8_t tail[32];
  copy_row_tail(x.q->data + n * rb + at, rb - at, x.c->k % 2 == 1, tail, 32);
  const uint8_t* mr = x.q->lpbq_mult + n * nb;
  const size_t bo = 2 * g + 1;
  row_group(tail, mr[2 * g], bo < nb ? mr[bo] : 0, load(ag), load(ag + 32),
            load(ag + 64), load(ag + 96), a0, a1, a2, a3);
}

// Four rows from n0, token m: per group, each row's w' against the four planes into its four
// accumulators (16 independent vpdpbusd chains).
HS_VNNI_I4_FN void tile4(const Ctx& x, size_t n0, size_t m) {
  const size_t rb = x.row_bytes, nb = x.q->blocks;
  const uint8_t* w = x.q->data + n0 * rb;
  const uint8_t* mult = x.q->lpbq_mult + n0 * nb;
  const uint8_t* next = w + 8 * rb;  // the tile after next, prefetched as this one is read
  const uint8_t* act = x.planes + m * x.groups * 128;
  __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00;
  __m256i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  __m256i a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  __m256i a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  const bool to_l2 = 4 * rb > kL1Tile;  // a long tile: into L2 (qgemm_exact.h)
  for (size_t g = 0; g < x.full; ++g) {
    prefetch_tile_line(next + 128 * g, to_l2);
    prefetch_tile_line(next + 128 * g + 64, to_l2);
    const uint8_t* ag = act + g * 128;
    const __m256i le = load(ag), lo = load(ag + 32), he = load(ag + 64), ho = load(ag + 96);
    const uint8_t* wg = w + g * 32;
    const uint8_t* mg = mult + 2 * g;  // blocks 2g, 2g + 1 (both exist: the group is full)
    row_group(wg, mg[0], mg[1], le, lo, he, ho, a00, a01, a02, a03);
    row_group(wg + rb, mg[nb], mg[nb + 1], le, lo, he, ho, a10, a11, a12, a13);
    row_group(wg + 2 * rb, mg[2 * nb], mg[2 * nb + 1], le, lo, he, ho, a20,
              a21, a22, a23);
    row_group(wg + 3 * rb, mg[3 * nb], mg[3 * nb + 1], le, lo, he, ho, a30,
              a31, a32, a33);
  }
  if (x.full < x.groups) {
    const uint8_t* ag = act + x.full * 128;
    tail_group(x, n0, ag, a00, a01, a02, a03);
    tail_group(x, n0 + 1, ag, a10, a11, a12, a13);
    tail_group(x, n0 + 2, ag, a20, a21, a22, a23);
    tail_group(x, n0 + 3, ag, a30, a31, a32, a33);
  }
  finish_row(x, m, n0, a00, a01, a02, a03);
  finish_row(x, m, n0 + 1, a10, a11, a12, a13);
  finish_row(x, m, n0 + 2, a20, a21, a22, a23);
  finish_row(x, m, n0 + 3, a30, a31, a32, a33);
}

// One row (the rows past the last whole 4-row tile).
HS_VNNI_I4_FN void tile1(const Ctx& x, size_t n, size_t m) {
  const size_t rb = x.row_bytes, nb = x.q->blocks;
  const uint8_t* w = x.q->data + n * rb;
  const uint8_t* mult = x.q->lpbq_mult + n * nb;
  const uint8_t* act = x.planes + m * x.groups * 128;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t g = 0; g < x.full; ++g) {
    const uint8_t* ag = act + g * 128;
    row_group(w + g * 32, mult[2 * g], mult[2 * g + 1], load(ag),
              load(ag + 32), load(ag + 64), load(ag + 96), a0, a1, a2, a3);
  }
  if (x.full < x.groups) tail_group(x, n, act + x.full * 128, a0, a1, a2, a3);
  finish_row(x, m, n, a0, a1, a2, a3);
}

}  // namespace

bool vnni_lpbq_takes(const MatmulCall& c, const QWeightsCall& q) {
  return c.m < kVnniLpbqMaxM && q.block == 32 && q.lpbq_mult != nullptr &&
         q.lpbq_sums != nullptr && c.k <= kExactSimdMaxK && vnni_supported();
}

Status matmul_vnni_lpbq(const MatmulCall& c, const QWeightsCall& q, const uint16_t* u, size_t kp,
                        int32_t offset, double s_a) {
  Ctx x{};
  x.c = &c;
  x.q = &q;
  x.groups = kp / 64;
  x.full = c.k / 64;
  x.row_bytes = (c.k + 1) / 2;
  x.offset = offset;
  x.s_a = s_a;
  // The calling thread's planes, read by the workers (matmul_avx2 keeps u in kExactAct).
  const size_t floats = c.m * kp * 2 / 4;
  auto* planes = reinterpret_cast<uint8_t*>(thread_scratch(ScratchSlot::kExactComb, floats));
  if (planes == nullptr) return out_of_memory("matmul_quantized", floats);
  layout_planes(u, kp, c.m, planes);
  x.planes = planes;
  for_rows(c, kRowUnit, [&](size_t n_begin, size_t n_end) HS_VNNI_I4_FN {
    for (size_t m = 0; m < c.m; ++m) {
      size_t n0 = n_begin;
      for (; n0 + 4 <= n_end; n0 += 4) tile4(x, n0, m);
      for (; n0 < n_end; ++n0) tile1(x, n0, m);
    }
  });
  return ok_status();
}

#else  // !HS_VNNI_I4

bool vnni_lpbq_takes(const MatmulCall&, const QWeightsCall&) { return false; }
Status matmul_vnni_lpbq(const MatmulCall&, const QWeightsCall&, const uint16_t*, size_t, int32_t,
                        double) {
  return ok_status();
}

#endif  // HS_VNNI_I4

}  // namespace hs::kernels::detail
