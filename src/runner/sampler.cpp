// Sampler: greedy / temperature / top-k / top-p over one logits row, with a splitmix64 stream.
#include "headsplit/runner/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace hs::runner {

uint64_t SplitMix64::next_u64() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double SplitMix64::next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

int32_t argmax(std::span<const float> logits) {
  HS_CHECK(!logits.empty(), "argmax of an empty logits row");
  int32_t best = 0;
  float best_value = -std::numeric_limits<float>::infinity();
  bool found = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (std::isnan(x)) continue;
    if (!found || x > best_value) {
      best = static_cast<int32_t>(i);
      best_value = x;
      found = true;
    }
  }
  return best;
}

Result<Sampler> Sampler::create(const SamplerOptions& options) {
  if (!std::isfinite(options.temperature) || options.temperature < 0.0f) {
    return errorf(ErrorKind::kInvalidArgument, "sampler: temperature must be >= 0, got {}",
                  options.temperature);
  }
  if (options.top_k < 0) {
    return errorf(ErrorKind::kInvalidArgument, "sampler: top_k must be >= 0, got {}",
                  options.top_k);
  }
  if (!(options.top_p > 0.0f && options.top_p <= 1.0f)) {
    return errorf(ErrorKind::kInvalidArgument, "sampler: top_p must be in (0, 1], got {}",
                  options.top_p);
  }
  return Sampler(options);
}

int32_t Sampler::sample(std::span<const float> logits) {
  HS_CHECK(!logits.empty(), "sampling from an empty logits row");
  if (greedy()) return argmax(logits);

  // Candidates by (logit descending, id ascending); NaN counts as -inf.
  auto value = [&](int32_t id) {
    const float x = logits[static_cast<size_t>(id)];
    return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x;
  };
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto before = [&](int32_t a, int32_t b) {
    const float va = value(a), vb = value(b);
    return va > vb || (va == vb && a < b);
  };
  size_t keep = ids.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < keep) {
    keep = static_cast<size_t>(options_.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(),
                      before);
  } else {
    std::sort(ids.begin(), ids.end(), before);
  }

  // Unnormalized probabilities exp((l - l_max) / temperature) of the kept candidates.
  const double max_logit = value(ids[0]);
  const double temperature = options_.temperature;
  std::vector<double> weights(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    const double v = value(ids[i]);
    weights[i] = std::isinf(v) ? 0.0 : std::exp((v - max_logit) / temperature);
    total += weights[i];
  }
  if (!(total > 0.0)) return ids[0];  // every logit -inf/NaN: fall back to the first id

  // Nucleus: the smallest prefix whose probability reaches top_p.
  if (options_.top_p < 1.0f) {
    const double target = static_cast<double>(options_.top_p) * total;
    double cumulative = 0.0;
    size_t n = 0;
    while (n < keep) {
      cumulative += weights[n++];
      if (cumulative >= target) break;
    }
    keep = n;
    total = cumulative;
  }

  const double u = rng_.next_double() * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += weights[i];
    if (u < cumulative) return ids[i];
  }
  return ids[keep - 1];  // rounding left u at the very top
}

}  // namespace hs::runner
