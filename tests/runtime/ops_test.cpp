// Every op kernel path of the runtime against the reference interpreter on small graphs:
// elementwise ops with each broadcast pattern, reductions and normalization, layout ops
// (copies, views of I/O, backend aliases), gathers from float / quantized / int4 / int32
// tables, quantize/dequantize, and integer graph I/O. Float and quantized (u16 activations,
// fake-quant after every node) variants. These paths are exact by construction (the same IEEE
// operations per element as the reference kernels), so the comparison is bit for bit.
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/ir/interpreter.h"
#include "runtime_testing.h"
#include "testing/testing.h"

namespace hs::runtime::testing {
namespace {

using ir::OpKind;

// Runs `g` on the interpreter and on both runtime kernel choices; all must be bit-identical.
void expect_exact(const ir::Graph& g, uint64_t seed, int32_t index_limit = 4,
                  PlanSummary* fast_summary = nullptr) {
  const auto inputs = random_inputs(g, seed, index_limit);
  for (KernelChoice k : {KernelChoice::kReference, KernelChoice::kFast}) {
    HS_ASSERT_OK_AND_ASSIGN(BothRuns runs, run_both(g, inputs, k));
    std::string why;
    EXPECT_TRUE(bit_identical(runs.reference, runs.runtime, &why))
        << (k == KernelChoice::kFast ? "fast: " : "reference: ") << why;
    if (k == KernelChoice::kFast && fast_summary != nullptr) *fast_summary = runs.summary;
  }
}

// Elementwise ops over every broadcast pattern the binary kernel distinguishes.
ir::Graph elementwise_graph(bool quantized) {
  ir::Graph g("g");
  const auto a = must(g.add_input("a", ir::TensorType::f32({2, 3, 20})));
  const auto b = must(g.add_input("b", ir::TensorType::f32({2, 3, 20})));
  const auto tile = must(g.add_input("tile", ir::TensorType::f32({1, 3, 20})));
  const auto col = must(g.add_input("col", ir::TensorType::f32({2, 1, 20})));
  const auto scalar = f32_constant(g, "s", {}, 0, {1.75f});
  const auto w = f32_constant(g, "w", {20}, 1);
  const auto w2 = f32_constant(g, "w2", {20}, 2);
  std::vector<ir::ValueId> outs = {
      emit(g, OpKind::kAdd, {a, b}, {}, "same"),
      emit(g, OpKind::kSub, {a, tile}, {}, "tile_b"),
      emit(g, OpKind::kMul, {tile, a}, {}, "tile_a"),
      emit(g, OpKind::kDiv, {a, scalar}, {}, "scalar_b"),
      emit(g, OpKind::kSub, {scalar, a}, {}, "scalar_a"),
      emit(g, OpKind::kMul, {a, col}, {}, "general"),
      emit(g, OpKind::kNeg, {a}, {}, "neg"),
      emit(g, OpKind::kSilu, {b}, {}, "silu"),
      emit(g, OpKind::kRmsNorm, {a, w}, {{"eps", 1e-5}}, "rms"),
      emit(g, OpKind::kLayerNorm, {a, w, w2}, {{"eps", 1e-5}}, "layer_norm"),
      emit(g, OpKind::kLayerNorm, {b, w}, {{"eps", 0.25}}, "layer_norm_no_bias"),
      emit(g, OpKind::kTanh, {a}, {}, "tanh"),
      emit(g, OpKind::kGelu, {a}, {{"approximate", std::string("none")}}, "gelu"),
      emit(g, OpKind::kGelu, {b}, {{"approximate", std::string("tanh")}}, "gelu_tanh"),
      emit(g, OpKind::kSoftmax, {a}, {{"axis", int64_t{-1}}}, "softmax_last"),
      emit(g, OpKind::kSoftmax, {b}, {{"axis", int64_t{1}}}, "softmax_mid"),
      emit(g, OpKind::kReduceMin, {a}, {{"axis", int64_t{1}}, {"keepdim", int64_t{0}}}, "min0"),
      emit(g, OpKind::kReduceMin, {b}, {{"axis", int64_t{2}}, {"keepdim", int64_t{1}}}, "min1"),
  };
  const auto eq = emit(g, OpKind::kEq, {a, col}, {}, "eq");
  outs.push_back(emit(g, OpKind::kWhere, {eq, a, b}, {}, "where"));
  g.set_outputs(outs);
  if (quantized) quantize_activations(g);
  return g;
}

TEST(RuntimeOps, ElementwiseFloatIsExact) { expect_exact(elementwise_graph(false), 1); }

TEST(RuntimeOps, ElementwiseQuantizedIsExact) {
  // u16 inputs (bound as integers) and fake-quant after every node.
  PlanSummary summary;
  expect_exact(elementwise_graph(true), 2, 4, &summary);
  // The binary ops read the inputs as floats: the four u16 inputs are dequantized up front.
  EXPECT_EQ(summary.staged_inputs, 4);
}

// Steps over at least kParallelMin (16384) elements split their elementwise work over the pool
// in fixed chunks (binary ops with and without fused fake quantization, silu, rms_norm rows,
// fake quantization, I/O conversion): with a 2-thread pool and without one, bit-identical to
// the interpreter. 19200 elements: four full chunks and a partial one.
TEST(RuntimeOps, LargeElementwiseStepsSplitOverThePoolAreExact) {
  for (bool quantized : {false, true}) {
    ir::Graph g("g");
    const auto a = must(g.add_input("a", ir::TensorType::f32({2, 24, 400})));
    const auto b = must(g.add_input("b", ir::TensorType::f32({2, 24, 400})));
    const auto tile = must(g.add_input("tile", ir::TensorType::f32({1, 24, 400})));
    const auto scalar = f32_constant(g, "s", {}, 0, {1.75f});
    const auto w = f32_constant(g, "w", {400}, 1);
    g.set_outputs({
        emit(g, OpKind::kAdd, {a, b}, {}, "same"),
        emit(g, OpKind::kSub, {a, tile}, {}, "tile_b"),
        emit(g, OpKind::kMul, {tile, b}, {}, "tile_a"),
        emit(g, OpKind::kDiv, {a, scalar}, {}, "scalar_b"),
        emit(g, OpKind::kSub, {scalar, b}, {}, "scalar_a"),
        emit(g, OpKind::kSilu, {a}, {}, "silu"),
        emit(g, OpKind::kRmsNorm, {b, w}, {{"eps", 1e-5}}, "rms"),
        emit(g, OpKind::kSoftmax, {a}, {{"axis", int64_t{-1}}}, "softmax"),
    });
    if (quantized) quantize_activations(g);
    const auto inputs = random_inputs(g, 9);
    HS_ASSERT_OK_AND_ASSIGN(auto reference, ir::run_graph(g, inputs));
    HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
    kernels::ThreadPool pool({.threads = 2});
    for (kernels::ThreadPool* p : {static_cast<kernels::ThreadPool*>(nullptr), &pool}) {
      HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(artifact, "g", {.pool = p}));
      HS_ASSERT_OK_AND_ASSIGN(auto runtime, run_executor(*exec, g, inputs));
      std::string why;
      EXPECT_TRUE(bit_identical(reference, runtime, &why))
          << (quantized ? "quantized" : "float") << (p != nullptr ? ", 2 threads: " : ", inline: ")
          << why;
    }
  }
}

TEST(RuntimeOps, WhereSeesEqualElements) {
  // eq(a, col) is true only where the values coincide: make them coincide on purpose.
  ir::Graph g("g");
  const auto a = must(g.add_input("a", ir::TensorType::f32({2, 3})));
  const auto c = f32_constant(g, "c", {1, 3}, 0, {0.5f, -1.f, 2.f});
  const auto eq = emit(g, OpKind::kEq, {a, c}, {}, "eq");
  const auto zero = f32_constant(g, "zero", {}, 0, {0.f});
  const auto one = f32_constant(g, "one", {}, 0, {1.f});
  g.set_outputs({emit(g, OpKind::kWhere, {eq, a, zero}, {}, "picked"),
                 emit(g, OpKind::kWhere, {eq, one, zero}, {}, "mask")});
  std::vector<ir::NamedTensor> in = {
      {"a", ir::Tensor::from_f32({2, 3}, {0.5f, 3.f, 2.f, 1.f, -1.f, 7.f})}};
  HS_ASSERT_OK_AND_ASSIGN(BothRuns runs, run_both(g, in, KernelChoice::kFast));
  // Hand-computed: where(a == c, a, 0) and where(a == c, 1, 0).
  EXPECT_EQ(runs.runtime[0].f, (std::vector<float>{0.5f, 0.f, 2.f, 0.f, -1.f, 0.f}));
  EXPECT_EQ(runs.runtime[1].f, (std::vector<float>{1.f, 0.f, 1.f, 0.f, 1.f, 0.f}));
}

// Layout ops: permuting and unit-axis transposes, inner and outer slices, concats on every
// axis, expand, reshape/squeeze/unsqueeze, on values in the arena and on graph inputs.
ir::Graph layout_graph(bool quantized) {
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({1, 4, 3, 5})));
  const auto y = must(g.add_input("y", ir::TensorType::f32({1, 4, 2, 5})));
  const auto h = emit(g, OpKind::kNeg, {x}, {}, "h");  // an arena value
  std::vector<ir::ValueId> outs = {
      emit(g, OpKind::kTranspose, {h}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}}, "t_perm"),
      emit(g, OpKind::kTranspose, {h}, {{"perm", std::vector<int64_t>{0, 3, 2, 1}}}, "t_rev"),
      emit(g, OpKind::kSlice, {h}, {{"axis", int64_t{1}}, {"start", int64_t{1}}, {"end", int64_t{3}}},
           "s_outer"),
      emit(g, OpKind::kSlice, {x}, {{"axis", int64_t{3}}, {"start", int64_t{2}}, {"end", int64_t{5}}},
           "s_inner"),
      emit(g, OpKind::kConcat, {x, y}, {{"axis", int64_t{2}}}, "cat2"),
      emit(g, OpKind::kConcat, {h, h}, {{"axis", int64_t{3}}}, "cat3"),
      emit(g, OpKind::kConcat, {h, x}, {{"axis", int64_t{0}}}, "cat0"),
  };
  const auto slice_in = emit(g, OpKind::kSlice, {x},
                             {{"axis", int64_t{1}}, {"start", int64_t{2}}, {"end", int64_t{3}}},
                             "x_head2");  // a view of the input
  const auto sq = emit(g, OpKind::kSqueeze, {slice_in}, {{"axis", int64_t{1}}}, "sq");
  const auto un = emit(g, OpKind::kUnsqueeze, {sq}, {{"axis", int64_t{0}}}, "un");
  outs.push_back(emit(g, OpKind::kExpand, {un}, {{"shape", std::vector<int64_t>{2, 1, 3, 5}}},
                      "expanded"));
  const auto r = emit(g, OpKind::kReshape, {h}, {{"shape", std::vector<int64_t>{4, 15}}}, "r");
  outs.push_back(emit(g, OpKind::kAdd, {r, r}, {}, "r2"));
  const auto ts = emit(g, OpKind::kTranspose, {sq}, {{"perm", std::vector<int64_t>{0, 2, 1}}}, "ts");
  outs.push_back(emit(g, OpKind::kMul, {ts, ts}, {}, "ts2"));
  g.set_outputs(outs);
  if (quantized) quantize_activations(g);
  return g;
}

