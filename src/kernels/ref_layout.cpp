// Reference layout kernels: transpose, slice, concat, expand and gather. They move elements
// without arithmetic, so one template serves float tensors and int32 (i32/bool) tensors.
#include <algorithm>
#include <cstdint>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "ref_shape.h"

namespace hs::kernels::ref {

namespace {

// ym[r, q] = xm[q * sq + r] for r < R, q < Q: a matrix whose rows are x's columns (x read
// along r, y written along q), for 4-byte elements (moved as bits). Column chunks of 64 q
// (all R rows each: the 64 x lines are used whole before the next chunk), inside them 4 x 4
// blocks transposed in SSE2 registers; the partial blocks element by element.
void transpose_unit_rows(const uint32_t* xm, int64_t sq, uint32_t* ym, int64_t R, int64_t Q) {
  constexpr int64_t kTq = 64;
  for (int64_t q0 = 0; q0 < Q; q0 += kTq) {
    const int64_t q1 = std::min(Q, q0 + kTq);
    int64_t r = 0;
#if defined(__SSE2__)
    for (; r + 4 <= R; r += 4) {
      int64_t q = q0;
      for (; q + 4 <= q1; q += 4) {
        const float* xs = reinterpret_cast<const float*>(xm + q * sq + r);
        __m128 a = _mm_loadu_ps(xs), b = _mm_loadu_ps(xs + sq), c = _mm_loadu_ps(xs + 2 * sq),
               d = _mm_loadu_ps(xs + 3 * sq);
        _MM_TRANSPOSE4_PS(a, b, c, d);
        float* ys = reinterpret_cast<float*>(ym + r * Q + q);
        _mm_storeu_ps(ys, a);
        _mm_storeu_ps(ys + Q, b);
        _mm_storeu_ps(ys + 2 * Q, c);
        _mm_storeu_ps(ys + 3 * Q, d);
      }
      for (; q < q1; ++q) {
        for (int64_t k = 0; k < 4; ++k) ym[(r + k) * Q + q] = xm[q * sq + r + k];
      }
    }
#endif
    for (; r < R; ++r) {
      for (int64_t q = q0; q < q1; ++q) ym[r * Q + q] = xm[q * sq + r];
    }
  }
}

template <typename T>
void transpose_impl(TensorRef<T> x, Dims perm, T* y) {
  const size_t rank = x.shape.size();
  HS_CHECK(perm.size() == rank, "transpose: perm size differs from rank");
  const std::vector<int64_t> x_strides = detail::row_major_strides(x.shape);
  std::vector<int64_t> y_shape(rank);
  std::array<std::vector<int64_t>, 1> strides = {std::vector<int64_t>(rank)};
  for (size_t i = 0; i < rank; ++i) {
    const auto p = static_cast<size_t>(perm[i]);
    HS_CHECK(p < rank, "transpose: perm entry out of range");
    y_shape[i] = x.shape[p];
    strides[0][i] = x_strides[p];  // stepping y's axis i steps x's axis perm[i]
  }
  // Axes of size 1 move nothing: dropped, so the last two axes below are real ones (logits
  // [1,V,1,T] -> [1,T,1,V] is then the [V,T] -> [T,V] matrix transpose, in tiles, instead
  // of T strided passes over all of x). Elements are copied, so any order gives the same y.
  size_t kept = 0;
  for (size_t i = 0; i < rank; ++i) {
    if (y_shape[i] == 1) continue;
    y_shape[kept] = y_shape[i];
    strides[0][kept] = strides[0][i];
    ++kept;
  }
  if (kept < rank) {
    if (kept == 0) {  // one element (every axis has size 1)
      y[0] = x.data[0];
      return;
    }
    y_shape.resize(kept);
    strides[0].resize(kept);
  }
  const size_t rank_y = kept;
  if (rank_y < 2) {
    detail::for_each_strided(y_shape, strides, [&](int64_t i, const std::array<int64_t, 1>& off) {
      y[i] = x.data[off[0]];
    });
    return;
  }
  // y as outer matrices [R, Q] (its last two axes), each read from x with strides sr, sq:
  // an odometer over the outer axes, then the matrix in 8 x 64 tiles (both x and y are read
  // or written in runs of the tile, whichever of them is the strided one).
  const int64_t R = y_shape[rank_y - 2], Q = y_shape[rank_y - 1];
  const int64_t sr = strides[0][rank_y - 2], sq = strides[0][rank_y - 1];
  int64_t outer = 1;
  for (size_t i = 0; i + 2 < rank_y; ++i) outer *= y_shape[i];
  std::vector<int64_t> idx(rank_y - 2, 0);
  int64_t base = 0;
  constexpr int64_t kTr = 8, kTq = 64;
  for (int64_t o = 0; o < outer; ++o) {
    T* ym = y + o * R * Q;
    const T* xm = x.data + base;
    if (sq == 1) {
      for (int64_t r = 0; r < R; ++r) std::copy(xm + r * sr, xm + r * sr + Q, ym + r * Q);
    } else if (sizeof(T) == 4 && sr == 1) {
      transpose_unit_rows(reinterpret_cast<const uint32_t*>(xm), sq,
                          reinterpret_cast<uint32_t*>(ym), R, Q);
    } else {
      for (int64_t r0 = 0; r0 < R; r0 += kTr) {
        const int64_t r1 = std::min(R, r0 + kTr);
        for (int64_t q0 = 0; q0 < Q; q0 += kTq) {
          const int64_t q1 = std::min(Q, q0 + kTq);
          for (int64_t q = q0; q < q1; ++q) {
            for (int64_t r = r0; r < r1; ++r) ym[r * Q + q] = xm[r * sr + q * sq];
          }
        }
      }
    }
    for (size_t k = rank_y - 2; k-- > 0;) {  // next outer matrix
      base += strides[0][k];
      if (++idx[k] < y_shape[k]) break;
      base -= strides[0][k] * y_shape[k];
      idx[k] = 0;
    }
  }
}

template <typename T>
void slice_impl(TensorRef<T> x, const SliceSpec& s, T* y) {
  const AxisDims d = axis_dims(x.shape, s.axis);
  HS_CHECK(s.start >= 0 && s.start < s.end && s.end <= d.n, "slice: bad range");
  const int64_t run = (s.end - s.start) * d.inner;  // contiguous elements per outer index
  for (int64_t o = 0; o < d.outer; ++o) {
    const T* src = x.data + (o * d.n + s.start) * d.inner;
    std::copy(src, src + run, y + o * run);
  }
}

template <typename T>
void concat_impl(std::span<const TensorRef<T>> xs, int64_t axis, T* y) {
  HS_CHECK(!xs.empty(), "concat: no operands");
  const AxisDims first = axis_dims(xs[0].shape, axis);
  int64_t y_run = 0;  // elements of y per outer index
  for (const TensorRef<T>& x : xs) y_run += axis_dims(x.shape, axis).n * first.inner;
  int64_t at = 0;  // offset of the current operand inside one y run
  for (const TensorRef<T>& x : xs) {
    const AxisDims d = axis_dims(x.shape, axis);
    HS_CHECK(d.outer == first.outer && d.inner == first.inner, "concat: shapes do not fit");
    const int64_t run = d.n * d.inner;
    for (int64_t o = 0; o < d.outer; ++o) {
      std::copy(x.data + o * run, x.data + (o + 1) * run, y + o * y_run + at);
    }
    at += run;
  }
}

template <typename T>
void expand_impl(TensorRef<T> x, T* y, Dims y_shape) {
  HS_CHECK(x.shape.size() == y_shape.size(), "expand: ranks differ");
  std::array<std::vector<int64_t>, 1> strides = {detail::broadcast_strides(x.shape, y_shape)};
  detail::for_each_strided(y_shape, strides, [&](int64_t i, const std::array<int64_t, 1>& off) {
    y[i] = x.data[off[0]];
  });
}

template <typename T>
Status gather_impl(TensorRef<T> table, TensorRef<int32_t> indices, T* y) {
  HS_CHECK(!table.shape.empty(), "gather: table must have rank >= 1");
  const int64_t rows = table.shape[0];
  const int64_t width = rows > 0 ? count(table.shape) / rows : 0;  // elements per row
  const int64_t n = count(indices.shape);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = indices.data[i];
    if (r < 0 || r >= rows) {
      return errorf(ErrorKind::kOutOfRange, "index {} at position {} is outside [0, {})", r, i,
                    rows);
    }
    std::copy(table.data + r * width, table.data + (r + 1) * width, y + i * width);
  }
  return {};
}

}  // namespace

