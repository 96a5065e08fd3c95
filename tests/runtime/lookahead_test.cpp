// Lookahead decoding end to end on stories260K: greedy tokens identical to AR-1 decoding.
//
// The guarantee holds when a verified row is computed exactly like the AR-1 step it replaces.
// Every op but the projections computes a row independently of the step's other rows (the
// attention matmuls and softmax of the runtime are bit-identical to the reference kernels for
// any T), and masked columns contribute exact zeros. The runtime's quantized projections take
// the dot-product path for fewer than 8 rows and packed panels from 8 rows on (kernels/qgemm.h),
// with different rounding. So:
//   - on a lookahead graph of fewer than 8 rows (here AR-6, N=2 W=3 G=3), lookahead on the fast
//     runtime gives AR-1's tokens exactly: 20 prompts x 200 tokens, split and unsplit, 16a8w and
//     16a4w;
//   - on the interpreter (reference kernels, the same for every T) it does for any graph, the
//     AR-32 prefill graph included;
//   - on the fast runtime with the AR-32 graph it gives exactly what plain decoding on that graph
//     gives, and can part from AR-1 only where AR-1's top two logits are within the kernels'
//     rounding (TokensPartOnlyAtNearTies).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/runner/generator.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "step_recorder.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

using hs::testing::exported;
using hs::testing::Exported;
using hs::testing::make_tokenizer;

#ifdef HS_SANITIZE
constexpr size_t kPromptCount = 3;  // sanitizers are ~20x slower; the full run is optimized
constexpr int64_t kNewTokens = 40;
#else
constexpr size_t kPromptCount = 20;
constexpr int64_t kNewTokens = 200;
#endif
// The lookahead graph: below the 8 rows where the projections switch kernels.
constexpr int64_t kSmallAr = 6;
const runner::LookaheadOptions kSmall{.ngram = 2, .window = 3, .guesses = 3};  // 6 rows
const runner::LookaheadOptions kWide{.ngram = 3, .window = 8, .guesses = 8};   // 32 rows

const char* const kPrompts[] = {
    "Once upon a time, there was a little girl named Lily.",
    "One day, a boy named Tim found a big red ball.",
    "Tom and his mom went to the store. They",
    "The dog ran to the park and",
    "Sara had a new doll. She",
    "Ben liked to play with his truck.",
    "It was a sunny day. The birds",
    "Mia wanted to bake a cake for her mom.",
    "The cat sat on the mat and looked at",
    "Once there was a big, friendly bear who",
    "Lucy and her brother went to the beach.",
    "The little bird could not fly yet.",
    "Max had a shiny blue car. One day",
    "Anna saw a butterfly in the garden.",
    "The sun was hot, so the kids",
    "Jack found a map under his bed.",
    "A small frog lived in a pond.",
    "Grandma gave Emma a red hat.",
    "The boy was sad because his toy broke.",
    "In the forest, there was a tall tree that",
};

using Greedy = Recorded;

Greedy greedy(runner::StepModel& model, const tokenizer::Tokenizer& tok, const std::string& prompt,
              const runner::GeneratorOptions& options) {
  auto r = record_greedy(model, tok, prompt, options);
  EXPECT_TRUE(r.ok()) << r.error().message();
  if (!r.ok()) return {};
  EXPECT_EQ(r->tokens.size(), static_cast<size_t>(options.max_new_tokens)) << prompt;
  return std::move(r).value();
}

struct Config {
  std::string scheme;
  bool split;
  friend void PrintTo(const Config& c, std::ostream* os) {
    *os << c.scheme << (c.split ? " split" : " unsplit");
  }
};

class LookaheadStories : public ::testing::TestWithParam<Config> {};

INSTANTIATE_TEST_SUITE_P(Stories260K, LookaheadStories,
                         ::testing::Values(Config{"16a8w", true}, Config{"16a8w", false},
                                           Config{"16a4w", true}, Config{"16a4w", false}),
                         [](const auto& info) {
                           return info.param.scheme + (info.param.split ? "_split" : "_mha");
                         });

TEST_P(LookaheadStories, SameGreedyTokensAsArOneOnTheRuntime) {
  HS_REQUIRE_SHARED();
  const Exported& e = exported(GetParam().scheme, GetParam().split, kSmallAr);
  ASSERT_NE(e.artifact, nullptr);
  EXPECT_EQ(e.artifact->program().metadata.split_applied, GetParam().split);
  EXPECT_EQ(e.artifact->program().metadata.ar_lengths, (std::vector<int64_t>{32, 1, kSmallAr}));
  const auto tok = make_tokenizer(e);
  HS_ASSERT_OK_AND_ASSIGN(auto model, ArtifactStepModel::create(e.artifact, {.threads = 1}));
  int64_t steps = 0, tokens = 0;
  for (size_t p = 0; p < kPromptCount; ++p) {
    const Greedy want = greedy(*model, *tok, kPrompts[p], {.max_new_tokens = kNewTokens});
    const Greedy got =
        greedy(*model, *tok, kPrompts[p], {.max_new_tokens = kNewTokens, .lookahead = kSmall});
    EXPECT_EQ(got.tokens, want.tokens) << kPrompts[p];
    steps += got.stats.lookahead_steps;
    tokens += got.stats.lookahead_tokens;
  }
  std::printf(
      "%s %s: %zu prompts x %lld tokens identical; %lld lookahead steps, %.3f tokens/step\n",
      GetParam().scheme.c_str(), GetParam().split ? "split" : "unsplit", kPromptCount,
      static_cast<long long>(kNewTokens), static_cast<long long>(steps),
      static_cast<double>(tokens) / static_cast<double>(steps));
  EXPECT_GT(tokens, steps) << "no guess was accepted";
}

