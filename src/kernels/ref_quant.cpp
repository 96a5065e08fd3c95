// Whole-tensor quantization: fake-quantize in place, quantize to integer storage and
// dequantize integer storage, with per-tensor, per-axis and per-block parameters.
// The scalar math is kernels/quant.h; this file only finds each element's parameters.
#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "headsplit/kernels/quant.h"
#include "ref_shape.h"

namespace hs::kernels::ref {

using opset::DType;
using opset::QuantKind;
using opset::QuantParams;

namespace {

// Maps a flat element index to the index of its {scale, zero_point}.
class ParamIndex {
 public:
  ParamIndex(Dims shape, const QuantParams& q) : kind_(q.kind) {
    HS_CHECK(q.is_quantized(), "quant: parameters of kind none");
    const auto rank = static_cast<int64_t>(shape.size());
    size_t expected = 1;
    if (kind_ != QuantKind::kPerTensor) {
      HS_CHECK(q.axis >= 0 && q.axis < rank, "quant: channel axis out of range");
      const AxisDims c = axis_dims(shape, q.axis);
      channels_ = c.n;
      channel_stride_ = c.inner;
      expected = static_cast<size_t>(channels_);
    }
    if (kind_ == QuantKind::kPerBlock) {
      HS_CHECK(q.block_axis >= 0 && q.block_axis < rank && q.block_axis != q.axis && q.block > 0,
               "quant: bad block axis or block size");
      const AxisDims b = axis_dims(shape, q.block_axis);
      block_dim_ = b.n;
      block_stride_ = b.inner;
      block_ = q.block;
      blocks_ = (block_dim_ + block_ - 1) / block_;
      expected *= static_cast<size_t>(blocks_);
    }
    HS_CHECK(q.scales.size() == expected, "quant: scale count does not match the shape");
    HS_CHECK(q.zero_points.empty() || q.zero_points.size() == q.scales.size(),
             "quant: zero point count differs from scale count");
  }

  // The end of the run of elements from i (below n) that share i's parameters: i's channel
  // c = (i / cs) % C is the same up to the next multiple of cs, and its block j / block (j =
  // (i / bs) % bd) while j stays below the block's end j_end, i.e. up to (i / bs + j_end - j)
  // * bs. Always > i.
  int64_t run_end(int64_t i, int64_t n) const {
    if (kind_ == QuantKind::kPerTensor) return n;
    int64_t end = std::min(n, (i / channel_stride_ + 1) * channel_stride_);
    if (kind_ == QuantKind::kPerBlock) {
      const int64_t j = (i / block_stride_) % block_dim_;
      const int64_t j_end = std::min(block_dim_, (j / block_ + 1) * block_);
      end = std::min(end, (i / block_stride_ + j_end - j) * block_stride_);
    }
    return end;
  }

  int64_t operator()(int64_t i) const {
    switch (kind_) {
      case QuantKind::kPerAxis: return (i / channel_stride_) % channels_;
      case QuantKind::kPerBlock: {
        const int64_t c = (i / channel_stride_) % channels_;
        const int64_t j = (i / block_stride_) % block_dim_;
        return c * blocks_ + j / block_;
      }
      default: return 0;
    }
  }

