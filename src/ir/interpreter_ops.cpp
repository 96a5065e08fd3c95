// Kernel dispatch of the reference interpreter: maps each op to its kernel, and each
// KernelSet to the kernels behind the compute-heavy ops. The one place that chooses kernels.
#include "interpreter_ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "headsplit/kernels/elementwise.h"
#include "headsplit/kernels/gemm.h"
#include "headsplit/kernels/gemm_bf16.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs::ir::detail {

namespace ref = kernels::ref;

namespace {
// Set by SerialKernelsScope: this thread's fast kernels run without the pool.
thread_local bool t_serial_kernels = false;
}  // namespace

kernels::ThreadPool* fast_pool(int64_t m, int64_t n, int64_t k) {
  if (t_serial_kernels || m * n * k < (int64_t{1} << 20)) return nullptr;
  static kernels::ThreadPool pool;
  return &pool;
}

namespace {

ref::TensorRef<float> fref(const Operand& t) { return {t.f, *t.shape}; }
ref::TensorRef<int32_t> iref(const Operand& t) { return {t.i, *t.shape}; }

// The kernels behind the compute-heavy ops for each KernelSet.
//   kReference: the naive kernels of kernels/reference.h (bit-exact contract, used by every
//               test that compares graphs).
//   kFast:      kernels::matmul_f32 (gemm.h: SIMD, threaded over output rows). It sums each
//               element with FMAs in a different order, so results differ from kReference by
//               the float rounding bound of gemm.h, about (K + 4) * 2^-24 * sum |x * w|. Use it
//               where speed matters and bits do not (calibration, evaluation).
//               kFast also runs softmax with exp arguments below -87 flushed to 0 (the exact
//               result underflows there anyway, but through libm's slow path), and
//               broadcasting add/sub/mul/div row by row (bit-identical: one op per element)
//               and expand as block copies (the GQA expansion of the KV caches).
struct MatmulKernels {
  Status (*conv2d_1x1)(const ref::Conv1x1Dims&, const float*, const float*, const float*, float*);
  Status (*linear)(const ref::LinearDims&, const float*, const float*, const float*, float*);
  Status (*matmul)(ref::TensorRef<float>, ref::TensorRef<float>, float*, ref::Dims);
  void (*softmax)(const ref::AxisDims&, const float*, float*);
  void (*binary)(ref::BinaryOp, ref::TensorRef<float>, ref::TensorRef<float>, float*, ref::Dims);
  void (*expand)(ref::TensorRef<float>, float*, ref::Dims);
};

Status ref_conv2d(const ref::Conv1x1Dims& d, const float* x, const float* w, const float* b,
                  float* y) {
  ref::conv2d_1x1(d, x, w, b, y);
  return {};
}
Status ref_linear(const ref::LinearDims& d, const float* x, const float* w, const float* b,
                  float* y) {
  ref::linear(d, x, w, b, y);
  return {};
}
Status ref_matmul(ref::TensorRef<float> a, ref::TensorRef<float> b, float* y, ref::Dims y_shape) {
  ref::matmul(a, b, y, y_shape);
  return {};
}


template <typename T>
std::span<const T> span_of(const T* p, int64_t n) {
  return {p, static_cast<size_t>(n)};
}

// The fast conv2d / linear as matmuls: `mm(shape, x, y, pool)` multiplies by the weights
// (matmul_f32, or matmul_bf16 on the weight's bfloat16 copy). conv2d per image: x[Ci,S]
// channel-major -> y[Co,S]; linear: x[M,in] token-major -> y[M,out].
template <typename Mm>
Status conv2d_as_matmul(const ref::Conv1x1Dims& d, const float* x, float* y, Mm&& mm) {
  const kernels::MatmulShape shape{d.spatial, d.co, d.ci, kernels::ActLayout::kChannelMajor};
  for (int64_t n = 0; n < d.n; ++n) {
    HS_TRY(mm(shape, span_of(x + n * d.ci * d.spatial, d.ci * d.spatial),
              std::span<float>(y + n * d.co * d.spatial, static_cast<size_t>(d.co * d.spatial)),
              fast_pool(d.spatial, d.co, d.ci)));
  }
  return {};
}

template <typename Mm>
Status linear_as_matmul(const ref::LinearDims& d, const float* x, float* y, Mm&& mm) {
  const kernels::MatmulShape shape{d.m, d.out, d.in, kernels::ActLayout::kTokenMajor};
  return mm(shape, span_of(x, d.m * d.in), std::span<float>(y, static_cast<size_t>(d.m * d.out)),
            fast_pool(d.m, d.out, d.in));
}

// The bias of a conv2d / linear with n outputs (none: empty).
std::span<const float> bias_of(const float* b, int64_t n) {
  return b != nullptr ? span_of(b, n) : std::span<const float>();
}

Status fast_conv2d(const ref::Conv1x1Dims& d, const float* x, const float* w, const float* b,
                   float* y) {
  const kernels::F32Weights weights{span_of(w, d.co * d.ci), bias_of(b, d.co)};
  return conv2d_as_matmul(d, x, y, [&](const auto& shape, auto xs, auto ys, auto* pool) {
    return kernels::matmul_f32(shape, xs, weights, ys, pool);
  });
}

Status fast_linear(const ref::LinearDims& d, const float* x, const float* w, const float* b,
                   float* y) {
  const kernels::F32Weights weights{span_of(w, d.out * d.in), bias_of(b, d.out)};
  return linear_as_matmul(d, x, y, [&](const auto& shape, auto xs, auto ys, auto* pool) {
    return kernels::matmul_f32(shape, xs, weights, ys, pool);
  });
}

// conv2d / linear with the weight's bfloat16 copy (kFast with InterpreterOptions::bf16_weights).
Status bf16_conv2d(const ref::Conv1x1Dims& d, const float* x, const kernels::Bf16Matrix& w,
                   const float* b, float* y) {
  return conv2d_as_matmul(d, x, y, [&](const auto& shape, auto xs, auto ys, auto* pool) {
    return kernels::matmul_bf16(shape, xs, w, bias_of(b, d.co), ys, pool);
  });
}

Status bf16_linear(const ref::LinearDims& d, const float* x, const kernels::Bf16Matrix& w,
                   const float* b, float* y) {
  return linear_as_matmul(d, x, y, [&](const auto& shape, auto xs, auto ys, auto* pool) {
    return kernels::matmul_bf16(shape, xs, w, bias_of(b, d.out), ys, pool);
  });
}

// Matrix index of an operand with batch dims `shape` read at batch index `i` of `out`
// (NumPy broadcasting: right-aligned, size-1 and missing axes repeat).
int64_t broadcast_matrix(ref::Dims shape, ref::Dims out, int64_t i) {
  int64_t index = 0, stride = 1;
  for (size_t a = out.size(), s = shape.size(); a-- > 0;) {
    const int64_t coord = i % out[a];
    i /= out[a];
    if (s == 0) continue;
    --s;
    if (shape[s] != 1) index += coord * stride;
    stride *= shape[s];
  }
  return index;
}

// One matrix of a fast matmul, y[M,N] = a[M,K] b[K,N]: matmul_f32 in channel-major form with
// W = a (M rows of K) and x = b (K channels of N positions). On its panel path (N >=
// kMatmulPanelMinM) every y element is one FMA chain over k in increasing order started from
// +0 (gemm.h), which allows two exact shortcuts:
//  - inputs k with a[:, k] all zero and b[k, :] finite add a product of +-0 to every chain; a
//    chain started from +0 is never -0 (a sum is -0 only when both terms are), so adding +-0
//    leaves it unchanged and those k are dropped (a and b gathered without them);
//  - a column j of b that is all zero gives y[:, j] = +0 exactly when a is finite, so only the
//    other columns are multiplied (gathered, padded with zero columns to the panel path).
// Attention at a long context hits both: PV with the masked (zero) probabilities of the empty
// cache, and QK^T with the empty (zero) cache columns of K. y is bit-identical to the plain call.
struct MatrixScratch {
  std::vector<float> a, b, y;
  std::vector<int64_t> keep;
  std::vector<std::pair<int64_t, int64_t>> runs;  // keep as [begin, end) runs (usually 1-2)
  std::vector<int32_t> a_bits;  // [K]: OR over m of |a[m, k]|'s bits (0: column all zero)
  // Of the b last seen (the GQA heads of one KV head share it), computed when first needed:
  const float* b_seen = nullptr;
  std::vector<int32_t> b_bits;   // [N]: OR over k of |b[k, j]|'s bits (empty: not yet)
  std::vector<uint8_t> b_state;  // [K]: row b[k, :] 0 not checked, 1 finite, 2 not finite
  // What `b` holds: the rows (or columns) `gathered_keep` of the matrix at b_gathered (the
  // next head of the same KV head usually keeps the same ones: no second copy).
  const float* b_gathered = nullptr;
  bool gathered_rows = false;
  std::vector<int64_t> gathered_keep;
};

// s.b = the rows (rows: true; runs of s.keep, N wide) or columns (runs of s.keep, of K rows)
// of b, unless it holds them already.
void gather_b(MatrixScratch& s, const float* b, bool rows, int64_t K, int64_t N) {
  if (s.b_gathered == b && s.gathered_rows == rows && s.gathered_keep == s.keep) return;
  const auto kept = static_cast<int64_t>(s.keep.size());
  if (rows) {
    s.b.resize(static_cast<size_t>(kept * N));
    float* dst = s.b.data();
    for (const auto& [begin, end] : s.runs) dst = std::copy(b + begin * N, b + end * N, dst);
  } else {
    s.b.resize(static_cast<size_t>(K * kept));
    for (int64_t k = 0; k < K; ++k) {
      float* dst = s.b.data() + k * kept;
      for (const auto& [begin, end] : s.runs)
        dst = std::copy(b + k * N + begin, b + k * N + end, dst);
    }
  }
  s.b_gathered = b;
  s.gathered_rows = rows;
  s.gathered_keep = s.keep;
}

// The bits of |v| as an int32 (0 for +-0; >= kInfBits when v is not finite).
inline int32_t abs_bits(float v) { return std::bit_cast<int32_t>(v) & 0x7fffffff; }
constexpr int32_t kInfBits = 0x7f800000;

// No element of v[0, n) is infinite or NaN.
bool all_finite(const float* v, int64_t n) {
  int32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= abs_bits(v[i]) >= kInfBits ? 1 : 0;
  return bad == 0;
}

Status plain_matrix_matmul(const float* a, const float* b, float* y, int64_t M, int64_t K,
                           int64_t N) {
  const kernels::MatmulShape shape{N, M, K, kernels::ActLayout::kChannelMajor};
  return kernels::matmul_f32(shape, span_of(b, K * N), {span_of(a, M * K), {}},
                             {y, static_cast<size_t>(M * N)}, fast_pool(M, N, K));
}

// s.runs = s.keep (increasing) as maximal runs of consecutive indices.
void keep_runs(MatrixScratch& s) {
  s.runs.clear();
  for (int64_t v : s.keep) {
    if (!s.runs.empty() && s.runs.back().second == v) {
      ++s.runs.back().second;
    } else {
      s.runs.emplace_back(v, v + 1);
    }
  }
}

Status matrix_matmul(const float* a, const float* b, float* y, int64_t M, int64_t K, int64_t N,
                     MatrixScratch& s) {
  if (N < kernels::kMatmulPanelMinM || M == 0 || K == 0)
    return plain_matrix_matmul(a, b, y, M, K, N);
  const auto uk = static_cast<size_t>(K), un = static_cast<size_t>(N);
  if (s.b_seen != b || s.b_state.size() != uk) {
    s.b_seen = b;
    s.b_bits.clear();
    s.b_state.assign(uk, 0);
  }
  s.a_bits.resize(uk);
  kernels::or_abs_bits_columns_f32(a, M, K, K, s.a_bits.data());
  // Inputs kept: a[:, k] not all zero, or b[k, :] not all finite.
  s.keep.clear();
  for (size_t k = 0; k < uk; ++k) {
    if (s.a_bits[k] == 0) {
      uint8_t& state = s.b_state[k];
      if (state == 0) state = all_finite(b + k * un, N) ? 1 : 2;
      if (state == 1) continue;
    }
    s.keep.push_back(static_cast<int64_t>(k));
  }
  const auto kept = static_cast<int64_t>(s.keep.size());
  if (kept * 4 <= K * 3) {  // worth gathering: at least a quarter of the inputs dropped
    // a[:, keep] and b[keep, :] copied run by run (the live cache slots: one or two runs); b
    // is read in place when keep is one run.
    keep_runs(s);
    s.a.resize(static_cast<size_t>(M * kept));
    for (int64_t m = 0; m < M; ++m) {
      float* dst = s.a.data() + m * kept;
      for (const auto& [begin, end] : s.runs)
        dst = std::copy(a + m * K + begin, a + m * K + end, dst);
    }
    if (s.runs.size() == 1) {
      return plain_matrix_matmul(s.a.data(), b + s.runs[0].first * N, y, M, kept, N);
    }
    gather_b(s, b, /*rows=*/true, K, N);
    return plain_matrix_matmul(s.a.data(), s.b.data(), y, M, kept, N);
  }
  // Zero columns of b, when a is finite.
  if (!all_finite(a, M * K)) return plain_matrix_matmul(a, b, y, M, K, N);
  if (s.b_bits.empty()) {
    s.b_bits.resize(un);
    kernels::or_abs_bits_columns_f32(b, K, N, N, s.b_bits.data());
  }
  int64_t live = 0;
  for (int32_t v : s.b_bits) live += v != 0 ? 1 : 0;
  if (live * 4 > N * 3) return plain_matrix_matmul(a, b, y, M, K, N);
  // Columns multiplied: the live ones and, while fewer than the panel path needs, zero ones.
  int64_t pad = std::max<int64_t>(0, kernels::kMatmulPanelMinM - live);
  s.keep.clear();
  for (int64_t j = 0; j < N; ++j) {
    const bool zero = s.b_bits[static_cast<size_t>(j)] == 0;
    if (!zero || pad > 0) {
      if (zero) --pad;
      s.keep.push_back(j);
    }
  }
  const auto cols = static_cast<int64_t>(s.keep.size());
  keep_runs(s);
  s.y.resize(static_cast<size_t>(M * cols));
  gather_b(s, b, /*rows=*/false, K, N);
  HS_TRY(plain_matrix_matmul(a, s.b.data(), s.y.data(), M, K, cols));
  for (int64_t m = 0; m < M; ++m) {  // y row: the multiplied runs, +0 between them
    const float* src = s.y.data() + m * cols;
    float* row = y + m * N;
    int64_t done = 0;
    for (const auto& [begin, end] : s.runs) {
      std::fill(row + done, row + begin, 0.f);
      std::copy(src, src + (end - begin), row + begin);
      src += end - begin;
      done = end;
    }
    std::fill(row + done, row + N, 0.f);
  }
  return {};
}

// y[M,N] = a[M,K] b[K,N] per (broadcast) batch matrix, as matmul_f32 in channel-major form
// with W = a (M rows of K) and x = b (K channels of N positions): y[M,N] is its [N', M'] output.
// b_matrix maps b's batch matrix index (over b.shape) to the matrix of b.data it reads.
template <typename BMatrix>
Status batched_matmul(ref::TensorRef<float> a, ref::TensorRef<float> b, float* y, ref::Dims y_shape,
                      BMatrix b_matrix) {
  const size_t ra = a.shape.size(), rb = b.shape.size(), ry = y_shape.size();
  const int64_t M = a.shape[ra - 2], K = a.shape[ra - 1], N = b.shape[rb - 1];
  const ref::Dims batch = y_shape.first(ry - 2);
  const int64_t matrices = ref::count(batch);
  MatrixScratch scratch;
  for (int64_t i = 0; i < matrices; ++i) {
    const int64_t ia = broadcast_matrix(a.shape.first(ra - 2), batch, i);
    const int64_t ib = b_matrix(broadcast_matrix(b.shape.first(rb - 2), batch, i));
    HS_TRY(
        matrix_matmul(a.data + ia * M * K, b.data + ib * K * N, y + i * M * N, M, K, N, scratch));
  }
  return {};
}

Status fast_matmul(ref::TensorRef<float> a, ref::TensorRef<float> b, float* y, ref::Dims y_shape) {
  return batched_matmul(a, b, y, y_shape, [](int64_t ib) { return ib; });
}

// Softmax over contiguous rows (inner == 1; other layouts use the reference kernel). Same
// operation order as ref::softmax, except that exp(x - max) for x - max < -87 is taken as 0
// (exp there is below 1.7e-38, against a row sum of at least 1).
void fast_softmax(const ref::AxisDims& d, const float* x, float* y) {
  if (d.inner != 1) {
    ref::softmax(d, x, y);
    return;
  }
  HS_CHECK(d.n >= 1, "softmax: empty axis");
  for (int64_t o = 0; o < d.outer; ++o) {
    const float* xr = x + o * d.n;
    float* yr = y + o * d.n;
    int64_t j = 1;
    float m = xr[0];
#if defined(__SSE2__)
    // The max over 4 lanes (max is exact, so the order does not matter; a row with a NaN gives
    // NaN outputs either way, and a tie of -0 and +0 gives equal x - m below).
    __m128 mv = _mm_set1_ps(m);
    for (j = 0; j + 4 <= d.n; j += 4) mv = _mm_max_ps(_mm_loadu_ps(xr + j), mv);
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, mv);
    for (float l : lanes) m = l > m ? l : m;
#endif
    for (; j < d.n; ++j) m = xr[j] > m ? xr[j] : m;
    // e = exp(x - m) (kernels::exp_f32: std::exp's bits), taken as 0 where x - m < -87, and
    // s = the sum of e in column order. A group of 4 whose arguments are all below -87 adds
    // nothing (s + 0 == s: s starts at +0 and only grows), so it is skipped; so is the exp of
    // a chunk of 64 columns all below -87 (the masked ones).
    float s = 0.f;
    constexpr int64_t kChunk = 64;
    alignas(16) float t[kChunk];
    for (int64_t j0 = 0; j0 < d.n; j0 += kChunk) {
      const int64_t len = std::min(kChunk, d.n - j0);
      float* e = yr + j0;
      // t = x - m; e = t, or 0 where t < -87 (exp(0) there, replaced by 0 below, keeps those
      // lanes off exp_f32's slow path).
      bool any_live = false;
      int64_t k0 = 0;
#if defined(__SSE2__)
      const __m128 m4 = _mm_set1_ps(m), lim4 = _mm_set1_ps(-87.f);
      __m128 seen = _mm_setzero_ps();
      for (; k0 + 4 <= len; k0 += 4) {
        const __m128 tv = _mm_sub_ps(_mm_loadu_ps(xr + j0 + k0), m4);
        const __m128 live = _mm_cmpnlt_ps(tv, lim4);  // !(t < -87), NaN included
        seen = _mm_or_ps(seen, live);
        _mm_store_ps(t + k0, tv);
        _mm_storeu_ps(e + k0, _mm_and_ps(live, tv));
      }
      any_live = _mm_movemask_ps(seen) != 0;
#endif
      for (; k0 < len; ++k0) {
        t[k0] = xr[j0 + k0] - m;
        any_live |= !(t[k0] < -87.f);
        e[k0] = t[k0] < -87.f ? 0.f : t[k0];
      }
      if (!any_live) {
        std::fill(e, e + len, 0.f);
        continue;
      }
      kernels::exp_f32(e, e, len);
      int64_t k = 0;
#if defined(__SSE2__)
      const __m128 lim = _mm_set1_ps(-87.f);
      for (; k + 4 <= len; k += 4) {
        const __m128 tv = _mm_load_ps(t + k);
        const __m128 live = _mm_cmpnlt_ps(tv, lim);  // !(t < -87), NaN included
        if (_mm_movemask_ps(live) == 0) {
          _mm_storeu_ps(e + k, _mm_setzero_ps());
          continue;
        }
        _mm_storeu_ps(e + k, _mm_and_ps(live, _mm_loadu_ps(e + k)));
        s += e[k];
        s += e[k + 1];
        s += e[k + 2];
        s += e[k + 3];
      }
#endif
      for (; k < len; ++k) {
        if (t[k] < -87.f) e[k] = 0.f;
        s += e[k];
      }
    }
    // y / s, one division per element as ref::softmax (SIMD: the same bits).
    kernels::binary_scalar_f32(kernels::BinaryKind::kDiv, yr, s, /*b_is_rhs=*/true, yr, d.n);
  }
}

