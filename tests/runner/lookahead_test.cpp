// Lookahead decoding on a fake model that checks every row's context: each row must see exactly
// the tokens of positions 0..its own position, once each, from the cache (every K and V head of
// every layer holding the right entry) and this step's rows. Its next token depends on the whole
// context, so any mask or cache mistake changes the text. Greedy lookahead must equal plain
// decoding token for token (and sampling with the same seed too), accept guesses on repetitive
// text, stop on EOS / max tokens / context end like plain decoding, and continue a decoder
// (chat) exactly like one run over the concatenated tokens. Also options parsing, the AR length
// choice and the n-gram pool.
#include "headsplit/runner/lookahead.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "headsplit/runner/generator.h"
#include "runner_testing.h"
#include "testing/testing.h"

namespace hs::runner {
namespace {

constexpr int32_t kVocab = 48;
constexpr int32_t kEos = 2;

// Cache value of (token, position) at layer l, kv head h, dim d; V entries are offset. Positions
// and tokens < 64 keep every value exact in uint16 and float.
int64_t encode(int32_t token, int32_t pos, int64_t l, int64_t h, int64_t d, bool is_v) {
  return (((token * 64 + pos) * 2 + l) * 4 + h * 2 + d) + (is_v ? 32768 : 0);
}

double read(std::span<const std::byte> b, int64_t i, int64_t es) {
  if (es == 4) {
    float x;
    std::memcpy(&x, b.data() + i * 4, 4);
    return x;
  }
  uint16_t x;
  std::memcpy(&x, b.data() + i * 2, 2);
  return x;
}

void write(std::span<std::byte> b, int64_t i, int64_t es, int64_t value) {
  if (es == 4) {
    const auto x = static_cast<float>(value);
    std::memcpy(b.data() + i * 4, &x, 4);
    return;
  }
  const auto x = static_cast<uint16_t>(value);
  std::memcpy(b.data() + i * 2, &x, 2);
}

// Next token after a context (tokens of positions 0..k): mostly a cycle of the last token (so
// n-grams repeat and guesses get accepted), perturbed by the sum of the whole context.
int32_t next_of(const std::vector<int32_t>& context) {
  int64_t sum = 0;
  for (int32_t t : context) sum += t;
  const int32_t last = context.back();
  int32_t next = sum % 11 == 0 ? (last * 5 + 3) % kVocab : (last * 3 + 1) % kVocab;
  return next == kEos ? 4 : next;
}

class ContextModel : public StepModel {
 public:
  ContextModel(std::vector<int64_t> ar_lens, int64_t context_len, KvElement element) {
    info_ = {.n_layers = 2,
             .n_kv_heads = 2,
             .head_dim = 2,
             .context_len = context_len,
             .vocab_size = kVocab,
             .ar_lens = std::move(ar_lens),
             .kv_element = element};
  }
  const StepModelInfo& info() const override { return info_; }

