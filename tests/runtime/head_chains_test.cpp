// Batched per-head chains (runtime/step_planner_heads.cpp): the identical per-head chains of a
// split attention run as one parallel step, bit-identical to running every node in order.
//   - small IR graphs: identical chains are batched and equal the interpreter; chains that
//     differ (one op kind, one extra op) or that read a value computed after the first head
//     node are not batched and still run correctly
//   - the split stories260K artifacts (16a8w, 16a4w-block32): every graph (decode T = 1,
//     prefill T = 32) gives the same output bytes batched (2 threads) and per node, on seeded
//     inputs, and the same greedy tokens and logits
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "graph_builder.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "runtime_testing.h"
#include "step_recorder.h"
#include "testing/stories_export.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

using ir::OpKind;

enum class Variant { kIdentical, kOtherOp, kExtraOp, kLateInput, kSharedWeight, kOwnAddend };

// x [2,8] -> per head h: a.h = x * w_h; b.h = silu(a.h); c.h = b.h + s -> y = concat_h c.h on
// axis 0 ([2H, 8]), with s = neg(x) computed before the heads (kLateInput: after head 0's
// first node). kOtherOp: head 1 uses tanh for silu; kExtraOp: head 1 negates b.h once more;
// kSharedWeight: every head multiplies by w.h0; kOwnAddend: c.h = b.h + t_h, a constant per head.
ir::Graph heads_graph(Variant v, int heads = 3) {
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({2, 8})));
  ir::ValueId s{};
  if (v != Variant::kLateInput) s = emit(g, OpKind::kNeg, {x}, {}, "s");
  std::vector<ir::ValueId> a(static_cast<size_t>(heads));
  ir::ValueId w0{};
  for (int h = 0; h < heads; ++h) {
    const bool shared = v == Variant::kSharedWeight && h > 0;
    const ir::ValueId w =
        shared ? w0 : f32_constant(g, fmt::format("w.h{}", h), {8}, 10 + static_cast<uint64_t>(h));
    if (h == 0) w0 = w;
    a[static_cast<size_t>(h)] = emit(g, OpKind::kMul, {x, w}, {}, fmt::format("a.h{}", h));
    if (v == Variant::kLateInput && h == 0) s = emit(g, OpKind::kNeg, {x}, {}, "s");
  }
  std::vector<ir::ValueId> c;
  for (int h = 0; h < heads; ++h) {
    const OpKind act = v == Variant::kOtherOp && h == 1 ? OpKind::kTanh : OpKind::kSilu;
    auto b = emit(g, act, {a[static_cast<size_t>(h)]}, {}, fmt::format("b.h{}", h));
    if (v == Variant::kExtraOp && h == 1) b = emit(g, OpKind::kNeg, {b}, {}, "b2.h1");
    const auto addend = v == Variant::kOwnAddend ? f32_constant(g, fmt::format("t.h{}", h), {8},
                                                                20 + static_cast<uint64_t>(h))
                                                 : s;
    c.push_back(emit(g, OpKind::kAdd, {b, addend}, {}, fmt::format("c.h{}", h)));
  }
  g.add_output(emit(g, OpKind::kConcat, c, {{"axis", int64_t{0}}}, "y"));
  return g;
}

struct Run {
  std::vector<ir::Tensor> outputs;
  PlanSummary summary;
};

Result<Run> run_graph(const ir::Graph& g, const std::vector<ir::NamedTensor>& inputs,
                      bool batch, kernels::ThreadPool* pool) {
  HS_ASSIGN_OR_RETURN(auto artifact, make_artifact(g));
  HS_ASSIGN_OR_RETURN(auto exec,
                      GraphExecutor::create(artifact, "g", {.pool = pool, .batch_heads = batch}));
  HS_ASSIGN_OR_RETURN(auto outs, run_executor(*exec, g, inputs));
  return Run{std::move(outs), exec->summary()};
}

