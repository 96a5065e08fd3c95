// Per-target building blocks of the fast matmuls, included inside the foreach_target loop of
// gemm_f32.cpp, qgemm_int8.cpp and qgemm_int4.cpp (Highway's per-target include guard).
//
// Panel path (M >= kPanelMinM). x is packed once per call into K-major panels of Lp = 2 * Lanes
// tokens, panels[p][pos][j] = x(token p*Lp + j, input source_k(pos)) (zero past M). A register
// tile of R <= 6 weight rows × Lp tokens accumulates
//   c[r][j] += w[r][pos] * panels[p][pos][j]     (one broadcast, two FMAs per r and pos)
// in increasing pos. Loops: m blocks of kMc tokens › n blocks of kNc rows › k blocks of kKc ›
// tiles of <= 6 rows (balanced heights; weights fetched or staged here) › panels; the k-block
// partial sums live in `ctile` [kNc][kMc] (exact float stores, so each element still sees one
// FMA chain), written to y (+ bias) after the last k block. Weight rows come from a Source: W
// itself (f32: the next tile's rows are prefetched while a tile computes, so the weights stream
// from memory without stalls at M = 32, where each weight is used only 32 times) or a staged
// float tile (int8/int4). The tiling and prefetching never change which products an element
// sums or their order.
#if defined(HS_KERNELS_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef HS_KERNELS_MATMUL_INL_H_
#undef HS_KERNELS_MATMUL_INL_H_
#else
#define HS_KERNELS_MATMUL_INL_H_
#endif

#include <atomic>
#include <cstring>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "matmul_internal.h"

HWY_BEFORE_NAMESPACE();
namespace hs::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using detail::KOrder;
using detail::MatmulCall;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Tokens per panel: two vectors.
HWY_INLINE size_t PanelWidth() { return 2 * hn::Lanes(DF()); }

// x(token m, input k) in either layout.
HWY_INLINE float XAt(const MatmulCall& c, size_t m, size_t k) {
  return c.layout == ActLayout::kTokenMajor ? c.x[m * c.k + k] : c.x[k * c.m + m];
}

// panels [ceil(M/Lp)][K][Lp] as described above.
inline void PackPanels(const MatmulCall& c, KOrder order, float* HWY_RESTRICT panels) {
  const size_t lp = PanelWidth(), kg = detail::grouped_end(c.k);
  const size_t count = (c.m + lp - 1) / lp;
  for (size_t p = 0; p < count; ++p) {
    float* panel = panels + p * c.k * lp;  // [K][Lp]
    const size_t m0 = p * lp, valid = std::min(lp, c.m - m0);
    if (c.layout == ActLayout::kChannelMajor) {
      if (valid == lp) {  // a full panel: two vector copies per input
        const DF d;
        const size_t lanes = hn::Lanes(d);
        for (size_t pos = 0; pos < c.k; ++pos) {
          const float* src = c.x + detail::source_k(order, pos, kg) * c.m + m0;
          hn::Store(hn::LoadU(d, src), d, panel + pos * lp);
          hn::Store(hn::LoadU(d, src + lanes), d, panel + pos * lp + lanes);
        }
        continue;
      }
      for (size_t pos = 0; pos < c.k; ++pos) {
        const float* src = c.x + detail::source_k(order, pos, kg) * c.m + m0;
        std::memcpy(panel + pos * lp, src, valid * sizeof(float));
        std::memset(panel + pos * lp + valid, 0, (lp - valid) * sizeof(float));
      }
      continue;
    }
    for (size_t j = 0; j < lp; ++j) {
      const float* row = c.x + (m0 + j) * c.k;
      for (size_t pos = 0; pos < c.k; ++pos) {
        panel[pos * lp + j] = j < valid ? row[detail::source_k(order, pos, kg)] : 0.f;
      }
    }
  }
}

// rows [M][K]: rows[m][pos] = x(m, source_k(pos)) (the dot path's x).
inline void PackRows(const MatmulCall& c, KOrder order, float* HWY_RESTRICT rows) {
  const size_t kg = detail::grouped_end(c.k);
  for (size_t m = 0; m < c.m; ++m) {
    for (size_t pos = 0; pos < c.k; ++pos) {
      rows[m * c.k + pos] = XAt(c, m, detail::source_k(order, pos, kg));
    }
  }
}

// y(m, n) = v (+ bias[n]).
HWY_INLINE void StoreY(const MatmulCall& c, size_t m, size_t n, float v) {
  if (c.bias != nullptr) v = v + c.bias[n];
  if (c.layout == ActLayout::kTokenMajor) {
    c.y[m * c.n + n] = v;
  } else {
    c.y[n * c.m + m] = v;
  }
}

