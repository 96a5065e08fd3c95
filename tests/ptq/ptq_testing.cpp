#include "ptq/ptq_testing.h"

#include <gtest/gtest.h>

#include <random>

#include "headsplit/frontend/loader.h"
#include "testing/testing.h"

namespace hs::ptq::testing {

const Stories* stories() {
  static std::unique_ptr<Stories> loaded = [] {
    auto s = std::make_unique<Stories>();
    auto model =
        frontend::load_model(hs::testing::shared_file("models/stories260K/stories260K.bin"),
                             hs::testing::shared_file("models/stories260K/tok512.bin"));
    if (!model.ok()) {
      ADD_FAILURE() << model.error().message();
      return std::unique_ptr<Stories>();
    }
    s->model = std::move(model).value();
    if (!s->model.tokenizer) {
      ADD_FAILURE() << "stories260K loaded without a tokenizer";
      return std::unique_ptr<Stories>();
    }
    auto tok = tokenizer::Tokenizer::create(*s->model.tokenizer);
    if (!tok.ok()) {
      ADD_FAILURE() << tok.error().message();
      return std::unique_ptr<Stories>();
    }
    s->tokenizer = std::move(tok).value();
    return s;
  }();
  return loaded.get();
}

frontend::LlamaModel smollm2_shaped(uint64_t seed) {
  frontend::LlamaConfig c = frontend::named_config("smollm2-135m").value();
  c.n_layers = 2;
  c.vocab_size = 256;  // the LM head is not what these tests are about; keeps them fast
  return frontend::make_random_llama(c, seed);
}

std::vector<std::vector<int32_t>> random_samples(int64_t vocab, int64_t count, int64_t length,
                                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int32_t>> samples;
  for (int64_t s = 0; s < count; ++s) {
    std::vector<int32_t> ids{1};
    for (int64_t i = 1; i < length; ++i) {
      ids.push_back(static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab)));
    }
    samples.push_back(std::move(ids));
  }
  return samples;
}

PtqOptions ptq_options(const quant::QuantConfig& config, std::vector<int64_t> ar_lens,
                       int64_t context) {
  PtqOptions o;
  o.config = config;
  o.ar_lens = std::move(ar_lens);
  o.build.context_len = context;
  o.calibration.progress = false;
  return o;
}

}  // namespace hs::ptq::testing
