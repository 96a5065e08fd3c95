#include "headsplit/passes/slicing.h"

#include <cstring>

namespace hs::passes {

using ir::QuantKind;
using ir::QuantParams;

Result<ir::TensorType> slice_type(const ir::TensorType& type, int64_t axis, int64_t start,
                                  int64_t end) {
  HS_ASSIGN_OR_RETURN(int64_t a, ir::normalize_axis(axis, type.rank(), "slice_type"));
  const int64_t dim = type.shape[static_cast<size_t>(a)];
  if (start < 0 || end > dim || start >= end) {
    return errorf(ErrorKind::kShape, "slice [{}, {}) outside axis {} of size {}", start, end, a,
                  dim);
  }
  ir::TensorType out = type;
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

bool slice_is_view(const ir::Shape& shape, int64_t axis) {
  for (int64_t i = 0; i < axis; ++i) {
    if (shape[static_cast<size_t>(i)] != 1) return false;
  }
  return true;
}

Result<BufferView> slice_constant_data(const ir::Value& constant, int64_t axis, int64_t start,
                                       int64_t end) {
  if (!constant.is_constant()) {
    return errorf(ErrorKind::kInternal, "'{}' is not a constant", constant.name);
  }
  const ir::TensorType& t = constant.type;
  HS_ASSIGN_OR_RETURN(int64_t a, ir::normalize_axis(axis, t.rank(), constant.name));
  const int64_t dim = t.shape[static_cast<size_t>(a)];
  if (start < 0 || end > dim || start >= end) {
    return errorf(ErrorKind::kShape, "'{}': slice [{}, {}) outside axis {} of size {}",
                  constant.name, start, end, a, dim);
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < a; ++i) outer *= t.shape[static_cast<size_t>(i)];
  for (int64_t i = a + 1; i < t.rank(); ++i) inner *= t.shape[static_cast<size_t>(i)];
  const auto esize = static_cast<size_t>(ir::dtype_size(t.dtype));
  const auto chunk = static_cast<size_t>((end - start) * inner) * esize;
  const auto row = static_cast<size_t>(dim * inner) * esize;
  const auto first = static_cast<size_t>(start * inner) * esize;
  if (outer == 1) return constant.data->sub(first, chunk);  // contiguous: a view
  auto buffer = std::make_shared<HeapBuffer>(chunk * static_cast<size_t>(outer));
  std::span<const std::byte> src = constant.data->bytes();
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(buffer->mutable_bytes().data() + static_cast<size_t>(o) * chunk,
                src.data() + static_cast<size_t>(o) * row + first, chunk);
  }
  size_t size = buffer->size();
  return BufferView{std::move(buffer), 0, size};
}

}  // namespace hs::passes
