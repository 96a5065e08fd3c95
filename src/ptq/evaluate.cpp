// Perplexity, top-1 agreement and logits SQNR of several StepModels on the same windows.
#include "headsplit/ptq/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "headsplit/support/progress.h"

namespace hs::ptq {

namespace {

int64_t argmax(std::span<const float> row) {
  return std::max_element(row.begin(), row.end()) - row.begin();
}

// -log softmax(row)[target], in double.
double nll(std::span<const float> row, int32_t target) {
  double m = -std::numeric_limits<double>::infinity();
  for (float x : row) m = std::max(m, static_cast<double>(x));
  double sum = 0.0;
  for (float x : row) sum += std::exp(static_cast<double>(x) - m);
  return std::log(sum) + m - static_cast<double>(row[static_cast<size_t>(target)]);
}

Status check_models(std::span<runner::StepModel* const> models,
                    std::span<const std::string> names) {
  if (models.empty()) return Error(ErrorKind::kInvalidArgument, "evaluate: no model");
  if (names.size() != models.size()) {
    return errorf(ErrorKind::kInvalidArgument, "evaluate: {} models but {} names", models.size(),
                  names.size());
  }
  const runner::StepModelInfo& ref = models[0]->info();
  for (size_t i = 1; i < models.size(); ++i) {
    const runner::StepModelInfo& m = models[i]->info();
    if (m.context_len != ref.context_len || m.vocab_size != ref.vocab_size ||
        window_length(m) != window_length(ref)) {
      return errorf(ErrorKind::kInvalidArgument,
                    "evaluate: model '{}' (context {}, vocabulary {}, window {}) does not match "
                    "'{}' (context {}, vocabulary {}, window {})",
                    names[i], m.context_len, m.vocab_size, window_length(m), names[0],
                    ref.context_len, ref.vocab_size, window_length(ref));
    }
  }
  return ok_status();
}

}  // namespace

double ModelMetrics::perplexity() const {
  return scored_tokens > 0 ? std::exp(nll_sum / static_cast<double>(scored_tokens)) : 0.0;
}

double ModelMetrics::top1_agreement() const {
  return scored_tokens > 0 ? static_cast<double>(top1_matches) / static_cast<double>(scored_tokens)
                           : 0.0;
}

double ModelMetrics::sqnr_db() const {
  if (noise_energy == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal_energy / noise_energy);
}

Result<std::vector<ModelMetrics>> evaluate(std::span<runner::StepModel* const> models,
                                           std::span<const std::string> names,
                                           std::span<const std::vector<int32_t>> texts,
                                           const EvalOptions& options) {
  HS_TRY(check_models(models, names));
  const int64_t window = window_length(models[0]->info());
  const auto v = static_cast<size_t>(models[0]->info().vocab_size);
  int64_t total = 0;
  for (const auto& t : texts) total += static_cast<int64_t>(t.size());
  if (total == 0) return Error(ErrorKind::kInvalidArgument, "evaluate: no evaluation tokens");
  if (window < 1) return Error(ErrorKind::kInvalidArgument, "evaluate: no room for a window");

  std::vector<ModelMetrics> metrics(models.size());
  for (size_t i = 0; i < models.size(); ++i) metrics[i].name = names[i];
  std::optional<Progress> progress;
  if (options.progress) {
    progress.emplace("evaluate", total * static_cast<int64_t>(models.size()), "tokens");
  }
  std::vector<float> reference;  // [w, V] logits of models[0]
  for (size_t ti = 0; ti < texts.size(); ++ti) {
    for (std::span<const int32_t> w : split_windows(texts[ti], window)) {
      const auto n = static_cast<int64_t>(w.size());
      reference.assign(w.size() * v, 0.0f);
      for (size_t mi = 0; mi < models.size(); ++mi) {
        ModelMetrics& m = metrics[mi];
        auto on_logits = [&](int64_t pos, std::span<const float> row) {
          if (mi == 0)
            std::copy(
                row.begin(), row.end(),
                reference.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(pos) * v));
          if (pos + 1 >= n) return;  // predicts past the window: not scored
          std::span<const float> ref(reference.data() + static_cast<size_t>(pos) * v, v);
          ++m.scored_tokens;
          m.nll_sum += nll(row, w[static_cast<size_t>(pos + 1)]);
          m.top1_matches += argmax(row) == argmax(ref);
          for (size_t j = 0; j < v; ++j) {
            const double f = ref[j], d = f - static_cast<double>(row[j]);
            m.signal_energy += f * f;
            m.noise_energy += d * d;
          }
        };
        HS_TRY_CTX(run_window(*models[mi], w, options.decode_tokens, on_logits),
                   fmt::format("evaluating '{}' on text {}", names[mi], ti));
        ++m.windows;
        if (progress) progress->advance(n);
      }
    }
  }
  if (progress) progress->finish();
  return metrics;
}

}  // namespace hs::ptq
