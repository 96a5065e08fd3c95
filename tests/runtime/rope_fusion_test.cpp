// Fused RoPE (runtime/step_planner_rope.cpp): the rotate-half pattern's nine nodes run as one
// step, bit-identical to running them one by one.
//   - seeded random shapes (heads, tokens, half, pass-through dims, tables per token or per
//     head and token), float and quantized (same params everywhere, random params per value,
//     a requantizing concat), x in the arena (the backend may give y x's bytes) or an input:
//     fused = per node = the interpreter, bit for bit
//   - patterns that must not fuse (an intermediate read elsewhere or a graph output, sub's
//     operands swapped, a slice that requantizes) keep per-node execution and stay exact
//   - the stories260K artifacts, split and unsplit: every graph fuses one RoPE per q/k head
//     (per layer: H + Hkv split, 2 unsplit) and gives the same bytes as per node (causal
//     SmartMask inputs at two n_past)
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "executor_io.h"
#include "graph_builder.h"
#include "headsplit/kernels/thread_pool.h"
#include "runtime_testing.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

using ir::OpKind;

enum class Quant { kFloat, kSameParams, kRandomParams, kRequantizingConcat };
enum class Break { kNone, kProductReadElsewhere, kProductIsOutput, kSubSwapped, kSliceRequantizes };

struct RopeCase {
  int64_t n = 2, t = 3, half = 4, pass = 0;
  bool table_per_head = false;  // cos/sin [1,n,T,h] instead of [1,1,T,h]
  bool x_in_arena = true;       // x = neg(input) (arena) or the input itself
  bool tables_in_arena = false;  // cos/sin = neg(inputs): the backend may put y over them
  Quant quant = Quant::kFloat;
  Break brk = Break::kNone;
};

std::string describe(const RopeCase& c) {
  return fmt::format("n {} T {} h {} pass {} table {} in {} x {} quant {} break {}", c.n, c.t,
                     c.half, c.pass, c.table_per_head ? "[1,n,T,h]" : "[1,1,T,h]",
                     c.tables_in_arena ? "arena" : "input", c.x_in_arena ? "arena" : "input",
                     static_cast<int>(c.quant),
                     static_cast<int>(c.brk));
}

ir::Graph rope_graph(const RopeCase& c, uint64_t seed) {
  const int64_t h = c.half, dh = 2 * c.half + c.pass;
  ir::Graph g("g");
  const auto in = must(g.add_input("x", ir::TensorType::f32({1, c.n, c.t, dh})));
  const ir::Shape table{1, c.table_per_head ? c.n : 1, c.t, h};
  auto cos = must(g.add_input("cos", ir::TensorType::f32(table)));
  auto sin = must(g.add_input("sin", ir::TensorType::f32(table)));
  if (c.tables_in_arena) {
    cos = emit(g, OpKind::kNeg, {cos}, {}, "cos_n");
    sin = emit(g, OpKind::kNeg, {sin}, {}, "sin_n");
  }
  const auto x = c.x_in_arena ? emit(g, OpKind::kNeg, {in}, {}, "xn") : in;
  auto slice = [&](int64_t s, int64_t e, const std::string& name) {
    return emit(g, OpKind::kSlice, {x}, {{"axis", int64_t{3}}, {"start", s}, {"end", e}}, name);
  };
  const auto x1 = slice(0, h, "x1"), x2 = slice(h, 2 * h, "x2");
  const auto x1cos = emit(g, OpKind::kMul, {x1, cos}, {}, "x1cos");
  const auto x2sin = emit(g, OpKind::kMul, {sin, x2}, {}, "x2sin");  // operands either way
  const auto rot_a = c.brk == Break::kSubSwapped
                         ? emit(g, OpKind::kSub, {x2sin, x1cos}, {}, "rot_a")
                         : emit(g, OpKind::kSub, {x1cos, x2sin}, {}, "rot_a");
  const auto x1sin = emit(g, OpKind::kMul, {x1, sin}, {}, "x1sin");
  const auto x2cos = emit(g, OpKind::kMul, {x2, cos}, {}, "x2cos");
  const auto rot_b = emit(g, OpKind::kAdd, {x2cos, x1sin}, {}, "rot_b");
  std::vector<ir::ValueId> parts{rot_a, rot_b};
  if (c.pass > 0) parts.push_back(slice(2 * h, dh, "pass"));
  const auto rope = emit(g, OpKind::kConcat, parts, {{"axis", int64_t{3}}}, "rope");
  g.add_output(emit(g, OpKind::kMul, {rope, rope}, {}, "y"));  // rope itself in the arena
  if (c.brk == Break::kProductReadElsewhere) {
    g.add_output(emit(g, OpKind::kNeg, {x1sin}, {}, "other"));
  }
  if (c.brk == Break::kProductIsOutput) g.add_output(x2cos);
  if (c.quant == Quant::kFloat) return g;
  quantize_activations(g);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> span(2.f, 12.f);
  if (c.quant == Quant::kRandomParams) {
    for (ir::ValueId v : {x1cos, x2sin, rot_a, x1sin, x2cos, rot_b}) {
      const float r = span(rng);
      g.value(v).type.quant = u16_params(-r, r);
    }
  }
  if (c.quant == Quant::kRequantizingConcat) g.value(rope).type.quant = u16_params(-3.f, 5.f);
  if (c.brk == Break::kSliceRequantizes) g.value(x1).type.quant = u16_params(-1.f, 1.f);
  return g;
}

struct Run {
  std::vector<ir::Tensor> outputs;
  PlanSummary summary;
};

