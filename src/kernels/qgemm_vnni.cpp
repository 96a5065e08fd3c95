// The exact integer path of matmul_quantized on AVX-512 VNNI (qgemm_exact.h), chosen at run time
// (CPU check + Highway's dispatched target, so ScopedSimdTarget can force the portable path).
//
// Activations: u = n + offset (16 bits) is split into bytes hi, lo; weights are signed bytes
// (int8) or 16 * nibble (int4: (byte << 4) & 0xf0 and byte & 0xf0). vpdpbusd (u8 x s8, 4 per
// 32-bit lane) gives H = sum hi*w, L = sum lo*w and V = sum valid*w, and
//   sum_k n_k w_k = 256 H + L - offset V            (int4: all three are 16x, divided at the end)
// Layout per token: int8 groups of 64 k in natural order; int4 groups of 128 k as 64 bytes of
// the even k then 64 of the odd k, matching the low / high nibbles of 64 weight bytes. int4
// block 32: in a group, 32-bit lanes 4j..4j+3 hold block j; four groups are transposed into the
// 16 block sums, which meet their scales in double lanes acc[b mod 8] (the canonical order).
#include <atomic>

#include "qgemm_exact.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HS_VNNI 1
#define HS_VNNI_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
// GCC 12 flags the _mm*_undefined_* placeholders inside the narrowing intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#else
#define HS_VNNI 0
#endif

namespace hs::kernels::detail {

#if HS_VNNI
namespace {


struct Ctx {
  const MatmulCall* c;
  const QWeightsCall* q;
  int bits;
  size_t groups;      // G: groups of 64 k (int8) or 128 k (int4)
  size_t gb;          // activation bytes per group per half (hi or lo): 64 or 128
  size_t row_bytes;   // weight bytes per row
  size_t tok_stride;  // bytes per token: hi [G * gb] then lo [G * gb]
  const uint8_t* act;
  const uint8_t* vtail;  // valid bytes of the last group (gb)
  int32_t offset;
  double s_a;
};

HS_VNNI_FN inline __mmask64 bytes_mask(size_t count) {
  return count >= 64 ? ~__mmask64{0} : (__mmask64{1} << count) - 1;
}

// u16 of one token (Kp entries, zero past K) into the per-token hi/lo layout.
HS_VNNI_FN void layout_token(const Ctx& x, const uint16_t* u, uint8_t* hi, uint8_t* lo) {
  if (x.bits == 8) {
    for (size_t k = 0; k < x.groups * 64; k += 32) {
      const __m512i z = _mm512_loadu_si512(u + k);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + k), _mm512_cvtepi16_epi8(z));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + k),
                          _mm512_cvtepi16_epi8(_mm512_srli_epi16(z, 8)));
    }
    return;
  }
  for (size_t g = 0; g < x.groups; ++g) {
    const uint16_t* ug = u + g * 128;
    __m256i even[4], odd[4];
    for (int i = 0; i < 4; ++i) {
      const __m512i z = _mm512_loadu_si512(ug + 32 * i);  // 16 (even, odd) pairs
      even[i] = _mm512_cvtepi32_epi16(z);
      odd[i] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(z, 16));
    }
    uint8_t* h = hi + g * 128;
    uint8_t* l = lo + g * 128;
    for (int half = 0; half < 2; ++half) {
      const __m512i e =
          _mm512_inserti64x4(_mm512_castsi256_si512(even[2 * half]), even[2 * half + 1], 1);
      const __m512i o =
          _mm512_inserti64x4(_mm512_castsi256_si512(odd[2 * half]), odd[2 * half + 1], 1);
      auto* he = reinterpret_cast<__m256i*>(h + 32 * half);
      auto* ho = reinterpret_cast<__m256i*>(h + 64 + 32 * half);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(l + 32 * half), _mm512_cvtepi16_epi8(e));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(l + 64 + 32 * half), _mm512_cvtepi16_epi8(o));
      _mm256_storeu_si256(he, _mm512_cvtepi16_epi8(_mm512_srli_epi16(e, 8)));
      _mm256_storeu_si256(ho, _mm512_cvtepi16_epi8(_mm512_srli_epi16(o, 8)));
    }
  }
}