enum class Accumulate : uint8_t { kStart, kContinue };

// c[r][0, Lp) (+)= sum over pos < kc of w[r * ldw + pos] * b[pos][0, Lp), r < R.
// pf: the next weight tile's first pf_rows rows (same ldw, pf_kc inputs each), prefetched one
// cache line per row every 16 positions, so that they arrive while this tile computes.
template <size_t R>
HWY_INLINE void PanelTileR(const float* HWY_RESTRICT w, size_t ldw, const float* HWY_RESTRICT b,
                           size_t kc, float* HWY_RESTRICT c, size_t ldc, Accumulate mode,
                           const float* pf, size_t pf_rows, size_t pf_kc) {
  const DF d;
  const size_t lanes = hn::Lanes(d), lp = 2 * lanes;
  VF a0[R], a1[R];
  for (size_t r = 0; r < R; ++r) {
    a0[r] = mode == Accumulate::kStart ? hn::Zero(d) : hn::LoadU(d, c + r * ldc);
    a1[r] = mode == Accumulate::kStart ? hn::Zero(d) : hn::LoadU(d, c + r * ldc + lanes);
  }
  constexpr size_t kLine = 16;  // floats per 64-byte cache line
  for (size_t p0 = 0; p0 < kc; p0 += kLine) {
    if (p0 < pf_kc) {
      for (size_t r = 0; r < pf_rows; ++r) hwy::Prefetch(pf + r * ldw + p0);
    }
    const size_t p1 = std::min(kc, p0 + kLine);
    for (size_t pos = p0; pos < p1; ++pos) {
      const VF b0 = hn::Load(d, b + pos * lp);
      const VF b1 = hn::Load(d, b + pos * lp + lanes);
      for (size_t r = 0; r < R; ++r) {
        const VF wr = hn::Set(d, w[r * ldw + pos]);
        a0[r] = hn::MulAdd(wr, b0, a0[r]);
        a1[r] = hn::MulAdd(wr, b1, a1[r]);
      }
    }
  }
  for (size_t r = 0; r < R; ++r) {
    hn::StoreU(a0[r], d, c + r * ldc);
    hn::StoreU(a1[r], d, c + r * ldc + lanes);
  }
}

inline void PanelTile(size_t rows, const float* w, size_t ldw, const float* b, size_t kc, float* c,
                      size_t ldc, Accumulate mode, const float* pf, size_t pf_rows,
                      size_t pf_kc) {
  static_assert(detail::kMr == 6, "PanelTile handles up to 6 rows");
  switch (rows) {
    case 6: return PanelTileR<6>(w, ldw, b, kc, c, ldc, mode, pf, pf_rows, pf_kc);
    case 5: return PanelTileR<5>(w, ldw, b, kc, c, ldc, mode, pf, pf_rows, pf_kc);
    case 4: return PanelTileR<4>(w, ldw, b, kc, c, ldc, mode, pf, pf_rows, pf_kc);
    case 3: return PanelTileR<3>(w, ldw, b, kc, c, ldc, mode, pf, pf_rows, pf_kc);
    case 2: return PanelTileR<2>(w, ldw, b, kc, c, ldc, mode, pf, pf_rows, pf_kc);
    default: return PanelTileR<1>(w, ldw, b, kc, c, ldc, mode, pf, pf_rows, pf_kc);
  }
}

// Writes ctile rows [rows][ldc] (tokens m0.. m0+count) to y, adding the bias.
inline void WriteTile(const MatmulCall& c, const float* ctile, size_t ldc, size_t n0, size_t rows,
                      size_t m0, size_t count) {
  if (c.layout == ActLayout::kChannelMajor) {
    for (size_t r = 0; r < rows; ++r) {
      const float* src = ctile + r * ldc;
      float* dst = c.y + (n0 + r) * c.m + m0;
      const float bias = c.bias != nullptr ? c.bias[n0 + r] : 0.f;
      for (size_t j = 0; j < count; ++j) dst[j] = c.bias != nullptr ? src[j] + bias : src[j];
    }
    return;
  }
  for (size_t j = 0; j < count; ++j) {
    float* dst = c.y + (m0 + j) * c.n + n0;
    for (size_t r = 0; r < rows; ++r) {
      dst[r] = c.bias != nullptr ? ctile[r * ldc + j] + c.bias[n0 + r] : ctile[r * ldc + j];
    }
  }
}

