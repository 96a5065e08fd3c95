// matmul_bf16 (gemm_bf16.h): vdpbf16ps register tiles, written with AVX-512 intrinsics under
// a target attribute (Highway 1.0.3 has no bfloat16 dot product instruction).
//
// Panel path (M >= kPanelMinM). x is packed once per call into panels of 32 tokens, one 32-bit
// pair (bf(x[t][2q]), bf(x[t][2q+1])) per token and input pair q:
//   panels[p][q][j] = pair(token p*32 + j, q)            [P][Kp/2][32] pairs (+0 past M)
// A tile of R <= 6 weight rows × 32 tokens keeps 2R accumulators of 16 lanes for the whole K:
//   acc[r][j] = vdpbf16ps(acc[r][j], broadcast(W pair (r, q)), panels[p][q][j..j+16))
// in increasing q, then y = acc (+ bias). Rows are split over the pool in whole tiles; the next
// tile's weight rows are prefetched while a tile computes (the weights stream from memory).
// Dot path (M < 8): x rows converted to bfloat16 once; each (row, token) is one 16-lane
// vdpbf16ps chain over 32 inputs per step (the last step masked), summed across lanes at the end.
#include "headsplit/kernels/gemm_bf16.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "matmul_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define HS_BF16 1
#include <immintrin.h>
// GCC 12 flags the _mm*_undefined_* placeholders inside the widening and reducing intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace hs::kernels {

uint16_t bf16_bits(float v) {
  const uint32_t u = std::bit_cast<uint32_t>(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);  // to nearest, ties to even
  return static_cast<uint16_t>(rounded >> 16);
}

namespace {
// pairs[N, ceil(K/2)] = the bfloat16 pairs of w[N,K] with the CPU's conversion instruction;
// false (nothing written) where it has none.
bool round_rows_simd(const float* w, size_t n, size_t k, uint32_t* pairs, ThreadPool* pool);
}  // namespace

Result<Bf16Matrix> to_bf16(std::span<const float> w, int64_t n, int64_t k, ThreadPool* pool) {
  if (n < 0 || k < 0) {
    return errorf(ErrorKind::kInvalidArgument, "to_bf16: negative dimension N={} K={}", n, k);
  }
  if (static_cast<int64_t>(w.size()) != n * k) {
    return errorf(ErrorKind::kShape, "to_bf16: w has {} elements, expected N*K = {}*{} = {}",
                  w.size(), n, k, n * k);
  }
  Bf16Matrix m;
  m.n = n;
  m.k = k;
  const int64_t kp2 = m.padded_k() / 2;
  const auto bytes = static_cast<size_t>(n * kp2) * sizeof(uint32_t);
  auto pages = AnonymousPages::map(bytes, bytes >= (size_t{2} << 20));
  if (!pages.ok()) return pages.error().with_context(fmt::format("to_bf16 of {}x{}", n, k));
  m.storage = std::move(*pages);
  auto* pairs = reinterpret_cast<uint32_t*>(m.storage.data());  // zero-filled fresh pages
  if (round_rows_simd(w.data(), static_cast<size_t>(n), static_cast<size_t>(k), pairs, pool))
    return m;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      const auto bits = static_cast<uint32_t>(bf16_bits(w[static_cast<size_t>(r * k + c)]));
      pairs[static_cast<size_t>(r * kp2 + c / 2)] |= c % 2 == 0 ? bits : bits << 16;
    }
  }
  return m;
}

