// Shape helpers of the reference kernels: element counts, axis views, broadcast strides.
#include "ref_shape.h"

namespace hs::kernels::ref {

int64_t count(Dims shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

AxisDims axis_dims(Dims shape, int64_t axis) {
  const auto rank = static_cast<int64_t>(shape.size());
  HS_CHECK(axis >= 0 && axis < rank, "axis_dims: axis out of range");
  AxisDims d;
  for (int64_t a = 0; a < axis; ++a) d.outer *= shape[static_cast<size_t>(a)];
  d.n = shape[static_cast<size_t>(axis)];
  for (int64_t a = axis + 1; a < rank; ++a) d.inner *= shape[static_cast<size_t>(a)];
  return d;
}

namespace detail {

std::vector<int64_t> row_major_strides(Dims shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t a = shape.size(); a-- > 1;) strides[a - 1] = strides[a] * shape[a];
  return strides;
}

std::vector<int64_t> broadcast_strides(Dims shape, Dims out_shape) {
  HS_CHECK(shape.size() <= out_shape.size(), "broadcast: operand rank exceeds output rank");
  const size_t lead = out_shape.size() - shape.size();
  const std::vector<int64_t> own = row_major_strides(shape);
  std::vector<int64_t> strides(out_shape.size(), 0);
  for (size_t a = 0; a < shape.size(); ++a) {
    HS_CHECK(shape[a] == out_shape[lead + a] || shape[a] == 1,
             "broadcast: operand shape does not broadcast to the output shape");
    strides[lead + a] = shape[a] == 1 ? 0 : own[a];
  }
  return strides;
}

}  // namespace detail
}  // namespace hs::kernels::ref