// Rows at least this long go to the SIMD kernels of kernels/elementwise.h (one float op per
// element, as the loops below: bit-identical); shorter ones stay inline.
constexpr int64_t kSimdBinaryRow = 16;

template <typename F>
void binary_rows(ref::TensorRef<float> a, ref::TensorRef<float> b, float* y, ref::Dims y_shape,
                 kernels::BinaryKind kind, F f) {
  const size_t r = y_shape.size();
  // Element strides of a and b over y's axes (0 on broadcast axes), right-aligned.
  auto strides = [&](ref::Dims shape) {
    std::vector<int64_t> st(r, 0);
    int64_t stride = 1;
    for (size_t k = 0; k < shape.size(); ++k) {
      const size_t axis = shape.size() - 1 - k;
      st[r - 1 - k] = shape[axis] == 1 ? 0 : stride;
      stride *= shape[axis];
    }
    return st;
  };
  const std::vector<int64_t> sa = strides(a.shape), sb = strides(b.shape);
  const int64_t inner = r == 0 ? 1 : y_shape[r - 1];
  const int64_t ia = r == 0 ? 0 : sa[r - 1], ib = r == 0 ? 0 : sb[r - 1];
  const int64_t rows = inner > 0 ? ref::count(y_shape) / inner : 0;
  std::vector<int64_t> idx(r, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const float* pa = a.data + oa;
    const float* pb = b.data + ob;
    float* py = y + row * inner;
    const bool simd = inner >= kSimdBinaryRow;
    if (simd && ia == 1 && ib == 1) {
      kernels::binary_f32(kind, pa, pb, py, inner);
    } else if (simd && ia == 1 && ib == 0) {
      kernels::binary_scalar_f32(kind, pa, pb[0], /*b_is_rhs=*/true, py, inner);
    } else if (simd && ia == 0 && ib == 1) {
      kernels::binary_scalar_f32(kind, pb, pa[0], /*b_is_rhs=*/false, py, inner);
    } else if (ia == 1 && ib == 1) {
      for (int64_t i = 0; i < inner; ++i) py[i] = f(pa[i], pb[i]);
    } else if (ia == 1 && ib == 0) {
      for (int64_t i = 0; i < inner; ++i) py[i] = f(pa[i], pb[0]);
    } else if (ia == 0 && ib == 1) {
      for (int64_t i = 0; i < inner; ++i) py[i] = f(pa[0], pb[i]);
    } else {
      for (int64_t i = 0; i < inner; ++i) py[i] = f(pa[i * ia], pb[i * ib]);
    }
    // Next row: odometer over the axes before the last.
    for (size_t k = r == 0 ? 0 : r - 1; k-- > 0;) {
      oa += sa[k];
      ob += sb[k];
      if (++idx[k] < y_shape[k]) break;
      oa -= sa[k] * y_shape[k];
      ob -= sb[k] * y_shape[k];
      idx[k] = 0;
    }
  }
}

