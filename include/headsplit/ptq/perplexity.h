// Perplexity of one model on any text, in windows of the context (`headsplit perplexity`), and
// optionally its KL divergence from a reference (float) model on the same windows.
//
// Windows. Each text (token ids, BOS included) is cut into windows of W tokens (default
// W = C - N, the prefill bound of ptq::run_window) starting every S tokens (stride, default W):
// window k covers [kS, min(kS + W, n)), the last one reaches the end of the text. Each window
// runs from an empty KV cache (ptq::run_window: prefill in AR-N chunks, `decode_tokens` last
// tokens on the decode graph). The logits row at position p predicts token p + 1; a window
// scores the targets it is the first to see: t in [max(b + 1, end of the previous window), e).
// So with S = W (non-overlapping) every window scores positions 1..w-1, the protocol of
// ptq::evaluate (`headsplit eval`), and with S < W later windows score only their last S tokens
// with W - S tokens of context.
//
// Over the N scored targets (natural log):
//   PPL = exp(mean nll),  nll = -log softmax(row)[target]
//   err(PPL) = PPL * sqrt((mean nll^2 - mean^2 nll) / (N - 1))      (as llama-perplexity)
// and with a reference, per row: KLD = sum_v p_ref(v) (log p_ref(v) - log p(v)), and whether the
// argmaxes agree ("same top").
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "headsplit/runner/step_model.h"
#include "headsplit/support/result.h"

namespace hs::ptq {

struct PerplexityOptions {
  int64_t window = 0;  // W; 0: C - N of the model (at most that)
  int64_t stride = 0;  // S in [1, W]; 0: W
  int64_t decode_tokens = 0;
  bool progress = true;  // "perplexity  n/N tokens  %  rate  eta" on stderr
};

struct PerplexityStats {
  int64_t windows = 0;
  int64_t tokens = 0;  // in the texts
  int64_t scored = 0;  // N
  double nll_sum = 0.0, nll2_sum = 0.0;
  double ref_nll_sum = 0.0, ref_nll2_sum = 0.0;  // the reference's, when there is one
  std::vector<double> kld;                       // per scored row (with a reference)
  int64_t same_top = 0;
  int64_t window = 0, stride = 0;  // as used

  double perplexity() const;
  double perplexity_error() const;
  double reference_perplexity() const;
  double reference_perplexity_error() const;
  double mean_kld() const;
  double mean_kld_error() const;
  double kld_quantile(double q) const;  // q in [0, 1] of the sorted KLDs (0 when none)
  double same_top_fraction() const;
};

// Errors: no tokens, a window or stride out of range (kInvalidArgument naming both), a
// reference whose context, AR lengths or vocabulary differ from the model's, step errors.
Result<PerplexityStats> perplexity(runner::StepModel& model, runner::StepModel* reference,
                                   std::span<const std::vector<int32_t>> texts,
                                   const PerplexityOptions& options);

}  // namespace hs::ptq