TEST(RuntimeOps, LayoutFloatIsExact) {
  PlanSummary summary;
  expect_exact(layout_graph(false), 3, 4, &summary);
  EXPECT_GE(summary.views, 3);  // x_head2, sq, un view the input; r re-views h (aliased)
}

TEST(RuntimeOps, LayoutQuantizedIsExact) { expect_exact(layout_graph(true), 4); }

TEST(RuntimeOps, AliasedLayoutNodesRunNoCode) {
  // The backend aliases reshape/squeeze/unsqueeze outputs to their input's arena bytes; the
  // runtime skips them. Without aliases it copies: same results, more steps.
  ir::Graph g = layout_graph(false);
  const auto inputs = random_inputs(g, 5);
  HS_ASSERT_OK_AND_ASSIGN(BothRuns aliased, run_both(g, inputs, KernelChoice::kFast, {.aliases = true}));
  HS_ASSERT_OK_AND_ASSIGN(BothRuns copied, run_both(g, inputs, KernelChoice::kFast, {.aliases = false}));
  std::string why;
  EXPECT_TRUE(bit_identical(aliased.runtime, copied.runtime, &why)) << why;
  EXPECT_GT(aliased.summary.views, copied.summary.views);
  EXPECT_LT(aliased.summary.steps, copied.summary.steps);
}

