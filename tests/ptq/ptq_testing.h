// Helpers shared by the quant tests: stories260K with its tokenizer, the SmolLM2-shaped random
// model, a quick calibration + quantization of graphs on seeded random tokens, and a step model
// with fixed logits for hand-computed metrics.
#pragma once

#include <memory>
#include <vector>

#include "headsplit/frontend/builder.h"
#include "headsplit/ptq/quantize_model.h"
#include "headsplit/runner/step_model.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::ptq::testing {

struct Stories {
  frontend::LlamaModel model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
};

// stories260K.bin + tok512.bin, loaded once; nullptr (with a test failure) if loading fails.
const Stories* stories();

// SmolLM2-135M shape (D 576, H 9, Hkv 3, Dh 64, F 1536) with 2 layers and V = 256.
frontend::LlamaModel smollm2_shaped(uint64_t seed);

// `count` samples of `length` seeded random token ids in [0, V), each starting with BOS id 1.
std::vector<std::vector<int32_t>> random_samples(int64_t vocab, int64_t count, int64_t length,
                                                 uint64_t seed);

// PtqOptions with the config, graphs {ar_lens}, context C, progress off.
PtqOptions ptq_options(const quant::QuantConfig& config, std::vector<int64_t> ar_lens,
                       int64_t context);

// A StepModel whose logits row is [a, b] for every token: V 2, context 8, AR length 4 (windows
// of at most 4 tokens).
class FixedLogits : public runner::StepModel {
 public:
  FixedLogits(float a, float b) : a_(a), b_(b) {
    info_.n_layers = 1;
    info_.n_kv_heads = 1;
    info_.head_dim = 2;
    info_.context_len = 8;
    info_.vocab_size = 2;
    info_.ar_lens = {4};
  }
  const runner::StepModelInfo& info() const override { return info_; }
  Status step(int64_t, std::span<const int32_t> tokens, std::span<const int32_t>,
              std::span<const uint16_t>, runner::KvManager&, std::span<float> logits) override {
    for (size_t t = 0; t < tokens.size(); ++t) {
      logits[2 * t] = a_;
      logits[2 * t + 1] = b_;
    }
    return ok_status();
  }

 private:
  float a_, b_;
  runner::StepModelInfo info_;
};

}  // namespace hs::ptq::testing