  Status step(int64_t t, std::span<const int32_t> tokens, std::span<const int32_t> positions,
              std::span<const uint16_t> mask, KvManager& kv, std::span<float> logits) override {
    const int64_t c = info_.context_len, p = c - t, es = kv.shape().elem_size;
    ++steps;
    if (t > 1) ++wide_steps;
    for (int64_t i = 0; i < t; ++i) {
      std::vector<std::pair<int32_t, int32_t>> seen;  // (position, token)
      for (int64_t s = 0; s < p; ++s) {
        if (mask[static_cast<size_t>(i * c + s)] == 0) continue;
        const auto raw = static_cast<int64_t>(read(kv.k_in(0), s, es));
        const auto token = static_cast<int32_t>(raw / 512);
        const auto pos = static_cast<int32_t>((raw / 8) % 64);
        check_slot(kv, s, token, p, es);
        seen.emplace_back(pos, token);
      }
      for (int64_t j = 0; j < t; ++j) {
        if (mask[static_cast<size_t>(i * c + p + j)] != 0) {
          seen.emplace_back(positions[static_cast<size_t>(j)], tokens[static_cast<size_t>(j)]);
        }
      }
      std::sort(seen.begin(), seen.end());
      std::vector<int32_t> context;
      bool ok = !seen.empty() && seen.back().first == positions[static_cast<size_t>(i)] &&
                seen.back().second == tokens[static_cast<size_t>(i)];
      for (size_t k = 0; k < seen.size(); ++k) {
        ok = ok && seen[k].first == static_cast<int32_t>(k);
        context.push_back(seen[k].second);
      }
      if (!ok) errors.push_back("step " + std::to_string(steps) + " row " + std::to_string(i));
      const int32_t pos = positions[static_cast<size_t>(i)];
      for (int64_t l = 0; l < 2; ++l) {
        for (int64_t h = 0; h < 2; ++h) {
          for (int64_t d = 0; d < 2; ++d) {
            write(kv.k_out(l), (h * 2 + d) * t + i, es, encode(tokens[i], pos, l, h, d, false));
            write(kv.v_out(l), (h * t + i) * 2 + d, es, encode(tokens[i], pos, l, h, d, true));
          }
        }
      }
      std::span<float> row = logits.subspan(static_cast<size_t>(i * kVocab), kVocab);
      std::fill(row.begin(), row.end(), 0.0f);
      const int32_t next = ok ? (pos + 1 == eos_at ? kEos : next_of(context)) : kVocab - 1;
      row[static_cast<size_t>(next)] = 2.0f;  // greedy picks it; sampling sees three candidates
      row[static_cast<size_t>((next + 1) % kVocab)] = 1.5f;
      row[static_cast<size_t>((next + 7) % kVocab)] = 1.0f;
    }
    return ok_status();
  }

  int32_t eos_at = -1;  // the position whose token is EOS
  int64_t steps = 0, wide_steps = 0;
  std::vector<std::string> errors;

 private:
  // Every K row and V head of every layer at slot s holds (token, s).
  void check_slot(const KvManager& kv, int64_t s, int32_t token, int64_t p, int64_t es) {
    for (int64_t l = 0; l < 2; ++l) {
      for (int64_t h = 0; h < 2; ++h) {
        for (int64_t d = 0; d < 2; ++d) {
          const auto pos = static_cast<int32_t>(s);
          if (read(kv.k_in(l), (h * 2 + d) * p + s, es) !=
                  static_cast<double>(encode(token, pos, l, h, d, false)) ||
              read(kv.v_in(l), (h * p + s) * 2 + d, es) !=
                  static_cast<double>(encode(token, pos, l, h, d, true))) {
            errors.push_back("slot " + std::to_string(s) + " layer " + std::to_string(l) +
                             " head " + std::to_string(h));
          }
        }
      }
    }
  }
  StepModelInfo info_;
};

std::unique_ptr<tokenizer::Tokenizer> make_tokenizer() {
  return testing::fake_tokenizer(kVocab, kEos);
}

const std::vector<int32_t> kPrompt = {1, 9, 4, 7, 12};

Result<GenerationResult> run(ContextModel& model, const GeneratorOptions& options,
                             const SamplerOptions& sampling = {},
                             const std::vector<int32_t>& prompt = kPrompt) {
  auto tok = make_tokenizer();
  HS_ASSIGN_OR_RETURN(Sampler sampler, Sampler::create(sampling));
  Generator generator(model, *tok);
  return generator.generate(prompt, sampler, options);
}

struct Case {
  int64_t n, w, g;
  KvElement element;
};

class LookaheadGreedy : public ::testing::TestWithParam<Case> {};
INSTANTIATE_TEST_SUITE_P(Configs, LookaheadGreedy,
                         ::testing::Values(Case{2, 1, 1, KvElement::kF32},
                                           Case{3, 2, 2, KvElement::kF32},
                                           Case{4, 3, 2, KvElement::kU16},
                                           Case{3, 4, 1, KvElement::kU16},
                                           Case{5, 2, 1, KvElement::kF32}));

TEST_P(LookaheadGreedy, EqualsPlainDecodingAndAcceptsGuesses) {
  const Case k = GetParam();
  const LookaheadOptions la{.ngram = k.n, .window = k.w, .guesses = k.g};
  ContextModel plain({8, 1, 16}, 64, k.element), ahead({8, 1, 16}, 64, k.element);
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult want, run(plain, {.max_new_tokens = 50}));
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult got,
                          run(ahead, {.max_new_tokens = 50, .lookahead = la}));
  EXPECT_EQ(plain.errors, std::vector<std::string>{});
  EXPECT_EQ(ahead.errors, std::vector<std::string>{});
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.stop, StopReason::kMaxTokens);
  EXPECT_EQ(got.lookahead_ar_len, lookahead_rows(la) <= 8 ? 8 : 16);  // smallest that fits
  const GenerationStats& s = got.stats;
  // 49 tokens fed after the prefill (the 50th is sampled, not fed), in fewer steps.
  EXPECT_EQ(s.decode_tokens, 49);
  EXPECT_EQ(want.stats.decode_steps, 49);
  EXPECT_GT(s.lookahead_steps, 0);
  EXPECT_EQ(s.decode_steps, s.lookahead_steps + (s.decode_tokens - s.lookahead_tokens));
  EXPECT_GT(s.lookahead_tokens, s.lookahead_steps) << "no guess was ever accepted";
  EXPECT_LE(s.lookahead_tokens, s.lookahead_steps * k.n);
  EXPECT_LT(s.decode_steps, 49);
  std::printf("N=%lld W=%lld G=%lld: %lld steps for 49 tokens (%.2f per lookahead step)\n",
              static_cast<long long>(k.n), static_cast<long long>(k.w), static_cast<long long>(k.g),
              static_cast<long long>(s.decode_steps), s.lookahead_tokens_per_step());
}

