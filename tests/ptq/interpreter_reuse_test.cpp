// The interpreter reuses freed node-output storage across nodes and runs without clearing it
// (every kernel writes its whole output), reads inputs in place (run_into) and swaps node
// outputs into the caller's tensors. A run after a poisoned run (NaN caches: stale NaNs in
// every reused buffer) must be bit-identical to a fresh interpreter's run: float and
// fake-quantized graphs, decode (T=1, both kernel sets) and prefill (T=32, kFast: the GQA
// repeat-KV fusion and the panel GEMM).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "headsplit/ir/interpreter.h"
#include "ptq/ptq_testing.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

// Step inputs whose float inputs other than the mask are all NaN.
std::vector<ir::NamedTensor> poisoned_inputs(const ir::Graph& g) {
  std::vector<ir::NamedTensor> inputs = hs::testing::random_step_inputs(g, 7);
  for (ir::NamedTensor& t : inputs) {
    if (t.name == "attention_mask") continue;
    for (float& x : t.tensor.f) x = std::numeric_limits<float>::quiet_NaN();
  }
  return inputs;
}

std::vector<ir::InputView> views_of(const std::vector<ir::NamedTensor>& inputs) {
  std::vector<ir::InputView> views;
  for (const ir::NamedTensor& t : inputs) views.push_back(ir::InputView::of(t));
  return views;
}

TEST(InterpreterReuse, RunsAfterAPoisonedRunMatchAFreshInterpreter) {
  const frontend::LlamaModel m = testing::smollm2_shaped(31);
  for (bool quantized : {false, true}) {
    for (int64_t t : {1, 32}) {
      frontend::BuildOptions o;
      o.ar_len = t;
      o.context_len = 48;
      HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, frontend::build_llama(m, o));
      if (quantized) HS_ASSERT_OK(hs::testing::quantize_synthetic(g, {}));
      for (ir::KernelSet kernels : {ir::KernelSet::kReference, ir::KernelSet::kFast}) {
        // The naive kernels on the T=32 graphs take most of the time: those run kFast only.
        if (kernels == ir::KernelSet::kReference && t > 1) continue;
        SCOPED_TRACE(fmt::format("T={} quantized={} fast={}", t, quantized,
                                 kernels == ir::KernelSet::kFast));
        const ir::InterpreterOptions options{.kernels = kernels};
        HS_ASSERT_OK_AND_ASSIGN(ir::Interpreter interp, ir::Interpreter::create(g, options));
        std::vector<ir::Tensor> out;
        const auto poison = poisoned_inputs(g);
        HS_ASSERT_OK(interp.run_into(views_of(poison), out));
        ASSERT_FALSE(out.empty());
        if (!quantized) {
          ASSERT_TRUE(std::isnan(out[0].f[0]));  // the poison reached the logits
        }
        for (uint64_t seed : {41u}) {
          const auto inputs = hs::testing::random_step_inputs(g, seed);
          HS_ASSERT_OK_AND_ASSIGN(auto fresh, ir::run_graph(g, inputs, options));
          HS_ASSERT_OK(interp.run_into(views_of(inputs), out));  // outputs' storage reused
          std::string why;
          EXPECT_TRUE(hs::testing::bit_identical(fresh, out, &why))
              << "seed " << seed << ": " << why;
          HS_ASSERT_OK_AND_ASSIGN(auto again, interp.run(inputs));  // the copying API too
          EXPECT_TRUE(hs::testing::bit_identical(fresh, again, &why))
              << "seed " << seed << ": " << why;
        }
        // The caller's inputs are read in place, never written.
        const auto inputs = hs::testing::random_step_inputs(g, 41);
        const auto copy = inputs;
        HS_ASSERT_OK(interp.run_into(views_of(inputs), out));
        for (size_t i = 0; i < inputs.size(); ++i) {
          EXPECT_EQ(0, std::memcmp(inputs[i].tensor.f.data(), copy[i].tensor.f.data(),
                                   inputs[i].tensor.f.size() * sizeof(float)))
              << inputs[i].name;
          EXPECT_EQ(inputs[i].tensor.i, copy[i].tensor.i) << inputs[i].name;
        }
      }
    }
  }
}

}  // namespace
}  // namespace hs::ptq
