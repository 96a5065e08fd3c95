// Reference reductions along one axis: softmax and reduce_min over x[outer, n, inner], and
// RMSNorm and LayerNorm over the last axis. Each row is reduced in increasing index order, exactly as the
// determinism contract in reference.h writes it.
#include <cmath>

#include "headsplit/kernels/reference.h"

namespace hs::kernels::ref {

void softmax(const AxisDims& d, const float* x, float* y) {
  HS_CHECK(d.n >= 1, "softmax: empty axis");
  for (int64_t o = 0; o < d.outer; ++o) {
    for (int64_t in = 0; in < d.inner; ++in) {
      const float* xr = x + o * d.n * d.inner + in;  // row element j at xr[j * inner]
      float* yr = y + o * d.n * d.inner + in;
      float m = xr[0];
      for (int64_t j = 1; j < d.n; ++j) {
        if (xr[j * d.inner] > m) m = xr[j * d.inner];
      }
      float s = 0.f;
      for (int64_t j = 0; j < d.n; ++j) {
        const float e = std::exp(xr[j * d.inner] - m);
        yr[j * d.inner] = e;
        s += e;
      }
      for (int64_t j = 0; j < d.n; ++j) yr[j * d.inner] = yr[j * d.inner] / s;
    }
  }
}

void reduce_min(const AxisDims& d, const float* x, float* y) {
  HS_CHECK(d.n >= 1, "reduce_min: empty axis");
  for (int64_t o = 0; o < d.outer; ++o) {
    for (int64_t in = 0; in < d.inner; ++in) {
      const float* xr = x + o * d.n * d.inner + in;
      float m = xr[0];
      for (int64_t j = 1; j < d.n; ++j) {
        if (xr[j * d.inner] < m) m = xr[j * d.inner];
      }
      y[o * d.inner + in] = m;
    }
  }
}

void rms_norm(int64_t rows, int64_t n, const float* x, const float* w, float eps, float* y) {
  HS_CHECK(n >= 1, "rms_norm: empty axis");
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;  // xr[n]
    float* yr = y + r * n;
    float ss = 0.f;
    for (int64_t j = 0; j < n; ++j) ss += xr[j] * xr[j];
    const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int64_t j = 0; j < n; ++j) yr[j] = (xr[j] * inv) * w[j];
  }
}

void layer_norm(int64_t rows, int64_t n, const float* x, const float* w, const float* b, float eps,
                float* y) {
  HS_CHECK(n >= 1, "layer_norm: empty axis");
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;  // xr[n]
    float* yr = y + r * n;
    float s = 0.f;
    for (int64_t j = 0; j < n; ++j) s += xr[j];
    const float m = s / static_cast<float>(n);
    float v = 0.f;
    for (int64_t j = 0; j < n; ++j) v += (xr[j] - m) * (xr[j] - m);
    const float inv = 1.f / std::sqrt(v / static_cast<float>(n) + eps);
    for (int64_t j = 0; j < n; ++j) {
      const float z = ((xr[j] - m) * inv) * w[j];
      yr[j] = b != nullptr ? z + b[j] : z;
    }
  }
}

}  // namespace hs::kernels::ref