void fast_binary(ref::BinaryOp op, ref::TensorRef<float> a, ref::TensorRef<float> b, float* y,
                 ref::Dims y_shape) {
  switch (op) {
    case ref::BinaryOp::kAdd:
      return binary_rows(a, b, y, y_shape, kernels::BinaryKind::kAdd,
                         [](float u, float v) { return u + v; });
    case ref::BinaryOp::kSub:
      return binary_rows(a, b, y, y_shape, kernels::BinaryKind::kSub,
                         [](float u, float v) { return u - v; });
    case ref::BinaryOp::kMul:
      return binary_rows(a, b, y, y_shape, kernels::BinaryKind::kMul,
                         [](float u, float v) { return u * v; });
    case ref::BinaryOp::kDiv:
      return binary_rows(a, b, y, y_shape, kernels::BinaryKind::kDiv,
                         [](float u, float v) { return u / v; });
  }
  ref::binary(op, a, b, y, y_shape);
}

// ref::expand as copies of the longest contiguous block (the trailing axes x does not
// broadcast), each repeated over the broadcast axes. Equal ranks, as ref::expand requires.
void fast_expand(ref::TensorRef<float> x, float* y, ref::Dims y_shape) {
  const size_t r = y_shape.size();
  if (x.shape.size() != r) {
    ref::expand(x, y, y_shape);
    return;
  }
  size_t split = r;  // axes [split, r) are copied whole
  int64_t block = 1;
  while (split > 0 && x.shape[split - 1] == y_shape[split - 1]) block *= y_shape[--split];
  if (block == 0) return;
  // Odometer over axes [0, split) of y; x's offset moves only on its non-broadcast axes.
  std::vector<int64_t> xs(split, 0), idx(split, 0);
  for (size_t k = split, stride = static_cast<size_t>(block); k-- > 0;) {
    xs[k] = x.shape[k] == 1 ? 0 : static_cast<int64_t>(stride);
    stride *= static_cast<size_t>(x.shape[k]);
  }
  const int64_t blocks = ref::count(y_shape) / block;
  int64_t ox = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    std::copy(x.data + ox, x.data + ox + block, y + b * block);
    for (size_t k = split; k-- > 0;) {
      ox += xs[k];
      if (++idx[k] < y_shape[k]) break;
      ox -= xs[k] * y_shape[k];
      idx[k] = 0;
    }
  }
}

