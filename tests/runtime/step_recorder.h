// A StepModel that forwards to another and keeps the logits of every step, and a greedy
// generation through it (end-to-end tests).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "headsplit/runner/generator.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::runtime::testing {

class Recorder final : public runner::StepModel {
 public:
  explicit Recorder(runner::StepModel& inner) : inner_(inner) {}
  const runner::StepModelInfo& info() const override { return inner_.info(); }
  Status step(int64_t ar_len, std::span<const int32_t> tokens, std::span<const int32_t> positions,
              std::span<const uint16_t> mask, runner::KvManager& kv,
              std::span<float> logits) override {
    HS_TRY(inner_.step(ar_len, tokens, positions, mask, kv, logits));
    steps.emplace_back(logits.begin(), logits.end());
    return ok_status();
  }
  std::vector<std::vector<float>> steps;  // [T, V] per step

 private:
  runner::StepModel& inner_;
};

struct Recorded {
  std::vector<int32_t> tokens;
  runner::GenerationStats stats;
  std::vector<std::vector<float>> logits;  // per step: [T, V]
};

// Greedy generation from `prompt` (BOS added) with `options`, recording every step's logits.
inline Result<Recorded> record_greedy(runner::StepModel& model, const tokenizer::Tokenizer& tok,
                                      const std::string& prompt,
                                      const runner::GeneratorOptions& options) {
  Recorder recorder(model);
  runner::Generator generator(recorder, tok);
  HS_ASSIGN_OR_RETURN(runner::Sampler sampler, runner::Sampler::create({}));
  const std::vector<int32_t> ids = tok.encode(prompt, /*add_bos=*/true);
  HS_ASSIGN_OR_RETURN(runner::GenerationResult r, generator.generate(ids, sampler, options));
  return Recorded{std::move(r.tokens), r.stats, std::move(recorder.steps)};
}

}  // namespace hs::runtime::testing
