// The interpreter's KernelSet::kFast (gemm.h kernels behind conv2d, linear and matmul), which
// calibration and evaluation use, against kReference on a SmolLM2-shaped graph.
#include <gtest/gtest.h>

#include <cmath>

#include "headsplit/ir/interpreter.h"
#include "ptq/ptq_testing.h"
#include "testing/graph_fixtures.h"
#include "testing/testing.h"

namespace hs::ptq {
namespace {

// Tolerance: the fast kernels sum in another order (FMA, lane-interleaved partial sums), each
// dot product within (K + 4) * 2^-24 * sum |x w| of the exact value (gemm.h). Through two
// layers the outputs stay within 1e-4 of their scale; 1e-3 * (1 + max |ref|) leaves margin
// while a wrong layout or batch index gives errors of the outputs' own size.
void expect_close(const std::vector<ir::Tensor>& ref, const std::vector<ir::Tensor>& fast) {
  ASSERT_EQ(ref.size(), fast.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(ref[i].shape, fast[i].shape);
    float scale = 0;
    for (float x : ref[i].f) scale = std::max(scale, std::fabs(x));
    for (size_t j = 0; j < ref[i].f.size(); ++j) {
      ASSERT_NEAR(ref[i].f[j], fast[i].f[j], 1e-3f * (1 + scale)) << "output " << i << " at " << j;
    }
  }
}

TEST(FastKernels, MatchReferenceWithinTheGemmBound) {
  const frontend::LlamaModel m = testing::smollm2_shaped(31);
  for (int64_t t : {1, 32}) {
    for (auto projection : {frontend::ProjectionKind::kConv, frontend::ProjectionKind::kLinear}) {
      SCOPED_TRACE(fmt::format("T={} {}", t,
                               projection == frontend::ProjectionKind::kConv ? "conv" : "linear"));
      frontend::BuildOptions o;
      o.ar_len = t;
      o.context_len = 48;
      o.r3 = true;  // the R3 matmul broadcasts a [Dh,Dh] constant over [1,H,T,Dh]
      o.projection = projection;
      HS_ASSERT_OK_AND_ASSIGN(ir::Graph g, frontend::build_llama(m, o));
      const auto inputs = hs::testing::random_step_inputs(g, 41);
      HS_ASSERT_OK_AND_ASSIGN(auto ref,
                              ir::run_graph(g, inputs, {.kernels = ir::KernelSet::kReference}));
      HS_ASSERT_OK_AND_ASSIGN(auto fast,
                              ir::run_graph(g, inputs, {.kernels = ir::KernelSet::kFast}));
      expect_close(ref, fast);
    }
  }
}

}  // namespace
}  // namespace hs::ptq