const MatmulKernels& matmul_kernels(KernelSet set) {
  static constexpr MatmulKernels kReference{&ref_conv2d,   &ref_linear,  &ref_matmul,
                                            &ref::softmax, &ref::binary, &ref::expand};
  static constexpr MatmulKernels kFast{&fast_conv2d,  &fast_linear, &fast_matmul,
                                       &fast_softmax, &fast_binary, &fast_expand};
  switch (set) {
    case KernelSet::kReference: return kReference;
    case KernelSet::kFast: return kFast;
  }
  return kReference;
}

ref::BinaryOp binary_op(OpKind op) {
  switch (op) {
    case OpKind::kSub: return ref::BinaryOp::kSub;
    case OpKind::kMul: return ref::BinaryOp::kMul;
    case OpKind::kDiv: return ref::BinaryOp::kDiv;
    default: return ref::BinaryOp::kAdd;
  }
}

// Copies the elements of x into y (same element count): reshape, (un)squeeze, (de)quantize.
void copy_elements(const Operand& x, Tensor& y) {
  const auto n = static_cast<size_t>(x.numel());
  if (y.dtype == DType::kF32) {
    std::copy(x.f, x.f + n, y.f.begin());
  } else {
    std::copy(x.i, x.i + n, y.i.begin());
  }
}

}  // namespace

