// DType names, sizes and ranges; shapes; quantization parameters and check_quant.
#include "headsplit/opset/types.h"

#include <cmath>
#include <limits>

namespace hs::opset {

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kI32: return "i32";
    case DType::kBool: return "bool";
    case DType::kU8: return "u8";
    case DType::kI8: return "i8";
    case DType::kU16: return "u16";
    case DType::kI16: return "i16";
    case DType::kI4: return "i4";
  }
  return "unknown";
}

Result<DType> parse_dtype(std::string_view name) {
  for (DType d : {DType::kF32, DType::kI32, DType::kBool, DType::kU8, DType::kI8, DType::kU16,
                  DType::kI16, DType::kI4}) {
    if (dtype_name(d) == name) return d;
  }
  return errorf(ErrorKind::kParse, "unknown dtype '{}'", name);
}

int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32: return 4;
    case DType::kU16:
    case DType::kI16: return 2;
    case DType::kBool:
    case DType::kU8:
    case DType::kI8:
    case DType::kI4: return 1;
  }
  return 1;
}

bool dtype_is_integer_storage(DType dtype) {
  return dtype == DType::kU8 || dtype == DType::kI8 || dtype == DType::kU16 ||
         dtype == DType::kI16 || dtype == DType::kI4;
}

int64_t dtype_min(DType dtype) {
  switch (dtype) {
    case DType::kU8:
    case DType::kU16:
    case DType::kBool: return 0;
    case DType::kI8: return -128;
    case DType::kI16: return -32768;
    case DType::kI4: return -8;
    case DType::kI32: return std::numeric_limits<int32_t>::min();
    case DType::kF32: return 0;
  }
  return 0;
}

int64_t dtype_max(DType dtype) {
  switch (dtype) {
    case DType::kU8: return 255;
    case DType::kU16: return 65535;
    case DType::kBool: return 1;
    case DType::kI8: return 127;
    case DType::kI16: return 32767;
    case DType::kI4: return 7;
    case DType::kI32: return std::numeric_limits<int32_t>::max();
    case DType::kF32: return 0;
  }
  return 0;
}

int64_t num_elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ",")); }

std::string_view quant_kind_name(QuantKind kind) {
  switch (kind) {
    case QuantKind::kNone: return "none";
    case QuantKind::kPerTensor: return "per_tensor";
    case QuantKind::kPerAxis: return "per_axis";
    case QuantKind::kPerBlock: return "per_block";
  }
  return "?";
}

QuantParams QuantParams::per_tensor(float scale, int32_t zero_point, int bits, int32_t qmin,
                                    int32_t qmax) {
  QuantParams q;
  q.kind = QuantKind::kPerTensor;
  q.bits = bits;
  q.qmin = qmin;
  q.qmax = qmax;
  q.scales = {scale};
  q.zero_points = {zero_point};
  return q;
}

QuantParams QuantParams::per_axis(int axis, std::vector<float> scales,
                                  std::vector<int32_t> zero_points, int bits, int32_t qmin,
                                  int32_t qmax) {
  QuantParams q;
  q.kind = QuantKind::kPerAxis;
  q.bits = bits;
  q.qmin = qmin;
  q.qmax = qmax;
  q.axis = axis;
  q.scales = std::move(scales);
  q.zero_points = std::move(zero_points);
  return q;
}

QuantParams QuantParams::per_block(int axis, int block_axis, int64_t block,
                                   std::vector<float> scales, int bits, int32_t qmin,
                                   int32_t qmax) {
  QuantParams q;
  q.kind = QuantKind::kPerBlock;
  q.bits = bits;
  q.qmin = qmin;
  q.qmax = qmax;
  q.axis = axis;
  q.block_axis = block_axis;
  q.block = block;
  q.zero_points.assign(scales.size(), 0);
  q.scales = std::move(scales);
  return q;
}

int64_t TensorType::dim(int64_t axis) const {
  int64_t r = rank();
  if (axis < 0) axis += r;
  HS_CHECK(axis >= 0 && axis < r, "axis out of range");
  return shape[static_cast<size_t>(axis)];
}

