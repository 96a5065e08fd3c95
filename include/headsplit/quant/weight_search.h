// Weight quantization that looks at calibration activations (docs/quantization.md, "SeqMSE and
// GPTQ"): SeqMSE scale search (reference §11, `seq_mse_candidates`) and GPTQ-style
// error-compensating rounding. Both run on the float MHA graph before the split; their result
// is a WeightOverride per weight (scales, and for GPTQ the integers) that apply_quantization
// uses instead of MinMax + round to nearest, so the split slices the chosen params per head as
// it slices MinMax ones.
//
// Shapes: a projection weight W[O, I] (conv2d [O, I, 1, 1] or linear [O, I]) reads X[n, I]
// (n calibration tokens of its input); its output error is E = X (W - Ŵ)ᵀ, [n, O].
//
// SeqMSE, per output row o and block b (the whole row for per-channel):
//   s0 = max(max|w_ob| / qmax, eps)                 (the MinMax scale)
//   candidates s_j = max(s0 * (j + 1) / N, eps),  j = 0..N-1   (linspace(1/N, 1, N) as in the
//                                                  reference; j = N-1 is MinMax)
//   ŵ_ob(s) = s * clamp(round_half_even(w_ob / s), -qmax, qmax)
//   pick s minimising ||X (w_o - ŵ_o)||²  (the squared output error of row o, exact: rows do
//   not interact). MinMax is tried first and a candidate must be strictly better (ties keep the
//   smaller j after MinMax), as in the reference. Blocks of one row share the output, so they
//   are chosen by coordinate descent: block by block, each the best given the others, repeated
//   until no block changes (at most kSeqMseSweeps sweeps).
//   X is the last token of each calibration window (the reference scores the last prompt
//   token) or every token (SeqMseTokens::kAll); when n > I it is replaced by Lᵀ with
//   L Lᵀ = XᵀX (Cholesky), which gives the same errors with I rows.
//   Cost: per row, the integers of a candidate change at most qmax times per element, so the
//   search walks those changes (events) and updates X q incrementally: O(I·qmax·n + N·n) per
//   row instead of O(N·I·n); the fast search (SeqMseSearch) finds the events once per row and
//   drops the O(N) candidate loop to O(events) with branch and bound over intervals.
// GPTQ (Frantar et al. 2022), per weight with fixed scales (MinMax, or SeqMSE's):
//   H = XᵀX over every calibration token, + λ·mean(diag H)·1 (damping λ = 1%), a zero
//   diagonal entry (input never active) set to 1;  U = upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU)
//   for i = 0..I-1:  q_i = quantize(w_i) per row with its block's scale;
//                    d = (w_i - ŝ q_i) / U_ii;   w_j -= d · U_ij  for j > i
//   i.e. each column's rounding error is pushed onto the columns not yet rounded, weighted by
//   how the inputs correlate, minimising ||X (W - Ŵ)ᵀ||² greedily (OBQ). Works per block: the
//   scale of column i is its block's.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/quant/params.h"
#include "headsplit/quant/scheme.h"

namespace hs::kernels {
class ThreadPool;
}

