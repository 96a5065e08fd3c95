// canonicalize on its own: every rewrite it makes (identity reshape/transpose/slice/expand/
// concat dropped, reshape of reshape merged, broadcast operands made rank-equal: a constant
// re-typed, a value reshaped) on one small graph; the interpreter's outputs before and after are
// bit-identical, the printed graph matches tests/golden/canonicalize.txt, and a second run
// changes nothing.
#include <gtest/gtest.h>

#include "passes/pass_testing.h"
#include "testing/testing.h"

namespace hs::passes {
namespace {

using ir::OpKind;
using ir::TensorType;

ir::Graph canonicalize_input() {
  ir::Graph g("canonicalize");
  const auto x = g.add_input("x", TensorType::f32({2, 3, 4})).value();
  const auto m = g.add_input("m", TensorType::f32({3, 4})).value();
  const auto b = testing::seeded_constant(g, "b", TensorType::f32({4}), 1);
  const auto r1 =
      testing::emit(g, OpKind::kReshape, {x}, {{"shape", std::vector<int64_t>{6, 4}}}, "r1");
  const auto r2 =
      testing::emit(g, OpKind::kReshape, {r1}, {{"shape", std::vector<int64_t>{2, 12}}}, "r2");
  const auto back =
      testing::emit(g, OpKind::kReshape, {r2}, {{"shape", std::vector<int64_t>{2, 3, 4}}}, "back");
  const auto t =
      testing::emit(g, OpKind::kTranspose, {back}, {{"perm", std::vector<int64_t>{0, 1, 2}}}, "t");
  const auto s =
      testing::emit(g, OpKind::kSlice, {t},
                    {{"axis", int64_t{1}}, {"start", int64_t{0}}, {"end", int64_t{3}}}, "s");
  const auto e =
      testing::emit(g, OpKind::kExpand, {s}, {{"shape", std::vector<int64_t>{2, 3, 4}}}, "e");
  const auto c = testing::emit(g, OpKind::kConcat, {e}, {{"axis", int64_t{0}}}, "c");
  const auto a = testing::emit(g, OpKind::kAdd, {c, b}, {}, "a");  // b [4] -> [1,1,4]
  const auto y = testing::emit(g, OpKind::kMul, {a, m}, {}, "y");  // m [3,4] -> reshape [1,3,4]
  const auto kept =
      testing::emit(g, OpKind::kReshape, {x}, {{"shape", std::vector<int64_t>{2, 3, 4}}}, "kept");
  g.set_outputs({y, kept});  // an identity that is a graph output stays (names never change)
  return g;
}

TEST(Canonicalize, EveryRewriteKeepsTheOutputsBitExact) {
  const ir::Graph before = canonicalize_input();
  const ir::Graph after =
      testing::expect_single_pass("canonicalize", before, "canonicalize.txt", 7);
  // 10 nodes before; transpose, slice, expand, concat and `back` (the merged reshape of a
  // reshape is an identity) go; a reshape of `m` comes: 6 (r1 and r2 stay for dead-code).
  EXPECT_EQ(before.live_node_count(), 10);
  EXPECT_EQ(after.live_node_count(), 6);
  ASSERT_TRUE(after.find_value("b.rank3") && after.find_value("m.rank3"));
  EXPECT_EQ(after.type(*after.find_value("b.rank3")).shape, (ir::Shape{1, 1, 4}));
  EXPECT_EQ(after.type(*after.find_value("m.rank3")).shape, (ir::Shape{1, 3, 4}));
  EXPECT_TRUE(after.find_value("kept").has_value());
}

}  // namespace
}  // namespace hs::passes
