// SeqMSE: per row / block, the candidate scale with the least squared output error on the
// calibration activations (weight_search.h has the math).
#include <algorithm>
#include <atomic>
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

namespace {

// The plain search (SeqMseSearch::kExhaustive): every block search walks all events and
// evaluates all N candidates.
void exhaustive_scales(std::span<const float> w, int64_t rows, int64_t in, const WeightSpec& spec,
                       const ErrorFactor& f, int candidates, kernels::ThreadPool* pool,
                       std::vector<float>& scales) {
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
}

}  // namespace


namespace {

// The fast search (SeqMseSearch::kFast): the same choices as exhaustive_scales, computed with
// the same floating-point operations for every candidate it evaluates, but
//  - a row's events (and everything about them that does not depend on the residual: F q at
//    j = 0, and v·v after each event) are found once per row, not once per block per sweep;
//  - candidates are visited per interval of constant integers (between events), O(events)
//    per block search instead of O(N);
//  - branch and bound: in an interval the error is the convex quadratic
//    e(s) = aa - 2 s (a·v) + s² (v·v); its minimum over the interval's scales (at
//    clamp((a·v)/(v·v))) minus a rounding margin (1e-14 · (|aa| + 2 s_hi |a·v| + s_hi² v·v),
//    far above the few-ulp error of evaluating e) is a lower bound on every candidate's
//    computed error there. An interval whose bound is not below the best so far cannot hold a
//    strictly better candidate and is skipped; the others are evaluated candidate by candidate.
// Rows are handed out one at a time from an atomic counter (work balanced over threads); each
// row's result depends on the row alone.
struct FastRow {
  const ErrorFactor& f;
  int32_t qmax;
  int n;
  const std::vector<float>& steps;  // steps[j] = float((j + 1) / N), as cand_scale rounds it
  // Per block of the current row: events [ev_begin[b], ev_begin[b + 1]) sorted by (j, i).
  std::vector<int32_t> ev_begin;
  std::vector<Event> ev;
  std::vector<double> vv_after;  // v·v after each event
  std::vector<double> v0;        // [blocks][m]: F q at j = 0
  std::vector<double> vv0;       // [blocks]
  // Scratch.
  const std::vector<double>& inv_half;  // inv_half[k] = 1 / (k - 1/2)
  std::vector<Event> gen, tmp;
  std::vector<int32_t> starts;
  std::vector<double> v;
  const std::vector<double>& col_norm;  // [in]: F_i·F_i
  std::vector<double> acs;              // [block]: a·F_i
  std::vector<int32_t> qcur;  // [in]: the integers of the row at its blocks' current scales
  std::vector<int32_t> iv_j;  // interval starts
  std::vector<double> iv_av, iv_vv;

  float cand(float s0, int j) const { return std::max(s0 * steps[static_cast<size_t>(j)], kEpsWeight); }

  // level(mag, s, qmax) without libm calls: x = mag / s >= 0 (the same division), then
  // round half to even by truncation (exact: x < qmax < 2^23); NaN takes level's path.
  static int32_t fast_level(float mag, float s, int32_t qmax) {
    const float x = mag / s;
    if (!(x < static_cast<float>(qmax))) return x >= static_cast<float>(qmax) ? qmax : level(mag, s, qmax);
    const auto t = static_cast<int32_t>(x);
    const float frac = x - static_cast<float>(t);
    return frac > 0.5f ? t + 1 : (frac == 0.5f ? t + (t & 1) : t);
  }
  // kernels::quantize_one(x, s, 0, -qmax, qmax): the division and rounding are symmetric.
  static int32_t quantize(float x, float s, int32_t qmax) {
    if (std::isnan(x)) return kernels::quantize_one(x, s, 0, -qmax, qmax);
    const int32_t k = fast_level(std::fabs(x), s, qmax);
    return x < 0 ? -k : k;
  }