// The panel path over weight rows [n_begin, n_end). Source::Tile(n0, rows, k0, kc, &ldw)
// returns rows (<= kMr) × kc floats of s * W (row stride ldw) for inputs [k0, k0 + kc) in
// panel order.
// ctile: kNc * kMc floats of scratch.
template <class Source>
void PanelRows(const MatmulCall& c, const float* panels, Source& src, float* ctile, size_t n_begin,
               size_t n_end) {
  using detail::kKc, detail::kMc, detail::kMr, detail::kNc;
  const size_t lp = PanelWidth();
  const size_t panel_count = (c.m + lp - 1) / lp, block_panels = kMc / lp;
  for (size_t p0 = 0; p0 < panel_count; p0 += block_panels) {
    const size_t np = std::min(block_panels, panel_count - p0), ldc = np * lp;
    const size_t m0 = p0 * lp, m_count = std::min(ldc, c.m - m0);
    for (size_t n0 = n_begin; n0 < n_end; n0 += kNc) {
      const size_t rows = std::min(kNc, n_end - n0);
      for (size_t k0 = 0; k0 < c.k; k0 += kKc) {
        const size_t kc = std::min(kKc, c.k - k0);
        const Accumulate mode = k0 == 0 ? Accumulate::kStart : Accumulate::kContinue;
        // ceil(rows / kMr) tiles of balanced heights (32 rows: 6 6 5 5 5 5, not 6 6 6 6 6 2),
        // so a short last tile does not leave the FMA pipes waiting on too few chains.
        const size_t tiles = (rows + kMr - 1) / kMr;
        for (size_t t = 0, i = 0; t < tiles; ++t) {
          const size_t r = rows / tiles + (t < rows % tiles ? 1 : 0);
          size_t ldw = 0;
          const float* wt = src.Tile(n0 + i, r, k0, kc, &ldw);
          // The next tile's rows (in loop order) when the source reads W in place.
          const float* pf = nullptr;
          size_t pf_rows = 0, pf_kc = 0;
          if constexpr (Source::kInPlace) {
            size_t nn = n0 + i + r, nk = k0, unused = 0;
            if (t + 1 == tiles) {
              nn = n0;
              nk = k0 + kc;
              if (nk >= c.k) nn = n0 + kNc, nk = 0;
            }
            if (nn < n_end) {
              pf = src.Tile(nn, 1, nk, 1, &unused);
              pf_rows = std::min(kMr, n_end - nn);
              pf_kc = std::min(kKc, c.k - nk);
            }
          }
          for (size_t q = 0; q < np; ++q) {
            PanelTile(r, wt, ldw, panels + ((p0 + q) * c.k + k0) * lp, kc, ctile + i * ldc + q * lp,
                      ldc, mode, pf, q == 0 ? pf_rows : 0, pf_kc);
          }
          i += r;
        }
      }
      WriteTile(c, ctile, ldc, n0, rows, m0, m_count);
    }
  }
}

// Runs the panel path on the pool: packs x (calling thread), then rows in 6-row units.
// make_source(stage) builds a Source for one thread given its kStage scratch (kMr * kKc).
template <class MakeSource>
Status RunPanels(const char* op, const MatmulCall& c, KOrder order, MakeSource&& make_source) {
  using detail::ScratchSlot;
  const size_t lp = PanelWidth();
  const size_t panel_floats = (c.m + lp - 1) / lp * lp * c.k;
  float* panels = detail::thread_scratch(ScratchSlot::kPackedX, panel_floats);
  if (panels == nullptr) return detail::out_of_memory(op, panel_floats);
  PackPanels(c, order, panels);
  std::atomic<bool> failed{false};
  detail::for_rows(c, detail::kMr, [&](size_t n_begin, size_t n_end) {
    float* ctile = detail::thread_scratch(ScratchSlot::kTile, detail::kNc * detail::kMc);
    float* stage = detail::thread_scratch(ScratchSlot::kStage, detail::kMr * detail::kKc);
    if (ctile == nullptr || stage == nullptr) {
      failed.store(true, std::memory_order_relaxed);
      return;
    }
    auto src = make_source(stage);
    PanelRows(c, panels, src, ctile, n_begin, n_end);
  });
  if (failed.load())
    return detail::out_of_memory(op, detail::kNc * detail::kMc + detail::kMr * detail::kKc);
  return ok_status();
}

// Horizontal sum of a vector.
template <class D>
HWY_INLINE float SumLanes(D d, hn::Vec<D> v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}

}  // namespace hs::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // HS_KERNELS_MATMUL_INL_H_
