// int8-weight matmul (per-channel and per-block scales). Dot path (M < 8): tiles of 4 weight
// rows × up to 2 tokens; each 8-bit lane is widened and converted to float in registers
// (per block: times its scale), then FMA'd against x. Panel path (M >= 8): each thread stages
// s * Wq for 6 rows × 256 inputs into an L1 float tile and runs the float panel kernel.
#include <atomic>

#include "hwy/cache_control.h"
#include "simd_config.h"  // first: selects the Highway targets

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/kernels/qgemm_int8.cpp"  // relative to include/
#include "hwy/foreach_target.h"                             // IWYU pragma: keep
#include "hwy/highway.h"
#include "matmul-inl.h"

HWY_BEFORE_NAMESPACE();
namespace hs::kernels::HWY_NAMESPACE {
using detail::QWeightsCall;

// 8 int8 weights (Lanes of them) -> float.
HWY_INLINE VF LoadI8(const int8_t* p) {
  const DF d;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<int8_t, DF> d8;
  return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, p)));
}

// acc[t][r] += s * Wq[r][k] * x[t][k] over k in [k0, k1) in Lanes steps (s = 1 when unscaled);
// returns the first k the vectors did not cover. tail[t][r] gets the rest in increasing k.
template <size_t R, size_t T, bool kScaled>
HWY_INLINE void DotSpanI8(const int8_t* HWY_RESTRICT w, size_t k, const float* HWY_RESTRICT x,
                          size_t ldx, size_t k0, size_t k1, const float* s, VF (&acc)[T][R],
                          float (&tail)[T][R]) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  // Rows of 1-2 KiB are too short for the hardware prefetchers (they stop at 4 KiB pages), so
  // the next tile (the R rows after these, contiguous) is prefetched at the rate this one is read.
  const int8_t* next = w + R * k;
  size_t kk = k0;
  for (; kk + lanes <= k1; kk += lanes) {
    hwy::Prefetch(next + R * kk);
    VF wv[R];
    for (size_t r = 0; r < R; ++r) {
      wv[r] = LoadI8(w + r * k + kk);
      if constexpr (kScaled) wv[r] = hn::Mul(wv[r], hn::Set(d, s[r]));
    }
    for (size_t t = 0; t < T; ++t) {
      const VF xv = hn::LoadU(d, x + t * ldx + kk);
      for (size_t r = 0; r < R; ++r) acc[t][r] = hn::MulAdd(wv[r], xv, acc[t][r]);
    }
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) {
      for (size_t q = kk; q < k1; ++q) {
        const float wq = static_cast<float>(w[r * k + q]);
        tail[t][r] += (kScaled ? wq * s[r] : wq) * x[t * ldx + q];
      }
    }
  }
}

// out[t][r] = y value before bias for R weight rows starting at n0 and T tokens.
template <size_t R, size_t T>
HWY_INLINE void DotTileI8(const MatmulCall& c, const QWeightsCall& q, size_t n0, const float* x,
                          size_t ldx, float* out) {
  const DF d;
  const int8_t* w = reinterpret_cast<const int8_t*>(q.data) + n0 * c.k;
  VF acc[T][R];
  float tail[T][R];
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) {
      acc[t][r] = hn::Zero(d);
      tail[t][r] = 0.f;
    }
  }
  if (q.block == 0) {
    DotSpanI8<R, T, false>(w, c.k, x, ldx, 0, c.k, nullptr, acc, tail);
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) {
        out[t * R + r] = q.scales[n0 + r] * (SumLanes(d, acc[t][r]) + tail[t][r]);
      }
    }
    return;
  }
  for (size_t b = 0; b < q.blocks; ++b) {
    float s[R];
    for (size_t r = 0; r < R; ++r) s[r] = q.scales[(n0 + r) * q.blocks + b];
    const size_t k0 = b * q.block, k1 = std::min(c.k, k0 + q.block);
    DotSpanI8<R, T, true>(w, c.k, x, ldx, k0, k1, s, acc, tail);
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) out[t * R + r] = SumLanes(d, acc[t][r]) + tail[t][r];
  }
}