// Maps every token of x onto the grid and lays it out; false when some x is off the grid.
HS_VNNI_FN bool prepare(const Ctx& x, ActGrid grid, uint8_t* act, uint16_t* u, float* row) {
  const MatmulCall& c = *x.c;
  const size_t kp = x.groups * (x.bits == 8 ? 64 : 128);
  const __m512 sv = _mm512_set1_ps(grid.scale);
  const __m512i off = _mm512_set1_epi32(grid.offset);
  const __m512i umax = _mm512_set1_epi32(65535);
  for (size_t m = 0; m < c.m; ++m) {
    const float* xr = c.x + m * c.k;
    if (c.layout == ActLayout::kChannelMajor && c.m > 1) {
      for (size_t k = 0; k < c.k; ++k) row[k] = c.x[k * c.m + m];
      xr = row;
    }
    __mmask16 bad = 0;
    for (size_t k = 0; k < kp; k += 16) {
      const __mmask16 mask =
          k + 16 <= c.k ? __mmask16(0xffff) : (k < c.k ? __mmask16((1u << (c.k - k)) - 1) : 0);
      const __m512 xv = _mm512_maskz_loadu_ps(mask, xr + k);
      const __m512i nv = _mm512_cvtps_epi32(_mm512_div_ps(xv, sv));
      const __m512 back = _mm512_mul_ps(_mm512_cvtepi32_ps(nv), sv);
      const __m512i uv = _mm512_add_epi32(nv, off);
      bad |= (_mm512_cmp_ps_mask(back, xv, _CMP_NEQ_UQ) | _mm512_cmpgt_epu32_mask(uv, umax)) & mask;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + k),
                          _mm512_cvtepi32_epi16(_mm512_maskz_mov_epi32(mask, uv)));
    }
    if (bad != 0) return false;
    uint8_t* hi = act + m * x.tok_stride;
    layout_token(x, u, hi, hi + x.groups * x.gb);
  }
  return true;
}

HS_VNNI_FN inline int64_t sum_lanes(__m512i v) { return _mm512_reduce_add_epi32(v); }

// int8 per channel: R rows from n0 x T tokens from m0.
template <size_t R, size_t T>
HS_VNNI_FN void tile_i8(const Ctx& x, size_t n0, size_t m0) {
  const MatmulCall& c = *x.c;
  const auto* w = reinterpret_cast<const int8_t*>(x.q->data) + n0 * c.k;
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i hs[R][T], ls[R][T], vs[R];
  for (size_t r = 0; r < R; ++r) {
    vs[r] = _mm512_setzero_si512();
    for (size_t t = 0; t < T; ++t) hs[r][t] = ls[r][t] = _mm512_setzero_si512();
  }
  const uint8_t* hi[T];
  for (size_t t = 0; t < T; ++t) hi[t] = x.act + (m0 + t) * x.tok_stride;
  const size_t lo_at = x.groups * x.gb;
  for (size_t g = 0; g < x.groups; ++g) {
    const size_t k = g * 64;
    const bool last = g + 1 == x.groups;
    const __mmask64 wm = bytes_mask(c.k - k);
    const __m512i vv = last ? _mm512_loadu_si512(x.vtail) : ones;
    for (size_t r = 0; r < R; ++r) {
      const int8_t* row = w + r * c.k;
      prefetch_tile_line(row + R * c.k + k, R * c.k > kL1Tile);
      const __m512i wv = _mm512_maskz_loadu_epi8(wm, row + k);
      vs[r] = _mm512_dpbusd_epi32(vs[r], vv, wv);
      for (size_t t = 0; t < T; ++t) {
        hs[r][t] = _mm512_dpbusd_epi32(hs[r][t], _mm512_loadu_si512(hi[t] + k), wv);
        ls[r][t] = _mm512_dpbusd_epi32(ls[r][t], _mm512_loadu_si512(hi[t] + lo_at + k), wv);
      }
    }
  }
  for (size_t r = 0; r < R; ++r) {
    const size_t n = n0 + r;
    const int64_t v = sum_lanes(vs[r]);
    const float bias = c.bias != nullptr ? c.bias[n] : 0.f;
    for (size_t t = 0; t < T; ++t) {
      const int64_t d = 256 * sum_lanes(hs[r][t]) + sum_lanes(ls[r][t]) - x.offset * v;
      store_y(c, m0 + t, n, finish_channel(d, x.q->scales[n], x.s_a, bias));
    }
  }
}

// 16 block sums (natural order) of four groups' lane vectors (lanes 4j..4j+3: block j).
HS_VNNI_FN inline __m512i block_sums(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  // lane 4j + q: block j of group q
  const __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(idx, r);
}

