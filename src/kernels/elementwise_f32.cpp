// SIMD elementwise kernels (kernels/elementwise.h): fake quantization, quantization into and
// dequantization from integer storage, row softmax and the binary ops. Bit-identical to the
// scalar math of kernels/quant.h and to ref::softmax / ref::binary.
#include <algorithm>
#include <cmath>

#include "simd_config.h"  // first: selects the Highway targets

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/kernels/elementwise_f32.cpp"  // relative to include/
#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/quant.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace hs::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using opset::DType;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using DI = hn::Rebind<int32_t, DF>;

// Round half to even. x86 targets round with the current mode (nearest-even); the scalar
// target's Round adds 0.5 first, which is not exact for every float, so it uses the scalar
// definition of kernels/quant.h instead.
HWY_INLINE VF RoundEven(DF d, VF v) {
#if HWY_TARGET == HWY_SCALAR
  return hn::Set(d, round_half_even(hn::GetLane(v)));
#else
  (void)d;
  return hn::Round(v);
#endif
}

// The quantized value as a float: clamp(round(x / s) + zp, qmin, qmax), NaN -> qmin.
HWY_INLINE VF QuantizeV(DF d, VF x, VF s, VF zp, VF lo, VF hi) {
  VF q = hn::Add(RoundEven(d, hn::Div(x, s)), zp);
  q = hn::IfThenElse(q >= lo, q, lo);
  return hn::IfThenElse(q > hi, hi, q);
}

void FakeQuantizeF32(float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                     int32_t qmax) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const VF s = hn::Set(d, scale), zp = hn::Set(d, static_cast<float>(zero_point));
  const VF lo = hn::Set(d, static_cast<float>(qmin)), hi = hn::Set(d, static_cast<float>(qmax));
  size_t i = 0;
  const auto count = static_cast<size_t>(n);
  for (; i + lanes <= count; i += lanes) {
    const VF q = QuantizeV(d, hn::LoadU(d, x + i), s, zp, lo, hi);
    // q - zp is exact (integers below 2^24), as the scalar int subtraction.
    hn::StoreU(hn::Mul(s, hn::Sub(q, zp)), d, x + i);
  }
  for (; i < count; ++i) x[i] = kernels::fake_quantize_one(x[i], scale, zero_point, qmin, qmax);
}

template <typename T>
void QuantizeTo(const float* x, size_t count, float scale, int32_t zero_point, int32_t qmin,
                int32_t qmax, std::byte* y) {
  const DF d;
  const DI di;
  const hn::Rebind<T, DF> dt;
  const size_t lanes = hn::Lanes(d);
  const VF s = hn::Set(d, scale), zp = hn::Set(d, static_cast<float>(zero_point));
  const VF lo = hn::Set(d, static_cast<float>(qmin)), hi = hn::Set(d, static_cast<float>(qmax));
  T* out = reinterpret_cast<T*>(y);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const VF q = QuantizeV(d, hn::LoadU(d, x + i), s, zp, lo, hi);
    hn::StoreU(hn::DemoteTo(dt, hn::ConvertTo(di, q)), dt, out + i);
  }
  for (; i < count; ++i) {
    out[i] = static_cast<T>(kernels::quantize_one(x[i], scale, zero_point, qmin, qmax));
  }
}

void QuantizeF32(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                 int32_t qmax, DType storage, std::byte* y) {
  const auto count = static_cast<size_t>(n);
  switch (storage) {
    case DType::kU8: return QuantizeTo<uint8_t>(x, count, scale, zero_point, qmin, qmax, y);
    case DType::kI8: return QuantizeTo<int8_t>(x, count, scale, zero_point, qmin, qmax, y);
    case DType::kU16: return QuantizeTo<uint16_t>(x, count, scale, zero_point, qmin, qmax, y);
    case DType::kI16: return QuantizeTo<int16_t>(x, count, scale, zero_point, qmin, qmax, y);
    default: break;
  }
}