 private:
  QuantKind kind_;
  int64_t channels_ = 1, channel_stride_ = 1;
  int64_t block_dim_ = 1, block_stride_ = 1, block_ = 1, blocks_ = 1;
};

int32_t zero_point(const QuantParams& q, int64_t p) {
  return q.zero_points.empty() ? 0 : q.zero_points[static_cast<size_t>(p)];
}

template <typename S>
void store(std::byte* out, int64_t i, int32_t q) {
  const auto v = static_cast<S>(q);
  std::memcpy(out + i * static_cast<int64_t>(sizeof(S)), &v, sizeof(S));
}

template <typename S>
int32_t load(const std::byte* data, int64_t i) {
  S v;
  std::memcpy(&v, data + i * static_cast<int64_t>(sizeof(S)), sizeof(S));
  return static_cast<int32_t>(v);
}

// The integer range a storage type holds (i4: -8..7 in one int8 byte).
void check_storage_range(const QuantParams& q, DType storage) {
  HS_CHECK(opset::dtype_is_integer_storage(storage), "quantize: not an integer storage type");
  HS_CHECK(q.qmin >= opset::dtype_min(storage) && q.qmax <= opset::dtype_max(storage),
           "quantize: [qmin, qmax] outside the storage type");
}

int32_t load_storage(const std::byte* data, DType storage, int64_t i) {
  switch (storage) {
    case DType::kU8: return load<uint8_t>(data, i);
    case DType::kI8:
    case DType::kI4: return load<int8_t>(data, i);
    case DType::kU16: return load<uint16_t>(data, i);
    case DType::kI16: return load<int16_t>(data, i);
    default: HS_CHECK(false, "dequantize: not an integer storage type");
  }
  return 0;
}

// quantize_one (kernels/quant.h) without libm calls: the same integer for every x. Below 2^23
// in magnitude, v = x / scale is rounded half to even from its truncation t (the conversion
// truncates whatever the rounding mode) and the exact fraction v - t; from 2^23 on, v is an
// integer already (or infinite, or NaN) and is kept. The sign of a zero result, which
// round_half_even keeps and this drops, does not survive + zero_point and the integer cast.
inline int32_t quantize_int(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
  const float v = x / scale;
  float r = v;
  if (std::fabs(v) < 8388608.f) {
    const auto t = static_cast<int32_t>(v);
    const float f = v - static_cast<float>(t);
    const bool odd = (t & 1) != 0;
    int32_t n = t;
    if (f > 0.5f || (f == 0.5f && odd)) {
      ++n;
    } else if (f < -0.5f || (f == -0.5f && odd)) {
      --n;
    }
    r = static_cast<float>(n);
  }
  float q = r + static_cast<float>(zero_point);
  if (!(q >= static_cast<float>(qmin))) q = static_cast<float>(qmin);  // also maps NaN to qmin
  if (q > static_cast<float>(qmax)) q = static_cast<float>(qmax);
  return static_cast<int32_t>(q);
}

#if defined(__SSE2__)
// quantize_int on 4 lanes with the same float operations (division, truncation, the
// exact fraction, comparisons, + zero_point, clamps: each correctly rounded per lane, so
// every lane gives quantize_int's integer; branch-free, where the scalar rounding branches
// mispredict on weights). Lanes of |v| >= 2^23 or NaN compute a garbage truncation that the
// blend discards, as the scalar code never computes it.
inline __m128i quantize_int4(__m128 x, __m128 scale, __m128 zp, __m128 qmin, __m128 qmax) {
  const __m128 v = _mm_div_ps(x, scale);
  const __m128 abs_v = _mm_and_ps(v, _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff)));
  const __m128 small = _mm_cmplt_ps(abs_v, _mm_set1_ps(8388608.f));  // false for NaN
  const __m128i t = _mm_cvttps_epi32(v);
  const __m128 f = _mm_sub_ps(v, _mm_cvtepi32_ps(t));
  const __m128 odd =
      _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(t, _mm_set1_epi32(1)), _mm_set1_epi32(1)));
  const __m128 half = _mm_set1_ps(0.5f), neg_half = _mm_set1_ps(-0.5f);
  const __m128 up = _mm_or_ps(_mm_cmpgt_ps(f, half), _mm_and_ps(_mm_cmpeq_ps(f, half), odd));
  const __m128 down =
      _mm_or_ps(_mm_cmplt_ps(f, neg_half), _mm_and_ps(_mm_cmpeq_ps(f, neg_half), odd));
  // Masks are -1 where set: n = t + up - down.
  const __m128i n = _mm_add_epi32(_mm_sub_epi32(t, _mm_castps_si128(up)), _mm_castps_si128(down));
  const __m128 r = _mm_or_ps(_mm_and_ps(small, _mm_cvtepi32_ps(n)), _mm_andnot_ps(small, v));
  __m128 q = _mm_add_ps(r, zp);
  const __m128 ge = _mm_cmpge_ps(q, qmin);  // false for NaN: qmin
  q = _mm_or_ps(_mm_and_ps(ge, q), _mm_andnot_ps(ge, qmin));
  q = _mm_min_ps(q, qmax);  // q > qmax: qmax (q is not NaN here)
  return _mm_cvttps_epi32(q);
}
#endif

}  // namespace

void fake_quantize(float* x, Dims shape, const QuantParams& q) {
  const ParamIndex param(shape, q);
  const int64_t n = count(shape);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = param(i);
    x[i] =
        fake_quantize_one(x[i], q.scales[static_cast<size_t>(p)], zero_point(q, p), q.qmin, q.qmax);
  }
}

void quantize(const float* x, Dims shape, const QuantParams& q, DType storage, std::byte* out) {
  check_storage_range(q, storage);
  const ParamIndex param(shape, q);
  const int64_t n = count(shape);
  // Runs of elements sharing their parameters (a row of a per-channel weight, a block).
  for (int64_t i = 0; i < n;) {
    const int64_t p = param(i), end = param.run_end(i, n);
    const float scale = q.scales[static_cast<size_t>(p)];
    const int32_t zp = zero_point(q, p);
    auto run = [&]<typename S>() {
#if defined(__SSE2__)
      const __m128 scale4 = _mm_set1_ps(scale), zp4 = _mm_set1_ps(static_cast<float>(zp));
      const __m128 qmin4 = _mm_set1_ps(static_cast<float>(q.qmin));
      const __m128 qmax4 = _mm_set1_ps(static_cast<float>(q.qmax));
      alignas(16) int32_t lanes[4];
      for (; i + 4 <= end; i += 4) {
        _mm_store_si128(reinterpret_cast<__m128i*>(lanes),
                        quantize_int4(_mm_loadu_ps(x + i), scale4, zp4, qmin4, qmax4));
        for (int64_t l = 0; l < 4; ++l) store<S>(out, i + l, lanes[l]);
      }
#endif
      for (; i < end; ++i) store<S>(out, i, quantize_int(x[i], scale, zp, q.qmin, q.qmax));
    };
    switch (storage) {
      case DType::kU8: run.template operator()<uint8_t>(); break;
      case DType::kU16: run.template operator()<uint16_t>(); break;
      case DType::kI16: run.template operator()<int16_t>(); break;
      default: run.template operator()<int8_t>(); break;  // i8, i4 (check_storage_range)
    }
  }
}

void dequantize(const std::byte* data, DType storage, Dims shape, const QuantParams& q, float* y) {
  const ParamIndex param(shape, q);
  const int64_t n = count(shape);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = param(i);
    y[i] = dequantize_one(load_storage(data, storage, i), q.scales[static_cast<size_t>(p)],
                          zero_point(q, p));
  }
}

}  // namespace hs::kernels::ref
