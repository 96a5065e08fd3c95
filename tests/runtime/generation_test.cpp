// End to end on stories260K: the backend exports the quantized model (16a8w, 16a4w-block32),
// then greedy generation on the artifact (fast kernels, 1 and 2 threads) is compared with the
// reference interpreter (irexec::GraphStepModel) running the same preprocessed graphs, and
// split with unsplit artifacts of the same quantized model.
//
// Tolerance on logits. The graph's logits are a u16 tensor, so both sides produce values on
// the same grid (scale s of the logits output); the interpreter is exact per the reference
// kernels, the runtime's projections sum in a different order (SIMD lanes, blocks of K), so
// a pre-rounding value at a quantization boundary of some intermediate may land one step
// (of that intermediate's scale) away. Such flips propagate through the remaining layers and
// the KV cache, so the logits differ by tens of steps s (about 0.05% of their range). We
// allow kLogitsTolerance on every step both sides computed from the same tokens, and greedy
// tokens that part only at a near tie: where they part, the interpreter's top two logits are
// within the tolerance (which model has a near tie where depends on its calibration, and the
// calibration's float sums depend on the CPU's SIMD width).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "headsplit/artifact/reader.h"
#include "headsplit/backend/export.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/runner/generator.h"
#include "headsplit/runner/sampler.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/tokenizer/tokenizer.h"
#include "step_recorder.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

using hs::testing::exported;
using hs::testing::Exported;
using hs::testing::make_tokenizer;

#ifdef HS_SANITIZE
constexpr int64_t kNewTokens = 24;  // sanitizers are ~20x slower; the full run is optimized
#else
constexpr int64_t kNewTokens = 200;
#endif
// Logits tolerance (absolute; the u16 logits of stories260K have scale 6.4e-4, a range of 42).
// Measured over 3 x 200 tokens: 0.0173 (16a8w) and 0.0199 (16a4w-block32), i.e. 27 and 31 logits
// steps, the same at 1 and 2 threads, on an AVX2 machine; 0.0141 and 0.0250 (22 and 39 steps)
// on an AVX-512 VNNI one (AMD Zen 4); the bound is 2x the largest.
constexpr double kLogitsTolerance = 0.05;

const char* const kPrompts[] = {
    "Once upon a time, there was a little girl named Lily.",
    "One day, a boy named Tim found a big red ball.",
    "Tom and his mom went to the store. They",
};

struct Generation {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;  // per step: [T, V]
};

Result<Generation> greedy(runner::StepModel& model, const tokenizer::Tokenizer& tok,
                          const std::string& prompt, int64_t new_tokens = kNewTokens) {
  HS_ASSIGN_OR_RETURN(Recorded r,
                      record_greedy(model, tok, prompt, {.max_new_tokens = new_tokens}));
  return Generation{std::move(r.tokens), std::move(r.logits)};
}

// Largest |a - b| over the logits of steps [0, steps) (all: both sides' common steps).
double max_diff(const Generation& a, const Generation& b, size_t steps = SIZE_MAX) {
  double worst = 0.0;
  steps = std::min({steps, a.logits.size(), b.logits.size()});
  for (size_t s = 0; s < steps; ++s) {
    for (size_t i = 0; i < a.logits[s].size(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(a.logits[s][i]) - b.logits[s][i]));
    }
  }
  return worst;
}

// The first token where `got` parts from `want` (their size when none does).
size_t first_parting(const Generation& want, const Generation& got) {
  size_t first = 0;
  while (first < want.tokens.size() && first < got.tokens.size() &&
         want.tokens[first] == got.tokens[first]) {
    ++first;
  }
  return first;
}

// The gap between the two largest logits the interpreter gave for token `i` of a generation
// from a prompt of `prompt_len` tokens. Step 0 is the prefill (token 0 from its last prompt row;
// the prompt fits one chunk, rows past it are padding); token i > 0 comes from step i.
float top2_gap(const Generation& want, size_t i, size_t prompt_len, size_t vocab) {
  const std::vector<float>& row = want.logits[i];
  const size_t offset = i == 0 ? (prompt_len - 1) * vocab : 0;
  if (offset + vocab > row.size()) return std::numeric_limits<float>::infinity();
  std::vector<float> top(row.begin() + static_cast<std::ptrdiff_t>(offset),
                         row.begin() + static_cast<std::ptrdiff_t>(offset + vocab));
  std::partial_sort(top.begin(), top.begin() + 2, top.end(), std::greater<float>());
  return top[0] - top[1];
}