  // Events of block [b0, b1) at MinMax scale s0 (the same as BlockSearch::search finds),
  // appended sorted to ev, with v0/vv0/vv_after.
  void prepare(const float* w, int64_t b0, int64_t b1, float s0) {
    const int64_t m = f.rows;
    gen.clear();
    const size_t vbase = v0.size();
    v0.resize(vbase + static_cast<size_t>(m), 0.0);
    double* vz = v0.data() + vbase;
    const double n_over_s0 = static_cast<double>(n) / s0;
    for (int64_t i = b0; i < b1; ++i) {
      const float mag = std::fabs(w[i]);
      const int32_t sign = w[i] < 0 ? -1 : 1;
      int32_t k = fast_level(mag, cand(s0, 0), qmax);
      const float* col = f.cols.data() + i * m;
      if (k != 0) {
        for (int64_t t = 0; t < m; ++t) vz[t] += sign * k * static_cast<double>(col[t]);
      }
      const int32_t k_end = fast_level(mag, cand(s0, n - 1), qmax);
      // The first j > lo with level(j) < k, from the estimate s0 (j + 1) / n ≈ mag / (k - 1/2)
      // corrected exactly (any estimate gives the same j: level is non-increasing in j).
      const double c = n_over_s0 * mag;
      int lo = 0;
      while (k > k_end) {
        const double est = c * inv_half[static_cast<size_t>(k)];
        int j = static_cast<int>(std::clamp(est, static_cast<double>(lo + 1), static_cast<double>(n - 1)));
        while (j > lo + 1 && fast_level(mag, cand(s0, j - 1), qmax) < k) --j;
        int32_t kj = fast_level(mag, cand(s0, j), qmax);
        while (j < n - 1 && kj >= k) kj = fast_level(mag, cand(s0, ++j), qmax);
        gen.push_back(Event{j, static_cast<int32_t>(i), sign * (kj - k)});
        k = kj;
        lo = j;
      }
    }
    // Sort by (j, i): the order of BlockSearch's stable counting sort (each element has at
    // most one event per j, generated in increasing i). Counting sort when there are more
    // events than candidates, else a stable LSD radix sort on j (8-bit digits).
    const size_t base = ev.size();
    ev.resize(base + gen.size());
    Event* out = ev.data() + base;
    if (static_cast<int64_t>(gen.size()) > n) {
      starts.assign(static_cast<size_t>(n) + 1, 0);
      for (const Event& e : gen) ++starts[static_cast<size_t>(e.j) + 1];
      for (int j = 0; j < n; ++j) starts[static_cast<size_t>(j) + 1] += starts[static_cast<size_t>(j)];
      for (const Event& e : gen) out[starts[static_cast<size_t>(e.j)]++] = e;
    } else {
      tmp.resize(gen.size());
      std::vector<Event>* src = &gen;
      std::vector<Event>* dst = &tmp;
      for (int shift = 0; (n - 1) >> shift != 0; shift += 8) {
        starts.assign(257, 0);
        for (const Event& e : *src) ++starts[static_cast<size_t>((e.j >> shift) & 255) + 1];
        for (int d = 0; d < 256; ++d) starts[static_cast<size_t>(d) + 1] += starts[static_cast<size_t>(d)];
        for (const Event& e : *src) (*dst)[static_cast<size_t>(starts[static_cast<size_t>((e.j >> shift) & 255)]++)] = e;
        std::swap(src, dst);
      }
      std::copy(src->begin(), src->end(), out);
    }
    // v·v along the events (independent of the residual).
    v.assign(vz, vz + m);
    double vv = 0.0;
    for (int64_t t = 0; t < m; ++t) vv += v[static_cast<size_t>(t)] * v[static_cast<size_t>(t)];
    vv0.push_back(vv);
    for (size_t p = base; p < ev.size(); ++p) {
      const Event& e = ev[p];
      const float* col = f.cols.data() + static_cast<int64_t>(e.i) * m;
      double vc = 0.0;
      for (int64_t t = 0; t < m; ++t) {
        vc += v[static_cast<size_t>(t)] * col[t];
        v[static_cast<size_t>(t)] += e.dq * static_cast<double>(col[t]);
      }
      const double cc = col_norm[static_cast<size_t>(e.i)];
      vv += 2.0 * e.dq * vc + static_cast<double>(e.dq) * e.dq * cc;
      vv_after.push_back(vv);
    }
    ev_begin.push_back(static_cast<int32_t>(ev.size()));
  }