std::string type_str(const TensorType& type) {
  std::string s = fmt::format("{}{}", dtype_name(type.dtype), shape_str(type.shape));
  const QuantParams& q = type.quant;
  if (!q.is_quantized()) return s;
  // Floats are printed in their shortest exact form so the text round-trips.
  s +=
      fmt::format(" q<{}, bits={}, range=[{},{}]", quant_kind_name(q.kind), q.bits, q.qmin, q.qmax);
  if (q.kind != QuantKind::kPerTensor) s += fmt::format(", axis={}", q.axis);
  if (q.kind == QuantKind::kPerBlock) {
    s += fmt::format(", block_axis={}, block={}", q.block_axis, q.block);
  }
  s += fmt::format(", scales=[{}], zero_points=[{}]>", fmt::join(q.scales, ","),
                   fmt::join(q.zero_points, ","));
  return s;
}

Result<int64_t> normalize_axis(int64_t axis, int64_t rank, std::string_view what) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    return errorf(ErrorKind::kShape, "{}: axis {} out of range for rank {}", what, axis, rank);
  }
  return a;
}

Status check_quant(const TensorType& type, std::string_view what, ErrorKind kind) {
  const QuantParams& q = type.quant;
  if (static_cast<int>(type.dtype) >= kNumDTypes || static_cast<int>(q.kind) >= kNumQuantKinds) {
    return errorf(kind, "{}: unknown element type {} or quant kind {}", what,
                  static_cast<int>(type.dtype), static_cast<int>(q.kind));
  }
  if (!q.is_quantized()) {
    if (dtype_is_integer_storage(type.dtype)) {
      return errorf(kind, "{}: {} tensor has no quantization parameters", what,
                    dtype_name(type.dtype));
    }
    if (!q.scales.empty() || !q.zero_points.empty()) {
      return errorf(kind, "{}: not quantized but has {} scales and {} zero points", what,
                    q.scales.size(), q.zero_points.size());
    }
    return {};
  }
  if (!dtype_is_integer_storage(type.dtype)) {
    return errorf(kind,
                  "{}: quantized tensor has storage type {}, expected an integer storage "
                  "type (u8, i8, u16, i16, i4)",
                  what, dtype_name(type.dtype));
  }
  if (q.bits != 4 && q.bits != 8 && q.bits != 16) {
    return errorf(kind, "{}: bit width {} is not 4, 8 or 16", what, q.bits);
  }
  if (q.bits > dtype_size(type.dtype) * 8 || (type.dtype == DType::kI4 && q.bits != 4)) {
    return errorf(kind, "{}: bit width {} does not fit storage type {}", what, q.bits,
                  dtype_name(type.dtype));
  }
  if (q.qmin >= q.qmax || q.qmin < dtype_min(type.dtype) || q.qmax > dtype_max(type.dtype)) {
    return errorf(kind, "{}: integer range [{},{}] is empty or outside {} [{},{}]", what, q.qmin,
                  q.qmax, dtype_name(type.dtype), dtype_min(type.dtype), dtype_max(type.dtype));
  }
  int64_t expected = 1;
  const int64_t rank = type.rank();
  if (q.kind == QuantKind::kPerAxis || q.kind == QuantKind::kPerBlock) {
    if (q.axis < 0 || q.axis >= rank) {
      return errorf(kind, "{}: quant axis {} out of range for rank {}", what, q.axis, rank);
    }
    expected = type.shape[static_cast<size_t>(q.axis)];
  }
  if (q.kind == QuantKind::kPerBlock) {
    if (q.block_axis < 0 || q.block_axis >= rank || q.block_axis == q.axis) {
      return errorf(kind, "{}: block axis {} invalid (rank {}, channel axis {})", what,
                    q.block_axis, rank, q.axis);
    }
    if (q.block <= 0) return errorf(kind, "{}: block size {} must be positive", what, q.block);
    if (__builtin_mul_overflow(
            expected, q.blocks_for(type.shape[static_cast<size_t>(q.block_axis)]), &expected)) {
      return errorf(kind, "{}: {} scale count overflows for shape {}", what,
                    quant_kind_name(q.kind), shape_str(type.shape));
    }
  }
  if (static_cast<int64_t>(q.scales.size()) != expected) {
    return errorf(kind, "{}: {} has {} scales, expected {} for shape {}", what,
                  quant_kind_name(q.kind), q.scales.size(), expected, shape_str(type.shape));
  }
  if (q.zero_points.size() != q.scales.size()) {
    return errorf(kind, "{}: {} zero points for {} scales", what, q.zero_points.size(),
                  q.scales.size());
  }
  for (size_t i = 0; i < q.scales.size(); ++i) {
    if (!(q.scales[i] > 0.0f) || !std::isfinite(q.scales[i])) {
      return errorf(kind, "{}: scale[{}] = {} is not a positive finite number", what, i,
                    q.scales[i]);
    }
    if (q.zero_points[i] < q.qmin || q.zero_points[i] > q.qmax) {
      return errorf(kind, "{}: zero_point[{}] = {} outside [{},{}]", what, i, q.zero_points[i],
                    q.qmin, q.qmax);
    }
  }
  return {};
}

