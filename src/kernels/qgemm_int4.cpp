// int4-weight matmul (two per byte; per-channel scales or blocks that are multiples of 16).
// x is packed in nibble-group order (matmul_internal.h, KOrder): for each group of 16 inputs,
// 8 bytes widen (sign-extended) to 32-bit lanes and split into low nibbles (even k) and high
// nibbles (odd k), converted to float and FMA'd against the group's 8 even and 8 odd x values
// (separate accumulators). Dot path (M < 8): tiles of 4 weight rows × 1 token;
// per-block scales multiply each block's partial sums once. Panel path (M >= 8): s * Wq staged
// in the same order into an L1 float tile, then the float panel kernel. Blocks that are not a
// multiple of 16 use natural order and scalar conversion.
#include <atomic>

#include "hwy/cache_control.h"
#include "simd_config.h"  // first: selects the Highway targets

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/kernels/qgemm_int4.cpp"  // relative to include/
#include "hwy/foreach_target.h"                             // IWYU pragma: keep
#include "hwy/highway.h"
#include "matmul-inl.h"

HWY_BEFORE_NAMESPACE();
namespace hs::kernels::HWY_NAMESPACE {
using detail::kNibbleGroup;
using detail::QWeightsCall;

// At most 8 lanes: one nibble group is 8 bytes.
using D8 = hn::CappedTag<float, 8>;
using V8 = hn::Vec<D8>;

// Lanes(D8) bytes -> their low (even k) and high (odd k) nibbles as floats, scaled by exact
// powers of two to save shifts: lo = nibble * 2^28 (the byte shifted to the top), hi = nibble * 16
// (the sign-extended byte with its low 4 bits cleared).
constexpr float kLoUnit = 1.f / 268435456.f;  // 2^-28
constexpr float kHiUnit = 1.f / 16.f;
HWY_INLINE void LoadNibbles(const uint8_t* p, V8& lo, V8& hi) {
  const D8 d;
  const hn::Rebind<int32_t, D8> di;
  const hn::Rebind<int8_t, D8> di8;
  const auto v = hn::PromoteTo(di, hn::LoadU(di8, reinterpret_cast<const int8_t*>(p)));
  lo = hn::ConvertTo(d, hn::ShiftLeft<28>(v));
  hi = hn::ConvertTo(d, hn::And(v, hn::Set(di, -16)));
}

// even[r] += lo * x[g + j], odd[r] += hi * x[g + 8 + j] over the nibble groups in [k0, k1)
// (k0 a multiple of 16); returns the first k the groups did not cover. x holds the group's
// even inputs times kLoUnit and odd inputs times kHiUnit (PackDotX), so each product is the
// plain nibble * x, exactly. even and odd may be the same array.
template <size_t R>
HWY_INLINE size_t DotGroupsI4(const uint8_t* HWY_RESTRICT w, size_t row_bytes, const float* x,
                              size_t k0, size_t k1, V8 (&even)[R], V8 (&odd)[R]) {
  const D8 d;
  const size_t lanes = hn::Lanes(d), half = kNibbleGroup / 2;
  // Rows of 1 KiB are too short for the hardware prefetchers (they stop at 4 KiB pages), so the
  // next tile (the R rows after these, contiguous) is prefetched at the rate this one is read.
  const uint8_t* next = w + R * row_bytes;
  size_t g = k0;
  for (; g + kNibbleGroup <= k1; g += kNibbleGroup) {
    hwy::Prefetch(next + R * (g / 2));
    for (size_t j = 0; j < half; j += lanes) {
      const V8 xe = hn::LoadU(d, x + g + j);
      const V8 xo = hn::LoadU(d, x + g + half + j);
      for (size_t r = 0; r < R; ++r) {
        V8 lo, hi;
        LoadNibbles(w + r * row_bytes + g / 2 + j, lo, hi);
        even[r] = hn::MulAdd(lo, xe, even[r]);
        odd[r] = hn::MulAdd(hi, xo, odd[r]);
      }
    }
  }
  return g;
}

// sum over k in [k0, k1) of Wq[r][k] * x[k], in increasing k (natural order, unscaled x).
HWY_INLINE float DotScalarI4(const uint8_t* w, const float* x, size_t k0, size_t k1) {
  float sum = 0.f;
  for (size_t k = k0; k < k1; ++k) sum += static_cast<float>(detail::int4_at(w, k)) * x[k];
  return sum;
}

// out[r] = y value before bias for R weight rows starting at n0 and one token x (PackDotX).
//   per channel:  s[n] * (sum_lanes(even + odd) + tail)
//   per block:    sum_lanes(sum_b s[n,b] * block_b) + sum_b s[n,b] * tail_b
template <size_t R>
HWY_INLINE void DotTileI4(const MatmulCall& c, const QWeightsCall& q, size_t n0, const float* x,
                          float* out) {
  const D8 d;
  const size_t row_bytes = (c.k + 1) / 2;
  const uint8_t* w = q.data + n0 * row_bytes;
  if (q.block == 0) {
    V8 even[R], odd[R];
    for (size_t r = 0; r < R; ++r) even[r] = odd[r] = hn::Zero(d);
    const size_t g = DotGroupsI4<R>(w, row_bytes, x, 0, c.k, even, odd);
    for (size_t r = 0; r < R; ++r) {
      const float tail = DotScalarI4(w + r * row_bytes, x, g, c.k);
      out[r] = q.scales[n0 + r] * (SumLanes(d, hn::Add(even[r], odd[r])) + tail);
    }
    return;
  }
  V8 acc[R];
  float tail[R];
  for (size_t r = 0; r < R; ++r) {
    acc[r] = hn::Zero(d);
    tail[r] = 0.f;
  }
  const bool grouped = q.block % kNibbleGroup == 0;
  for (size_t b = 0; b < q.blocks; ++b) {
    const size_t k0 = b * q.block, k1 = std::min(c.k, k0 + q.block);
    V8 block[R];
    for (size_t r = 0; r < R; ++r) block[r] = hn::Zero(d);
    const size_t g = grouped ? DotGroupsI4<R>(w, row_bytes, x, k0, k1, block, block) : k0;
    const float* s = q.scales + n0 * q.blocks + b;  // s[r * q.blocks]
    for (size_t r = 0; r < R; ++r)
      acc[r] = hn::MulAdd(block[r], hn::Set(d, s[r * q.blocks]), acc[r]);
    if (g < k1) {  // the last, partial block (or a block that is not a multiple of 16)
      for (size_t r = 0; r < R; ++r) {
        tail[r] += s[r * q.blocks] * DotScalarI4(w + r * row_bytes, x, g, k1);
      }
    }
  }
  for (size_t r = 0; r < R; ++r) out[r] = SumLanes(d, acc[r]) + tail[r];
}

template <size_t R>
void DotRowsI4(const MatmulCall& c, const QWeightsCall& q, const float* x, size_t n0) {
  float out[R];
  for (size_t m = 0; m < c.m; ++m) {
    DotTileI4<R>(c, q, n0, x + m * c.k, out);
    for (size_t r = 0; r < R; ++r) StoreY(c, m, n0 + r, out[r]);
  }
}

// x rows for the dot path: nibble-group order, with the grouped even inputs times kLoUnit and
// odd inputs times kHiUnit (exact powers of two; they cancel LoadNibbles' scaling). Exact
// unless |x| < 2^-98, where x * 2^-28 loses bits to underflow.
void PackDotX(const MatmulCall& c, KOrder order, float* rows) {
  PackRows(c, order, rows);
  if (order != KOrder::kNibbleGroups) return;
  const size_t kg = detail::grouped_end(c.k);
  for (size_t m = 0; m < c.m; ++m) {
    float* row = rows + m * c.k;
    for (size_t pos = 0; pos < kg; ++pos) {
      row[pos] *= (pos % kNibbleGroup) < kNibbleGroup / 2 ? kLoUnit : kHiUnit;
    }
  }
}

Status DotI4(const MatmulCall& c, const QWeightsCall& q, KOrder order) {
  float* rows = detail::thread_scratch(detail::ScratchSlot::kPackedX, c.m * c.k);
  if (rows == nullptr) return detail::out_of_memory("matmul_quantized", c.m * c.k);
  PackDotX(c, order, rows);
  detail::for_rows(c, detail::kDotRows, [&](size_t n_begin, size_t n_end) {
    size_t n0 = n_begin;
    for (; n0 + 4 <= n_end; n0 += 4) DotRowsI4<4>(c, q, rows, n0);
    switch (n_end - n0) {
      case 3: DotRowsI4<3>(c, q, rows, n0); break;
      case 2: DotRowsI4<2>(c, q, rows, n0); break;
      case 1: DotRowsI4<1>(c, q, rows, n0); break;
      default: break;
    }
  });
  return ok_status();
}

// Staged float tiles s * Wq in the packing order of the panels.
struct Int4Stage {
  static constexpr bool kInPlace = false;  // tiles are staged (no prefetch of W rows)
  const MatmulCall* c;
  const QWeightsCall* q;
  KOrder order;
  float* stage;  // [kMr][kKc]
  float Scale(size_t n, size_t k) const {
    return q->block == 0 ? q->scales[n] : q->scales[n * q->blocks + k / q->block];
  }
  const float* Tile(size_t n0, size_t rows, size_t k0, size_t kc, size_t* ldw) const {
    const D8 d;
    const size_t lanes = hn::Lanes(d), half = kNibbleGroup / 2, row_bytes = (c->k + 1) / 2;
    const size_t kg = order == KOrder::kNibbleGroups ? detail::grouped_end(c->k) : 0;
    for (size_t r = 0; r < rows; ++r) {
      const size_t n = n0 + r;
      const uint8_t* row = q->data + n * row_bytes;
      float* dst = stage + r * kc;
      size_t pos = k0;
      // k0 is a multiple of 16 (kKc is), so groups start at k0.
      for (; pos + kNibbleGroup <= std::min(k0 + kc, kg); pos += kNibbleGroup) {
        const V8 s = hn::Set(d, Scale(n, pos));
        const V8 lo_unit = hn::Set(d, kLoUnit), hi_unit = hn::Set(d, kHiUnit);
        for (size_t j = 0; j < half; j += lanes) {
          V8 lo, hi;
          LoadNibbles(row + pos / 2 + j, lo, hi);  // exact unscaling first, then s * Wq
          hn::StoreU(hn::Mul(hn::Mul(lo, lo_unit), s), d, dst + (pos - k0) + j);
          hn::StoreU(hn::Mul(hn::Mul(hi, hi_unit), s), d, dst + (pos - k0) + half + j);
        }
      }
      for (; pos < k0 + kc; ++pos) {
        dst[pos - k0] = static_cast<float>(detail::int4_at(row, pos)) * Scale(n, pos);
      }
    }
    *ldw = kc;
    return stage;
  }
};

Status MatmulInt4(const MatmulCall& c, const QWeightsCall& q) {
  const KOrder order = (q.block % kNibbleGroup == 0) ? KOrder::kNibbleGroups : KOrder::kNatural;
  if (c.m < detail::kPanelMinM) return DotI4(c, q, order);
  return RunPanels("matmul_quantized", c, order, [&](float* stage) {
    return Int4Stage{&c, &q, order, stage};
  });
}

}  // namespace hs::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hs::kernels {

HWY_EXPORT(MatmulInt4);

Status detail::matmul_int4(const MatmulCall& c, const QWeightsCall& q) {
  return HWY_DYNAMIC_DISPATCH(MatmulInt4)(c, q);
}

}  // namespace hs::kernels
#endif  // HWY_ONCE