Result<Run> run_rope(const ir::Graph& g, const std::vector<ir::NamedTensor>& inputs, bool fuse,
                     kernels::ThreadPool* pool) {
  HS_ASSIGN_OR_RETURN(auto artifact, make_artifact(g));
  HS_ASSIGN_OR_RETURN(auto exec, GraphExecutor::create(artifact, "g", {.pool = pool, .fuse_rope = fuse}));
  HS_ASSIGN_OR_RETURN(auto outs, run_executor(*exec, g, inputs));
  return Run{std::move(outs), exec->summary()};
}

void expect_rope(const RopeCase& c, uint64_t seed, kernels::ThreadPool* pool) {
  SCOPED_TRACE(describe(c));
  const ir::Graph g = rope_graph(c, seed);
  const auto inputs = random_inputs(g, seed);
  HS_ASSERT_OK_AND_ASSIGN(auto interp, ir::Interpreter::create(g));
  HS_ASSERT_OK_AND_ASSIGN(std::vector<ir::Tensor> ref, interp.run(inputs));
  HS_ASSERT_OK_AND_ASSIGN(Run fused, run_rope(g, inputs, true, pool));
  HS_ASSERT_OK_AND_ASSIGN(Run per_node, run_rope(g, inputs, false, pool));
  const bool fuses = c.brk == Break::kNone;
  EXPECT_EQ(fused.summary.fused_ropes, fuses ? 1 : 0);
  EXPECT_EQ(per_node.summary.fused_ropes, 0);
  if (fuses) {
    EXPECT_LT(fused.summary.steps, per_node.summary.steps);
  }
  std::string why;
  EXPECT_TRUE(bit_identical(per_node.outputs, fused.outputs, &why)) << why;
  EXPECT_TRUE(bit_identical(ref, fused.outputs, &why)) << why;
}

TEST(RopeFusion, RandomShapesAndParamsGiveTheSameBitsAsPerNode) {
  kernels::ThreadPool pool(2);
  std::mt19937_64 rng(20261204);
  for (int i = 0; i < 48; ++i) {
    RopeCase c;
    c.n = 1 + static_cast<int64_t>(rng() % 4);
    c.t = 1 + static_cast<int64_t>(rng() % 5);
    c.half = 1 + static_cast<int64_t>(rng() % 20);  // odd halves: vector tails
    c.pass = rng() % 3 == 0 ? 1 + static_cast<int64_t>(rng() % 5) : 0;
    c.table_per_head = rng() % 2 == 0;
    c.x_in_arena = rng() % 4 != 0;
    c.tables_in_arena = rng() % 2 == 0;
    c.quant = static_cast<Quant>(rng() % 4);
    expect_rope(c, 100 + static_cast<uint64_t>(i), &pool);
  }
}

TEST(RopeFusion, LargeTensorsSplitRowsOverThePool) {
  kernels::ThreadPool pool(2);
  for (const Quant q : {Quant::kFloat, Quant::kRandomParams}) {
    expect_rope({.n = 9, .t = 64, .half = 32, .quant = q}, 7, &pool);  // 576 rows x 64
  }
}

TEST(RopeFusion, PatternsThatDoNotMatchKeepPerNodeExecution) {
  kernels::ThreadPool pool(2);
  for (const Break b : {Break::kProductReadElsewhere, Break::kProductIsOutput, Break::kSubSwapped,
                        Break::kSliceRequantizes}) {
    expect_rope({.n = 2, .t = 3, .half = 5, .quant = Quant::kSameParams, .brk = b}, 9, &pool);
  }
}

// ---- the stories260K artifacts

class RopeFusionStories : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(RopeFusionStories, EveryGraphGivesTheSameBytesAsPerNode) {
  HS_REQUIRE_SHARED();
  const auto& [scheme, split] = GetParam();
  const auto& e = hs::testing::exported(scheme, split);
  ASSERT_NE(e.artifact, nullptr);
  const artifact::ModelMetadata& m = e.artifact->program().metadata;
  kernels::ThreadPool pool(2);
  for (const artifact::GraphDesc& g : e.artifact->program().graphs) {
    HS_ASSERT_OK_AND_ASSIGN(auto fused, GraphExecutor::create(e.artifact, g.name, {.pool = &pool}));
    HS_ASSERT_OK_AND_ASSIGN(auto per_node, GraphExecutor::create(e.artifact, g.name,
                                                                 {.pool = &pool, .fuse_rope = false}));
    EXPECT_EQ(fused->summary().fused_ropes, split ? m.n_layers * (m.n_heads + m.n_kv_heads)
                                                  : 2 * m.n_layers)
        << g.name;
    EXPECT_EQ(per_node->summary().fused_ropes, 0) << g.name;
    EXPECT_LT(fused->summary().steps, per_node->summary().steps) << g.name;
    for (const int64_t n_past : {0, 5}) {
      const auto in = causal_inputs(*fused, n_past, 1 + static_cast<uint64_t>(n_past));
      HS_ASSERT_OK_AND_ASSIGN(auto a, execute_bytes(*fused, in));
      HS_ASSERT_OK_AND_ASSIGN(auto b, execute_bytes(*per_node, in));
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(a[i] == b[i]) << g.name << " output '" << fused->outputs()[i].name
                                  << "' differs, n_past " << n_past;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stories260K, RopeFusionStories,
                         ::testing::Combine(::testing::Values(std::string("16a8w"),
                                                              std::string("16a4w-block32")),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name + (std::get<1>(info.param) ? "_split" : "_mha");
                         });

}  // namespace
}  // namespace hs::runtime::testing
