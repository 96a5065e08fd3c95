// Reference elementwise kernels: broadcast add/sub/mul/div, eq, where; neg and silu.
#include <cmath>

#include "ref_shape.h"

namespace hs::kernels::ref {

namespace {

template <typename Op>
void broadcast2(TensorRef<float> a, TensorRef<float> b, Dims y_shape, Op&& op) {
  std::array<std::vector<int64_t>, 2> strides = {detail::broadcast_strides(a.shape, y_shape),
                                                 detail::broadcast_strides(b.shape, y_shape)};
  detail::for_each_strided(y_shape, strides, [&](int64_t i, const std::array<int64_t, 2>& off) {
    op(i, a.data[off[0]], b.data[off[1]]);
  });
}

}  // namespace

void binary(BinaryOp op, TensorRef<float> a, TensorRef<float> b, float* y, Dims y_shape) {
  switch (op) {
    case BinaryOp::kAdd:
      broadcast2(a, b, y_shape, [y](int64_t i, float u, float v) { y[i] = u + v; });
      return;
    case BinaryOp::kSub:
      broadcast2(a, b, y_shape, [y](int64_t i, float u, float v) { y[i] = u - v; });
      return;
    case BinaryOp::kMul:
      broadcast2(a, b, y_shape, [y](int64_t i, float u, float v) { y[i] = u * v; });
      return;
    case BinaryOp::kDiv:
      broadcast2(a, b, y_shape, [y](int64_t i, float u, float v) { y[i] = u / v; });
      return;
  }
  HS_CHECK(false, "binary: unknown op");
}

void equal(TensorRef<float> a, TensorRef<float> b, int32_t* y, Dims y_shape) {
  broadcast2(a, b, y_shape, [y](int64_t i, float u, float v) { y[i] = u == v ? 1 : 0; });
}

void where(TensorRef<int32_t> cond, TensorRef<float> a, TensorRef<float> b, float* y,
           Dims y_shape) {
  std::array<std::vector<int64_t>, 3> strides = {detail::broadcast_strides(cond.shape, y_shape),
                                                 detail::broadcast_strides(a.shape, y_shape),
                                                 detail::broadcast_strides(b.shape, y_shape)};
  detail::for_each_strided(y_shape, strides, [&](int64_t i, const std::array<int64_t, 3>& off) {
    y[i] = cond.data[off[0]] != 0 ? a.data[off[1]] : b.data[off[2]];
  });
}

void neg(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
}

void silu(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + std::exp(-x[i]));
}

}  // namespace hs::kernels::ref
