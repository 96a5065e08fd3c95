// Generator on a fake StepModel: chunking, n_update of the last chunk, positions, the mask rows
// seen per step, the cache contents seen at every step (K/V echo, across the AR switch), EOS,
// the context bound (error and clamping), for float32, uint16 and uint8 caches.
#include "headsplit/runner/generator.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "runner_testing.h"
#include "testing/testing.h"

namespace hs::runner {
namespace {

constexpr int32_t kVocab = 32;
constexpr int32_t kEos = 2;

// Next token of the fake model for `token` at `pos` (never EOS unless asked).
int32_t next_of(int32_t token, int32_t pos) {
  int32_t t = (3 * token + pos + 5) % kVocab;
  return t == kEos ? 3 : t;
}

// The value the fake model stores for (token, position, layer, element r of the K row / V
// head block); u8 caches keep it modulo 251.
double encode(int32_t token, int32_t pos, int64_t layer, int64_t r, bool is_v, int64_t es) {
  const int64_t raw = (((token * 16 + pos) * 2 + layer) * 8 + r) + (is_v ? 8192 : 0);
  return static_cast<double>(es == 1 ? raw % 251 : raw);
}

struct StepRecord {
  int64_t ar_len = 0;
  std::vector<int32_t> tokens, positions;
  std::vector<std::string> mask_rows;  // '#' attend, '.' masked
};

// A StepModel whose logits pick next_of(token, pos) (or EOS at `eos_at`) and whose new K/V
// entries encode (token, position). Every step checks that each cache slot the mask lets row 0
// see holds the entries of the token last fed at that position.
class FakeModel : public StepModel {
 public:
  FakeModel(std::vector<int64_t> ar_lens, int64_t context_len, KvElement element) {
    info_.n_layers = 2;
    info_.n_kv_heads = 2;
    info_.head_dim = 2;
    info_.context_len = context_len;
    info_.vocab_size = kVocab;
    info_.ar_lens = std::move(ar_lens);
    info_.kv_element = element;
  }
  const StepModelInfo& info() const override { return info_; }

  Status step(int64_t ar_len, std::span<const int32_t> tokens, std::span<const int32_t> positions,
              std::span<const uint16_t> mask, KvManager& kv, std::span<float> logits) override {
    const int64_t c = info_.context_len, p = c - ar_len, es = kv.shape().elem_size;
    EXPECT_EQ(kv.ar_len(), ar_len);
    EXPECT_EQ(static_cast<int64_t>(tokens.size()), ar_len);
    EXPECT_EQ(static_cast<int64_t>(mask.size()), ar_len * c);
    EXPECT_EQ(static_cast<int64_t>(logits.size()), ar_len * kVocab);
    StepRecord rec{ar_len, {tokens.begin(), tokens.end()}, {positions.begin(), positions.end()}};
    for (int64_t i = 0; i < ar_len; ++i) {
      std::string row;
      for (int64_t j = 0; j < c; ++j) row += mask[static_cast<size_t>(i * c + j)] ? '#' : '.';
      rec.mask_rows.push_back(row);
    }
    // The caches as row 0 sees them.
    for (int64_t s = 0; s < p; ++s) {
      if (mask[static_cast<size_t>(s)] == 0) continue;
      const int32_t token = fed_.count(s) ? fed_[static_cast<int32_t>(s)] : -1;
      for (int64_t l = 0; l < 2; ++l) {
        for (int64_t r = 0; r < 4; ++r) {
          const int64_t h = r / 2, d = r % 2;
          if (read(kv.k_in(l), r * p + s, es) !=
                  encode(token, static_cast<int32_t>(s), l, r, false, es) ||
              read(kv.v_in(l), (h * p + s) * 2 + d, es) !=
                  encode(token, static_cast<int32_t>(s), l, r, true, es)) {
            cache_errors_.push_back("step " + std::to_string(records_.size()) + " slot " +
                                    std::to_string(s) + " layer " + std::to_string(l));
          }
        }
      }
    }
    // New entries and logits.
    for (int64_t t = 0; t < ar_len; ++t) {
      const int32_t token = tokens[static_cast<size_t>(t)], pos = positions[static_cast<size_t>(t)];
      fed_[pos] = token;
      for (int64_t l = 0; l < 2; ++l) {
        for (int64_t r = 0; r < 4; ++r) {
          const int64_t h = r / 2, d = r % 2;
          write(kv.k_out(l), r * ar_len + t, es, encode(token, pos, l, r, false, es));
          write(kv.v_out(l), (h * ar_len + t) * 2 + d, es, encode(token, pos, l, r, true, es));
        }
      }
      std::span<float> row = logits.subspan(static_cast<size_t>(t * kVocab), kVocab);
      std::fill(row.begin(), row.end(), 0.0f);
      row[static_cast<size_t>(pos + 1 == eos_at ? kEos : next_of(token, pos))] = 1.0f;
    }
    records_.push_back(std::move(rec));
    return ok_status();
  }

