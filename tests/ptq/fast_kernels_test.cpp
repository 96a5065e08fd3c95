// The interpreter's KernelSet::kFast (gemm.h kernels behind conv2d, linear and matmul), which
// calibration and evaluation use, against kReference on a SmolLM2-shaped graph.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>

#include "headsplit/ir/interpreter.h"
#include "headsplit/kernels/gemm_bf16.h"
#include "ptq/ptq_testing.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

// Tolerance: the fast kernels sum in another order (FMA, lane-interleaved partial sums), each
// dot product within (K + 4) * 2^-24 * sum |x w| of the exact value (gemm.h). Through two
// layers the outputs stay within 1e-4 of their scale; 1e-3 * (1 + max |ref|) leaves margin
// while a wrong layout or batch index gives errors of the outputs' own size.
void expect_close(const std::vector<ir::Tensor>& ref, const std::vector<ir::Tensor>& fast,
                  float tolerance = 1e-3f) {
  ASSERT_EQ(ref.size(), fast.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(ref[i].shape, fast[i].shape);
    float scale = 0;
    for (float x : ref[i].f) scale = std::max(scale, std::fabs(x));
    for (size_t j = 0; j < ref[i].f.size(); ++j) {
      ASSERT_NEAR(ref[i].f[j], fast[i].f[j], tolerance * (1 + scale))
          << "output " << i << " at " << j;
    }
  }
}

// fn(graph) for the SmolLM2-shaped graph at T = 1 and 32, with conv2d and with linear
// projections (C = 48).
template <typename Fn>
void for_each_smollm2_graph(bool r3, Fn&& fn) {
  const frontend::LlamaModel m = testing::smollm2_shaped(31);
  for (int64_t t : {1, 32}) {
    for (auto projection : {frontend::ProjectionKind::kConv, frontend::ProjectionKind::kLinear}) {
      SCOPED_TRACE(fmt::format("T={} {}", t,
                               projection == frontend::ProjectionKind::kConv ? "conv" : "linear"));
      frontend::BuildOptions o;
      o.ar_len = t;
      o.context_len = 48;
      o.r3 = r3;
      o.projection = projection;
      auto g = frontend::build_llama(m, o);
      ASSERT_TRUE(g.ok()) << g.error().message();
      fn(*g);
    }
  }
}

TEST(FastKernels, MatchReferenceWithinTheGemmBound) {
  // R3: the rotation matmul broadcasts a [Dh,Dh] constant over [1,H,T,Dh].
  for_each_smollm2_graph(/*r3=*/true, [](const ir::Graph& g) {
    const auto inputs = hs::testing::random_step_inputs(g, 41);
    HS_ASSERT_OK_AND_ASSIGN(auto ref,
                            ir::run_graph(g, inputs, {.kernels = ir::KernelSet::kReference}));
    HS_ASSERT_OK_AND_ASSIGN(auto fast, ir::run_graph(g, inputs, {.kernels = ir::KernelSet::kFast}));
    expect_close(ref, fast);
  });
}

// InterpreterOptions::bf16_weights: conv2d / linear read their weight's bfloat16 copy (one per
// weight, shared by the interpreters of a store) and stay within the bfloat16 error of
// kReference. Tolerance: each product is off by at most 2^-8 relative (gemm_bf16.h); through
// two layers the outputs here move by under 1% of their scale, and 2^-5 leaves margin, while a
// wrong weight, layout or row moves them by their own size.
TEST(FastKernels, Bf16ProjectionsMatchReferenceWithinTheBf16Error) {
  if (!kernels::bf16_matmul_supported()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
  for_each_smollm2_graph(/*r3=*/false, [](const ir::Graph& g) {
    // The bytes the store must hold: every projection weight once, rows padded to even K.
    size_t want = 0;
    std::set<ir::ValueId> weights;
    for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
      const ir::Node& node = g.node(n);
      if (node.erased || (node.op != ir::OpKind::kConv2d && node.op != ir::OpKind::kLinear))
        continue;
      const ir::TensorType& w = g.type(node.inputs[1]);
      const int64_t rows = w.shape[0], k = w.numel() / rows;
      if (weights.insert(node.inputs[1]).second)
        want += static_cast<size_t>(rows * (k + k % 2)) * 2;
    }
    auto store = std::make_shared<ir::Bf16Weights>();
    const ir::InterpreterOptions options{.kernels = ir::KernelSet::kFast, .bf16_weights = store};
    const auto inputs = hs::testing::random_step_inputs(g, 41);
    HS_ASSERT_OK_AND_ASSIGN(auto bf16, ir::run_graph(g, inputs, options));
    EXPECT_EQ(store->bytes(), want);
    HS_ASSERT_OK_AND_ASSIGN(auto again, ir::run_graph(g, inputs, options));
    EXPECT_EQ(store->bytes(), want) << "a second interpreter converted the weights again";
    ASSERT_EQ(again.size(), bf16.size());
    for (size_t i = 0; i < bf16.size(); ++i) EXPECT_EQ(again[i].f, bf16[i].f);
    HS_ASSERT_OK_AND_ASSIGN(auto ref,
                            ir::run_graph(g, inputs, {.kernels = ir::KernelSet::kReference}));
    expect_close(ref, bf16, 0x1p-5f);
    HS_ASSERT_OK_AND_ASSIGN(auto f32, ir::run_graph(g, inputs, {.kernels = ir::KernelSet::kFast}));
    EXPECT_NE(f32.front().f, bf16.front().f) << "the bfloat16 kernels did not run";
  });
}

}  // namespace
}  // namespace hs::ptq