Result<int64_t> checked_num_elements(const Shape& shape, std::string_view what, ErrorKind kind) {
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t d = shape[i];
    if (d < 0) {
      return errorf(kind, "{}: shape {} has a negative dimension ({} at axis {})", what,
                    shape_str(shape), d, i);
    }
    if (__builtin_mul_overflow(count, d, &count) || count > kMaxElements) {
      return errorf(kind, "{}: shape {} has more than 2^53 elements", what, shape_str(shape));
    }
  }
  return count;
}

Status check_type(const TensorType& type, std::string_view what, ErrorKind kind) {
  HS_TRY(checked_num_elements(type.shape, what, kind));
  return check_quant(type, what, kind);
}

Result<TensorType> slice_type(const TensorType& type, int64_t axis, int64_t start, int64_t end) {
  HS_ASSIGN_OR_RETURN(int64_t a, normalize_axis(axis, type.rank(), "slice_type"));
  const int64_t dim = type.shape[static_cast<size_t>(a)];
  if (start < 0 || end > dim || start >= end) {
    return errorf(ErrorKind::kShape, "slice [{}, {}) outside axis {} of size {}", start, end, a,
                  dim);
  }
  TensorType out = type;
  out.shape[static_cast<size_t>(a)] = end - start;
  QuantParams& q = out.quant;
  const auto s = static_cast<size_t>(start), e = static_cast<size_t>(end);
  if (q.kind == QuantKind::kPerAxis && q.axis == a) {
    q.scales.assign(type.quant.scales.begin() + static_cast<std::ptrdiff_t>(s),
                    type.quant.scales.begin() + static_cast<std::ptrdiff_t>(e));
    q.zero_points.assign(type.quant.zero_points.begin() + static_cast<std::ptrdiff_t>(s),
                         type.quant.zero_points.begin() + static_cast<std::ptrdiff_t>(e));
  } else if (q.kind == QuantKind::kPerBlock) {
    const int64_t block_dim = type.shape[static_cast<size_t>(q.block_axis)];
    const int64_t blocks = q.blocks_for(block_dim);
    const int64_t channels = type.shape[static_cast<size_t>(q.axis)];
    int64_t c0 = 0, c1 = channels, b0 = 0, b1 = blocks;
    if (q.axis == a) {
      c0 = start, c1 = end;
    } else if (q.block_axis == a) {
      if (start % q.block != 0 || (end % q.block != 0 && end != dim)) {
        return errorf(ErrorKind::kShape,
                      "slice [{}, {}) of axis {} cuts through quantization blocks of {}", start,
                      end, a, q.block);
      }
      b0 = start / q.block, b1 = (end + q.block - 1) / q.block;
    }
    std::vector<float> scales;
    std::vector<int32_t> zps;
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t b = b0; b < b1; ++b) {
        scales.push_back(type.quant.scales[static_cast<size_t>(c * blocks + b)]);
        zps.push_back(type.quant.zero_points[static_cast<size_t>(c * blocks + b)]);
      }
    }
    q.scales = std::move(scales);
    q.zero_points = std::move(zps);
  }
  return out;
}

}  // namespace hs::opset