// stacked: the per-head steps that stack (steps.h: StackState), one call for all heads; tasks:
// the chains step's tasks (a run of stacked positions is one).
void expect_heads(Variant v, int64_t groups, int64_t chains, int64_t stacked = 0,
                  int64_t tasks = 0) {
  const ir::Graph g = heads_graph(v);
  const auto inputs = random_inputs(g, 7);
  HS_ASSERT_OK_AND_ASSIGN(auto interp, ir::Interpreter::create(g));
  HS_ASSERT_OK_AND_ASSIGN(std::vector<ir::Tensor> ref, interp.run(inputs));
  kernels::ThreadPool pool(2);
  HS_ASSERT_OK_AND_ASSIGN(Run batched, run_graph(g, inputs, true, &pool));
  HS_ASSERT_OK_AND_ASSIGN(Run per_node, run_graph(g, inputs, false, &pool));
  EXPECT_EQ(batched.summary.head_groups, groups);
  EXPECT_EQ(batched.summary.head_chains, chains);
  EXPECT_EQ(batched.summary.head_tasks, tasks);
  EXPECT_EQ(batched.summary.stacked_calls, stacked);
  EXPECT_EQ(batched.summary.stacked_parts, stacked * chains);
  EXPECT_EQ(per_node.summary.head_groups, 0);
  EXPECT_EQ(per_node.summary.stacked_calls, 0);
  // The same kernel calls, but for each stacked set of per-head calls, one.
  EXPECT_EQ(batched.summary.steps,
            per_node.summary.steps - batched.summary.stacked_parts + batched.summary.stacked_calls);
  std::string why;
  EXPECT_TRUE(bit_identical(ref, batched.outputs, &why)) << why;
  EXPECT_TRUE(bit_identical(ref, per_node.outputs, &why)) << why;
}

// No shared nodes: one phase. a.h = x * w_h reads a weight per head (neither shared nor side
// by side) and silu does not stack: those run as 3 tasks; c.h = b.h + s (b.h side by side, s
// shared) stacks: one task.
TEST(HeadChains, IdenticalChainsRunAsOneStep) { expect_heads(Variant::kIdentical, 1, 3, 1, 4); }
// x * w.h0 stacks too (both operands shared): stacked mul, 3 silu tasks, stacked add.
TEST(HeadChains, AStepWithSharedOperandsStacks) {
  expect_heads(Variant::kSharedWeight, 1, 3, 2, 5);
}
// b.h + t_h: t_h is neither shared nor side by side, so nothing stacks; the chains still batch.
TEST(HeadChains, AStepWithAnOperandPerHeadDoesNotStack) {
  expect_heads(Variant::kOwnAddend, 1, 3, 0, 3);
}
TEST(HeadChains, ChainsWithAnotherOpAreNotBatched) { expect_heads(Variant::kOtherOp, 0, 0); }
TEST(HeadChains, ChainsWithAnExtraOpAreNotBatched) { expect_heads(Variant::kExtraOp, 0, 0); }
TEST(HeadChains, AnInputComputedAfterTheFirstHeadNodeIsNotBatched) {
  expect_heads(Variant::kLateInput, 0, 0);
}

// ---- the split stories260K artifacts

// Seeded bytes for every input of `exec`: i32 in [0, 4), f32 in [-2, 2], integer storage any
// value of its type.
std::vector<std::vector<std::byte>> seeded_inputs(const GraphExecutor& exec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::byte>> out;
  for (const IoDesc& d : exec.inputs()) {
    std::vector<std::byte> bytes(static_cast<size_t>(d.bytes));
    if (d.type == artifact::ElementType::kI32 || d.type == artifact::ElementType::kF32) {
      std::uniform_real_distribution<float> real(-2.f, 2.f);
      for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        const int32_t k = static_cast<int32_t>(rng() % 4);
        const float f = real(rng);
        if (d.type == artifact::ElementType::kI32) {
          std::memcpy(bytes.data() + i, &k, 4);
        } else {
          std::memcpy(bytes.data() + i, &f, 4);
        }
      }
    } else {
      for (std::byte& b : bytes) b = static_cast<std::byte>(rng());
    }
    out.push_back(std::move(bytes));
  }
  return out;
}

Result<std::vector<std::vector<std::byte>>> execute(GraphExecutor& exec,
                                                    const std::vector<std::vector<std::byte>>& in) {
  for (size_t i = 0; i < in.size(); ++i) HS_TRY(exec.bind_input(static_cast<int>(i), in[i]));
  std::vector<std::vector<std::byte>> out;
  for (const IoDesc& d : exec.outputs()) out.emplace_back(static_cast<size_t>(d.bytes));
  for (size_t i = 0; i < out.size(); ++i) HS_TRY(exec.bind_output(static_cast<int>(i), out[i]));
  HS_TRY(exec.execute());
  return out;
}

