// SeqMSE: per row / block, the candidate scale with the least squared output error on the
// calibration activations (weight_search.h has the math).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "headsplit/kernels/quant.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/quant/weight_search.h"

namespace hs::quant {

namespace {

int32_t qmax_of(const WeightSpec& spec) { return spec.bits == 8 ? 127 : 7; }

// |q| of magnitude `a` at scale `s` (symmetric: |quantize(w)| = quantize(|w|)).
int32_t level(float a, float s, int32_t qmax) { return kernels::quantize_one(a, s, 0, -qmax, qmax); }

// Lower-triangular Cholesky of the symmetric positive definite a[n, n] in place (row-major);
// false when a pivot is not positive.
bool cholesky(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[static_cast<size_t>(j * n + j)];
    for (int64_t k = 0; k < j; ++k) d -= a[static_cast<size_t>(j * n + k)] * a[static_cast<size_t>(j * n + k)];
    if (!(d > 0.0)) return false;
    const double l = std::sqrt(d);
    a[static_cast<size_t>(j * n + j)] = l;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[static_cast<size_t>(i * n + j)];
      for (int64_t k = 0; k < j; ++k) s -= a[static_cast<size_t>(i * n + k)] * a[static_cast<size_t>(j * n + k)];
      a[static_cast<size_t>(i * n + j)] = s / l;
    }
    for (int64_t k = j + 1; k < n; ++k) a[static_cast<size_t>(j * n + k)] = 0.0;
  }
  return true;
}

struct Event {
  int32_t j;   // candidate index where the integer changes
  int32_t i;   // element (column) index within the row
  int32_t dq;  // signed change of q
};

// The search over one block [b0, b1) of one row: `a` = the residual of the other blocks plus
// F w_b (m values); returns the chosen candidate index and leaves in `r` the residual with it.
// Scratch vectors are the caller's (one per thread).
struct BlockSearch {
  const ErrorFactor& f;
  int32_t qmax;
  int candidates;
  std::vector<Event> events, sorted;
  std::vector<int32_t> starts, fill;
  std::vector<double> v, errs;

  float cand_scale(float s0, int j) const {
    const float step = static_cast<float>(static_cast<double>(j + 1) / candidates);
    return std::max(s0 * step, kEpsWeight);
  }