// Sampling: one draw per emitted token, from the row of exactly that prefix: same seed, same text.
TEST(Lookahead, SamplingWithTheSameSeedEqualsPlainDecoding) {
  const SamplerOptions sampling{.temperature = 0.9f, .seed = 5};
  ContextModel plain({8, 1, 16}, 64, KvElement::kF32), ahead({8, 1, 16}, 64, KvElement::kF32);
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult want, run(plain, {.max_new_tokens = 40}, sampling));
  HS_ASSERT_OK_AND_ASSIGN(
      GenerationResult got,
      run(ahead, {.max_new_tokens = 40, .lookahead = {.ngram = 3, .window = 3, .guesses = 2}},
          sampling));
  EXPECT_EQ(ahead.errors, std::vector<std::string>{});
  EXPECT_EQ(got.tokens, want.tokens);
}

// Near the end of the context whole steps no longer fit: the rest is decoded one token at a time
// and the run stops where plain decoding stops (prompt + new tokens <= C).
TEST(Lookahead, ContextEndFallsBackToOneTokenSteps) {
  ContextModel plain({8, 1, 16}, 40, KvElement::kU16), ahead({8, 1, 16}, 40, KvElement::kU16);
  const LookaheadOptions la{.ngram = 4, .window = 2, .guesses = 2};
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult want, run(plain, {.max_new_tokens = 100}));
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult got,
                          run(ahead, {.max_new_tokens = 100, .lookahead = la}));
  EXPECT_EQ(ahead.errors, std::vector<std::string>{});
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.tokens.size(), 35u);  // 5 + 35 = C
  EXPECT_EQ(got.stop, StopReason::kContextFull);
  EXPECT_GT(got.stats.lookahead_steps, 0);
  EXPECT_GT(got.stats.decode_tokens, got.stats.lookahead_tokens);  // plain steps at the end
}

TEST(Lookahead, StopsAtEosInsideAStep) {
  for (int32_t eos_at : {6, 13, 20, 27}) {
    ContextModel plain({8, 1, 16}, 64, KvElement::kF32), ahead({8, 1, 16}, 64, KvElement::kF32);
    plain.eos_at = ahead.eos_at = eos_at;
    HS_ASSERT_OK_AND_ASSIGN(GenerationResult want, run(plain, {.max_new_tokens = 50}));
    HS_ASSERT_OK_AND_ASSIGN(
        GenerationResult got,
        run(ahead, {.max_new_tokens = 50, .lookahead = {.ngram = 4, .window = 2, .guesses = 2}}));
    EXPECT_EQ(ahead.errors, std::vector<std::string>{});
    EXPECT_EQ(got.tokens, want.tokens) << eos_at;
    EXPECT_EQ(got.stop, StopReason::kEos);
    EXPECT_EQ(got.tokens.size(), static_cast<size_t>(eos_at - 5)) << eos_at;
  }
}

