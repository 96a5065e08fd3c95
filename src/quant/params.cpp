// Observer ranges -> activation params; weights -> integer storage with per-channel or
// per-block params.
#include "headsplit/quant/params.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "headsplit/kernels/quant.h"
#include "headsplit/kernels/reference.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs::quant {

namespace {

// The pool quantize_weight spreads a weight's rows over, for weights of at least 2^16
// elements (smaller ones run on the calling thread). Every row is computed by the same
// sequence of operations whichever chunk it lands in, so results do not depend on threads.
kernels::ThreadPool* weight_pool(int64_t elements) {
  static kernels::ThreadPool pool;
  return elements >= (int64_t{1} << 16) ? &pool : nullptr;
}

}  // namespace

const Range* CalibrationTable::find(std::string_view name) const {
  auto it = ranges_.find(std::string(name));
  return it == ranges_.end() ? nullptr : &it->second;
}

void Range::observe(std::span<const float> values) {
  float lo = min, hi = max;
  bool nan = false;
  for (float v : values) {  // branch-free, so the compiler can vectorize it
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    nan |= v != v;
  }
  if (nan) lo = hi = std::numeric_limits<float>::quiet_NaN();  // reported when params are made
  min = lo;
  max = hi;
}

void Range::merge(const Range& other) {
  if (other.empty()) return;
  if (std::isnan(other.min) || std::isnan(other.max)) {
    min = max = other.min;
    return;
  }
  min = std::min(min, other.min);
  max = std::max(max, other.max);
}

ir::DType activation_dtype(int bits) { return bits == 8 ? ir::DType::kU8 : ir::DType::kU16; }

Result<ir::QuantParams> activation_params(const Range& range, int bits, std::string_view what) {
  if (bits != 8 && bits != 16) {
    return errorf(ErrorKind::kInvalidArgument, "{}: activation bits must be 8 or 16, got {}", what,
                  bits);
  }
  if (std::isnan(range.min) || std::isnan(range.max)) {
    return errorf(ErrorKind::kInvalidArgument, "{}: calibration saw NaN", what);
  }
  if (range.empty()) {
    return errorf(ErrorKind::kInvalidArgument, "{}: no calibration range (never observed)", what);
  }
  if (!std::isfinite(range.min) || !std::isfinite(range.max)) {
    return errorf(ErrorKind::kInvalidArgument, "{}: calibration range [{}, {}] is not finite", what,
                  range.min, range.max);
  }
  const int32_t qmin = 0;
  const int32_t qmax = bits == 8 ? 255 : 65535;
  const float eps = bits == 8 ? kEps8Bit : kEps16Bit;
  const float lo = std::min(range.min, 0.0f);
  const float hi = std::max(range.max, 0.0f);
  const float scale = std::max((hi - lo) / static_cast<float>(qmax - qmin), eps);
  const float zp = static_cast<float>(qmin) - kernels::round_half_even(lo / scale);
  const auto zero_point =
      static_cast<int32_t>(std::clamp(zp, static_cast<float>(qmin), static_cast<float>(qmax)));
  return ir::QuantParams::per_tensor(scale, zero_point, bits, qmin, qmax);
}

ir::QuantParams mask_params() {
  return ir::QuantParams::per_tensor(255.0f / 65535.0f, 65535, 16, 0, 65535);
}