// x [1,K,1,T] -> per head h: a.h = conv2d(x, w.h) [1,n,1,T]; b.h = silu(a.h) -> y = concat_h
// b.h on axis 1. The weights are separate constants, created in head order (adjacent in the
// artifact's data section) or in reverse order (not adjacent: the merged call owns a stacked
// copy). int8 per output channel or f32.
ir::Graph projection_heads_graph(bool int8, bool reversed, int heads = 3) {
  constexpr int64_t kK = 32, kN = 8, kT = 4;
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({1, kK, 1, kT})));
  std::vector<ir::ValueId> w(static_cast<size_t>(heads));
  for (int i = 0; i < heads; ++i) {
    const int h = reversed ? heads - 1 - i : i;
    const std::string name = fmt::format("w.h{}", h);
    const uint64_t seed = 30 + static_cast<uint64_t>(h);
    if (int8) {
      std::vector<float> scales;
      for (int64_t c = 0; c < kN; ++c) scales.push_back(0.01f + 0.002f * static_cast<float>(c + h));
      const auto q = ir::QuantParams::per_axis(0, scales, std::vector<int32_t>(kN, 0), 8, -127, 127);
      w[static_cast<size_t>(h)] = int_constant(g, name, ir::DType::kI8, {kN, kK, 1, 1}, q, seed);
    } else {
      w[static_cast<size_t>(h)] = f32_constant(g, name, {kN, kK, 1, 1}, seed);
    }
  }
  std::vector<ir::ValueId> b;
  for (int h = 0; h < heads; ++h) {
    const auto a = emit(g, OpKind::kConv2d, {x, w[static_cast<size_t>(h)]}, {}, fmt::format("a.h{}", h));
    b.push_back(emit(g, OpKind::kSilu, {a}, {}, fmt::format("b.h{}", h)));
  }
  g.add_output(emit(g, OpKind::kConcat, b, {{"axis", int64_t{1}}}, "y"));
  return g;
}

// The per-head projections of one x run as one call, bit-identical to per-node execution, and
// read the mapping in place exactly when the heads' weights are adjacent.
TEST(HeadChains, PerHeadProjectionsOfOneXRunAsOneCall) {
  kernels::ThreadPool pool(2);
  for (const bool int8 : {true, false}) {
    for (const bool reversed : {false, true}) {
      SCOPED_TRACE(fmt::format("{} weights, {} order", int8 ? "int8" : "f32",
                               reversed ? "reverse" : "head"));
      const ir::Graph g = projection_heads_graph(int8, reversed);
      const auto inputs = random_inputs(g, 11);
      HS_ASSERT_OK_AND_ASSIGN(testing::Run batched, run_graph(g, inputs, true, &pool));
      HS_ASSERT_OK_AND_ASSIGN(testing::Run per_node, run_graph(g, inputs, false, &pool));
      EXPECT_EQ(batched.summary.head_groups, 1);
      EXPECT_EQ(batched.summary.merged_calls, 1);
      EXPECT_EQ(batched.summary.merged_parts, 3);
      EXPECT_EQ(per_node.summary.merged_calls, 0);
      const int64_t stacked = reversed ? 3 * 8 * 32 * (int8 ? 1 : 4) : 0;
      EXPECT_EQ(batched.summary.prepared_bytes, per_node.summary.prepared_bytes + stacked);
      std::string why;
      EXPECT_TRUE(bit_identical(per_node.outputs, batched.outputs, &why)) << why;
    }
  }
}

class HeadChainsStories : public ::testing::TestWithParam<std::string> {};

