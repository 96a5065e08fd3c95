// Reference conv2d (1x1), linear and matmul. Every output element is a dot product summed
// in increasing k from 0.f, with the bias added after the loop (see the determinism contract
// in reference.h). Loops are ordered for locality where that keeps each element's sequence
// of float operations unchanged.
#include <vector>

#include "ref_shape.h"

namespace hs::kernels::ref {

void conv2d_1x1(const Conv1x1Dims& d, const float* x, const float* w, const float* bias, float* y) {
  // x[N,Ci,S]  w[Co,Ci]  y[N,Co,S]
  for (int64_t n = 0; n < d.n; ++n) {
    const float* xn = x + n * d.ci * d.spatial;
    for (int64_t o = 0; o < d.co; ++o) {
      float* yo = y + (n * d.co + o) * d.spatial;  // yo[S]: accumulators of channel o
      for (int64_t s = 0; s < d.spatial; ++s) yo[s] = 0.f;
      for (int64_t c = 0; c < d.ci; ++c) {
        const float wc = w[o * d.ci + c];
        const float* xc = xn + c * d.spatial;
        for (int64_t s = 0; s < d.spatial; ++s) yo[s] += xc[s] * wc;
      }
      if (bias != nullptr) {
        for (int64_t s = 0; s < d.spatial; ++s) yo[s] = yo[s] + bias[o];
      }
    }
  }
}

void linear(const LinearDims& d, const float* x, const float* w, const float* bias, float* y) {
  // x[M,I]  w[O,I]  y[M,O]
  for (int64_t m = 0; m < d.m; ++m) {
    const float* xm = x + m * d.in;
    for (int64_t o = 0; o < d.out; ++o) {
      const float* wo = w + o * d.in;
      float acc = 0.f;
      for (int64_t i = 0; i < d.in; ++i) acc += xm[i] * wo[i];
      y[m * d.out + o] = bias != nullptr ? acc + bias[o] : acc;
    }
  }
}

void matmul(TensorRef<float> a, TensorRef<float> b, float* y, Dims y_shape) {
  const size_t ra = a.shape.size(), rb = b.shape.size(), ry = y_shape.size();
  HS_CHECK(ra >= 2 && rb >= 2 && ry >= 2, "matmul: operands must have rank >= 2");
  const int64_t M = a.shape[ra - 2], K = a.shape[ra - 1], N = b.shape[rb - 1];
  HS_CHECK(b.shape[rb - 2] == K && y_shape[ry - 2] == M && y_shape[ry - 1] == N,
           "matmul: inner or output dimensions do not fit");
  // Batch dims broadcast; strides are counted in whole matrices, then scaled.
  const Dims batch = y_shape.first(ry - 2);
  std::array<std::vector<int64_t>, 2> strides = {
      detail::broadcast_strides(a.shape.first(ra - 2), batch),
      detail::broadcast_strides(b.shape.first(rb - 2), batch)};
  detail::for_each_strided(batch, strides, [&](int64_t i, const std::array<int64_t, 2>& off) {
    const float* am = a.data + off[0] * M * K;  // am[M,K]
    const float* bm = b.data + off[1] * K * N;  // bm[K,N]
    float* ym = y + i * M * N;                  // ym[M,N]
    for (int64_t m = 0; m < M; ++m) {
      float* row = ym + m * N;  // accumulators of row m
      for (int64_t n = 0; n < N; ++n) row[n] = 0.f;
      for (int64_t k = 0; k < K; ++k) {
        const float amk = am[m * K + k];
        const float* bk = bm + k * N;
        for (int64_t n = 0; n < N; ++n) row[n] += amk * bk[n];
      }
    }
  });
}

}  // namespace hs::kernels::ref