#if defined(HS_BF16)
namespace {

#define HS_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

using detail::MatmulCall;
constexpr size_t kLp = 32;  // tokens per panel

// x(token m, input k) in either layout, or +0 past K (the pad input).
inline float x_at(const MatmulCall& c, size_t m, size_t k) {
  if (k >= c.k) return 0.f;
  return c.layout == ActLayout::kTokenMajor ? c.x[m * c.k + k] : c.x[k * c.m + m];
}

inline uint32_t pair_bits(float lo, float hi) {
  return static_cast<uint32_t>(bf16_bits(lo)) | static_cast<uint32_t>(bf16_bits(hi)) << 16;
}

// pairs[0, ceil(k/2)) = the bfloat16 pairs of row[0, k), 32 values per conversion (the tail
// masked; the pad input of an odd k is +0).
HS_BF16_TARGET void round_row(const float* row, size_t k, uint32_t* pairs) {
  for (size_t k0 = 0; k0 < k; k0 += 32) {
    const size_t left = k - k0;
    const auto m_lo = static_cast<__mmask16>(left >= 16 ? 0xffffu : (1u << left) - 1u);
    const auto m_hi = static_cast<__mmask16>(left >= 32  ? 0xffffu
                                             : left > 16 ? (1u << (left - 16)) - 1u
                                                         : 0u);
    const __m512 lo = _mm512_maskz_loadu_ps(m_lo, row + k0);
    const __m512 hi = _mm512_maskz_loadu_ps(m_hi, row + k0 + 16);
    const size_t count = std::min<size_t>(16, (left + 1) / 2);
    _mm512_mask_storeu_epi32(pairs + k0 / 2, static_cast<__mmask16>((1u << count) - 1u),
                             (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
}

// The panels described above, for kp2 = Kp / 2 input pairs. row_pairs: kp2 words of scratch.
HS_BF16_TARGET void pack_panels(const MatmulCall& c, size_t kp2, uint32_t* panels,
                                uint32_t* row_pairs) {
  const size_t count = (c.m + kLp - 1) / kLp;
  for (size_t p = 0; p < count; ++p) {
    uint32_t* panel = panels + p * kp2 * kLp;
    const size_t m0 = p * kLp, valid = std::min(kLp, c.m - m0);
    if (c.layout == ActLayout::kChannelMajor && valid == kLp) {
      // Rows 2q and 2q+1 of x, 16 tokens at a time: both rounded to bfloat16 (RNE, as
      // bf16_bits) and interleaved into 32-bit pairs.
      for (size_t q = 0; q < kp2; ++q) {
        const float* lo = c.x + 2 * q * c.m + m0;
        const bool has_hi = 2 * q + 1 < c.k;
        for (size_t j = 0; j < kLp; j += 16) {
          const __m512 vlo = _mm512_loadu_ps(lo + j);
          const __m512 vhi = has_hi ? _mm512_loadu_ps(lo + c.m + j) : _mm512_setzero_ps();
          const __m512i a = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(vlo));
          const __m512i b = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(vhi));
          _mm512_storeu_si512(panel + q * kLp + j, _mm512_or_si512(a, _mm512_slli_epi32(b, 16)));
        }
      }
      continue;
    }
    if (c.layout == ActLayout::kTokenMajor) {
      // Token rows hold their pairs already: each row rounded, its pairs transposed into the
      // panel.
      std::memset(panel, 0, kp2 * kLp * sizeof(uint32_t));
      for (size_t j = 0; j < valid; ++j) {
        round_row(c.x + (m0 + j) * c.k, c.k, row_pairs);
        for (size_t q = 0; q < kp2; ++q) panel[q * kLp + j] = row_pairs[q];
      }
      continue;
    }
    for (size_t q = 0; q < kp2; ++q) {
      for (size_t j = 0; j < kLp; ++j) {
        panel[q * kLp + j] =
            j < valid ? pair_bits(x_at(c, m0 + j, 2 * q), x_at(c, m0 + j, 2 * q + 1)) : 0u;
      }
    }
  }
}

inline void store_y(const MatmulCall& c, size_t m, size_t n, float v) {
  if (c.bias != nullptr) v += c.bias[n];
  if (c.layout == ActLayout::kTokenMajor) {
    c.y[m * c.n + n] = v;
  } else {
    c.y[n * c.m + m] = v;
  }
}

// Rows [n0, n0 + R) of W (bf16 rows of kp2 pairs, `w` at row n0) × panel `panel` (tokens m0..,
// `valid` of them) into y. pf: the next tile's first row (same stride), or null; its pf_rows
// rows get one cache line prefetched per 16 pairs.
template <size_t R>
HS_BF16_TARGET void panel_tile(const MatmulCall& c, const uint32_t* w, size_t kp2,
                               const uint32_t* panel, size_t n0, size_t m0, size_t valid,
                               const uint32_t* pf, size_t pf_rows) {
  __m512 a0[R], a1[R];
  for (size_t r = 0; r < R; ++r) a0[r] = a1[r] = _mm512_setzero_ps();
  constexpr size_t kLine = 16;  // pairs per 64-byte line
  for (size_t q0 = 0; q0 < kp2; q0 += kLine) {
    for (size_t r = 0; r < pf_rows; ++r)
      _mm_prefetch(reinterpret_cast<const char*>(pf + r * kp2 + q0), _MM_HINT_T0);
    const size_t q1 = std::min(kp2, q0 + kLine);
    for (size_t q = q0; q < q1; ++q) {
      const __m512bh b0 = (__m512bh)(_mm512_loadu_si512(panel + q * kLp));
      const __m512bh b1 = (__m512bh)(_mm512_loadu_si512(panel + q * kLp + 16));
      for (size_t r = 0; r < R; ++r) {
        const __m512bh wr = (__m512bh)(_mm512_set1_epi32(static_cast<int>(w[r * kp2 + q])));
        a0[r] = _mm512_dpbf16_ps(a0[r], wr, b0);
        a1[r] = _mm512_dpbf16_ps(a1[r], wr, b1);
      }
    }
  }
  alignas(64) float out[R][kLp];
  for (size_t r = 0; r < R; ++r) {
    _mm512_store_ps(out[r], a0[r]);
    _mm512_store_ps(out[r] + 16, a1[r]);
  }
  if (c.layout == ActLayout::kChannelMajor) {  // y rows n: `valid` contiguous tokens each
    for (size_t r = 0; r < R; ++r) {
      float* dst = c.y + (n0 + r) * c.m + m0;
      const float bias = c.bias != nullptr ? c.bias[n0 + r] : 0.f;
      for (size_t j = 0; j < valid; ++j) dst[j] = c.bias != nullptr ? out[r][j] + bias : out[r][j];
    }
    return;
  }
  for (size_t j = 0; j < valid; ++j) {  // y rows m: R contiguous outputs each
    float* dst = c.y + (m0 + j) * c.n + n0;
    for (size_t r = 0; r < R; ++r)
      dst[r] = c.bias != nullptr ? out[r][j] + c.bias[n0 + r] : out[r][j];
  }
}

HS_BF16_TARGET void panel_tile_rows(size_t rows, const MatmulCall& c, const uint32_t* w, size_t kp2,
                                    const uint32_t* panel, size_t n0, size_t m0, size_t valid,
                                    const uint32_t* pf, size_t pf_rows) {
  switch (rows) {
    case 6: return panel_tile<6>(c, w, kp2, panel, n0, m0, valid, pf, pf_rows);
    case 5: return panel_tile<5>(c, w, kp2, panel, n0, m0, valid, pf, pf_rows);
    case 4: return panel_tile<4>(c, w, kp2, panel, n0, m0, valid, pf, pf_rows);
    case 3: return panel_tile<3>(c, w, kp2, panel, n0, m0, valid, pf, pf_rows);
    case 2: return panel_tile<2>(c, w, kp2, panel, n0, m0, valid, pf, pf_rows);
    default: return panel_tile<1>(c, w, kp2, panel, n0, m0, valid, pf, pf_rows);
  }
}

// Rows [n_begin, n_end) in tiles of balanced heights <= 6, every panel per tile.
HS_BF16_TARGET void panel_rows(const MatmulCall& c, const uint32_t* w, size_t kp2,
                               const uint32_t* panels, size_t n_begin, size_t n_end) {
  const size_t count = (c.m + kLp - 1) / kLp, rows = n_end - n_begin;
  const size_t tiles = (rows + detail::kMr - 1) / detail::kMr;
  for (size_t t = 0, n0 = n_begin; t < tiles; ++t) {
    const size_t r = rows / tiles + (t < rows % tiles ? 1 : 0);
    const size_t next = n0 + r;
    const size_t pf_rows = std::min(detail::kMr, n_end - next);
    for (size_t p = 0; p < count; ++p) {
      const size_t m0 = p * kLp;
      panel_tile_rows(r, c, w + n0 * kp2, kp2, panels + p * kp2 * kLp, n0, m0,
                      std::min(kLp, c.m - m0), w + next * kp2, p == 0 ? pf_rows : 0);
    }
    n0 = next;
  }
}

// out[t] = sum over the kp2 pairs of W row `w` against x rows `x` (stride kp2 pairs), T tokens.
template <size_t T>
HS_BF16_TARGET void dot_row(const uint32_t* w, size_t kp2, const uint32_t* x, float* out) {
  __m512 acc[T];
  for (size_t t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  size_t q = 0;
  for (; q + 16 <= kp2; q += 16) {
    const __m512bh wv = (__m512bh)(_mm512_loadu_si512(w + q));
    for (size_t t = 0; t < T; ++t) {
      const __m512bh xv = (__m512bh)(_mm512_loadu_si512(x + t * kp2 + q));
      acc[t] = _mm512_dpbf16_ps(acc[t], wv, xv);
    }
  }
  if (q < kp2) {
    const auto mask = static_cast<__mmask16>((1u << (kp2 - q)) - 1u);
    const __m512bh wv = (__m512bh)(_mm512_maskz_loadu_epi32(mask, w + q));
    for (size_t t = 0; t < T; ++t) {
      const __m512bh xv = (__m512bh)(_mm512_maskz_loadu_epi32(mask, x + t * kp2 + q));
      acc[t] = _mm512_dpbf16_ps(acc[t], wv, xv);
    }
  }
  for (size_t t = 0; t < T; ++t) out[t] = _mm512_reduce_add_ps(acc[t]);
}

HS_BF16_TARGET void dot_rows(const MatmulCall& c, const uint32_t* w, size_t kp2, const uint32_t* x,
                             size_t n_begin, size_t n_end) {
  float out[2];
  for (size_t n = n_begin; n < n_end; ++n) {
    const uint32_t* row = w + n * kp2;
    if (n + 1 < n_end) _mm_prefetch(reinterpret_cast<const char*>(row + kp2), _MM_HINT_T0);
    size_t m = 0;
    for (; m + 2 <= c.m; m += 2) {
      dot_row<2>(row, kp2, x + m * kp2, out);
      store_y(c, m, n, out[0]);
      store_y(c, m + 1, n, out[1]);
    }
    if (m < c.m) {
      dot_row<1>(row, kp2, x + m * kp2, out);
      store_y(c, m, n, out[0]);
    }
  }
}

bool round_rows_simd(const float* w, size_t n, size_t k, uint32_t* pairs, ThreadPool* pool) {
  if (!bf16_matmul_supported()) return false;
  const size_t kp2 = (k + 1) / 2;
  parallel_for(n * k >= (size_t{1} << 20) ? pool : nullptr, static_cast<int64_t>(n),
               [&](int64_t begin, int64_t end) {
                 for (auto r = static_cast<size_t>(begin); r < static_cast<size_t>(end); ++r)
                   round_row(w + r * k, k, pairs + r * kp2);
               });
  return true;
}

}  // namespace

bool bf16_matmul_supported() {
  static const bool bf16 = __builtin_cpu_supports("avx512bf16");
  return bf16 && detail::avx512_dispatched();
}

Status matmul_bf16(const MatmulShape& shape, std::span<const float> x, const Bf16Matrix& w,
                   std::span<const float> bias, std::span<float> y, ThreadPool* pool) {
  if (!bf16_matmul_supported()) {
    return Error(ErrorKind::kUnsupported,
                 "matmul_bf16: this CPU (or the forced SIMD target) has no AVX512_BF16");
  }
  HS_ASSIGN_OR_RETURN(const detail::MatmulCall c,
                      detail::check_call("matmul_bf16", shape, x, bias, y, pool));
  if (w.n != shape.n || w.k != shape.k ||
      w.storage.size() != static_cast<size_t>(w.n * w.padded_k() / 2) * sizeof(uint32_t)) {
    return errorf(ErrorKind::kShape,
                  "matmul_bf16: W is {}x{} ({} bfloat16 pairs), expected N x K = {}x{}", w.n, w.k,
                  w.storage.size() / sizeof(uint32_t), shape.n, shape.k);
  }
  if (detail::handle_empty(c)) return ok_status();
  const size_t kp2 = static_cast<size_t>(w.padded_k()) / 2;
  const uint32_t* wp = w.pairs().data();
  const bool panel = c.m >= detail::kPanelMinM;
  const size_t words = panel ? (c.m + kLp - 1) / kLp * kLp * kp2 : c.m * kp2;
  auto* packed = reinterpret_cast<uint32_t*>(
      detail::thread_scratch(detail::ScratchSlot::kPackedX, words));  // 4-byte words
  if (packed == nullptr) return detail::out_of_memory("matmul_bf16", words);
  if (panel) {
    // Token-major rows are rounded through kp2 words of scratch (the stage slot: this kernel
    // stages nothing else).
    uint32_t* row_pairs = nullptr;
    if (c.layout == ActLayout::kTokenMajor) {
      row_pairs = reinterpret_cast<uint32_t*>(
          detail::thread_scratch(detail::ScratchSlot::kStage, kp2));  // 4-byte words
      if (row_pairs == nullptr) return detail::out_of_memory("matmul_bf16", kp2);
    }
    pack_panels(c, kp2, packed, row_pairs);
    detail::for_rows(c, detail::kMr,
                     [&](size_t b, size_t e) { panel_rows(c, wp, kp2, packed, b, e); });
  } else {
    for (size_t m = 0; m < c.m; ++m) {
      for (size_t q = 0; q < kp2; ++q)
        packed[m * kp2 + q] = pair_bits(x_at(c, m, 2 * q), x_at(c, m, 2 * q + 1));
    }
    detail::for_rows(c, detail::kDotRows,
                     [&](size_t b, size_t e) { dot_rows(c, wp, kp2, packed, b, e); });
  }
  return ok_status();
}

#else  // no AVX512_BF16 intrinsics in this build

namespace {
bool round_rows_simd(const float*, size_t, size_t, uint32_t*, ThreadPool*) { return false; }
}  // namespace

bool bf16_matmul_supported() { return false; }

Status matmul_bf16(const MatmulShape&, std::span<const float>, const Bf16Matrix&,
                   std::span<const float>, std::span<float>, ThreadPool*) {
  return Error(ErrorKind::kUnsupported, "matmul_bf16: built without AVX512_BF16 support");
}

#endif  // HS_BF16

}  // namespace hs::kernels
