// Projections (conv2d / linear with f32, int8 and int4 weights, per channel and per block,
// with and without bias) and matmuls (batched, broadcast, fused cache reads with u8/u16 and
// float caches, GQA repeat) against the reference interpreter.
//
// Tolerance of the fast projections: the fast kernels (kernels/qgemm.h, gemm.h) sum the K
// products in a different order and apply the weight scale once per channel or block, while
// the interpreter sums the dequantized products in increasing k. Both are float32 sums of the
// same K terms, each within gamma_K * sum_k |w x| of the exact value, so they differ by at most
// 2 (K + 4) 2^-24 (sum_k |w_nk x_mk| + |b_n|) per element; the test checks that bound per
// element. Everything else is bit-exact (the reference kernel choice, and the matmuls).
#include <gtest/gtest.h>

#include <cmath>

#include "graph_builder.h"
#include "headsplit/kernels/thread_pool.h"
#include "runtime_testing.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

using ir::OpKind;

struct WeightCase {
  std::string name;
  ir::DType dtype;      // kF32, kI8, kI4
  int64_t block = 0;    // 0: per channel
};

// A projection graph: y = conv2d(x, w, b) on [1,K,1,M] or linear on [M,K].
ir::Graph projection_graph(const WeightCase& c, bool conv, bool bias, int64_t m, int64_t n,
                           int64_t k) {
  ir::Graph g("g");
  const ir::Shape x_shape = conv ? ir::Shape{1, k, 1, m} : ir::Shape{m, k};
  const ir::Shape w_shape = conv ? ir::Shape{n, k, 1, 1} : ir::Shape{n, k};
  const auto x = must(g.add_input("x", ir::TensorType::f32(x_shape)));
  ir::ValueId w = 0;
  if (c.dtype == ir::DType::kF32) {
    w = f32_constant(g, "w", w_shape, 21);
  } else {
    const int32_t qmax = c.dtype == ir::DType::kI8 ? 127 : 7;
    const int bits = c.dtype == ir::DType::kI8 ? 8 : 4;
    std::vector<float> scales;
    const int64_t nb = c.block > 0 ? (k + c.block - 1) / c.block : 1;
    for (int64_t i = 0; i < n * nb; ++i) scales.push_back(0.01f + 0.001f * static_cast<float>(i % 13));
    ir::QuantParams q = c.block > 0 ? ir::QuantParams::per_block(0, 1, c.block, scales, bits, -qmax, qmax)
                                    : ir::QuantParams::per_axis(0, scales, std::vector<int32_t>(static_cast<size_t>(n), 0),
                                                                bits, -qmax, qmax);
    w = int_constant(g, "w", c.dtype, w_shape, q, 22);
  }
  std::vector<ir::ValueId> ins = {x, w};
  if (bias) ins.push_back(f32_constant(g, "b", {n}, 23));
  g.set_outputs({emit(g, conv ? OpKind::kConv2d : OpKind::kLinear, ins, {}, "y")});
  return g;
}