Result<QuantizedWeight> quantize_weight(std::span<const float> values, const ir::Shape& shape,
                                        const WeightSpec& spec, std::string_view what,
                                        const WeightOverride* override) {
  if (spec.bits != 4 && spec.bits != 8) {
    return errorf(ErrorKind::kInvalidArgument, "{}: weight bits must be 4 or 8, got {}", what,
                  spec.bits);
  }
  if (shape.empty() || (spec.block > 0 && shape.size() < 2)) {
    return errorf(ErrorKind::kShape, "{}: cannot quantize a weight of shape {} {}", what,
                  ir::shape_str(shape), spec.block > 0 ? "per block" : "per channel");
  }
  HS_CHECK(static_cast<int64_t>(values.size()) == ir::num_elements(shape),
           "quantize_weight: values do not match the shape");
  const int64_t rows = shape[0];
  const int64_t cols = rows > 0 ? ir::num_elements(shape) / rows : 0;  // I * rest
  kernels::ThreadPool* pool = weight_pool(ir::num_elements(shape));
  // The first non-finite element: the lowest found over the row chunks.
  std::atomic<int64_t> bad{std::numeric_limits<int64_t>::max()};
  kernels::parallel_for(pool, rows, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * cols; i < r1 * cols; ++i) {
      if (!std::isfinite(values[static_cast<size_t>(i)])) {
        int64_t seen = bad.load();
        while (i < seen && !bad.compare_exchange_weak(seen, i)) {
        }
        return;
      }
    }
  });
  if (const int64_t i = bad.load(); i != std::numeric_limits<int64_t>::max()) {
    return errorf(ErrorKind::kInvalidArgument, "{}: element {} is {}, cannot quantize", what, i,
                  values[static_cast<size_t>(i)]);
  }
  const int32_t qmax = spec.bits == 8 ? 127 : 7;
  const int64_t in = shape.size() > 1 ? shape[1] : cols;  // I
  const int64_t rest = in > 0 ? cols / in : 1;  // elements per input channel (1 for [O,I,1,1])
  const int64_t block = spec.block > 0 ? spec.block : std::max<int64_t>(in, 1);
  const int64_t blocks = (in + block - 1) / block;

  // scales[o * blocks + b] from max |w| over block b of row o.
  std::vector<float> scales(static_cast<size_t>(rows * blocks));
  kernels::parallel_for(pool, rows, [&](int64_t r0, int64_t r1) {
    for (int64_t o = r0; o < r1; ++o) {
      for (int64_t b = 0; b < blocks; ++b) {
        float amax = 0.0f;
        const int64_t begin = b * block * rest, end = std::min(in, (b + 1) * block) * rest;
        for (int64_t j = begin; j < end; ++j) {
          amax = std::max(amax, std::fabs(values[static_cast<size_t>(o * cols + j)]));
        }
        scales[static_cast<size_t>(o * blocks + b)] =
            std::max(amax / static_cast<float>(qmax), kEpsWeight);
      }
    }
  });

  if (override != nullptr) {
    if (override->scales.size() != scales.size()) {
      return errorf(ErrorKind::kInvalidArgument, "{}: {} override scales for {} rows x {} blocks",
                    what, override->scales.size(), rows, blocks);
    }
    for (float s : override->scales) {
      if (!std::isfinite(s) || s < kEpsWeight) {
        return errorf(ErrorKind::kInvalidArgument, "{}: override scale {} is not a valid scale",
                      what, s);
      }
    }
    if (!override->q.empty() && override->q.size() != values.size()) {
      return errorf(ErrorKind::kInvalidArgument, "{}: {} override integers for {} elements", what,
                    override->q.size(), values.size());
    }
    for (int8_t v : override->q) {
      if (v < -qmax || v > qmax) {
        return errorf(ErrorKind::kInvalidArgument, "{}: override integer {} outside -{}..{}", what,
                      v, qmax, qmax);
      }
    }
    scales = override->scales;
  }
  // LPBQ before rounding: the integers are rounded against the scales the HTP will use.
  if (spec.block > 0 && spec.lpbq) lpbq_scales(scales, rows, blocks);
  QuantizedWeight out;
  out.type.shape = shape;
  if (spec.block > 0) {
    out.type.dtype = ir::DType::kI4;
    out.type.quant =
        ir::QuantParams::per_block(0, 1, spec.block, std::move(scales), 4, -qmax, qmax);
  } else {
    out.type.dtype = spec.bits == 8 ? ir::DType::kI8 : ir::DType::kI4;
    std::vector<int32_t> zeros(scales.size(), 0);
    out.type.quant =
        ir::QuantParams::per_axis(0, std::move(scales), std::move(zeros), spec.bits, -qmax, qmax);
  }
  auto buffer = std::make_shared<HeapBuffer>(values.size());
  // Rows [r0, r1) as a weight of their own: its type is the rows' slice of the weight's
  // (the rows' scales); one element, one storage byte (i8, or i4 unpacked).
  std::byte* storage_bytes = buffer->mutable_bytes().data();
  if (override != nullptr && !override->q.empty()) {
    // Integers given (GPTQ): stored as they are, one byte each (i8, or i4 unpacked).
    std::memcpy(storage_bytes, override->q.data(), override->q.size());
    out.data = BufferView{std::move(buffer), 0, values.size()};
    return out;
  }
  kernels::parallel_for(pool, rows, [&](int64_t r0, int64_t r1) {
    // Rows of a valid type: slice_type cannot fail here.
    const ir::TensorType part = ir::slice_type(out.type, 0, r0, r1).value();
    kernels::ref::quantize(values.data() + r0 * cols, part.shape, part.quant, part.dtype,
                           storage_bytes + r0 * cols);
  });
  out.data = BufferView{std::move(buffer), 0, values.size()};
  return out;
}

void lpbq_scales(std::span<float> scales, int64_t rows, int64_t blocks) {
  HS_CHECK(static_cast<int64_t>(scales.size()) == rows * blocks, "lpbq_scales: size");
  for (int64_t o = 0; o < rows; ++o) {
    std::span<float> s = scales.subspan(static_cast<size_t>(o * blocks), static_cast<size_t>(blocks));
    float smax = 0.f;
    for (float v : s) smax = std::max(smax, v);
    int e = 0;
    const float f = std::frexp(smax / 16.f, &e);  // smax / 16 = f * 2^e, f in [0.5, 1)
    const float c = std::ldexp(std::nearbyint(std::ldexp(f, 16)), e - 16);
    for (float& v : s) v = c * std::clamp(std::nearbyint(v / c), 1.f, 16.f);
  }
}

}  // namespace hs::quant