namespace hs::quant {

inline constexpr int kSeqMseSweeps = 4;

// Calibration activations of one projection input (by value name): rows of `dim` floats, one
// per token, row-major. `last`: the last token of each calibration window; `all`: every token
// (captured only when asked for).
struct ActivationRows {
  int64_t dim = 0;
  std::vector<float> last;
  std::vector<float> all;
  int64_t last_count() const { return dim > 0 ? static_cast<int64_t>(last.size()) / dim : 0; }
  int64_t all_count() const { return dim > 0 ? static_cast<int64_t>(all.size()) / dim : 0; }
};
using ActivationSamples = std::unordered_map<std::string, ActivationRows>;

// Which rows SeqMSE scores.
enum class SeqMseTokens : uint8_t { kLast, kAll };

struct WeightSearchOptions {
  int seq_mse = 0;  // candidates per row/block; 0: MinMax scales
  SeqMseTokens seq_mse_tokens = SeqMseTokens::kLast;
  bool gptq = false;          // error-compensating rounding (needs every token's activations)
  double gptq_damp = 0.01;    // λ, relative to mean(diag H)
  int threads = 0;            // <= 0: hardware concurrency; results do not depend on it
  bool progress = true;       // a progress line with ETA on stderr
  bool active() const { return seq_mse > 0 || gptq; }
};


// A projection of a graph whose weight is searched: the weight, its input and its format.
struct Projection {
  std::string weight;  // weight value name
  std::string input;   // input activation value name
  WeightSpec spec;
};

// The projections (conv2d / linear with a float32 constant weight annotated as a weight) of
// `graph` under `config`, in node order, each weight once.
Result<std::vector<Projection>> find_projections(const ir::Graph& graph, const QuantConfig& config);

// MinMax scales of W[rows, in] under `spec`: per row, or row-major [rows, blocks].
std::vector<float> minmax_scales(std::span<const float> w, int64_t rows, int64_t in,
                                 const WeightSpec& spec);

// The error factor of X[n, in] (row-major): F[m, in] with FᵀF = XᵀX, m = min(n, in): X itself
// when n <= in, else Lᵀ (Cholesky of XᵀX, a tiny ridge added when singular). Column-major
// (column i = m contiguous values) as the searches read it.
struct ErrorFactor {
  int64_t rows = 0;          // m
  int64_t in = 0;            // I
  std::vector<float> cols;   // [in][m]
};
ErrorFactor error_factor(std::span<const float> x, int64_t n, int64_t in);

// ||F (w - ŵ)||² for row `w` with integers `q` and per-block `scales` (a test and report aid).
double row_output_error(const ErrorFactor& f, std::span<const float> w,
                        std::span<const int8_t> q, std::span<const float> scales, int64_t block);

// How seq_mse_scales searches. Both choose the same scales (tests/quant/weight_search_test.cpp
// checks it on seeded random layers): kExhaustive evaluates every candidate of every block
// search; kFast finds each row's events once (not once per sweep), visits candidates per
// interval of constant integers, and skips an interval when a lower bound on its errors (the
// minimum of its convex quadratic, minus a rounding margin) is not below the best so far
// (branch and bound); every candidate it does evaluate is computed with the same operations.
enum class SeqMseSearch : uint8_t { kFast, kExhaustive };

// SeqMSE scales of W[rows, in] (see above). `pool` may be null.
std::vector<float> seq_mse_scales(std::span<const float> w, int64_t rows, int64_t in,
                                  const WeightSpec& spec, const ErrorFactor& f, int candidates,
                                  kernels::ThreadPool* pool,
                                  SeqMseSearch search = SeqMseSearch::kFast);

// Gram matrix XᵀX [in, in] (double, row-major) of X[n, in].
std::vector<double> gram(std::span<const float> x, int64_t n, int64_t in);

// GPTQ integers of W[rows, in] with fixed `scales` (per row or [rows, blocks]) and H = XᵀX.
// kInvalidArgument when damping does not make H positive definite (non-finite activations).
Result<std::vector<int8_t>> gptq_quantize(std::span<const float> w, int64_t rows, int64_t in,
                                          const WeightSpec& spec, std::span<const float> scales,
                                          std::span<const double> h, double damp,
                                          kernels::ThreadPool* pool);

struct WeightSearchStats {
  int64_t weights = 0;
  int64_t rows = 0;
  double seconds = 0.0;
};

// SeqMSE and/or GPTQ over every projection of `graph` (the float MHA graph), into `out` (a
// status, not a Result: GCC 12 misreports -Wfree-nonheap-object on a Result of this map).
// Errors: a projection input without captured activations (kInvalidArgument naming it), GPTQ
// without every token captured, and gptq_quantize's.
Status search_weights(const ir::Graph& graph, const QuantConfig& config,
                      const ActivationSamples& samples, const WeightSearchOptions& options,
                      WeightOverrides& out, WeightSearchStats* stats = nullptr);

}  // namespace hs::quant
