// ptq::perplexity: strided windows through ptq::run_window, NLL and KL divergence per row.
#include "headsplit/ptq/perplexity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "headsplit/ptq/calibrate.h"
#include "headsplit/support/progress.h"

namespace hs::ptq {

namespace {

// log softmax of a row, in double: out[v] = row[v] - logsumexp(row).
void log_softmax(std::span<const float> row, std::vector<double>& out) {
  double m = -std::numeric_limits<double>::infinity();
  for (float x : row) m = std::max(m, static_cast<double>(x));
  double sum = 0.0;
  for (float x : row) sum += std::exp(static_cast<double>(x) - m);
  const double lse = std::log(sum) + m;
  out.resize(row.size());
  for (size_t i = 0; i < row.size(); ++i) out[i] = static_cast<double>(row[i]) - lse;
}

size_t argmax(std::span<const float> row) {
  return static_cast<size_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

double ppl_error(double sum, double sum2, int64_t n) {
  if (n < 2) return 0.0;
  const double mean = sum / static_cast<double>(n);
  const double var = std::max(0.0, sum2 / static_cast<double>(n) - mean * mean);
  return std::exp(mean) * std::sqrt(var / static_cast<double>(n - 1));
}

}  // namespace

double PerplexityStats::perplexity() const {
  return scored > 0 ? std::exp(nll_sum / static_cast<double>(scored)) : 0.0;
}
double PerplexityStats::perplexity_error() const { return ppl_error(nll_sum, nll2_sum, scored); }
double PerplexityStats::reference_perplexity() const {
  return scored > 0 ? std::exp(ref_nll_sum / static_cast<double>(scored)) : 0.0;
}
double PerplexityStats::reference_perplexity_error() const {
  return ppl_error(ref_nll_sum, ref_nll2_sum, scored);
}
double PerplexityStats::mean_kld() const {
  double s = 0.0;
  for (double k : kld) s += k;
  return kld.empty() ? 0.0 : s / static_cast<double>(kld.size());
}
double PerplexityStats::mean_kld_error() const {
  if (kld.size() < 2) return 0.0;
  const double mean = mean_kld();
  double s2 = 0.0;
  for (double k : kld) s2 += (k - mean) * (k - mean);
  const auto n = static_cast<double>(kld.size());
  return std::sqrt(s2 / (n - 1) / n);
}
double PerplexityStats::kld_quantile(double q) const {
  if (kld.empty()) return 0.0;
  std::vector<double> sorted = kld;
  std::sort(sorted.begin(), sorted.end());
  const auto i =
      static_cast<size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}
double PerplexityStats::same_top_fraction() const {
  return kld.empty() ? 0.0 : static_cast<double>(same_top) / static_cast<double>(kld.size());
}

Result<PerplexityStats> perplexity(runner::StepModel& model, runner::StepModel* reference,
                                   std::span<const std::vector<int32_t>> texts,
                                   const PerplexityOptions& options) {
  const runner::StepModelInfo& info = model.info();
  const int64_t max_window = window_length(info);
  if (max_window < 1) return Error(ErrorKind::kInvalidArgument, "perplexity: no room for a window");
  PerplexityStats s;
  s.window = options.window == 0 ? max_window : options.window;
  if (s.window < 2 || s.window > max_window) {
    return errorf(ErrorKind::kInvalidArgument,
                  "perplexity: window {} is outside [2, {}] (C - N = {} - {} of the model)",
                  s.window, max_window, info.context_len, info.context_len - max_window);
  }
  s.stride = options.stride == 0 ? s.window : options.stride;
  if (s.stride < 1 || s.stride > s.window) {
    return errorf(ErrorKind::kInvalidArgument,
                  "perplexity: stride {} is outside [1, {}] (the window)", s.stride, s.window);
  }
  if (reference != nullptr) {
    const runner::StepModelInfo& r = reference->info();
    if (r.context_len != info.context_len || r.vocab_size != info.vocab_size ||
        window_length(r) != max_window) {
      return errorf(ErrorKind::kInvalidArgument,
                    "perplexity: the reference (context {}, vocabulary {}, window {}) does not "
                    "match the model (context {}, vocabulary {}, window {})",
                    r.context_len, r.vocab_size, window_length(r), info.context_len,
                    info.vocab_size, max_window);
    }
  }
  for (const auto& t : texts) s.tokens += static_cast<int64_t>(t.size());
  if (s.tokens < 2) return Error(ErrorKind::kInvalidArgument, "perplexity: fewer than 2 tokens");

  const auto v = static_cast<size_t>(info.vocab_size);
  std::optional<Progress> progress;
  if (options.progress) progress.emplace("perplexity", s.tokens, "tokens");
  std::vector<float> ref_logits;  // [w, V] of the reference on the current window
  std::vector<double> lp, lq;
  for (size_t ti = 0; ti < texts.size(); ++ti) {
    const std::span<const int32_t> text(texts[ti]);
    const auto n = static_cast<int64_t>(text.size());
    int64_t scored_until = 0;  // targets below this are scored
    for (int64_t b = 0; scored_until < n; b += s.stride) {
      const int64_t e = std::min(b + s.window, n);
      const std::span<const int32_t> w =
          text.subspan(static_cast<size_t>(b), static_cast<size_t>(e - b));
      const int64_t first = std::max(b + 1, scored_until) - b;  // first scored target in w
      if (reference != nullptr) {
        ref_logits.assign(w.size() * v, 0.0f);
        HS_TRY_CTX(run_window(*reference, w, options.decode_tokens,
                              [&](int64_t pos, std::span<const float> row) {
                                std::copy(row.begin(), row.end(),
                                          ref_logits.begin() + static_cast<std::ptrdiff_t>(
                                                                   static_cast<size_t>(pos) * v));
                              }),
                   fmt::format("reference model on text {} window at token {}", ti, b));
      }
      auto on_logits = [&](int64_t pos, std::span<const float> row) {
        const int64_t target = pos + 1;
        if (target < first || target >= e - b) return;
        const auto tok = static_cast<size_t>(w[static_cast<size_t>(target)]);
        log_softmax(row, lq);
        s.nll_sum += -lq[tok];
        s.nll2_sum += lq[tok] * lq[tok];
        ++s.scored;
        if (reference == nullptr) return;
        std::span<const float> ref(ref_logits.data() + static_cast<size_t>(pos) * v, v);
        log_softmax(ref, lp);
        s.ref_nll_sum += -lp[tok];
        s.ref_nll2_sum += lp[tok] * lp[tok];
        double kl = 0.0;
        for (size_t j = 0; j < v; ++j) kl += std::exp(lp[j]) * (lp[j] - lq[j]);
        s.kld.push_back(std::max(0.0, kl));
        s.same_top += argmax(ref) == argmax(row);
      };
      HS_TRY_CTX(run_window(model, w, options.decode_tokens, on_logits),
                 fmt::format("text {} window at token {}", ti, b));
      ++s.windows;
      if (progress) progress->advance(e - scored_until);
      scored_until = e;
    }
  }
  if (progress) progress->finish();
  if (s.scored == 0) return Error(ErrorKind::kInvalidArgument, "perplexity: no token was scored");
  return s;
}

}  // namespace hs::ptq