// A decoder continued with more tokens (a chat turn) is one run over the concatenation: the
// second prefill starts at n_past, and the generated text is the same.
TEST(Lookahead, ContinuingADecoderEqualsOneRun) {
  for (bool lookahead : {false, true}) {
    GeneratorOptions options{.max_new_tokens = 12};
    if (lookahead) options.lookahead = {.ngram = 3, .window = 2, .guesses = 2};
    ContextModel model({8, 1, 16}, 64, KvElement::kU16);
    auto tok = make_tokenizer();
    HS_ASSERT_OK_AND_ASSIGN(Sampler sampler, Sampler::create({}));
    Generator generator(model, *tok);
    HS_ASSERT_OK_AND_ASSIGN(DecoderOptions d, decoder_options(model.info(), options));
    HS_ASSERT_OK_AND_ASSIGN(Decoder decoder, Decoder::create(model, d));
    HS_ASSERT_OK_AND_ASSIGN(GenerationResult first,
                            generator.generate(decoder, kPrompt, sampler, options));
    ASSERT_EQ(first.tokens.size(), 12u);
    EXPECT_EQ(decoder.n_past(), 5 + 11);  // the last generated token is not fed yet
    // Turn 2: the pending token, then new text.
    std::vector<int32_t> turn = {first.tokens.back(), 30, 31, 5};
    HS_ASSERT_OK_AND_ASSIGN(GenerationResult second,
                            generator.generate(decoder, turn, sampler, options));
    EXPECT_EQ(second.start_position, 16);
    EXPECT_EQ(second.stats.prompt_tokens, 4);
    EXPECT_EQ(model.errors, std::vector<std::string>{});

    std::vector<int32_t> all = kPrompt;
    all.insert(all.end(), first.tokens.begin(), first.tokens.end() - 1);
    all.insert(all.end(), turn.begin(), turn.end());
    ContextModel fresh({8, 1, 16}, 64, KvElement::kU16);
    HS_ASSERT_OK_AND_ASSIGN(GenerationResult whole, run(fresh, options, {}, all));
    EXPECT_EQ(second.tokens, whole.tokens) << "lookahead " << lookahead;
  }
}

// The lookahead graph may be smaller than the decode graph: the cache is sized for both.
TEST(Lookahead, GraphSmallerThanTheDecodeGraph) {
  ContextModel plain({8, 4, 2}, 64, KvElement::kU16), ahead({8, 4, 2}, 64, KvElement::kU16);
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult want,
                          run(plain, {.max_new_tokens = 30, .decode_ar_len = 4}));
  HS_ASSERT_OK_AND_ASSIGN(GenerationResult got,
                          run(ahead, {.max_new_tokens = 30,
                                      .decode_ar_len = 4,
                                      .lookahead = {.ngram = 2, .window = 1, .guesses = 1}}));
  EXPECT_EQ(ahead.errors, std::vector<std::string>{});
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.lookahead_ar_len, 2);
  EXPECT_GT(got.stats.lookahead_steps, 0);
}

