// fold-constants on its own: slices on an outer axis and reshapes of constants become views
// of the same bytes (float and per-axis quantized, params sliced with the rows), other
// constant nodes are computed, nodes reading graph inputs stay. Outputs before and after are
// bit-identical, the printed graph matches tests/golden/fold_constants.txt, a second run
// changes nothing.
#include <gtest/gtest.h>

#include "passes/pass_testing.h"
#include "testing/testing.h"

namespace hs::passes {
namespace {

using ir::OpKind;
using ir::TensorType;

ir::Graph fold_input() {
  ir::Graph g("fold");
  const auto x = g.add_input("x", TensorType::f32({2, 4})).value();
  const auto w = testing::seeded_constant(g, "w", TensorType::f32({1, 6, 4}), 1);
  const auto c1 = testing::seeded_constant(g, "c1", TensorType::f32({4}), 2);
  const auto c2 = testing::seeded_constant(g, "c2", TensorType::f32({4}), 3);
  const TensorType wq_type{
      ir::DType::kI8,
      {4, 4},
      ir::QuantParams::per_axis(0, {0.5f, 0.25f, 0.125f, 1.0f}, {0, 0, 0, 0}, 8, -127, 127)};
  const auto wq = testing::seeded_constant(g, "wq", wq_type, 4);
  auto slice = [](int64_t axis, int64_t start, int64_t end) {
    return ir::Attrs{{"axis", axis}, {"start", start}, {"end", end}};
  };
  const auto ws = testing::emit(g, OpKind::kSlice, {w}, slice(1, 2, 4), "ws");  // view
  const auto w2 =
      testing::emit(g, OpKind::kReshape, {ws}, {{"shape", std::vector<int64_t>{2, 4}}}, "w2");
  const auto wt =
      testing::emit(g, OpKind::kTranspose, {w2}, {{"perm", std::vector<int64_t>{1, 0}}}, "wt");
  const auto cs = testing::emit(g, OpKind::kAdd, {c1, c2}, {}, "cs");  // computed
  const auto y = testing::emit(g, OpKind::kMatMul, {x, wt}, {}, "y");
  const auto h = testing::emit(g, OpKind::kAdd, {x, cs}, {}, "h");
  const auto hw = testing::emit(g, OpKind::kAdd, {x, w2}, {}, "hw");  // keeps the view w2 read
  // Rows 1..2 of a per-channel int8 weight: a view with scales [0.25, 0.125].
  const TensorType rows = ir::slice_type(wq_type, 0, 1, 3).value();
  const auto wr = g.add_node(OpKind::kSlice, {wq}, slice(0, 1, 3), {{"wq.rows", rows}}).value();
  const auto yq = testing::emit(g, OpKind::kLinear, {x, g.node(wr).outputs[0]}, {}, "yq");
  g.set_outputs({y, h, yq, hw});
  return g;
}

TEST(FoldConstants, ViewsAndComputedConstantsKeepTheOutputsBitExact) {
  const ir::Graph before = fold_input();
  const ir::Graph after =
      testing::expect_single_pass("fold-constants", before, "fold_constants.txt", 11);
  EXPECT_EQ(before.live_node_count(), 9);
  EXPECT_EQ(after.live_node_count(), 4);  // y, h, yq, hw read the graph input
  // Views share the bytes of their source (the sources, now unread, are gone from `after`;
  // the copy `before` holds the same buffers); computed constants have their own.
  auto value = [](const ir::Graph& g, std::string_view name) -> const ir::Value& {
    const auto id = g.find_value(name);
    EXPECT_TRUE(id.has_value()) << name;
    return g.value(id.value_or(0));
  };
  const ir::Value& w = value(before, "w");
  const ir::Value& wq = value(before, "wq");
  const ir::Value& w2 = value(after, "w2");
  const ir::Value& rows = value(after, "wq.rows");
  const ir::Value& wt = value(after, "wt");
  EXPECT_FALSE(after.find_value("w").has_value());
  ASSERT_TRUE(w2.is_constant() && rows.is_constant() && wt.is_constant());
  EXPECT_EQ(w2.data->buffer.get(), w.data->buffer.get());
  EXPECT_EQ(w2.data->offset, w.data->offset + 2 * 4 * sizeof(float));
  EXPECT_EQ(rows.data->buffer.get(), wq.data->buffer.get());
  EXPECT_EQ(rows.data->offset, wq.data->offset + 4);
  EXPECT_EQ(rows.type.quant.scales, (std::vector<float>{0.25f, 0.125f}));
  EXPECT_NE(wt.data->buffer.get(), w.data->buffer.get());
}

}  // namespace
}  // namespace hs::passes