void transpose(TensorRef<float> x, Dims perm, float* y) { transpose_impl(x, perm, y); }
void transpose(TensorRef<int32_t> x, Dims perm, int32_t* y) { transpose_impl(x, perm, y); }
void slice(TensorRef<float> x, const SliceSpec& s, float* y) { slice_impl(x, s, y); }
void slice(TensorRef<int32_t> x, const SliceSpec& s, int32_t* y) { slice_impl(x, s, y); }
void concat(std::span<const TensorRef<float>> xs, int64_t axis, float* y) {
  concat_impl(xs, axis, y);
}
void concat(std::span<const TensorRef<int32_t>> xs, int64_t axis, int32_t* y) {
  concat_impl(xs, axis, y);
}
void expand(TensorRef<float> x, float* y, Dims y_shape) { expand_impl(x, y, y_shape); }
void expand(TensorRef<int32_t> x, int32_t* y, Dims y_shape) { expand_impl(x, y, y_shape); }
Status gather(TensorRef<float> table, TensorRef<int32_t> indices, float* y) {
  return gather_impl(table, indices, y);
}
Status gather(TensorRef<int32_t> table, TensorRef<int32_t> indices, int32_t* y) {
  return gather_impl(table, indices, y);
}

}  // namespace hs::kernels::ref