template <typename T>
void DequantizeFrom(const std::byte* x, size_t count, float scale, int32_t zero_point, float* y) {
  const DF d;
  const DI di;
  const hn::Rebind<T, DF> dt;
  const size_t lanes = hn::Lanes(d);
  const VF s = hn::Set(d, scale);
  const auto zp = hn::Set(di, zero_point);
  const T* in = reinterpret_cast<const T*>(x);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const auto q = hn::PromoteTo(di, hn::LoadU(dt, in + i));
    hn::StoreU(hn::Mul(hn::ConvertTo(d, hn::Sub(q, zp)), s), d, y + i);
  }
  for (; i < count; ++i) {
    y[i] = kernels::dequantize_one(static_cast<int32_t>(in[i]), scale, zero_point);
  }
}

void DequantizeToF32(const std::byte* x, DType storage, int64_t n, float scale, int32_t zero_point,
                     float* y) {
  const auto count = static_cast<size_t>(n);
  switch (storage) {
    case DType::kU8: return DequantizeFrom<uint8_t>(x, count, scale, zero_point, y);
    case DType::kI8: return DequantizeFrom<int8_t>(x, count, scale, zero_point, y);
    case DType::kU16: return DequantizeFrom<uint16_t>(x, count, scale, zero_point, y);
    case DType::kI16: return DequantizeFrom<int16_t>(x, count, scale, zero_point, y);
    default: break;
  }
}

HWY_INLINE VF Apply(BinaryKind op, VF a, VF b) {
  switch (op) {
    case BinaryKind::kAdd: return hn::Add(a, b);
    case BinaryKind::kSub: return hn::Sub(a, b);
    case BinaryKind::kMul: return hn::Mul(a, b);
    case BinaryKind::kDiv: return hn::Div(a, b);
  }
  return a;
}

HWY_INLINE float ApplyScalar(BinaryKind op, float a, float b) {
  switch (op) {
    case BinaryKind::kAdd: return a + b;
    case BinaryKind::kSub: return a - b;
    case BinaryKind::kMul: return a * b;
    case BinaryKind::kDiv: return a / b;
  }
  return a;
}

template <BinaryKind kOp>
void BinaryLoop(const float* a, const float* b, float* y, size_t count) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    hn::StoreU(Apply(kOp, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, y + i);
  }
  for (; i < count; ++i) y[i] = ApplyScalar(kOp, a[i], b[i]);
}

void BinaryF32(BinaryKind op, const float* a, const float* b, float* y, int64_t n) {
  const auto count = static_cast<size_t>(n);
  switch (op) {
    case BinaryKind::kAdd: return BinaryLoop<BinaryKind::kAdd>(a, b, y, count);
    case BinaryKind::kSub: return BinaryLoop<BinaryKind::kSub>(a, b, y, count);
    case BinaryKind::kMul: return BinaryLoop<BinaryKind::kMul>(a, b, y, count);
    case BinaryKind::kDiv: return BinaryLoop<BinaryKind::kDiv>(a, b, y, count);
  }
}

void BinaryScalarF32(BinaryKind op, const float* a, float b, bool b_is_rhs, float* y, int64_t n) {
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const auto count = static_cast<size_t>(n);
  const VF bv = hn::Set(d, b);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const VF av = hn::LoadU(d, a + i);
    hn::StoreU(b_is_rhs ? Apply(op, av, bv) : Apply(op, bv, av), d, y + i);
  }
  for (; i < count; ++i) y[i] = b_is_rhs ? ApplyScalar(op, a[i], b) : ApplyScalar(op, b, a[i]);
}

