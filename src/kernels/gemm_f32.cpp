// matmul_f32: float32 weights. Dot path (M < 8): tiles of 4 weight rows × up to 2 tokens,
// Lanes-wide FMA partial sums. Panel path (M >= 8): matmul-inl.h with W rows read in place.
#include <atomic>

#include "simd_config.h"  // first: selects the Highway targets

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/kernels/gemm_f32.cpp"  // relative to include/
#include "hwy/foreach_target.h"                           // IWYU pragma: keep
#include "hwy/highway.h"
#include "matmul-inl.h"

HWY_BEFORE_NAMESPACE();
namespace hs::kernels::HWY_NAMESPACE {

// out[t][r] = sum_k x[t][k] * w[r][k] for R weight rows (stride K) and T tokens (stride ldx).
template <size_t R, size_t T>
HWY_INLINE void DotTileF32(const float* HWY_RESTRICT w, size_t k, const float* HWY_RESTRICT x,
                           size_t ldx, float* out) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  VF acc[T][R];
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) acc[t][r] = hn::Zero(d);
  }
  size_t kk = 0;
  for (; kk + lanes <= k; kk += lanes) {
    VF wv[R];
    for (size_t r = 0; r < R; ++r) wv[r] = hn::LoadU(d, w + r * k + kk);
    for (size_t t = 0; t < T; ++t) {
      const VF xv = hn::LoadU(d, x + t * ldx + kk);
      for (size_t r = 0; r < R; ++r) acc[t][r] = hn::MulAdd(wv[r], xv, acc[t][r]);
    }
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) {
      float tail = 0.f;
      for (size_t q = kk; q < k; ++q) tail += w[r * k + q] * x[t * ldx + q];
      out[t * R + r] = SumLanes(d, acc[t][r]) + tail;
    }
  }
}

// Weight rows [n0, n0 + R) against every token.
template <size_t R>
void DotRowsF32(const MatmulCall& c, const float* w, const float* x, size_t ldx, size_t n0) {
  float out[2 * R];
  size_t m = 0;
  for (; m + 2 <= c.m; m += 2) {
    DotTileF32<R, 2>(w + n0 * c.k, c.k, x + m * ldx, ldx, out);
    for (size_t r = 0; r < R; ++r) {
      StoreY(c, m, n0 + r, out[r]);
      StoreY(c, m + 1, n0 + r, out[R + r]);
    }
  }
  if (m < c.m) {
    DotTileF32<R, 1>(w + n0 * c.k, c.k, x + m * ldx, ldx, out);
    for (size_t r = 0; r < R; ++r) StoreY(c, m, n0 + r, out[r]);
  }
}

Status DotF32(const MatmulCall& c, const float* w) {
  // Token-major x rows are used in place; channel-major x is transposed to rows first.
  const float* x = c.x;
  if (c.layout == ActLayout::kChannelMajor) {
    float* rows = detail::thread_scratch(detail::ScratchSlot::kPackedX, c.m * c.k);
    if (rows == nullptr) return detail::out_of_memory("matmul_f32", c.m * c.k);
    PackRows(c, KOrder::kNatural, rows);
    x = rows;
  }
  detail::for_rows(c, detail::kDotRows, [&](size_t n_begin, size_t n_end) {
    size_t n0 = n_begin;
    for (; n0 + 4 <= n_end; n0 += 4) DotRowsF32<4>(c, w, x, c.k, n0);
    switch (n_end - n0) {
      case 3: DotRowsF32<3>(c, w, x, c.k, n0); break;
      case 2: DotRowsF32<2>(c, w, x, c.k, n0); break;
      case 1: DotRowsF32<1>(c, w, x, c.k, n0); break;
      default: break;
    }
  });
  return ok_status();
}

// Weight tiles straight from W[N,K].
struct F32Rows {
  static constexpr bool kInPlace = true;  // tiles are W's rows (PanelRows prefetches them)
  const float* w;
  size_t k;
  const float* Tile(size_t n0, size_t /*rows*/, size_t k0, size_t /*kc*/, size_t* ldw) const {
    *ldw = k;
    return w + n0 * k + k0;
  }
};

static_assert(detail::kPanelMinM == static_cast<size_t>(kMatmulPanelMinM),
              "gemm.h documents the panel path threshold");

Status MatmulF32(const detail::MatmulCall& c, const float* w) {
  if (c.m < detail::kPanelMinM) return DotF32(c, w);
  return RunPanels("matmul_f32", c, KOrder::kNatural, [&](float*) { return F32Rows{w, c.k}; });
}

}  // namespace hs::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hs::kernels {

HWY_EXPORT(MatmulF32);

Status matmul_f32(const MatmulShape& shape, std::span<const float> x, const F32Weights& weights,
                  std::span<float> y, ThreadPool* pool) {
  HS_ASSIGN_OR_RETURN(const detail::MatmulCall c,
                      detail::check_call("matmul_f32", shape, x, weights.bias, y, pool));
  if (weights.w.size() != c.n * c.k) {
    return errorf(ErrorKind::kShape, "matmul_f32: w has {} elements, expected N*K = {}*{} = {}",
                  weights.w.size(), c.n, c.k, c.n * c.k);
  }
  if (detail::handle_empty(c)) return ok_status();
#if HWY_TARGETS & HWY_AVX2
  // Few tokens (the dot path) on an AVX-512 target: the AVX2 instance. Measured on AMD Zen 4,
  // M = 1: 1.2-1.6x faster at K = 64 (stories260K's LM head, 50257 x 64: 390-500 against
  // 520-640 us) and 6% at 576 x 576; the 512-bit tiles win from the panel path up (calibration).
  // So the AVX3 instance's dot path never runs; Highway still compiles it with the rest.
  if (c.m < detail::kPanelMinM) {
    const int64_t t = detail::dispatched_simd_target();
    if (t > 0 && t < HWY_AVX2) return N_AVX2::MatmulF32(c, weights.w.data());
  }
#endif
  return HWY_DYNAMIC_DISPATCH(MatmulF32)(c, weights.w.data());
}

}  // namespace hs::kernels
#endif  // HWY_ONCE
