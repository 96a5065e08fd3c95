// Reference kernels: one naive, obviously-correct float32 kernel per IR op.
//
// These kernels take raw pointers and shapes (no IR types; quantization parameters and
// storage types are the op set's, opset/types.h): the runtime links them too.
// Shapes are row-major. Preconditions on shapes are programmer errors (HS_CHECK); the only
// data-dependent failure, a gather index out of range, is returned as a Status.
//
// Determinism contract (the MHA -> SHA split is tested bit-exact against these kernels):
//   * conv2d / linear / matmul: every output element is
//       acc = 0.f; for k in 0..K-1 (increasing): acc += a[k] * b[k];  y = acc (+ bias[o])
//     with the bias added once, after the loop. No FMA contraction: the ref_*.cpp files are
//     compiled with -ffp-contract=off.
//   * softmax over a row x[0..n): m = x[0]; m = x[j] if x[j] > m (j increasing);
//       e[j] = exp(x[j] - m); s = 0.f; s += e[j] (j increasing); y[j] = e[j] / s.
//   * reduce_min over a row: m = x[0]; m = x[j] if x[j] < m (j increasing).
//   * rms_norm over the last axis (n elements):
//       ss = 0.f; ss += x[j] * x[j] (j increasing); r = 1.f / std::sqrt(ss / float(n) + eps);
//       y[j] = (x[j] * r) * w[j].
//   * layer_norm over the last axis (n elements):
//       s = 0.f; s += x[j] (j increasing); m = s / float(n);
//       v = 0.f; v += (x[j] - m) * (x[j] - m) (j increasing); r = 1.f / std::sqrt(v / float(n) + eps);
//       y[j] = ((x[j] - m) * r) * w[j]  (+ b[j]).
//   * silu: y = x / (1.f + std::exp(-x)).   neg: y = -x.   tanh: y = std::tanh(x).
//   * gelu (exact): y = (0.5f * x) * (1.f + std::erf(x * 0.70710678f)).
//     gelu (tanh):  y = (0.5f * x) * (1.f + std::tanh(0.79788456f * (x + 0.044715f * (x * x * x)))).
//   * add/sub/mul/div: one float operation per element (a + b, a - b, a * b, a / b).
// Hence the value of an output element never depends on how many other rows, heads or
// channels the same call computes: slicing a weight per head and running each head alone
// gives bit-identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "headsplit/opset/types.h"
#include "headsplit/support/result.h"

namespace hs::kernels::ref {

using Dims = std::span<const int64_t>;

// A read-only operand: data plus its row-major shape.
template <typename T>
struct TensorRef {
  const T* data = nullptr;
  Dims shape;
};

// Number of elements of a shape (1 for rank 0).
int64_t count(Dims shape);

// A tensor viewed as [outer, n, inner] around one axis of size n.
struct AxisDims {
  int64_t outer = 1;
  int64_t n = 1;
  int64_t inner = 1;
};
// `axis` must be in [0, rank).
AxisDims axis_dims(Dims shape, int64_t axis);

// --- conv2d / linear / matmul (ref_matmul.cpp) ---------------------------------------------

// 1x1 convolution, stride 1, no padding; S = Hh * Ww spatial positions.
//   x[N,Ci,S]  w[Co,Ci]  (the [Co,Ci,1,1] weight)  bias[Co] or nullptr  ->  y[N,Co,S]
//   y[n,o,s] = sum_ci x[n,ci,s] * w[o,ci]  (+ bias[o])
struct Conv1x1Dims {
  int64_t n = 1;
  int64_t ci = 0;
  int64_t co = 0;
  int64_t spatial = 1;
};
void conv2d_1x1(const Conv1x1Dims& d, const float* x, const float* w, const float* bias, float* y);

// Linear layer on M rows: x[M,I]  w[O,I]  bias[O] or nullptr  ->  y[M,O]
//   y[m,o] = sum_i x[m,i] * w[o,i]  (+ bias[o])
struct LinearDims {
  int64_t m = 1;
  int64_t in = 0;
  int64_t out = 0;
};
void linear(const LinearDims& d, const float* x, const float* w, const float* bias, float* y);

// Batched matrix product with NumPy-broadcast batch dims:
//   a[...,M,K]  b[...,K,N]  ->  y[...,M,N]   (y_shape: broadcast batch dims, then M, N)
void matmul(TensorRef<float> a, TensorRef<float> b, float* y, Dims y_shape);

// --- elementwise (ref_elementwise.cpp) ------------------------------------------------------
// Binary ops broadcast NumPy-style (shapes right-aligned, size-1 axes stretch) to y_shape.

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv };

