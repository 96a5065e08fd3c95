// The slicing helpers on their own (passes/slicing.h: opset::slice_type and
// slice_constant_data), the way the split and fold-constants use them:
//   - seeded property: a constant sliced by the helpers reads back (dequantized) exactly as
//     the slice op computes it on the whole constant, for float, per-axis and per-block
//     quantized types, on every axis (block axis: whole blocks), views and copies alike;
//   - a linear layer rewritten as per-row-group linears over sliced weights (per-block int4,
//     the 16a4w-block scheme's weights) and a concat gives bit-identical outputs; its printed
//     graph matches tests/golden/slicing_linear.txt.
#include "headsplit/passes/slicing.h"

#include <gtest/gtest.h>

#include <random>

#include "headsplit/ir/text.h"
#include "passes/pass_testing.h"
#include "testing/testing.h"

namespace hs::passes {
namespace {

using ir::DType;
using ir::OpKind;
using ir::QuantParams;
using ir::TensorType;

// A random type of rank 2..4 over `shape`: f32, i8 per-axis or i4 per-block (block 2 or 3).
TensorType random_type(std::mt19937_64& rng, ir::Shape shape) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  switch (rng() % 3) {
    case 0: return TensorType::f32(std::move(shape));
    case 1: {
      const auto axis = static_cast<int>(rng() % static_cast<uint64_t>(rank));
      const auto n = static_cast<size_t>(shape[static_cast<size_t>(axis)]);
      std::vector<float> scales(n);
      for (size_t i = 0; i < n; ++i) scales[i] = 0.0625f * static_cast<float>(1 + rng() % 16);
      return {DType::kI8, shape,
              QuantParams::per_axis(axis, scales, std::vector<int32_t>(n, 0), 8, -127, 127)};
    }
    default: {
      const int64_t block = 2 + static_cast<int64_t>(rng() % 2);
      QuantParams q = QuantParams::per_block(0, 1, block, {}, 4, -7, 7);
      const auto count = static_cast<size_t>(shape[0] * q.blocks_for(shape[1]));
      for (size_t i = 0; i < count; ++i)
        q.scales.push_back(0.125f * static_cast<float>(1 + rng() % 8));
      q.zero_points.assign(count, 0);
      return {DType::kI4, std::move(shape), std::move(q)};
    }
  }
}

TEST(Slicing, SlicedConstantsReadBackAsTheSliceOp) {
  std::mt19937_64 rng(2024);
  int views = 0, copies = 0;
  for (int iter = 0; iter < 60; ++iter) {
    SCOPED_TRACE(iter);
    ir::Shape shape;
    const int rank = 2 + static_cast<int>(rng() % 3);
    for (int d = 0; d < rank; ++d) shape.push_back(1 + static_cast<int64_t>(rng() % 5));
    if (rng() % 2 == 0) shape[0] = 1;  // leading unit axes make views
    const TensorType type = random_type(rng, shape);
    const auto axis = static_cast<int64_t>(rng() % static_cast<uint64_t>(rank));
    const int64_t dim = shape[static_cast<size_t>(axis)];
    int64_t start = static_cast<int64_t>(rng() % static_cast<uint64_t>(dim));
    int64_t end = start + 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(dim - start));
    const QuantParams& q = type.quant;
    if (q.kind == ir::QuantKind::kPerBlock && axis == q.block_axis) {  // whole blocks only
      start = start / q.block * q.block;
      end = std::min(dim, (end + q.block - 1) / q.block * q.block);
    }
    ir::Graph g("slice");
    const auto w = testing::seeded_constant(g, "w", type, static_cast<uint64_t>(iter));
    HS_ASSERT_OK_AND_ASSIGN(TensorType sliced, ir::slice_type(type, axis, start, end));
    HS_ASSERT_OK(ir::check_quant(sliced, "sliced"));
    HS_ASSERT_OK_AND_ASSIGN(BufferView data, slice_constant_data(g.value(w), axis, start, end));
    (slice_is_view(type.shape, axis) ? views : copies) += 1;
    const auto piece = g.add_constant("piece", sliced, data).value();
    // The slice op on the whole (dequantized) constant, in the interpreter.
    const auto node =
        g.add_node(OpKind::kSlice, {w}, {{"axis", axis}, {"start", start}, {"end", end}},
                   {{"by_op", TensorType::f32(sliced.shape)}});
    ASSERT_TRUE(node.ok()) << node.error().message();
    g.set_outputs({g.node(*node).outputs[0]});
    HS_ASSERT_OK_AND_ASSIGN(std::vector<ir::Tensor> want, ir::run_graph(g, {}));
    HS_ASSERT_OK_AND_ASSIGN(ir::Tensor got, ir::read_constant(g, piece));
    ASSERT_EQ(got.shape, want[0].shape);
    for (size_t i = 0; i < got.f.size(); ++i) ASSERT_EQ(got.f[i], want[0].f[i]) << "element " << i;
  }
  EXPECT_GT(views, 0);
  EXPECT_GT(copies, 0);
}

// y = linear(x, W) with W i4 [6,8] per block of 4, and the same as concat of three linears over
// row groups of W sliced by the helpers.
TEST(Slicing, LinearOverSlicedRowsIsBitExact) {
  std::mt19937_64 rng(7);
  QuantParams q = QuantParams::per_block(0, 1, 4, {}, 4, -7, 7);
  for (int i = 0; i < 12; ++i) q.scales.push_back(0.125f * static_cast<float>(1 + rng() % 8));
  q.zero_points.assign(12, 0);
  const TensorType w_type{DType::kI4, {6, 8}, q};
  ir::Graph whole("linear");
  const auto x = whole.add_input("x", TensorType::f32({3, 8})).value();
  const auto w = testing::seeded_constant(whole, "w", w_type, 3);
  whole.set_outputs({whole.emit(OpKind::kLinear, {x, w}, {}, "y").value()});

  ir::Graph split("linear_rows");
  const auto sx = split.add_input("x", TensorType::f32({3, 8})).value();
  std::vector<ir::ValueId> parts;
  for (int64_t h = 0; h < 3; ++h) {
    HS_ASSERT_OK_AND_ASSIGN(TensorType t, ir::slice_type(w_type, 0, 2 * h, 2 * h + 2));
    HS_ASSERT_OK_AND_ASSIGN(BufferView d, slice_constant_data(whole.value(w), 0, 2 * h, 2 * h + 2));
    const auto wh = split.add_constant(fmt::format("w.h{}", h), t, d).value();
    parts.push_back(split.emit(OpKind::kLinear, {sx, wh}, {}, fmt::format("y.h{}", h)).value());
  }
  split.set_outputs({split.emit(OpKind::kConcat, parts, {{"axis", int64_t{1}}}, "y").value()});
  testing::expect_same_outputs(whole, split, 9);
  testing::expect_golden(ir::print_graph(split), "slicing_linear.txt");
}

}  // namespace
}  // namespace hs::passes