// BinaryF32 / BinaryScalarF32 followed by FakeQuantizeF32 on each element while it is in a
// register: the same operations on each element, so the same bits as the two passes.
template <BinaryKind kOp, bool kScalarB>
void BinaryFqLoop(const float* a, const float* b, bool b_is_rhs, float* y, size_t count,
                  const FakeQuantParams& fq) {
  if (count == 0) return;  // b may be empty (null) then
  const DF d;
  const size_t lanes = hn::Lanes(d);
  const VF s = hn::Set(d, fq.scale), zp = hn::Set(d, static_cast<float>(fq.zero_point));
  const VF lo = hn::Set(d, static_cast<float>(fq.qmin)), hi = hn::Set(d, static_cast<float>(fq.qmax));
  const VF bv = hn::Set(d, b[0]);  // the scalar operand (b's first element otherwise, unused)
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const VF av = hn::LoadU(d, a + i);
    VF v;
    if constexpr (kScalarB) {
      v = b_is_rhs ? Apply(kOp, av, bv) : Apply(kOp, bv, av);
    } else {
      v = Apply(kOp, av, hn::LoadU(d, b + i));
    }
    const VF q = QuantizeV(d, v, s, zp, lo, hi);
    hn::StoreU(hn::Mul(s, hn::Sub(q, zp)), d, y + i);
  }
  for (; i < count; ++i) {
    float v;
    if constexpr (kScalarB) {
      v = b_is_rhs ? ApplyScalar(kOp, a[i], b[0]) : ApplyScalar(kOp, b[0], a[i]);
    } else {
      v = ApplyScalar(kOp, a[i], b[i]);
    }
    y[i] = kernels::fake_quantize_one(v, fq.scale, fq.zero_point, fq.qmin, fq.qmax);
  }
}

template <bool kScalarB>
void BinaryFqDispatch(BinaryKind op, const float* a, const float* b, bool b_is_rhs, float* y,
                      int64_t n, const FakeQuantParams& fq) {
  const auto count = static_cast<size_t>(n);
  switch (op) {
    case BinaryKind::kAdd: return BinaryFqLoop<BinaryKind::kAdd, kScalarB>(a, b, b_is_rhs, y, count, fq);
    case BinaryKind::kSub: return BinaryFqLoop<BinaryKind::kSub, kScalarB>(a, b, b_is_rhs, y, count, fq);
    case BinaryKind::kMul: return BinaryFqLoop<BinaryKind::kMul, kScalarB>(a, b, b_is_rhs, y, count, fq);
    case BinaryKind::kDiv: return BinaryFqLoop<BinaryKind::kDiv, kScalarB>(a, b, b_is_rhs, y, count, fq);
  }
}

void BinaryFqF32(BinaryKind op, const float* a, const float* b, float* y, int64_t n,
                 const FakeQuantParams& fq) {
  BinaryFqDispatch<false>(op, a, b, true, y, n, fq);
}

void BinaryScalarFqF32(BinaryKind op, const float* a, float b, bool b_is_rhs, float* y, int64_t n,
                       const FakeQuantParams& fq) {
  BinaryFqDispatch<true>(op, a, &b, b_is_rhs, y, n, fq);
}

uint32_t AbsMaxBitsF32(const float* x, int64_t rows, int64_t n, int64_t ld) {
  const hn::ScalableTag<uint32_t> du;
  const size_t lanes = hn::Lanes(du);
  const auto mask = hn::Set(du, 0x7fffffffu);
  auto m0 = hn::Zero(du), m1 = hn::Zero(du);
  const auto count = static_cast<size_t>(n);
  uint32_t m = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const auto* bits = reinterpret_cast<const uint32_t*>(x + r * ld);
    size_t i = 0;
    for (; i + 2 * lanes <= count; i += 2 * lanes) {
      m0 = hn::Max(m0, hn::And(hn::LoadU(du, bits + i), mask));
      m1 = hn::Max(m1, hn::And(hn::LoadU(du, bits + i + lanes), mask));
    }
    for (; i < count; ++i) m = std::max(m, bits[i] & 0x7fffffffu);
  }
  return std::max(m, hn::GetLane(hn::MaxOfLanes(du, hn::Max(m0, m1))));
}