// int4, per channel (kBlocks false) or blocks of 32 (comb: [R*T][G*16] scratch).
template <size_t R, size_t T, bool kBlocks>
HS_VNNI_FN void tile_i4(const Ctx& x, size_t n0, size_t m0, int32_t* comb) {
  const MatmulCall& c = *x.c;
  const uint8_t* w = x.q->data + n0 * x.row_bytes;
  const __m512i ones = _mm512_set1_epi8(1), f0 = _mm512_set1_epi8(static_cast<char>(0xf0));
  const __m512i offv = _mm512_set1_epi32(x.offset);
  __m512i hs[R][T], ls[R][T], vs[R];
  for (size_t r = 0; r < R; ++r) {
    vs[r] = _mm512_setzero_si512();
    for (size_t t = 0; t < T; ++t) hs[r][t] = ls[r][t] = _mm512_setzero_si512();
  }
  const uint8_t* hi[T];
  for (size_t t = 0; t < T; ++t) hi[t] = x.act + (m0 + t) * x.tok_stride;
  const size_t lo_at = x.groups * x.gb, G = x.groups;
  for (size_t g = 0; g < G; ++g) {
    const size_t byte = g * 64, a = g * 128;
    const bool last = g + 1 == G;
    const __mmask64 wm = bytes_mask(x.row_bytes - byte);
    const __m512i ve = last ? _mm512_loadu_si512(x.vtail) : ones;
    const __m512i vo = last ? _mm512_loadu_si512(x.vtail + 64) : ones;
    for (size_t r = 0; r < R; ++r) {
      const uint8_t* row = w + r * x.row_bytes;
      prefetch_tile_line(row + R * x.row_bytes + byte, R * x.row_bytes > kL1Tile);
      const __m512i wb = _mm512_maskz_loadu_epi8(wm, row + byte);
      const __m512i wl = _mm512_and_si512(_mm512_slli_epi16(wb, 4), f0);
      const __m512i wh = _mm512_and_si512(wb, f0);
      if constexpr (kBlocks) {
        const __m512i v =
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ve, wl), vo, wh);
        const __m512i ov = _mm512_mullo_epi32(v, offv);
        for (size_t t = 0; t < T; ++t) {
          __m512i h =
              _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(hi[t] + a), wl);
          h = _mm512_dpbusd_epi32(h, _mm512_loadu_si512(hi[t] + a + 64), wh);
          __m512i l = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                          _mm512_loadu_si512(hi[t] + lo_at + a), wl);
          l = _mm512_dpbusd_epi32(l, _mm512_loadu_si512(hi[t] + lo_at + a + 64), wh);
          const __m512i s = _mm512_sub_epi32(_mm512_add_epi32(_mm512_slli_epi32(h, 8), l), ov);
          _mm512_storeu_si512(comb + ((r * T + t) * G + g) * 16, s);
        }
      } else {
        vs[r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(vs[r], ve, wl), vo, wh);
        for (size_t t = 0; t < T; ++t) {
          hs[r][t] = _mm512_dpbusd_epi32(hs[r][t], _mm512_loadu_si512(hi[t] + a), wl);
          hs[r][t] = _mm512_dpbusd_epi32(hs[r][t], _mm512_loadu_si512(hi[t] + a + 64), wh);
          ls[r][t] = _mm512_dpbusd_epi32(ls[r][t], _mm512_loadu_si512(hi[t] + lo_at + a), wl);
          ls[r][t] = _mm512_dpbusd_epi32(ls[r][t], _mm512_loadu_si512(hi[t] + lo_at + a + 64), wh);
        }
      }
    }
  }
  for (size_t r = 0; r < R; ++r) {
    const size_t n = n0 + r;
    const float bias = c.bias != nullptr ? c.bias[n] : 0.f;
    if constexpr (kBlocks) {
      const size_t nb = x.q->blocks;
      const float* sc = x.q->scales + n * nb;
      for (size_t t = 0; t < T; ++t) {
        const int32_t* cb = comb + (r * T + t) * G * 16;
        __m512d acc = _mm512_setzero_pd();
        for (size_t g0 = 0; g0 < G; g0 += 4) {
          __m512i v[4];
          for (size_t i = 0; i < 4; ++i) {
            v[i] = g0 + i < G ? _mm512_loadu_si512(cb + (g0 + i) * 16) : _mm512_setzero_si512();
          }
          const __m512i d = block_sums(v[0], v[1], v[2], v[3]);
          const size_t b0 = 4 * g0, here = std::min<size_t>(16, nb - b0);
          const __m512 s = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << here) - 1), sc + b0);
          acc = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(d)),
                                _mm512_cvtps_pd(_mm512_castps512_ps256(s)), acc);
          acc = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(d, 1)),
                                _mm512_cvtps_pd(_mm512_extractf32x8_ps(s, 1)), acc);
        }
        alignas(64) double lanes[8];
        _mm512_store_pd(lanes, acc);
        store_y(c, m0 + t, n, finish_blocks(lanes, x.s_a * 0.0625, bias));
      }
    } else {
      const int64_t v = sum_lanes(vs[r]);
      for (size_t t = 0; t < T; ++t) {
        const int64_t d16 = 256 * sum_lanes(hs[r][t]) + sum_lanes(ls[r][t]) - x.offset * v;
        store_y(c, m0 + t, n, finish_channel(d16 / 16, x.q->scales[n], x.s_a, bias));
      }
    }
  }
}

