// Token sampling from a logits row: greedy, temperature, top-k, top-p; seeded.
//
// Deterministic across runs and platforms: the random stream is our own splitmix64 and a
// uniform draw is its top 53 bits scaled to [0, 1); no std::*_distribution. Probabilities use
// double std::exp, the only libm dependency. Candidates are ordered by (logit descending, id
// ascending), so ties always resolve to the lowest id.
//   greedy (temperature 0): argmax, lowest id on ties
//   otherwise: p_i = softmax(logits / temperature); keep the top_k most likely (0 = all);
//   keep the smallest prefix whose probability reaches top_p (1 = all); renormalize; draw.
#pragma once

#include <cstdint>
#include <span>

#include "headsplit/support/result.h"

namespace hs::runner {

struct SamplerOptions {
  float temperature = 0.0f;  // 0: greedy
  int64_t top_k = 0;         // 0: no top-k cut
  float top_p = 1.0f;        // in (0, 1]; 1: no nucleus cut
  uint64_t seed = 0;
};

// splitmix64: a small, fast, well-mixed 64-bit generator with a fixed definition.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next_u64();
  // Uniform in [0, 1): the top 53 bits of next_u64() times 2^-53.
  double next_double();

 private:
  uint64_t state_;
};

class Sampler {
 public:
  // Errors (kInvalidArgument) name the option: temperature < 0 or not finite, top_k < 0,
  // top_p outside (0, 1].
  static Result<Sampler> create(const SamplerOptions& options);

  // Picks a token id from one logits row [V] (V > 0).
  int32_t sample(std::span<const float> logits);

  const SamplerOptions& options() const { return options_; }
  bool greedy() const { return options_.temperature == 0.0f; }

 private:
  explicit Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}
  SamplerOptions options_;
  SplitMix64 rng_;
};

// Index of the largest value, lowest index on ties (NaNs never win). Requires V > 0.
int32_t argmax(std::span<const float> logits);

}  // namespace hs::runner