  // The search of prepared block b given `a` (as BlockSearch::search); residual into r.
  int search(int64_t b, const float* w, int64_t b0, int64_t b1, float s0, std::span<const double> a,
             std::span<double> r) {
    const int64_t m = f.rows;
    const double* vz = v0.data() + b * m;
    double aa = 0.0, av = 0.0;
    for (int64_t t = 0; t < m; ++t) {
      aa += a[static_cast<size_t>(t)] * a[static_cast<size_t>(t)];
      av += a[static_cast<size_t>(t)] * vz[t];
    }
    // Intervals of constant integers: [iv_j[p], iv_j[p + 1]) with a·v, v·v after the events
    // at iv_j[p].
    iv_j.assign(1, 0);
    iv_av.assign(1, av);
    iv_vv.assign(1, vv0[static_cast<size_t>(b)]);
    const auto e_end = static_cast<size_t>(ev_begin[static_cast<size_t>(b) + 1]);
    // a·F_i once per element (each event of element i adds dq · a·F_i, the same value).
    acs.resize(static_cast<size_t>(b1 - b0));
    for (int64_t i = b0; i < b1; ++i) {
      const float* col = f.cols.data() + i * m;
      double ac = 0.0;
      for (int64_t t = 0; t < m; ++t) ac += a[static_cast<size_t>(t)] * col[t];
      acs[static_cast<size_t>(i - b0)] = ac;
    }
    for (auto p = static_cast<size_t>(ev_begin[static_cast<size_t>(b)]); p < e_end; ++p) {
      const Event& e = ev[p];
      av += e.dq * acs[static_cast<size_t>(e.i - b0)];
      if (e.j != iv_j.back()) {
        iv_j.push_back(e.j);
        iv_av.push_back(av);
        iv_vv.push_back(vv_after[p]);
      } else {
        iv_av.back() = av;
        iv_vv.back() = vv_after[p];
      }
    }
    iv_j.push_back(n);
    auto err = [&](int j, double iav, double ivv) {
      const double sc = cand(s0, j);
      return aa - 2.0 * sc * iav + sc * sc * ivv;
    };
    // MinMax (j = n - 1) first; a candidate must be strictly better.
    int best = n - 1;
    double best_err = err(n - 1, iv_av.back(), iv_vv.back());
    for (size_t p = 0; p + 1 < iv_j.size(); ++p) {
      const int ja = iv_j[p], jb = iv_j[p + 1];
      if (ja >= jb) continue;
      const double iav = iv_av[p], ivv = iv_vv[p];
      if (ivv > 0.0) {
        const double s_lo = cand(s0, ja), s_hi = cand(s0, jb - 1);
        const double sc = std::clamp(iav / ivv, s_lo, s_hi);
        const double e_min = aa - 2.0 * sc * iav + sc * sc * ivv;
        const double margin = 1e-14 * (std::fabs(aa) + 2.0 * s_hi * std::fabs(iav) + s_hi * s_hi * ivv);
        if (e_min - margin >= best_err) continue;
      }
      for (int j = ja; j < jb; ++j) {
        const double e = err(j, iav, ivv);
        if (e < best_err) {
          best_err = e;
          best = j;
        }
      }
    }
    // Residual with the chosen candidate, recomputed directly (as BlockSearch); the integers
    // are kept in qcur for the next sweep.
    const float s = cand(s0, best);
    for (int64_t t = 0; t < m; ++t) r[static_cast<size_t>(t)] = a[static_cast<size_t>(t)];
    for (int64_t i = b0; i < b1; ++i) {
      const int32_t qi = quantize(w[i], s, qmax);
      qcur[static_cast<size_t>(i)] = qi;
      const double q = qi;
      if (q == 0) continue;
      const float* col = f.cols.data() + i * m;
      for (int64_t t = 0; t < m; ++t) r[static_cast<size_t>(t)] -= static_cast<double>(s) * q * col[t];
    }
    return best;
  }
};

void fast_scales(std::span<const float> w, int64_t rows, int64_t in, const WeightSpec& spec,
                 const ErrorFactor& f, int candidates, kernels::ThreadPool* pool,
                 std::vector<float>& scales) {
  const int64_t block = spec.block > 0 ? spec.block : std::max<int64_t>(in, 1);
  const int64_t blocks = (in + block - 1) / block;
  const int32_t qmax = qmax_of(spec);
  const int64_t m = f.rows;
  std::vector<float> steps(static_cast<size_t>(candidates));
  for (int j = 0; j < candidates; ++j) {
    steps[static_cast<size_t>(j)] = static_cast<float>(static_cast<double>(j + 1) / candidates);
  }
  std::vector<double> inv_half(static_cast<size_t>(qmax) + 1, 0.0);
  for (int32_t k = 1; k <= qmax; ++k) inv_half[static_cast<size_t>(k)] = 1.0 / (k - 0.5);
  std::vector<double> col_norm(static_cast<size_t>(in), 0.0);
  for (int64_t i = 0; i < in; ++i) {
    const float* col = f.cols.data() + i * m;
    double cc = 0.0;
    for (int64_t t = 0; t < m; ++t) cc += static_cast<double>(col[t]) * col[t];
    col_norm[static_cast<size_t>(i)] = cc;
  }
  std::atomic<int64_t> next{0};
  const int64_t workers = pool != nullptr ? std::min<int64_t>(pool->num_threads(), rows) : 1;
  kernels::parallel_for(pool, workers, [&](int64_t, int64_t) {
    FastRow s{f, qmax, candidates, steps, {}, {}, {}, {}, {}, inv_half, {}, {}, {}, {}, col_norm, {}, {}, {}, {}, {}};
    s.qcur.resize(static_cast<size_t>(in));
    std::vector<double> r(static_cast<size_t>(m)), a(static_cast<size_t>(m));
    std::vector<int> chosen(static_cast<size_t>(blocks));
    std::vector<float> s0(static_cast<size_t>(blocks));
    for (int64_t o = next.fetch_add(1, std::memory_order_relaxed); o < rows;
         o = next.fetch_add(1, std::memory_order_relaxed)) {
      const float* wr = w.data() + o * in;
      s.ev_begin.assign(1, 0);
      s.ev.clear();
      s.vv_after.clear();
      s.v0.clear();
      s.vv0.clear();
      // r = F (w - ŵ) with every block at MinMax (as exhaustive_scales).
      std::fill(r.begin(), r.end(), 0.0);
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t b0 = b * block, b1 = std::min(in, (b + 1) * block);
        s0[static_cast<size_t>(b)] = scales[static_cast<size_t>(o * blocks + b)];
        chosen[static_cast<size_t>(b)] = candidates - 1;
        const float sc = s.cand(s0[static_cast<size_t>(b)], candidates - 1);
        for (int64_t i = b0; i < b1; ++i) {
          const int32_t q = FastRow::quantize(wr[i], sc, qmax);
          s.qcur[static_cast<size_t>(i)] = q;
          const double d = wr[i] - static_cast<double>(sc) * q;
          const float* col = f.cols.data() + i * m;
          for (int64_t t = 0; t < m; ++t) r[static_cast<size_t>(t)] += d * col[t];
        }
        s.prepare(wr, b0, b1, s0[static_cast<size_t>(b)]);
      }
      for (int sweep = 0; sweep < (blocks > 1 ? kSeqMseSweeps : 1); ++sweep) {
        bool changed = false;
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t b0 = b * block, b1 = std::min(in, (b + 1) * block);
          const float sc = s.cand(s0[static_cast<size_t>(b)], chosen[static_cast<size_t>(b)]);
          a = r;
          for (int64_t i = b0; i < b1; ++i) {
            const double qd = static_cast<double>(sc) * s.qcur[static_cast<size_t>(i)];
            const float* col = f.cols.data() + i * m;
            for (int64_t t = 0; t < m; ++t) a[static_cast<size_t>(t)] += qd * col[t];
          }
          const int best = s.search(b, wr, b0, b1, s0[static_cast<size_t>(b)], a, r);
          changed |= best != chosen[static_cast<size_t>(b)];
          chosen[static_cast<size_t>(b)] = best;
        }
        if (!changed) break;
      }
      for (int64_t b = 0; b < blocks; ++b) {
        scales[static_cast<size_t>(o * blocks + b)] =
            s.cand(s0[static_cast<size_t>(b)], chosen[static_cast<size_t>(b)]);
      }
    }
  });
}

}  // namespace

std::vector<float> seq_mse_scales(std::span<const float> w, int64_t rows, int64_t in,
                                  const WeightSpec& spec, const ErrorFactor& f, int candidates,
                                  kernels::ThreadPool* pool, SeqMseSearch search) {
  HS_CHECK(f.in == in && candidates >= 1, "seq_mse_scales: factor or candidates mismatch");
  std::vector<float> scales = minmax_scales(w, rows, in, spec);
  if (search == SeqMseSearch::kExhaustive) {
    exhaustive_scales(w, rows, in, spec, f, candidates, pool, scales);
  } else {
    fast_scales(w, rows, in, spec, f, candidates, pool, scales);
  }
  return scales;
}

}  // namespace hs::quant