  static double read(std::span<const std::byte> b, int64_t i, int64_t es) {
    const std::byte* at = b.data() + i * es;
    if (es == 4) {
      float x;
      std::memcpy(&x, at, 4);
      return x;
    }
    if (es == 2) {
      uint16_t x;
      std::memcpy(&x, at, 2);
      return x;
    }
    return static_cast<double>(static_cast<uint8_t>(*at));
  }
  static void write(std::span<std::byte> b, int64_t i, int64_t es, double value) {
    std::byte* at = b.data() + i * es;
    if (es == 4) {
      float x = static_cast<float>(value);
      std::memcpy(at, &x, 4);
      return;
    }
    if (es == 2) {
      uint16_t x = static_cast<uint16_t>(value);
      std::memcpy(at, &x, 2);
      return;
    }
    *at = static_cast<std::byte>(static_cast<uint8_t>(value));
  }

  int32_t eos_at = -1;  // position whose token the model predicts to be EOS
  std::vector<StepRecord> records_;
  std::vector<std::string> cache_errors_;

 private:
  StepModelInfo info_;
  std::map<int32_t, int32_t> fed_;  // position -> token last fed there
};

std::unique_ptr<tokenizer::Tokenizer> make_tokenizer() {
  return testing::fake_tokenizer(kVocab, kEos);
}

std::vector<int32_t> expected_tokens(const std::vector<int32_t>& prompt, int64_t m) {
  std::vector<int32_t> out;
  int32_t token = prompt.back(), pos = static_cast<int32_t>(prompt.size()) - 1;
  for (int64_t i = 0; i < m; ++i) out.push_back(token = next_of(token, pos++));
  return out;
}

class GeneratorTyped : public ::testing::TestWithParam<KvElement> {};
INSTANTIATE_TEST_SUITE_P(Elements, GeneratorTyped,
                         ::testing::Values(KvElement::kF32, KvElement::kU16, KvElement::kU8));

TEST_P(GeneratorTyped, HybridChunksThenDecodes) {
  // C = 16, N = 4, T_d = 1, prompt of 6 tokens: chunks [0,4) and [4,6) + 2 padded rows.
  FakeModel model({4, 1}, 16, GetParam());
  auto tok = make_tokenizer();
  HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
  Generator gen(model, *tok);
  const std::vector<int32_t> prompt = {1, 9, 4, 7, 12, 20};
  std::string text;
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult r,
                          gen.generate(prompt, sampler, {.max_new_tokens = 5, .pad_token = 0},
                                       [&](int32_t, std::string_view piece) { text += piece; }));
  EXPECT_EQ(model.cache_errors_, std::vector<std::string>{});
  EXPECT_EQ(r.tokens, expected_tokens(prompt, 5));
  EXPECT_EQ(r.stop, StopReason::kMaxTokens);
  EXPECT_EQ(r.prefill_ar_len, 4);
  EXPECT_EQ(r.decode_ar_len, 1);
  std::string want;
  for (int32_t t : r.tokens) want += " t" + std::to_string(t);
  EXPECT_EQ(text, want);