TEST(Lookahead, ArLengthChoiceAndErrors) {
  StepModelInfo info;
  info.ar_lens = {32, 1, 64};
  HS_ASSERT_OK_AND_ASSIGN(int64_t t,
                          lookahead_ar_len(info, {.ngram = 3, .window = 8, .guesses = 8}));
  EXPECT_EQ(t, 32);  // (8 + 8) * 2 = 32 rows: the AR-32 graph
  HS_ASSERT_OK_AND_ASSIGN(t, lookahead_ar_len(info, {.ngram = 4, .window = 8, .guesses = 4}));
  EXPECT_EQ(t, 64);  // 36 rows
  auto none = lookahead_ar_len(info, {.ngram = 5, .window = 15, .guesses = 15});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message(),
            "lookahead N=5 W=15 G=15 needs an ar length >= (W + G)(N - 1) = 120; the model has "
            "32, 1, 64 (export with --lookahead-ar 128, or choose a smaller N, W or G)");
  EXPECT_FALSE(lookahead_ar_len(info, {.ngram = 3, .window = 8, .guesses = 8, .ar_len = 1}).ok());
  EXPECT_FALSE(lookahead_ar_len(info, {.ngram = 3, .window = 8, .guesses = 8, .ar_len = 48}).ok());
  EXPECT_EQ(lookahead_export_ar_len({.ngram = 4, .window = 5, .guesses = 5}), 32);  // 30 rows
  EXPECT_EQ(lookahead_export_ar_len({.ngram = 2, .window = 1, .guesses = 1}), 2);
}

TEST(Lookahead, ParsesNwg) {
  HS_ASSERT_OK_AND_ASSIGN(LookaheadOptions o, parse_lookahead("3,8,8"));
  EXPECT_EQ(o.ngram, 3);
  EXPECT_EQ(o.window, 8);
  EXPECT_EQ(o.guesses, 8);
  for (const char* bad : {"", "3", "3,8", "3,8,8,1", "3,,8", "a,b,c", "3,8,8 ", "-3,8,8"}) {
    auto r = parse_lookahead(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.kind(), ErrorKind::kInvalidArgument);
  }
  EXPECT_EQ(parse_lookahead("3,x,8").error().message(),
            "lookahead: expected N,W,G (three integers, e.g. 3,8,8), got '3,x,8'");
  EXPECT_EQ(parse_lookahead("1,8,8").error().message(),
            "lookahead: the n-gram size N must be >= 2, got 1");
  EXPECT_EQ(parse_lookahead("3,0,8").error().message(),
            "lookahead: the window W must be >= 1, got 0");
  EXPECT_FALSE(parse_lookahead("3,8,0").ok());
  EXPECT_FALSE(parse_lookahead("3,100000,8").ok());
}

TEST(NgramPool, KeepsDistinctContinuationsInARing) {
  NgramPool pool(3, 2);  // N = 3: continuations of 2 tokens, 2 per first token
  EXPECT_EQ(pool.count(5), 0);
  const std::vector<int32_t> a = {1, 2}, b = {3, 4}, c = {5, 6};
  pool.add(5, a);
  pool.add(5, a);  // already there
  EXPECT_EQ(pool.count(5), 1);
  pool.add(5, b);
  EXPECT_EQ(pool.count(5), 2);
  pool.add(5, c);  // replaces the oldest (a)
  EXPECT_EQ(pool.count(5), 2);
  EXPECT_EQ(std::vector<int32_t>(pool.get(5, 0).begin(), pool.get(5, 0).end()), c);
  EXPECT_EQ(std::vector<int32_t>(pool.get(5, 1).begin(), pool.get(5, 1).end()), b);
  pool.add(7, a);
  EXPECT_EQ(pool.count(7), 1);
  EXPECT_EQ(pool.size(), 3);
}

TEST(Lookahead, NeedsADecoderWithALookaheadGraph) {
  ContextModel model({8, 1}, 64, KvElement::kF32);
  auto r = run(model, {.max_new_tokens = 4, .lookahead = {.ngram = 3, .window = 3, .guesses = 2}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.error().message().find("needs an ar length >= (W + G)(N - 1) = 10; the model has 8, 1"),
      std::string::npos)
      << r.error().message();
  // 8 rows fit the AR-8 prefill graph exactly: it is used for lookahead too.
  ContextModel fits({8, 1}, 64, KvElement::kF32);
  HS_ASSERT_OK_AND_ASSIGN(
      GenerationResult g,
      run(fits, {.max_new_tokens = 20, .lookahead = {.ngram = 3, .window = 2, .guesses = 2}}));
  EXPECT_EQ(g.lookahead_ar_len, 8);
  EXPECT_EQ(fits.errors, std::vector<std::string>{});
}

}  // namespace
}  // namespace hs::runner
