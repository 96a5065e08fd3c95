// Reference elementwise kernels: broadcast add/sub/mul/div, eq, where; neg, silu, tanh, gelu.
#include <algorithm>
#include <cmath>

#include "headsplit/kernels/elementwise.h"
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

// y = x / (1 + exp(-x)); exp through exp_f32 (std::exp's bits) in chunks.
void silu(const float* x, int64_t n, float* y) {
  constexpr int64_t kChunk = 256;
  float e[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    for (int64_t k = 0; k < len; ++k) e[k] = -x[i0 + k];
    exp_f32(e, e, len);
    for (int64_t k = 0; k < len; ++k) y[i0 + k] = x[i0 + k] / (1.f + e[k]);
  }
}

void tanh(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void gelu(const float* x, int64_t n, GeluApprox approx, float* y) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;   // 1 / sqrt(2)
  constexpr float kSqrt2OverPi = 0.79788456080286536f;  // sqrt(2 / pi)
  constexpr float kCubic = 0.044715f;
  if (approx == GeluApprox::kNone) {
    for (int64_t i = 0; i < n; ++i) y[i] = (0.5f * x[i]) * (1.f + std::erf(x[i] * kInvSqrt2));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = (0.5f * v) * (1.f + std::tanh(kSqrt2OverPi * (v + kCubic * (v * v * v))));
  }
}

}  // namespace hs::kernels::ref