class RuntimeGeneration : public ::testing::TestWithParam<std::string> {};

TEST_P(RuntimeGeneration, SameGreedyTokensAsTheInterpreter) {
  HS_REQUIRE_SHARED();
  const Exported& e = exported(GetParam(), /*split=*/true);
  ASSERT_NE(e.artifact, nullptr);
  ASSERT_GT(e.logits_scale, 0.f);
  EXPECT_TRUE(e.artifact->program().metadata.split_applied);
  const auto tok = make_tokenizer(e);
  std::vector<ir::Graph> graphs;
  for (const backend::PreparedGraph& g : e.prepared.graphs) graphs.push_back(g.graph);
  HS_ASSERT_OK_AND_ASSIGN(auto reference, irexec::GraphStepModel::create(std::move(graphs)));
  std::vector<Generation> want;
  for (const char* prompt : kPrompts) {
    HS_ASSERT_OK_AND_ASSIGN(Generation g, greedy(*reference, *tok, prompt));
    ASSERT_EQ(g.tokens.size(), static_cast<size_t>(kNewTokens)) << prompt;
    want.push_back(std::move(g));
  }
  for (int threads : {1, 2}) {
    HS_ASSERT_OK_AND_ASSIGN(auto runtime,
                            ArtifactStepModel::create(e.artifact, {.threads = threads}));
    double worst = 0.0;
    size_t compared = 0;  // tokens both sides chose from the same context
    for (size_t p = 0; p < std::size(kPrompts); ++p) {
      HS_ASSERT_OK_AND_ASSIGN(Generation got, greedy(*runtime, *tok, kPrompts[p]));
      ASSERT_EQ(got.tokens.size(), want[p].tokens.size()) << kPrompts[p];
      ASSERT_EQ(got.logits.size(), want[p].logits.size());
      const size_t first = first_parting(want[p], got);
      // Steps 0..first ran on the same tokens: their logits compare, whatever follows.
      const size_t same = std::min(first + 1, want[p].tokens.size());
      worst = std::max(worst, max_diff(got, want[p], same));
      compared += same;
      if (first == want[p].tokens.size()) continue;
      const float gap = top2_gap(want[p], first, tok->encode(kPrompts[p], true).size(),
                                 static_cast<size_t>(e.artifact->program().metadata.vocab_size));
      std::printf("%s, %d threads: \"%s\" parts at token %zu, interpreter top-2 gap %.4g\n",
                  GetParam().c_str(), threads, kPrompts[p], first, gap);
      EXPECT_LE(gap, kLogitsTolerance)
          << kPrompts[p] << " (" << threads << " threads): tokens part at " << first
          << " where the interpreter has no near tie";
    }
    std::printf("%s, %d threads: max logits diff %.4g (%.0f steps of the logits scale %.3g) "
                "over %zu tokens chosen from the same context\n",
                GetParam().c_str(), threads, worst, worst / e.logits_scale, e.logits_scale,
                compared);
    EXPECT_LE(worst, kLogitsTolerance) << GetParam() << ", " << threads << " threads";
    // Near ties are rare: most of the 3 x kNewTokens tokens are compared (a parting at the
    // first tokens of every prompt would leave the logits bound checking little).
    EXPECT_GE(compared, std::size(kPrompts) * static_cast<size_t>(kNewTokens) / 2);
  }
}