TEST(RuntimeOps, QuantizeDequantizeAreExact) {
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({3, 7})));
  const auto q = must(g.add_node(OpKind::kQuantize, {x}, {},
                                 {{"q", ir::TensorType{ir::DType::kU8, {3, 7},
                                                       ir::QuantParams::per_tensor(
                                                           0.05f, 100, 8, 0, 255)}}}));
  const auto qv = g.node(q).outputs[0];
  const auto d = emit(g, OpKind::kDequantize, {qv}, {}, "d");
  g.set_outputs({emit(g, OpKind::kNeg, {d}, {}, "out"), qv});
  expect_exact(g, 6);
}

TEST(RuntimeOps, GatherFromEveryTableKind) {
  ir::Graph g("g");
  const auto idx = must(g.add_input("idx", ir::TensorType::i32({2, 3})));
  const auto f = f32_constant(g, "f", {5, 4}, 7);
  std::vector<float> row_scales = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
  const auto i8 = int_constant(g, "i8", ir::DType::kI8, {5, 6},
                               ir::QuantParams::per_axis(0, row_scales, std::vector<int32_t>(5, 0),
                                                         8, -127, 127),
                               8);
  const auto i4 = int_constant(g, "i4", ir::DType::kI4, {5, 7},
                               ir::QuantParams::per_axis(0, row_scales, std::vector<int32_t>(5, 0),
                                                         4, -7, 7),
                               9);
  const auto u8 = int_constant(g, "u8", ir::DType::kU8, {5, 3},
                               ir::QuantParams::per_tensor(0.25f, 128, 8, 0, 255), 10);
  std::vector<float> block_scales(5 * 2);
  for (size_t i = 0; i < block_scales.size(); ++i) block_scales[i] = 0.01f * static_cast<float>(i + 1);
  const auto blk = int_constant(g, "blk", ir::DType::kI8, {5, 6},
                                ir::QuantParams::per_block(0, 1, 4, block_scales, 8, -127, 127),
                                11);
  std::vector<int32_t> ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto ibuf = HeapBuffer::copy_of(std::as_bytes(std::span<const int32_t>(ints)));
  const auto it = must(g.add_constant("ints", ir::TensorType::i32({5, 2}), {ibuf, 0, ibuf->size()}));
  std::vector<ir::ValueId> outs;
  for (auto [table, name] : {std::pair{f, "gf"}, std::pair{i8, "g8"}, std::pair{i4, "g4"},
                             std::pair{u8, "gu8"}, std::pair{blk, "gblk"}, std::pair{it, "gi"}}) {
    outs.push_back(emit(g, OpKind::kGather, {table, idx}, {}, name));
  }
  g.set_outputs(outs);
  expect_exact(g, 12, 5);
}