  int search(const float* w, int64_t b0, int64_t b1, float s0, std::span<const double> a,
             std::span<double> r) {
    const int64_t m = f.rows;
    const int n = candidates;
    events.clear();
    v.assign(static_cast<size_t>(m), 0.0);
    // Start state j = 0 and the events after it: |q| is non-increasing in j, so each change
    // is found from an estimate of where the level k - 1/2 is crossed, corrected exactly.
    for (int64_t i = b0; i < b1; ++i) {
      const float mag = std::fabs(w[i]);
      const int32_t sign = w[i] < 0 ? -1 : 1;
      int32_t k = level(mag, cand_scale(s0, 0), qmax);
      const float* col = f.cols.data() + i * m;
      if (k != 0) {
        for (int64_t t = 0; t < m; ++t) v[static_cast<size_t>(t)] += sign * k * static_cast<double>(col[t]);
      }
      const int32_t k_end = level(mag, cand_scale(s0, n - 1), qmax);
      int lo = 0;
      while (k > k_end) {
        // First j > lo with level(j) < k: estimate from s0 * (j + 1) / n > mag / (k - 1/2).
        const double est = std::ceil(static_cast<double>(n) * mag / ((k - 0.5) * s0)) - 1.0;
        int j = static_cast<int>(std::clamp(est, static_cast<double>(lo + 1), static_cast<double>(n - 1)));
        while (j > lo + 1 && level(mag, cand_scale(s0, j - 1), qmax) < k) --j;
        while (j < n - 1 && level(mag, cand_scale(s0, j), qmax) >= k) ++j;
        const int32_t k_new = level(mag, cand_scale(s0, j), qmax);
        events.push_back(Event{j, static_cast<int32_t>(i), sign * (k_new - k)});
        k = k_new;
        lo = j;
      }
    }
    // Counting sort by candidate.
    starts.assign(static_cast<size_t>(n) + 1, 0);
    for (const Event& e : events) ++starts[static_cast<size_t>(e.j) + 1];
    for (int j = 0; j < n; ++j) starts[static_cast<size_t>(j) + 1] += starts[static_cast<size_t>(j)];
    sorted.resize(events.size());
    fill.assign(starts.begin(), starts.end() - 1);
    for (const Event& e : events) sorted[static_cast<size_t>(fill[static_cast<size_t>(e.j)]++)] = e;
    // error(s) = ||a - s v||² = aa - 2 s (a·v) + s² (v·v), with a·v and v·v kept up to date
    // per event (O(m) each), so each candidate costs O(1) beyond its events.
    double aa = 0.0, av = 0.0, vv = 0.0;
    for (int64_t t = 0; t < m; ++t) {
      aa += a[static_cast<size_t>(t)] * a[static_cast<size_t>(t)];
      av += a[static_cast<size_t>(t)] * v[static_cast<size_t>(t)];
      vv += v[static_cast<size_t>(t)] * v[static_cast<size_t>(t)];
    }
    errs.resize(static_cast<size_t>(n));
    for (int j = 0; j < n; ++j) {
      for (int32_t p = starts[static_cast<size_t>(j)]; p < starts[static_cast<size_t>(j) + 1]; ++p) {
        const Event& e = sorted[static_cast<size_t>(p)];
        const float* col = f.cols.data() + static_cast<int64_t>(e.i) * m;
        double ac = 0.0, vc = 0.0, cc = 0.0;
        for (int64_t t = 0; t < m; ++t) {
          ac += a[static_cast<size_t>(t)] * col[t];
          vc += v[static_cast<size_t>(t)] * col[t];
          cc += static_cast<double>(col[t]) * col[t];
          v[static_cast<size_t>(t)] += e.dq * static_cast<double>(col[t]);
        }
        av += e.dq * ac;
        vv += 2.0 * e.dq * vc + static_cast<double>(e.dq) * e.dq * cc;
      }
      const double sc = cand_scale(s0, j);
      errs[static_cast<size_t>(j)] = aa - 2.0 * sc * av + sc * sc * vv;
    }
    // MinMax (j = n - 1) first, then j = 0..n-1; a candidate must be strictly better.
    int best = n - 1;
    for (int j = 0; j < n; ++j) {
      if (errs[static_cast<size_t>(j)] < errs[static_cast<size_t>(best)]) best = j;
    }
    // Residual with the chosen candidate, recomputed directly.
    const float s = cand_scale(s0, best);
    for (int64_t t = 0; t < m; ++t) r[static_cast<size_t>(t)] = a[static_cast<size_t>(t)];
    for (int64_t i = b0; i < b1; ++i) {
      const double q = kernels::quantize_one(w[i], s, 0, -qmax, qmax);
      if (q == 0) continue;
      const float* col = f.cols.data() + i * m;
      for (int64_t t = 0; t < m; ++t) r[static_cast<size_t>(t)] -= static_cast<double>(s) * q * col[t];
    }
    return best;
  }
};

}  // namespace

std::vector<float> minmax_scales(std::span<const float> w, int64_t rows, int64_t in,
                                 const WeightSpec& spec) {
  const int64_t block = spec.block > 0 ? spec.block : std::max<int64_t>(in, 1);
  const int64_t blocks = (in + block - 1) / block;
  const auto qmax = static_cast<float>(qmax_of(spec));
  std::vector<float> scales(static_cast<size_t>(rows * blocks));
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t b = 0; b < blocks; ++b) {
      float amax = 0.0f;
      for (int64_t i = b * block; i < std::min(in, (b + 1) * block); ++i) {
        amax = std::max(amax, std::fabs(w[static_cast<size_t>(o * in + i)]));
      }
      scales[static_cast<size_t>(o * blocks + b)] = std::max(amax / qmax, kEpsWeight);
    }
  }
  return scales;
}

ErrorFactor error_factor(std::span<const float> x, int64_t n, int64_t in) {
  ErrorFactor f;
  f.in = in;
  if (n <= in) {
    f.rows = n;
    f.cols.resize(static_cast<size_t>(n * in));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < in; ++i)
        f.cols[static_cast<size_t>(i * n + t)] = x[static_cast<size_t>(t * in + i)];
    return f;
  }
  std::vector<double> h = gram(x, n, in);
  double mean_diag = 0.0;
  for (int64_t i = 0; i < in; ++i) mean_diag += h[static_cast<size_t>(i * in + i)];
  mean_diag = std::max(mean_diag / static_cast<double>(in), 1e-30);
  // A ridge of 1e-9·mean(diag) only when XᵀX is singular (an input never active).
  std::vector<double> l = h;
  for (double ridge = 0.0; !cholesky(l, in); ridge = ridge == 0.0 ? 1e-9 : ridge * 10) {
    l = h;
    for (int64_t i = 0; i < in; ++i) l[static_cast<size_t>(i * in + i)] += ridge * mean_diag;
  }
  // F = Lᵀ: F[t, i] = L[i, t]; column i of F holds L's row i.
  f.rows = in;
  f.cols.resize(static_cast<size_t>(in * in));
  for (int64_t i = 0; i < in; ++i)
    for (int64_t t = 0; t < in; ++t)
      f.cols[static_cast<size_t>(i * in + t)] = static_cast<float>(l[static_cast<size_t>(i * in + t)]);
  return f;
}