void binary(BinaryOp op, TensorRef<float> a, TensorRef<float> b, float* y, Dims y_shape);
// y = (a == b) as 0/1.
void equal(TensorRef<float> a, TensorRef<float> b, int32_t* y, Dims y_shape);
// y = cond != 0 ? a : b.
void where(TensorRef<int32_t> cond, TensorRef<float> a, TensorRef<float> b, float* y, Dims y_shape);
void neg(const float* x, int64_t n, float* y);
void silu(const float* x, int64_t n, float* y);
void tanh(const float* x, int64_t n, float* y);
enum class GeluApprox : uint8_t { kNone, kTanh };
void gelu(const float* x, int64_t n, GeluApprox approx, float* y);

// --- reductions and normalization (ref_reduce.cpp) ------------------------------------------

// Softmax along the middle axis of x[outer, n, inner]; y has the same shape.
void softmax(const AxisDims& d, const float* x, float* y);
// Minimum along the middle axis of x[outer, n, inner]  ->  y[outer, inner].
void reduce_min(const AxisDims& d, const float* x, float* y);
// RMSNorm over the last axis: x[rows, n]  w[n]  ->  y[rows, n].
void rms_norm(int64_t rows, int64_t n, const float* x, const float* w, float eps, float* y);
// LayerNorm over the last axis: x[rows, n]  w[n]  b[n] or nullptr  ->  y[rows, n].
void layer_norm(int64_t rows, int64_t n, const float* x, const float* w, const float* b, float eps,
                float* y);

// --- layout (ref_layout.cpp); float and int32 (i32/bool tensors) overloads ------------------

// y.shape[i] = x.shape[perm[i]];  y[j0,...,jr] = x[i] with i[perm[k]] = j[k].
void transpose(TensorRef<float> x, Dims perm, float* y);
void transpose(TensorRef<int32_t> x, Dims perm, int32_t* y);

// y = x[..., start:end, ...] on `axis`; 0 <= start < end <= x.shape[axis].
struct SliceSpec {
  int64_t axis = 0;
  int64_t start = 0;
  int64_t end = 0;
};
void slice(TensorRef<float> x, const SliceSpec& s, float* y);
void slice(TensorRef<int32_t> x, const SliceSpec& s, int32_t* y);

// Concatenation along `axis`; all other dims equal.
void concat(std::span<const TensorRef<float>> xs, int64_t axis, float* y);
void concat(std::span<const TensorRef<int32_t>> xs, int64_t axis, int32_t* y);

// Broadcast x to y_shape (same rank; size-1 axes of x stretch).
void expand(TensorRef<float> x, float* y, Dims y_shape);
void expand(TensorRef<int32_t> x, int32_t* y, Dims y_shape);

// Rows of axis 0: table[R, ...] (row size W = count(table.shape) / R), indices[...] ->
// y[indices..., W]. An index outside [0, R) is a kOutOfRange error naming the index and its
// position; y is then unspecified.
Status gather(TensorRef<float> table, TensorRef<int32_t> indices, float* y);
Status gather(TensorRef<int32_t> table, TensorRef<int32_t> indices, int32_t* y);

// --- whole-tensor quantization (ref_quant.cpp) ----------------------------------------------
// Scalar math in kernels/quant.h:
//   q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax),  real = scale * (q - zp)
// with the parameters of element i chosen by the quantization kind (opset::QuantParams):
//   per-tensor  scales[0], zero_points[0]
//   per-axis    scales[c], c = index along `axis`
//   per-block   scales[c * nb + j / block], j = index along `block_axis`,
//               nb = ceil(shape[block_axis] / block); the last block may be partial
// `q` must be quantized (kind != kNone) and consistent with `shape` (opset::check_quant);
// zero_points may be empty (all zero). Integer storage is u8, i8, u16, i16 or i4 (one signed
// value -8..7 per int8 byte): opset::dtype_size(storage) bytes per element, native endian.

// x[shape] <- dequantize(quantize(x)) in place.
void fake_quantize(float* x, Dims shape, const opset::QuantParams& q);
// x[shape] floats -> integer storage.
void quantize(const float* x, Dims shape, const opset::QuantParams& q, opset::DType storage,
              std::byte* out);
// Integer storage -> y[shape] = scale * (q - zero_point). Storage may be unaligned.
void dequantize(const std::byte* data, opset::DType storage, Dims shape,
                const opset::QuantParams& q, float* y);

}  // namespace hs::kernels::ref
