// GPTQ-style error-compensating rounding with fixed scales (weight_search.h has the math).
#include <algorithm>
#include <cmath>

#include "headsplit/kernels/quant.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/quant/weight_search.h"

namespace hs::quant {

namespace {

// Lower Cholesky factor of a[n, n] (row-major, symmetric) in place; false when not positive
// definite.
bool cholesky_lower(std::vector<double>& a, int64_t n) {
  auto at = [&](int64_t i, int64_t j) -> double& { return a[static_cast<size_t>(i * n + j)]; };
  for (int64_t j = 0; j < n; ++j) {
    double d = at(j, j);
    for (int64_t k = 0; k < j; ++k) d -= at(j, k) * at(j, k);
    if (!(d > 0.0) || !std::isfinite(d)) return false;
    const double l = std::sqrt(d);
    at(j, j) = l;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = at(i, j);
      for (int64_t k = 0; k < j; ++k) s -= at(i, k) * at(j, k);
      at(i, j) = s / l;
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) at(i, j) = 0.0;
  return true;
}

}  // namespace

std::vector<double> gram(std::span<const float> x, int64_t n, int64_t in) {
  std::vector<double> h(static_cast<size_t>(in * in), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x.data() + t * in;
    for (int64_t i = 0; i < in; ++i) {
      const double xi = row[i];
      if (xi == 0.0) continue;
      double* hr = h.data() + i * in;
      for (int64_t j = 0; j <= i; ++j) hr[j] += xi * row[j];
    }
  }
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = i + 1; j < in; ++j)
      h[static_cast<size_t>(i * in + j)] = h[static_cast<size_t>(j * in + i)];
  return h;
}

Result<std::vector<int8_t>> gptq_quantize(std::span<const float> w, int64_t rows, int64_t in,
                                          const WeightSpec& spec, std::span<const float> scales,
                                          std::span<const double> h_in, double damp,
                                          kernels::ThreadPool* pool) {
  const int64_t block = spec.block > 0 ? spec.block : std::max<int64_t>(in, 1);
  const int64_t blocks = (in + block - 1) / block;
  HS_CHECK(static_cast<int64_t>(scales.size()) == rows * blocks &&
               static_cast<int64_t>(h_in.size()) == in * in,
           "gptq_quantize: scales or H do not match the shape");
  const int32_t qmax = spec.bits == 8 ? 127 : 7;
  // H + λ mean(diag) I, a zero diagonal (an input never active) set to 1.
  std::vector<double> h(h_in.begin(), h_in.end());
  double mean_diag = 0.0;
  for (int64_t i = 0; i < in; ++i) {
    double& d = h[static_cast<size_t>(i * in + i)];
    if (d == 0.0) d = 1.0;
    mean_diag += d;
  }
  mean_diag /= static_cast<double>(std::max<int64_t>(in, 1));
  for (int64_t i = 0; i < in; ++i) h[static_cast<size_t>(i * in + i)] += damp * mean_diag;
  // H⁻¹ = L⁻ᵀ L⁻¹ from H = L Lᵀ, then U = upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU).
  if (!cholesky_lower(h, in)) {
    return Error(ErrorKind::kInvalidArgument,
                 "gptq: the damped activation Gram matrix is not positive definite (non-finite "
                 "calibration activations?)");
  }
  std::vector<double> linv(static_cast<size_t>(in * in), 0.0);  // L⁻¹, lower
  for (int64_t j = 0; j < in; ++j) {
    linv[static_cast<size_t>(j * in + j)] = 1.0 / h[static_cast<size_t>(j * in + j)];
    for (int64_t i = j + 1; i < in; ++i) {
      double s = 0.0;
      for (int64_t k = j; k < i; ++k) s += h[static_cast<size_t>(i * in + k)] * linv[static_cast<size_t>(k * in + j)];
      linv[static_cast<size_t>(i * in + j)] = -s / h[static_cast<size_t>(i * in + i)];
    }
  }
  std::vector<double> hinv(static_cast<size_t>(in * in), 0.0);  // (L⁻¹)ᵀ L⁻¹
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (int64_t k = i; k < in; ++k) s += linv[static_cast<size_t>(k * in + i)] * linv[static_cast<size_t>(k * in + j)];
      hinv[static_cast<size_t>(i * in + j)] = hinv[static_cast<size_t>(j * in + i)] = s;
    }
  if (!cholesky_lower(hinv, in)) {
    return Error(ErrorKind::kInvalidArgument, "gptq: the inverse Gram matrix is not positive definite");
  }
  // U = Lᵀ of H⁻¹'s factor: U[i, j] = hinv[j, i] for j >= i.
  std::vector<int8_t> q(static_cast<size_t>(rows * in));
  kernels::parallel_for(pool, rows, [&](int64_t r0, int64_t r1) {
    std::vector<double> wr(static_cast<size_t>(in));
    for (int64_t o = r0; o < r1; ++o) {
      for (int64_t i = 0; i < in; ++i) wr[static_cast<size_t>(i)] = w[static_cast<size_t>(o * in + i)];
      for (int64_t i = 0; i < in; ++i) {
        const float s = scales[static_cast<size_t>(o * blocks + i / block)];
        const int32_t qi = kernels::quantize_one(static_cast<float>(wr[static_cast<size_t>(i)]), s, 0, -qmax, qmax);
        q[static_cast<size_t>(o * in + i)] = static_cast<int8_t>(qi);
        const double d = (wr[static_cast<size_t>(i)] - static_cast<double>(s) * qi) /
                         hinv[static_cast<size_t>(i * in + i)];
        for (int64_t j = i + 1; j < in; ++j) wr[static_cast<size_t>(j)] -= d * hinv[static_cast<size_t>(j * in + i)];
      }
    }
  });
  return q;
}

}  // namespace hs::quant