double row_output_error(const ErrorFactor& f, std::span<const float> w,
                        std::span<const int8_t> q, std::span<const float> scales, int64_t block) {
  const int64_t in = f.in, m = f.rows;
  const int64_t bl = block > 0 ? block : std::max<int64_t>(in, 1);
  std::vector<double> r(static_cast<size_t>(m), 0.0);
  for (int64_t i = 0; i < in; ++i) {
    const double d = static_cast<double>(w[static_cast<size_t>(i)]) -
                     static_cast<double>(scales[static_cast<size_t>(i / bl)]) * q[static_cast<size_t>(i)];
    for (int64_t t = 0; t < m; ++t) r[static_cast<size_t>(t)] += d * f.cols[static_cast<size_t>(i * m + t)];
  }
  double e = 0.0;
  for (double v : r) e += v * v;
  return e;
}

std::vector<float> seq_mse_scales(std::span<const float> w, int64_t rows, int64_t in,
                                  const WeightSpec& spec, const ErrorFactor& f, int candidates,
                                  kernels::ThreadPool* pool) {
  HS_CHECK(f.in == in && candidates >= 1, "seq_mse_scales: factor or candidates mismatch");
  std::vector<float> scales = minmax_scales(w, rows, in, spec);
  const int64_t block = spec.block > 0 ? spec.block : std::max<int64_t>(in, 1);
  const int64_t blocks = (in + block - 1) / block;
  const int32_t qmax = qmax_of(spec);
  const int64_t m = f.rows;
  kernels::parallel_for(pool, rows, [&](int64_t r0, int64_t r1) {
    BlockSearch s{f, qmax, candidates, {}, {}, {}, {}, {}, {}};
    std::vector<double> r(static_cast<size_t>(m)), a(static_cast<size_t>(m));
    std::vector<int> chosen(static_cast<size_t>(blocks));
    std::vector<float> s0(static_cast<size_t>(blocks));
    for (int64_t o = r0; o < r1; ++o) {
      const float* wr = w.data() + o * in;
      // r = F (w - ŵ) with every block at MinMax.
      std::fill(r.begin(), r.end(), 0.0);
      for (int64_t b = 0; b < blocks; ++b) {
        s0[static_cast<size_t>(b)] = scales[static_cast<size_t>(o * blocks + b)];
        chosen[static_cast<size_t>(b)] = candidates - 1;
        const float sc = s.cand_scale(s0[static_cast<size_t>(b)], candidates - 1);
        for (int64_t i = b * block; i < std::min(in, (b + 1) * block); ++i) {
          const double d = wr[i] - static_cast<double>(sc) * kernels::quantize_one(wr[i], sc, 0, -qmax, qmax);
          const float* col = f.cols.data() + i * m;
          for (int64_t t = 0; t < m; ++t) r[static_cast<size_t>(t)] += d * col[t];
        }
      }
      for (int sweep = 0; sweep < (blocks > 1 ? kSeqMseSweeps : 1); ++sweep) {
        bool changed = false;
        for (int64_t b = 0; b < blocks; ++b) {
          // a = r minus this block's current error plus F w_b.
          const float sc = s.cand_scale(s0[static_cast<size_t>(b)], chosen[static_cast<size_t>(b)]);
          a = r;
          for (int64_t i = b * block; i < std::min(in, (b + 1) * block); ++i) {
            const double qd = static_cast<double>(sc) * kernels::quantize_one(wr[i], sc, 0, -qmax, qmax);
            const float* col = f.cols.data() + i * m;
            for (int64_t t = 0; t < m; ++t) a[static_cast<size_t>(t)] += qd * col[t];
          }
          const int best = s.search(wr, b * block, std::min(in, (b + 1) * block), s0[static_cast<size_t>(b)], a, r);
          changed |= best != chosen[static_cast<size_t>(b)];
          chosen[static_cast<size_t>(b)] = best;
        }
        if (!changed) break;
      }
      for (int64_t b = 0; b < blocks; ++b) {
        scales[static_cast<size_t>(o * blocks + b)] =
            s.cand_scale(s0[static_cast<size_t>(b)], chosen[static_cast<size_t>(b)]);
      }
    }
  });
  return scales;
}

}  // namespace hs::quant