void OrAbsBitsColumnsF32(const float* x, int64_t rows, int64_t n, int64_t ld, int32_t* out) {
  const hn::ScalableTag<int32_t> di;
  const size_t lanes = hn::Lanes(di);
  const auto mask = hn::Set(di, 0x7fffffff);
  const auto count = static_cast<size_t>(n);
  size_t j = 0;
  for (; j + 4 * lanes <= count; j += 4 * lanes) {
    auto a0 = hn::Zero(di), a1 = hn::Zero(di), a2 = hn::Zero(di), a3 = hn::Zero(di);
    for (int64_t r = 0; r < rows; ++r) {
      const auto* bits = reinterpret_cast<const int32_t*>(x + r * ld) + j;
      a0 = hn::Or(a0, hn::LoadU(di, bits));
      a1 = hn::Or(a1, hn::LoadU(di, bits + lanes));
      a2 = hn::Or(a2, hn::LoadU(di, bits + 2 * lanes));
      a3 = hn::Or(a3, hn::LoadU(di, bits + 3 * lanes));
    }
    hn::StoreU(hn::And(a0, mask), di, out + j);
    hn::StoreU(hn::And(a1, mask), di, out + j + lanes);
    hn::StoreU(hn::And(a2, mask), di, out + j + 2 * lanes);
    hn::StoreU(hn::And(a3, mask), di, out + j + 3 * lanes);
  }
  for (; j < count; ++j) {
    int32_t v = 0;
    for (int64_t r = 0; r < rows; ++r) v |= reinterpret_cast<const int32_t*>(x + r * ld)[j];
    out[j] = v & 0x7fffffff;
  }
}

}  // namespace hs::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hs::kernels {

HWY_EXPORT(FakeQuantizeF32);
HWY_EXPORT(QuantizeF32);
HWY_EXPORT(DequantizeToF32);
HWY_EXPORT(BinaryF32);
HWY_EXPORT(BinaryScalarF32);
HWY_EXPORT(BinaryFqF32);
HWY_EXPORT(BinaryScalarFqF32);
HWY_EXPORT(AbsMaxBitsF32);
HWY_EXPORT(OrAbsBitsColumnsF32);

void or_abs_bits_columns_f32(const float* x, int64_t rows, int64_t n, int64_t ld, int32_t* out) {
  HWY_DYNAMIC_DISPATCH(OrAbsBitsColumnsF32)(x, rows, n, ld, out);
}

void binary_fq_f32(BinaryKind op, const float* a, const float* b, float* y, int64_t n,
                   const FakeQuantParams& fq) {
  HWY_DYNAMIC_DISPATCH(BinaryFqF32)(op, a, b, y, n, fq);
}

void binary_scalar_fq_f32(BinaryKind op, const float* a, float b, bool b_is_rhs, float* y,
                          int64_t n, const FakeQuantParams& fq) {
  HWY_DYNAMIC_DISPATCH(BinaryScalarFqF32)(op, a, b, b_is_rhs, y, n, fq);
}

void fake_quantize_f32(float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                       int32_t qmax) {
  HWY_DYNAMIC_DISPATCH(FakeQuantizeF32)(x, n, scale, zero_point, qmin, qmax);
}

void quantize_f32(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin,
                  int32_t qmax, opset::DType storage, std::byte* y) {
  HWY_DYNAMIC_DISPATCH(QuantizeF32)(x, n, scale, zero_point, qmin, qmax, storage, y);
}

void dequantize_to_f32(const std::byte* x, opset::DType storage, int64_t n, float scale,
                       int32_t zero_point, float* y) {
  HWY_DYNAMIC_DISPATCH(DequantizeToF32)(x, storage, n, scale, zero_point, y);
}

