// Helpers shared by the quant tests: stories260K with its tokenizer, the SmolLM2-shaped random
// model, and a quick calibration + quantization of graphs on seeded random tokens.
#pragma once

#include <memory>
#include <vector>

#include "headsplit/frontend/builder.h"
#include "headsplit/ptq/quantize_model.h"
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

}  // namespace hs::ptq::testing