// Where greedy decoding can differ: at a near tie. With this prompt the 16a4w-block32 model
// exported on an AVX2 machine has its top two logits at token 13 0.0013 (2 logits steps) apart
// in the interpreter, inside the tolerance, and the runtime picks the other one. Whenever the
// token sequences part, the interpreter's top-2 gap at that step must be within the logits
// tolerance (SameGreedyTokensAsTheInterpreter checks the same on its prompts).
TEST_P(RuntimeGeneration, TokensPartOnlyAtNearTies) {
  HS_REQUIRE_SHARED();
  const Exported& e = exported(GetParam(), /*split=*/true);
  ASSERT_NE(e.artifact, nullptr);
  const auto tok = make_tokenizer(e);
  std::vector<ir::Graph> graphs;
  for (const backend::PreparedGraph& g : e.prepared.graphs) graphs.push_back(g.graph);
  HS_ASSERT_OK_AND_ASSIGN(auto reference, irexec::GraphStepModel::create(std::move(graphs)));
  HS_ASSERT_OK_AND_ASSIGN(auto runtime, ArtifactStepModel::create(e.artifact, {.threads = 1}));
  const std::string prompt = "The dog ran to the park and";
  HS_ASSERT_OK_AND_ASSIGN(Generation want, greedy(*reference, *tok, prompt, 24));
  HS_ASSERT_OK_AND_ASSIGN(Generation got, greedy(*runtime, *tok, prompt, 24));
  const size_t first = first_parting(want, got);
  if (first == want.tokens.size()) return;  // no tie met
  const float gap = top2_gap(want, first, tok->encode(prompt, /*add_bos=*/true).size(),
                             static_cast<size_t>(e.artifact->program().metadata.vocab_size));
  std::printf("%s: tokens part at %zu, interpreter top-2 gap %.4g\n", GetParam().c_str(), first,
              gap);
  EXPECT_LE(gap, kLogitsTolerance) << "token " << first;
}

// The runtime's reference mode (reference kernels, no fusion) is the interpreter, bit for bit.
TEST_P(RuntimeGeneration, ReferenceKernelsAreBitIdenticalToTheInterpreter) {
  HS_REQUIRE_SHARED();
  const Exported& e = exported(GetParam(), /*split=*/true);
  ASSERT_NE(e.artifact, nullptr);
  const auto tok = make_tokenizer(e);
  std::vector<ir::Graph> graphs;
  for (const backend::PreparedGraph& g : e.prepared.graphs) graphs.push_back(g.graph);
  HS_ASSERT_OK_AND_ASSIGN(auto reference, irexec::GraphStepModel::create(std::move(graphs)));
  HS_ASSERT_OK_AND_ASSIGN(
      auto runtime,
      ArtifactStepModel::create(e.artifact, {.kernels = KernelChoice::kReference, .threads = 1}));
  HS_ASSERT_OK_AND_ASSIGN(Generation want, greedy(*reference, *tok, kPrompts[0]));
  HS_ASSERT_OK_AND_ASSIGN(Generation got, greedy(*runtime, *tok, kPrompts[0]));
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.logits, want.logits);
}

// Split and unsplit artifacts of the same quantized model (quantization runs before the
// split, with the same calibration): identical greedy tokens, and bit-identical logits, since
// the fast kernels compute each output row independently of how many rows a weight slice has
// (kernels/qgemm.h), and the per-head attention matmuls see the same operands in the same order.
TEST_P(RuntimeGeneration, SplitAndUnsplitAgree) {
  HS_REQUIRE_SHARED();
  const Exported& split = exported(GetParam(), /*split=*/true);
  const Exported& mha = exported(GetParam(), /*split=*/false);
  ASSERT_NE(split.artifact, nullptr);
  ASSERT_NE(mha.artifact, nullptr);
  EXPECT_FALSE(mha.artifact->program().metadata.split_applied);
  const auto tok = make_tokenizer(split);
  HS_ASSERT_OK_AND_ASSIGN(auto a, ArtifactStepModel::create(split.artifact, {.threads = 2}));
  HS_ASSERT_OK_AND_ASSIGN(auto b, ArtifactStepModel::create(mha.artifact, {.threads = 2}));
  for (const char* prompt : kPrompts) {
    HS_ASSERT_OK_AND_ASSIGN(Generation x, greedy(*a, *tok, prompt));
    HS_ASSERT_OK_AND_ASSIGN(Generation y, greedy(*b, *tok, prompt));
    ASSERT_EQ(x.tokens.size(), static_cast<size_t>(kNewTokens)) << prompt;
    EXPECT_EQ(x.tokens, y.tokens) << prompt;
    EXPECT_EQ(x.logits, y.logits) << prompt << ": max diff " << max_diff(x, y);
  }
}

INSTANTIATE_TEST_SUITE_P(Stories260K, RuntimeGeneration,
                         ::testing::Values(std::string("16a8w"), std::string("16a4w-block32")),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace hs::runtime::testing