template <size_t R>
void DotRowsI8(const MatmulCall& c, const QWeightsCall& q, const float* x, size_t n0) {
  float out[2 * R];
  size_t m = 0;
  for (; m + 2 <= c.m; m += 2) {
    DotTileI8<R, 2>(c, q, n0, x + m * c.k, c.k, out);
    for (size_t r = 0; r < R; ++r) {
      StoreY(c, m, n0 + r, out[r]);
      StoreY(c, m + 1, n0 + r, out[R + r]);
    }
  }
  if (m < c.m) {
    DotTileI8<R, 1>(c, q, n0, x + m * c.k, c.k, out);
    for (size_t r = 0; r < R; ++r) StoreY(c, m, n0 + r, out[r]);
  }
}

Status DotI8(const MatmulCall& c, const QWeightsCall& q) {
  const float* x = c.x;
  if (c.layout == ActLayout::kChannelMajor) {
    float* rows = detail::thread_scratch(detail::ScratchSlot::kPackedX, c.m * c.k);
    if (rows == nullptr) return detail::out_of_memory("matmul_quantized", c.m * c.k);
    PackRows(c, KOrder::kNatural, rows);
    x = rows;
  }
  detail::for_rows(c, detail::kDotRows, [&](size_t n_begin, size_t n_end) {
    size_t n0 = n_begin;
    for (; n0 + 4 <= n_end; n0 += 4) DotRowsI8<4>(c, q, x, n0);
    switch (n_end - n0) {
      case 3: DotRowsI8<3>(c, q, x, n0); break;
      case 2: DotRowsI8<2>(c, q, x, n0); break;
      case 1: DotRowsI8<1>(c, q, x, n0); break;
      default: break;
    }
  });
  return ok_status();
}

// dst[i] = s * Wq[k0 + i] for i < kc, where s is constant over [k0, k0 + kc).
HWY_INLINE void StageSpanI8(const int8_t* HWY_RESTRICT w, size_t count, float s,
                            float* HWY_RESTRICT dst) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const VF sv = hn::Set(d, s);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(hn::Mul(LoadI8(w + i), sv), d, dst + i);
  for (; i < count; ++i) dst[i] = static_cast<float>(w[i]) * s;
}

// Staged float tiles s * Wq for the panel path.
struct Int8Stage {
  static constexpr bool kInPlace = false;  // tiles are staged (no prefetch of W rows)
  const MatmulCall* c;
  const QWeightsCall* q;
  float* stage;  // [kMr][kKc]
  const float* Tile(size_t n0, size_t rows, size_t k0, size_t kc, size_t* ldw) const {
    const int8_t* w = reinterpret_cast<const int8_t*>(q->data);
    for (size_t r = 0; r < rows; ++r) {
      const size_t n = n0 + r;
      const int8_t* row = w + n * c->k;
      float* dst = stage + r * kc;
      if (q->block == 0) {
        StageSpanI8(row + k0, kc, q->scales[n], dst);
        continue;
      }
      for (size_t k = k0; k < k0 + kc;) {  // one span per block
        const size_t b = k / q->block, end = std::min(k0 + kc, (b + 1) * q->block);
        StageSpanI8(row + k, end - k, q->scales[n * q->blocks + b], dst + (k - k0));
        k = end;
      }
    }
    *ldw = kc;
    return stage;
  }
};

Status MatmulInt8(const MatmulCall& c, const QWeightsCall& q) {
  if (c.m < detail::kPanelMinM) return DotI8(c, q);
  return RunPanels("matmul_quantized", c, KOrder::kNatural, [&](float* stage) {
    return Int8Stage{&c, &q, stage};
  });
}

}  // namespace hs::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hs::kernels {

HWY_EXPORT(MatmulInt8);

Status detail::matmul_int8(const MatmulCall& c, const QWeightsCall& q) {
  return HWY_DYNAMIC_DISPATCH(MatmulInt8)(c, q);
}

}  // namespace hs::kernels
#endif  // HWY_ONCE