TEST(RuntimeOps, GatherIndexOutOfRangeNamesTheNode) {
  ir::Graph g("g");
  const auto idx = must(g.add_input("idx", ir::TensorType::i32({2})));
  g.set_outputs({emit(g, OpKind::kGather, {f32_constant(g, "tab", {3, 2}, 1), idx}, {}, "rows")});
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
  HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(artifact, "g"));
  std::vector<ir::NamedTensor> in = {{"idx", ir::Tensor::from_i32({2}, {1, 3})}};
  auto out = run_executor(*exec, g, in);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.kind(), ErrorKind::kOutOfRange);
  EXPECT_NE(out.error().message().find("node 'rows' (gather)"), std::string::npos)
      << out.error().message();
  EXPECT_NE(out.error().message().find("index 3 at position 1"), std::string::npos);
}

TEST(RuntimeOps, IntegerOutputsAreStoredQuantized) {
  // A u8 graph output: computed in float staging, stored as its integers.
  ir::Graph g("g");
  const auto x = must(g.add_input("x", ir::TensorType::f32({6})));
  const auto y = emit(g, OpKind::kMul, {x, x}, {}, "y");
  g.value(y).type = {ir::DType::kU8, {6}, ir::QuantParams::per_tensor(0.5f, 0, 8, 0, 255)};
  g.set_outputs({y});
  HS_ASSERT_OK_AND_ASSIGN(auto artifact, make_artifact(g));
  HS_ASSERT_OK_AND_ASSIGN(auto exec, GraphExecutor::create(artifact, "g"));
  const std::vector<float> xs = {0.f, 1.f, 1.5f, 2.f, -3.f, 100.f};
  std::vector<uint8_t> out(6);
  HS_ASSERT_OK(exec->bind_input("x", std::as_bytes(std::span<const float>(xs))));
  HS_ASSERT_OK(exec->bind_output("y", std::as_writable_bytes(std::span<uint8_t>(out))));
  HS_ASSERT_OK(exec->execute());
  // Hand-computed q = clamp(round_half_even(x*x / 0.5), 0, 255): 0, 2, 4 (4.5 -> 4), 8, 18, 255.
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 2, 4, 8, 18, 255}));
}

}  // namespace
}  // namespace hs::runtime::testing