// Per-element bound 2 (K + 4) 2^-24 (sum |w x| + |b|) from the dequantized weights.
void expect_within_sum_bound(const ir::Graph& g, const std::vector<ir::NamedTensor>& in,
                             const ir::Tensor& a, const ir::Tensor& b, bool conv, int64_t m,
                             int64_t n, int64_t k) {
  HS_ASSERT_OK_AND_ASSIGN(ir::Tensor w, ir::read_constant(g, *g.find_value("w")));
  const auto bias_id = g.find_value("b");
  ir::Tensor bias;
  if (bias_id) {
    HS_ASSERT_OK_AND_ASSIGN(bias, ir::read_constant(g, *bias_id));
  }
  const std::vector<float>& x = in[0].tensor.f;
  int64_t bad = 0;
  for (int64_t mi = 0; mi < m; ++mi) {
    for (int64_t ni = 0; ni < n; ++ni) {
      double sum_abs = bias_id ? std::fabs(bias.f[static_cast<size_t>(ni)]) : 0.0;
      for (int64_t ki = 0; ki < k; ++ki) {
        const float xv = conv ? x[static_cast<size_t>(ki * m + mi)] : x[static_cast<size_t>(mi * k + ki)];
        sum_abs += std::fabs(static_cast<double>(w.f[static_cast<size_t>(ni * k + ki)]) * xv);
      }
      const double bound = 2.0 * static_cast<double>(k + 4) * std::ldexp(1.0, -24) * sum_abs;
      const size_t at = static_cast<size_t>(conv ? ni * m + mi : mi * n + ni);
      if (std::fabs(static_cast<double>(a.f[at]) - b.f[at]) > bound) ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << "elements outside the summation-order bound";
}

class ProjectionTest : public ::testing::TestWithParam<WeightCase> {};

TEST_P(ProjectionTest, MatchesInterpreter) {
  const WeightCase& c = GetParam();
  kernels::ThreadPool pool(2);
  // M = 1 and 3 take the fast kernels' dot path, M = 12 the panel path; K = 70 is not a
  // multiple of 16, 32 or the block.
  for (int64_t m : {1, 3, 12}) {
    for (bool conv : {true, false}) {
      for (bool bias : {false, true}) {
        const int64_t n = 9, k = 70;
        ir::Graph g = projection_graph(c, conv, bias, m, n, k);
        const auto inputs = random_inputs(g, static_cast<uint64_t>(m * 10 + conv));
        SCOPED_TRACE(fmt::format("{} m={} conv={} bias={}", c.name, m, conv, bias));
        HS_ASSERT_OK_AND_ASSIGN(BothRuns exact, run_both(g, inputs, KernelChoice::kReference));
        std::string why;
        EXPECT_TRUE(bit_identical(exact.reference, exact.runtime, &why)) << why;
        HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
        HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(artifact, "g", {.pool = &pool}));
        HS_ASSERT_OK_AND_ASSIGN(auto fast, run_executor(*exec, g, inputs));
        expect_within_sum_bound(g, inputs, exact.reference[0], fast[0], conv, m, n, k);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Weights, ProjectionTest,
                         ::testing::Values(WeightCase{"f32", ir::DType::kF32},
                                           WeightCase{"int8", ir::DType::kI8},
                                           WeightCase{"int8_block32", ir::DType::kI8, 32},
                                           WeightCase{"int4", ir::DType::kI4},
                                           WeightCase{"int4_block32", ir::DType::kI4, 32},
                                           WeightCase{"int4_block24", ir::DType::kI4, 24}),
                         [](const auto& info) { return info.param.name; });

TEST(RuntimeMatmul, BroadcastBatchesAreExact) {
  ir::Graph g("g");
  const auto a = must(g.add_input("a", ir::TensorType::f32({2, 3, 4, 5})));
  const auto b = must(g.add_input("b", ir::TensorType::f32({3, 5, 37})));
  const auto c = must(g.add_input("c", ir::TensorType::f32({1, 1, 37, 6})));
  const auto ab = emit(g, OpKind::kMatMul, {a, b}, {}, "ab");
  g.set_outputs({ab, emit(g, OpKind::kMatMul, {ab, c}, {}, "abc")});
  kernels::ThreadPool pool(2);
  const auto inputs = random_inputs(g, 31);
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
  HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(artifact, "g", {.pool = &pool}));
  HS_ASSERT_OK_AND_ASSIGN(auto fast, run_executor(*exec, g, inputs));
  HS_ASSERT_OK_AND_ASSIGN(auto ref, ir::run_graph(g, inputs));
  std::string why;
  EXPECT_TRUE(bit_identical(ref, fast, &why)) << why;
}

// The attention of one layer as the MHA builder emits it: concat(cache, new) for K and V,
// the GQA repeat (unsqueeze -> expand -> reshape), scores = q k_all, out = p v_all. With
// quantized caches the cache inputs are u16 (or u8) and the new entries share their params.
ir::Graph attention_graph(ir::DType cache, int64_t h, int64_t hkv, int64_t dh, int64_t p,
                          int64_t t) {
  ir::Graph g("g");
  const bool q16 = cache != ir::DType::kF32;
  auto real = [&](ir::Shape s, float lo, float hi) {
    if (!q16) return ir::TensorType::f32(std::move(s));
    ir::QuantParams q = u16_params(lo, hi);
    if (cache == ir::DType::kU8) {
      q = ir::QuantParams::per_tensor((hi - lo) / 255.f, static_cast<int32_t>(std::lround(-lo / ((hi - lo) / 255.f))), 8, 0, 255);
    }
    return ir::TensorType{cache, std::move(s), q};
  };
  const int64_t grp = h / hkv, c = p + t;
  const auto kc = must(g.add_input("k_cache", real({1, hkv, dh, p}, -3.f, 3.f)));
  const auto vc = must(g.add_input("v_cache", real({1, hkv, p, dh}, -2.f, 2.f)));
  const auto q = must(g.add_input("q", ir::TensorType::f32({1, h, t, dh})));
  const auto kn_src = must(g.add_input("k_src", ir::TensorType::f32({1, hkv, dh, t})));
  const auto vn_src = must(g.add_input("v_src", ir::TensorType::f32({1, hkv, t, dh})));
  const auto kn = emit(g, OpKind::kNeg, {kn_src}, {}, "k_new");
  const auto vn = emit(g, OpKind::kNeg, {vn_src}, {}, "v_new");
  if (q16) {  // the new entries share the cache's params (the quantizer's concat group)
    g.value(kn).type = g.type(kc);
    g.value(kn).type.shape = {1, hkv, dh, t};
    g.value(vn).type = g.type(vc);
    g.value(vn).type.shape = {1, hkv, t, dh};
  }
  auto share = [&](ir::ValueId v, ir::ValueId like) {
    if (q16) {
      g.value(v).type.dtype = g.type(like).dtype;
      g.value(v).type.quant = g.type(like).quant;
    }
    return v;
  };
  const auto k_all = share(emit(g, OpKind::kConcat, {kc, kn}, {{"axis", int64_t{3}}}, "k_all"), kc);
  const auto v_all = share(emit(g, OpKind::kConcat, {vc, vn}, {{"axis", int64_t{2}}}, "v_all"), vc);
  auto repeat = [&](ir::ValueId x, ir::Shape expanded, ir::Shape merged, const std::string& n) {
    const auto u = share(emit(g, OpKind::kUnsqueeze, {x}, {{"axis", int64_t{2}}}, n + ".unsq"), x);
    const auto e = share(emit(g, OpKind::kExpand, {u}, {{"shape", expanded}}, n + ".expand"), x);
    return share(emit(g, OpKind::kReshape, {e}, {{"shape", merged}}, n + ".rep"), x);
  };
  const auto k_rep = repeat(k_all, {1, hkv, grp, dh, c}, {1, h, dh, c}, "k_all");
  const auto v_rep = repeat(v_all, {1, hkv, grp, c, dh}, {1, h, c, dh}, "v_all");
  const auto scores = emit(g, OpKind::kMatMul, {q, k_rep}, {}, "scores");
  const auto probs = emit(g, OpKind::kSoftmax, {scores}, {{"axis", int64_t{3}}}, "probs");
  const auto out = emit(g, OpKind::kMatMul, {probs, v_rep}, {}, "out");
  // A second reader of k_all as the B operand of another matmul (the split graph's shape:
  // several query heads read one kv head's k_all).
  const auto q2 = emit(g, OpKind::kNeg, {q}, {}, "q2");
  const auto q2h = emit(g, OpKind::kSlice, {q2}, {{"axis", int64_t{1}}, {"start", int64_t{0}}, {"end", int64_t{hkv}}}, "q2h");
  const auto scores2 = emit(g, OpKind::kMatMul, {q2h, k_all}, {}, "scores2");
  if (q16) {
    for (ir::ValueId v : {scores, probs, out, scores2}) {
      g.value(v).type.dtype = ir::DType::kU16;
      g.value(v).type.quant = u16_params(-30.f, 30.f);
    }
  }
  g.set_outputs({out, scores2, kn, vn});
  return g;
}

class FusedCacheTest : public ::testing::TestWithParam<ir::DType> {};

TEST_P(FusedCacheTest, ReadsCachesInPlaceExactly) {
  kernels::ThreadPool pool(2);
  for (int64_t t : {1, 5}) {
    // P = 45 and Dh = 12 leave partial vectors on every edge; H = 6, Hkv = 2 (G = 3).
    ir::Graph g = attention_graph(GetParam(), 6, 2, 12, 45, t);
    const auto inputs = random_inputs(g, 40 + static_cast<uint64_t>(t));
    HS_ASSERT_OK_AND_ASSIGN(auto ref, ir::run_graph(g, inputs));
    HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
    for (KernelChoice k : {KernelChoice::kFast, KernelChoice::kReference}) {
      HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(artifact, "g", {.kernels = k, .pool = &pool}));
      HS_ASSERT_OK_AND_ASSIGN(auto got, run_executor(*exec, g, inputs));
      std::string why;
      EXPECT_TRUE(bit_identical(ref, got, &why)) << "t=" << t << ": " << why;
      if (k == KernelChoice::kFast) {
        EXPECT_EQ(exec->summary().fused_concats, 2);  // k_all, v_all
        EXPECT_EQ(exec->summary().staged_inputs, 0);  // caches read in place
      } else {
        EXPECT_EQ(exec->summary().fused_concats, 0);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Caches, FusedCacheTest,
                         ::testing::Values(ir::DType::kF32, ir::DType::kU8, ir::DType::kU16),
                         [](const auto& info) { return std::string(ir::dtype_name(info.param)); });

}  // namespace
}  // namespace hs::runtime::testing