namespace {

// std::exp(x) is exactly +0 for every float x below this (e^-103.98 is under half the
// smallest subnormal, 2^-150), so masked scores skip libm's underflow path.
constexpr float kExpZeroBelow = kSoftmaxExpZeroBelow;

// y[j] = exp(x[j] - m), exactly 0 where x[j] - m < kExpZeroBelow (std::exp's value there too;
// its underflow path is skipped), for j < n. The exps are exp_f32's (std::exp's bits).
void exp_shifted(const float* x, float m, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float t = x[j] - m;
    y[j] = t < kExpZeroBelow ? 0.f : t;  // masked columns take exp's fast path, then are zeroed
  }
  exp_f32(y, y, n);
  for (int64_t j = 0; j < n; ++j) {
    const float t = x[j] - m;
    if (t < kExpZeroBelow) y[j] = 0.f;
  }
}

void softmax_row(const float* x, float* y, int64_t n) {
  float m = x[0];
  for (int64_t j = 1; j < n; ++j) {
    if (x[j] > m) m = x[j];
  }
  float s = 0.f;
  exp_shifted(x, m, y, n);
  for (int64_t j = 0; j < n; ++j) s += y[j];
  for (int64_t j = 0; j < n; ++j) y[j] = y[j] / s;
}

// softmax_row without the columns [d0, d1) (softmax_rows_live_f32).
void softmax_row_live(const float* x, float* y, int64_t n, int64_t d0, int64_t d1) {
  const int64_t first = d0 > 0 ? 0 : d1;  // a live column (the caller guarantees one)
  float m = x[first];
  for (int64_t j = first + 1; j < n; ++j) {
    if (j == d0) j = d1;
    if (j < n && x[j] > m) m = x[j];
  }
  float s = 0.f;
  exp_shifted(x, m, y, d0);
  for (int64_t j = d0; j < d1; ++j) y[j] = 0.f;
  exp_shifted(x + d1, m, y + d1, n - d1);
  for (int64_t j = 0; j < d0; ++j) s += y[j];
  for (int64_t j = d1; j < n; ++j) s += y[j];
  for (int64_t j = 0; j < n; ++j) y[j] = y[j] / s;
}

}  // namespace

void softmax_rows_live_f32(const float* x, float* y, int64_t rows, int64_t n, int64_t dead_begin,
                           int64_t dead_end, ThreadPool* pool) {
  const int64_t d0 = std::clamp<int64_t>(dead_begin, 0, n);
  const int64_t d1 = std::clamp<int64_t>(dead_end, d0, n);
  if (d1 == d0 || d1 - d0 == n) {  // nothing dead, or no live column to anchor the max
    softmax_rows_f32(x, y, rows, n, pool);
    return;
  }
  constexpr int64_t kMinParallelElements = 8192;
  ThreadPool* use = rows > 1 && rows * (n - (d1 - d0)) >= kMinParallelElements ? pool : nullptr;
  parallel_for(use, rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) softmax_row_live(x + r * n, y + r * n, n, d0, d1);
  });
}

void softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t n, ThreadPool* pool) {
  constexpr int64_t kMinParallelElements = 8192;
  ThreadPool* use = rows > 1 && rows * n >= kMinParallelElements ? pool : nullptr;
  parallel_for(use, rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) softmax_row(x + r * n, y + r * n, n);
  });
}

uint32_t abs_max_bits_f32(const float* x, int64_t rows, int64_t n, int64_t ld) {
  return rows > 0 && n > 0 ? HWY_DYNAMIC_DISPATCH(AbsMaxBitsF32)(x, rows, n, ld) : 0u;
}

void binary_f32(BinaryKind op, const float* a, const float* b, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(BinaryF32)(op, a, b, y, n);
}

void binary_scalar_f32(BinaryKind op, const float* a, float b, bool b_is_rhs, float* y, int64_t n) {
  HWY_DYNAMIC_DISPATCH(BinaryScalarF32)(op, a, b, b_is_rhs, y, n);
}

}  // namespace hs::kernels
#endif  // HWY_ONCE