Status run_repeat_kv_matmul(const Operand& a, const Operand& x, const Shape& r_shape, int64_t group,
                            Tensor& y) {
  // r_shape [...,H,a,b] with H = Hkv * group; x [...,Hkv,a,b]. Matrix o * H + h of r is
  // matrix o * Hkv + h / group of x: the same bytes the unfused matmul would read.
  const int64_t H = r_shape[r_shape.size() - 3];
  const int64_t hkv = H / group;
  return batched_matmul(fref(a), {x.f, r_shape}, y.f.data(), y.shape,
                        [&](int64_t ib) { return ib / H * hkv + ib % H / group; });
}

// One case per op; shapes were checked when the interpreter was created.
SerialKernelsScope::SerialKernelsScope(bool serial) : previous_(t_serial_kernels) {
  t_serial_kernels = serial;
}
SerialKernelsScope::~SerialKernelsScope() { t_serial_kernels = previous_; }

Status run_node(const Node& node, std::span<const Operand> in, KernelSet kernels, Tensor& y) {
  const MatmulKernels& mk = matmul_kernels(kernels);
  const Operand& x = in[0];
  const Shape& xs = *x.shape;
  const bool real = y.dtype == DType::kF32;
  switch (node.op) {
    case OpKind::kConv2d: {
      const ref::Conv1x1Dims d{xs[0], xs[1], (*in[1].shape)[0], xs[2] * xs[3]};
      const float* b = in.size() > 2 ? in[2].f : nullptr;
      if (kernels == KernelSet::kFast && in[1].bf16 != nullptr)
        return bf16_conv2d(d, x.f, *in[1].bf16, b, y.f.data());
      return mk.conv2d_1x1(d, x.f, in[1].f, b, y.f.data());
    }
    case OpKind::kLinear: {
      const int64_t n_in = xs.back();
      const ref::LinearDims d{n_in > 0 ? x.numel() / n_in : 0, n_in, (*in[1].shape)[0]};
      const float* b = in.size() > 2 ? in[2].f : nullptr;
      if (kernels == KernelSet::kFast && in[1].bf16 != nullptr)
        return bf16_linear(d, x.f, *in[1].bf16, b, y.f.data());
      return mk.linear(d, x.f, in[1].f, b, y.f.data());
    }
    case OpKind::kMatMul: return mk.matmul(fref(x), fref(in[1]), y.f.data(), y.shape);
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
      mk.binary(binary_op(node.op), fref(x), fref(in[1]), y.f.data(), y.shape);
      return {};
    case OpKind::kNeg: ref::neg(x.f, x.numel(), y.f.data()); return {};
    case OpKind::kSilu: ref::silu(x.f, x.numel(), y.f.data()); return {};
    case OpKind::kTanh: ref::tanh(x.f, x.numel(), y.f.data()); return {};
    case OpKind::kGelu:
      ref::gelu(x.f, x.numel(),
                node.attrs.get_string("approximate") == "tanh" ? ref::GeluApprox::kTanh
                                                               : ref::GeluApprox::kNone,
                y.f.data());
      return {};
    case OpKind::kWhere:
      ref::where(iref(x), fref(in[1]), fref(in[2]), y.f.data(), y.shape);
      return {};
    case OpKind::kEq: ref::equal(fref(x), fref(in[1]), y.i.data(), y.shape); return {};
    case OpKind::kReduceMin:
    case OpKind::kSoftmax: {
      HS_ASSIGN_OR_RETURN(
          int64_t axis, normalize_axis(node.attrs.get_int("axis"), static_cast<int64_t>(xs.size()),
                                       op_name(node.op)));
      const ref::AxisDims d = ref::axis_dims(xs, axis);
      if (node.op == OpKind::kSoftmax) {
        mk.softmax(d, x.f, y.f.data());
      } else {
        ref::reduce_min(d, x.f, y.f.data());
      }
      return {};
    }
    case OpKind::kRmsNorm: {
      const int64_t n = xs.back();
      const auto eps = static_cast<float>(node.attrs.get_float("eps"));
      ref::rms_norm(n > 0 ? x.numel() / n : 0, n, x.f, in[1].f, eps, y.f.data());
      return {};
    }
    case OpKind::kLayerNorm: {
      const int64_t n = xs.back();
      const auto eps = static_cast<float>(node.attrs.get_float("eps"));
      ref::layer_norm(n > 0 ? x.numel() / n : 0, n, x.f, in[1].f, in.size() > 2 ? in[2].f : nullptr,
                      eps, y.f.data());
      return {};
    }
    case OpKind::kGather:
      if (real) return ref::gather(fref(x), iref(in[1]), y.f.data());
      return ref::gather(iref(x), iref(in[1]), y.i.data());
    case OpKind::kReshape:
    case OpKind::kUnsqueeze:
    case OpKind::kSqueeze:
    case OpKind::kQuantize:
    case OpKind::kDequantize: copy_elements(x, y); return {};
    case OpKind::kTranspose: {
      const std::vector<int64_t>& perm = node.attrs.get_ints("perm");
      if (real) {
        ref::transpose(fref(x), perm, y.f.data());
      } else {
        ref::transpose(iref(x), perm, y.i.data());
      }
      return {};
    }
    case OpKind::kSlice: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node.attrs.get_int("axis"),
                                                       static_cast<int64_t>(xs.size()), "slice"));
      const ref::SliceSpec s{axis, node.attrs.get_int("start"), node.attrs.get_int("end")};
      if (real) {
        ref::slice(fref(x), s, y.f.data());
      } else {
        ref::slice(iref(x), s, y.i.data());
      }
      return {};
    }
    case OpKind::kConcat: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node.attrs.get_int("axis"),
                                                       static_cast<int64_t>(xs.size()), "concat"));
      if (real) {
        std::vector<ref::TensorRef<float>> parts;
        for (const Operand& t : in) parts.push_back(fref(t));
        ref::concat(parts, axis, y.f.data());
      } else {
        std::vector<ref::TensorRef<int32_t>> parts;
        for (const Operand& t : in) parts.push_back(iref(t));
        ref::concat(parts, axis, y.i.data());
      }
      return {};
    }
    case OpKind::kExpand:
      if (real) {
        mk.expand(fref(x), y.f.data(), y.shape);
      } else {
        ref::expand(iref(x), y.i.data(), y.shape);
      }
      return {};
  }
  return errorf(ErrorKind::kUnsupported, "no reference kernel for op {}", op_name(node.op));
}

}  // namespace hs::ir::detail