// The interpreter computes every row the same way whatever T is: lookahead on the AR-6 and on
// the AR-32 graph gives AR-1's tokens, and the runtime's.
TEST(LookaheadStoriesInterpreter, SameGreedyTokensAsArOne) {
  HS_REQUIRE_SHARED();
  const Exported& e = exported("16a8w", true, kSmallAr);
  ASSERT_NE(e.artifact, nullptr);
  const auto tok = make_tokenizer(e);
  std::vector<ir::Graph> graphs;
  for (const backend::PreparedGraph& g : e.prepared.graphs) graphs.push_back(g.graph);
  HS_ASSERT_OK_AND_ASSIGN(auto interpreter, irexec::GraphStepModel::create(std::move(graphs)));
  HS_ASSERT_OK_AND_ASSIGN(auto runtime, ArtifactStepModel::create(e.artifact, {.threads = 1}));
#ifdef HS_SANITIZE
  const int64_t n = 12;
  const std::vector<const char*> prompts = {kPrompts[0]};
#else
  const int64_t n = 48;
  const std::vector<const char*> prompts = {kPrompts[0], kPrompts[7]};
#endif
  for (const char* prompt : prompts) {
    const Greedy want = greedy(*interpreter, *tok, prompt, {.max_new_tokens = n});
    const Greedy small =
        greedy(*interpreter, *tok, prompt, {.max_new_tokens = n, .lookahead = kSmall});
    const Greedy wide =
        greedy(*interpreter, *tok, prompt, {.max_new_tokens = n, .lookahead = kWide});
    EXPECT_EQ(small.tokens, want.tokens) << prompt;
    EXPECT_EQ(wide.tokens, want.tokens) << prompt;
    EXPECT_GT(wide.stats.lookahead_steps, 0);
    const Greedy on_runtime =
        greedy(*runtime, *tok, prompt, {.max_new_tokens = n, .lookahead = kSmall});
    EXPECT_EQ(on_runtime.tokens, want.tokens) << prompt;
  }
}

// On the fast runtime the AR-32 graph's projections round differently from AR-1's: lookahead
// there equals plain decoding on the AR-32 graph token for token, and where it parts from AR-1
// the AR-1 logits of that token have their top two within the rounding (0.05, see
// generation_test.cpp). "Mia ..." parts at token 65 with 16a4w today (the check holds whether
// or not it parts).
TEST(LookaheadStoriesWide, EqualsPlainDecodingOnItsGraphAndPartsOnlyAtNearTies) {
  HS_REQUIRE_SHARED();
  const Exported& e = exported("16a4w", true);
  ASSERT_NE(e.artifact, nullptr);
  const auto tok = make_tokenizer(e);
  HS_ASSERT_OK_AND_ASSIGN(auto model, ArtifactStepModel::create(e.artifact, {.threads = 1}));
#ifdef HS_SANITIZE
  const int64_t n = 16;
#else
  const int64_t n = 72;
#endif
  const std::string prompt = "Mia wanted to bake a cake for her mom.";
  const Greedy ar1 = greedy(*model, *tok, prompt, {.max_new_tokens = n});
  const Greedy ar32 = greedy(*model, *tok, prompt, {.max_new_tokens = n, .decode_ar_len = 32});
  const Greedy wide = greedy(*model, *tok, prompt, {.max_new_tokens = n, .lookahead = kWide});
  EXPECT_EQ(wide.tokens, ar32.tokens);
#ifndef HS_SANITIZE  // 16 tokens are too few for the n-gram pool to have guessed right yet
  EXPECT_GT(wide.stats.lookahead_tokens, wide.stats.lookahead_steps);
#endif
  size_t first = 0;
  while (first < ar1.tokens.size() && ar1.tokens[first] == wide.tokens[first]) ++first;
  if (first == ar1.tokens.size()) return;
  // Token i > 0 of AR-1 comes from decode step i (step 0 is the prefill).
  ASSERT_GT(first, 0u);
  std::vector<float> row = ar1.logits[first];
  std::partial_sort(row.begin(), row.begin() + 2, row.end(), std::greater<float>());
  std::printf("16a4w: AR-32 lookahead parts from AR-1 at token %zu, AR-1 top-2 gap %.4g\n", first,
              row[0] - row[1]);
  EXPECT_LE(row[0] - row[1], 0.05) << "token " << first;
}

}  // namespace
}  // namespace hs::runtime::testing