  // 2 prefill steps, then 4 decode steps (the 5th token needs no step).
  ASSERT_EQ(model.records_.size(), 6u);
  const auto& s0 = model.records_[0];
  EXPECT_EQ(s0.ar_len, 4);
  EXPECT_EQ(s0.tokens, (std::vector<int32_t>{1, 9, 4, 7}));
  EXPECT_EQ(s0.positions, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(s0.mask_rows, (std::vector<std::string>{"............#...",  //
                                                    "............##..",  //
                                                    "............###.",  //
                                                    "............####"}));
  const auto& s1 = model.records_[1];
  EXPECT_EQ(s1.tokens, (std::vector<int32_t>{12, 20, 0, 0}));  // padded past the prompt
  EXPECT_EQ(s1.positions, (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(s1.mask_rows, (std::vector<std::string>{"####........#...",  //
                                                    "####........##..",  //
                                                    "####........###.",  //
                                                    "####........####"}));
  // Decode: after the switch to T = 1 (P = 15), slots [0, 6) then one more per step.
  for (size_t k = 0; k < 4; ++k) {
    const auto& s = model.records_[2 + k];
    EXPECT_EQ(s.ar_len, 1);
    EXPECT_EQ(s.tokens, (std::vector<int32_t>{r.tokens[k]}));
    EXPECT_EQ(s.positions, (std::vector<int32_t>{static_cast<int32_t>(6 + k)}));
    EXPECT_EQ(s.mask_rows[0], std::string(6 + k, '#') + std::string(15 - 6 - k, '.') + "#");
  }
  EXPECT_EQ(r.stats.prompt_tokens, 6);
  EXPECT_EQ(r.stats.prefill_steps, 2);
  EXPECT_EQ(r.stats.decode_steps, 4);
  EXPECT_EQ(r.stats.generated_tokens, 5);
}

TEST_P(GeneratorTyped, PromptMultipleOfNAndSingleToken) {
  auto tok = make_tokenizer();
  for (const std::vector<int32_t>& prompt :
       {std::vector<int32_t>{1, 5, 6, 7, 8, 9, 10, 11}, std::vector<int32_t>{1}}) {
    FakeModel model({4, 1}, 16, GetParam());
    HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
    Generator gen(model, *tok);
    HS_ASSERT_OK_AND_ASSIGN(GenerationResult r,
                            gen.generate(prompt, sampler, {.max_new_tokens = 3}));
    EXPECT_EQ(model.cache_errors_, std::vector<std::string>{});
    EXPECT_EQ(r.tokens, expected_tokens(prompt, 3));
    const size_t chunks = (prompt.size() + 3) / 4;
    ASSERT_EQ(model.records_.size(), chunks + 2);
    // The first decode step sees every prompt slot: the last chunk stored n_update entries.
    EXPECT_EQ(model.records_[chunks].mask_rows[0],
              std::string(prompt.size(), '#') + std::string(15 - prompt.size(), '.') + "#");
  }
}

TEST_P(GeneratorTyped, ArOneOnly) {
  FakeModel model({1}, 12, GetParam());
  auto tok = make_tokenizer();
  HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
  Generator gen(model, *tok);
  const std::vector<int32_t> prompt = {1, 4, 8};
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult r, gen.generate(prompt, sampler, {.max_new_tokens = 4}));
  EXPECT_EQ(model.cache_errors_, std::vector<std::string>{});
  EXPECT_EQ(r.tokens, expected_tokens(prompt, 4));
  ASSERT_EQ(model.records_.size(), 3u + 3u);
  for (size_t k = 0; k < model.records_.size(); ++k) {
    EXPECT_EQ(model.records_[k].positions, (std::vector<int32_t>{static_cast<int32_t>(k)}));
    EXPECT_EQ(model.records_[k].mask_rows[0], std::string(k, '#') + std::string(11 - k, '.') + "#");
  }
}

TEST(Generator, StopsAtEos) {
  FakeModel model({4, 1}, 16, KvElement::kF32);
  model.eos_at = 8;  // the token for position 8 is EOS
  auto tok = make_tokenizer();
  HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
  Generator gen(model, *tok);
  const std::vector<int32_t> prompt = {1, 3, 5};
  int calls = 0;
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult r,
                          gen.generate(prompt, sampler, {.max_new_tokens = 10},
                                       [&](int32_t, std::string_view) { ++calls; }));
  EXPECT_EQ(r.stop, StopReason::kEos);
  EXPECT_EQ(r.tokens, expected_tokens(prompt, 5));  // positions 3..7; EOS not returned
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(r.stats.generated_tokens, 5);
}

TEST(Generator, ContextBound) {
  auto tok = make_tokenizer();
  HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
  std::vector<int32_t> prompt(13, 5);
  prompt[0] = 1;
  {
    // C = 16, N = 4: a prompt of 13 > C - N = 12 tokens.
    FakeModel model({4, 1}, 16, KvElement::kF32);
    Generator gen(model, *tok);
    auto r = gen.generate(prompt, sampler, {.max_new_tokens = 5});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(r.error().message(),
              "generate: a prompt of 13 tokens (+5 requested new tokens) does not fit the "
              "context of 16: prefill with ar length 4 has 12 cache slots");
    EXPECT_TRUE(model.records_.empty());  // nothing ran
  }
  {
    // 12 tokens fit; n + m <= C - T_d + 1 = 16 clamps 100 requested tokens to 4.
    prompt.resize(12);
    FakeModel model({4, 1}, 16, KvElement::kF32);
    Generator gen(model, *tok);
    HS_ASSERT_OK_AND_ASSIGN(GenerationResult r,
                            gen.generate(prompt, sampler, {.max_new_tokens = 100}));
    EXPECT_EQ(model.cache_errors_, std::vector<std::string>{});
    EXPECT_EQ(r.requested_new_tokens, 100);
    EXPECT_EQ(r.max_new_tokens, 4);
    EXPECT_EQ(r.stop, StopReason::kContextFull);
    EXPECT_EQ(r.tokens, expected_tokens(prompt, 4));
    // The last decode step fed position 14 (its update fills the last slot of P = 15).
    EXPECT_EQ(model.records_.back().positions, (std::vector<int32_t>{14}));
    EXPECT_EQ(model.records_.back().mask_rows[0], std::string(14, '#') + ".#");
  }
}

TEST(Generator, PrefillOnly) {
  FakeModel model({4, 1}, 16, KvElement::kU16);
  auto tok = make_tokenizer();
  HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
  Generator gen(model, *tok);
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult r, gen.generate(std::vector<int32_t>{1, 2, 3, 4, 5},
                                                           sampler, {.max_new_tokens = 0}));
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(model.records_.size(), 2u);
  EXPECT_EQ(r.stats.prefill_steps, 2);
}

TEST(Generator, BadArguments) {
  FakeModel model({4, 1}, 16, KvElement::kF32);
  auto tok = make_tokenizer();
  HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
  Generator gen(model, *tok);
  auto empty = gen.generate(std::vector<int32_t>{}, sampler, {});
  EXPECT_EQ(empty.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(empty.error().message(), "generate: the prompt is empty");
  auto bad_id = gen.generate(std::vector<int32_t>{1, 40}, sampler, {});
  EXPECT_EQ(bad_id.error().message(),
            "generate: prompt token 1 has id 40, outside the vocabulary [0, 32)");
  auto bad_ar = gen.generate(std::vector<int32_t>{1}, sampler, {.prefill_ar_len = 8});
  EXPECT_EQ(bad_ar.error().message(),
            "generate: the model has no graph for ar length 8 (it has 4, 1)");
  auto inverted =
      gen.generate(std::vector<int32_t>{1}, sampler, {.prefill_ar_len = 1, .decode_ar_len = 4});
  EXPECT_EQ(inverted.error().message(),
            "generate: prefill ar length 1 is smaller than decode ar length 4");
  EXPECT_TRUE(model.records_.empty());
}

TEST(Generator, ExplicitPrefillArOne) {
  // prefill_ar_len = 1 on a hybrid model: the whole run uses the AR-1 graph.
  FakeModel model({4, 1}, 16, KvElement::kF32);
  auto tok = make_tokenizer();
  HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
  Generator gen(model, *tok);
  const std::vector<int32_t> prompt = {1, 6, 7};
  HS_ASSERT_OK_AND_ASSIGN(
      GenerationResult r,
      gen.generate(prompt, sampler, {.max_new_tokens = 2, .prefill_ar_len = 1}));
  EXPECT_EQ(r.tokens, expected_tokens(prompt, 2));
  for (const auto& s : model.records_) EXPECT_EQ(s.ar_len, 1);
  EXPECT_EQ(model.cache_errors_, std::vector<std::string>{});
}

}  // namespace
}  // namespace hs::runner