TEST_P(HeadChainsStories, BatchedGraphsGiveTheSameBytesAsPerNode) {
  HS_REQUIRE_SHARED();
  const auto& e = hs::testing::exported(GetParam(), /*split=*/true);
  ASSERT_NE(e.artifact, nullptr);
  kernels::ThreadPool pool(2);
  std::vector<int32_t> ar_lens;
  for (const artifact::GraphDesc& g : e.artifact->program().graphs) {
    ar_lens.push_back(g.ar_len);
    HS_ASSERT_OK_AND_ASSIGN(auto batched,
                            GraphExecutor::create(e.artifact, g.name, {.pool = &pool}));
    HS_ASSERT_OK_AND_ASSIGN(
        auto per_node, GraphExecutor::create(e.artifact, g.name, {.pool = &pool, .batch_heads = false}));
    const PlanSummary& s = batched->summary();
    EXPECT_EQ(s.head_groups, e.artifact->program().metadata.n_layers) << g.name;
    const artifact::ModelMetadata& m = e.artifact->program().metadata;
    EXPECT_EQ(s.head_chains, m.n_layers * m.n_kv_heads) << g.name;  // kv head + its query heads
    EXPECT_EQ(per_node->summary().head_groups, 0) << g.name;
    // Every op of a head's chain stacks (its tensors side by side in staging, unpadded: a decode
    // head's q is 8 floats): per layer the kv heads' k RoPE, then the query heads' q RoPE,
    // scores, scale, mask add, softmax and P·V, and in prefill the transposes that copy (k, k_new
    // and v of a kv head, q of a query head). So the phases (the kv heads' shared nodes, then the
    // query heads') each run as one task of stacked steps.
    const int64_t copies = g.ar_len > 1 ? 1 : 0;
    EXPECT_EQ(s.head_tasks, 2 * m.n_layers) << g.name;
    EXPECT_EQ(s.stacked_calls, m.n_layers * (7 + 4 * copies)) << g.name;
    EXPECT_EQ(s.stacked_parts,
              m.n_layers * ((1 + 3 * copies) * m.n_kv_heads + (6 + copies) * m.n_heads))
        << g.name;
    EXPECT_EQ(per_node->summary().stacked_calls, 0) << g.name;
    // Each layer's q, k and v per-head projections: one call each, reading the mapping (the
    // writer stores a projection's per-head weights side by side: no stacked copy).
    EXPECT_EQ(s.merged_calls, 3 * m.n_layers) << g.name;
    EXPECT_EQ(s.merged_parts, m.n_layers * (m.n_heads + 2 * m.n_kv_heads)) << g.name;
    EXPECT_EQ(s.prepared_bytes, per_node->summary().prepared_bytes) << g.name;
    EXPECT_EQ(per_node->summary().merged_calls, 0) << g.name;
    // Chain outputs live in staging, so views of them need no copy: at most as many steps.
    EXPECT_LE(s.steps, per_node->summary().steps) << g.name;
    for (uint64_t seed : {1u, 2u}) {
      const auto in = seeded_inputs(*batched, seed);
      HS_ASSERT_OK_AND_ASSIGN(auto a, execute(*batched, in));
      HS_ASSERT_OK_AND_ASSIGN(auto b, execute(*per_node, in));
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(a[i] == b[i]) << g.name << " output '" << batched->outputs()[i].name
                                  << "' differs, seed " << seed;
      }
    }
  }
  EXPECT_NE(std::find(ar_lens.begin(), ar_lens.end(), 1), ar_lens.end());
  EXPECT_NE(std::find(ar_lens.begin(), ar_lens.end(), 32), ar_lens.end());
}

TEST_P(HeadChainsStories, BatchedGreedyGenerationEqualsPerNode) {
  HS_REQUIRE_SHARED();
  const auto& e = hs::testing::exported(GetParam(), /*split=*/true);
  ASSERT_NE(e.artifact, nullptr);
  const auto tok = hs::testing::make_tokenizer(e);
  HS_ASSERT_OK_AND_ASSIGN(auto a, ArtifactStepModel::create(e.artifact, {.threads = 2}));
  HS_ASSERT_OK_AND_ASSIGN(auto b,
                          ArtifactStepModel::create(e.artifact, {.threads = 2, .batch_heads = false}));
  const std::string prompt = "Once upon a time, there was a little girl named Lily.";
  HS_ASSERT_OK_AND_ASSIGN(Recorded x, record_greedy(*a, *tok, prompt, {.max_new_tokens = 24}));
  HS_ASSERT_OK_AND_ASSIGN(Recorded y, record_greedy(*b, *tok, prompt, {.max_new_tokens = 24}));
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_TRUE(x.logits == y.logits);
}

INSTANTIATE_TEST_SUITE_P(Stories260K, HeadChainsStories,
                         ::testing::Values(std::string("16a8w"), std::string("16a4w-block32")),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace hs::runtime::testing