template <size_t R, size_t T>
HS_VNNI_FN void tile(const Ctx& x, size_t n0, size_t m0, int32_t* comb) {
  if (x.bits == 8) {
    tile_i8<R, T>(x, n0, m0);
  } else if (x.q->block == 0) {
    tile_i4<R, T, false>(x, n0, m0, comb);
  } else {
    tile_i4<R, T, true>(x, n0, m0, comb);
  }
}

template <size_t R>
HS_VNNI_FN void rows(const Ctx& x, size_t n0, int32_t* comb) {
  size_t m = 0;
  for (; m + 2 <= x.c->m; m += 2) tile<R, 2>(x, n0, m, comb);
  if (m < x.c->m) tile<R, 1>(x, n0, m, comb);
}

}  // namespace

bool vnni_supported() {
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  return vnni && avx512_dispatched();
}

Status matmul_vnni(const MatmulCall& c, const QWeightsCall& q, int bits, ActGrid grid, bool* ran) {
  *ran = false;
  Ctx x{};
  x.c = &c;
  x.q = &q;
  x.bits = bits;
  const size_t gk = bits == 8 ? 64 : 128;
  x.groups = (c.k + gk - 1) / gk;
  x.gb = gk;
  x.row_bytes = bits == 8 ? c.k : (c.k + 1) / 2;
  x.tok_stride = 2 * x.groups * x.gb;
  x.offset = grid.offset;
  x.s_a = grid.scale;
  const size_t kp = x.groups * gk;
  // act [M * tok_stride] | vtail [128] | u [kp] u16 | row [K] f32, in floats (64-byte pieces).
  const size_t act_f = (c.m * x.tok_stride + 63) / 64 * 16, vt_f = 32,
               u_f = (kp * 2 + 63) / 64 * 16;
  float* base = thread_scratch(ScratchSlot::kExactAct, act_f + vt_f + u_f + c.k);
  if (base == nullptr) return out_of_memory("matmul_quantized", act_f + vt_f + u_f + c.k);
  auto* act = reinterpret_cast<uint8_t*>(base);
  auto* vtail = reinterpret_cast<uint8_t*>(base + act_f);
  auto* u = reinterpret_cast<uint16_t*>(base + act_f + vt_f);
  float* row = base + act_f + vt_f + u_f;
  if (!prepare(x, grid, act, u, row)) return ok_status();
  *ran = true;
  const size_t g0 = (x.groups - 1) * gk;
  for (size_t p = 0; p < 128; ++p) {
    size_t k = g0 + p;
    if (bits == 4) k = p < 64 ? g0 + 2 * p : g0 + 2 * (p - 64) + 1;
    vtail[p] = (bits == 8 && p >= 64) ? 0 : static_cast<uint8_t>(k < c.k ? 1 : 0);
  }
  x.act = act;
  x.vtail = vtail;
  const bool blocks = bits == 4 && q.block != 0;
  std::atomic<bool> oom{false};
  for_rows(c, kDotRows, [&](size_t n_begin, size_t n_end) {
    int32_t* comb = nullptr;
    if (blocks) {
      comb = reinterpret_cast<int32_t*>(
          thread_scratch(ScratchSlot::kExactComb, kDotRows * 2 * x.groups * 16));
      if (comb == nullptr) {
        oom = true;
        return;
      }
    }
    size_t n0 = n_begin;
    for (; n0 + 4 <= n_end; n0 += 4) rows<4>(x, n0, comb);
    switch (n_end - n0) {
      case 3: rows<3>(x, n0, comb); break;
      case 2: rows<2>(x, n0, comb); break;
      case 1: rows<1>(x, n0, comb); break;
      default: break;
    }
  });
  if (oom) return out_of_memory("matmul_quantized", kDotRows * 2 * x.groups * 16);
  return ok_status();
}

#else  // !HS_VNNI

bool vnni_supported() { return false; }
Status matmul_vnni(const MatmulCall&, const QWeightsCall&, int, ActGrid, bool* ran) {
  *ran = false;
  return ok_status();
}

#endif  // HS_VNNI

}  // namespace hs::kernels::detail
