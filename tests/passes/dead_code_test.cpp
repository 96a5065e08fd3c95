// dead-code on its own: nodes no graph output depends on and constants nothing reads are
// removed, everything else stays. Outputs before and after are bit-identical, the printed
// graph matches tests/golden/dead_code.txt, a second run changes nothing.
#include <gtest/gtest.h>

#include "passes/pass_testing.h"
#include "testing/testing.h"

namespace hs::passes {
namespace {

using ir::OpKind;
using ir::TensorType;

ir::Graph dead_code_input() {
  ir::Graph g("dead_code");
  const auto x = g.add_input("x", TensorType::f32({2, 4})).value();
  const auto w = testing::seeded_constant(g, "w", TensorType::f32({3, 4}), 1);
  (void)testing::seeded_constant(g, "unread", TensorType::f32({3}), 2);
  const auto only_dead = testing::seeded_constant(g, "only_dead", TensorType::f32({4}), 3);
  const auto a = testing::emit(g, OpKind::kNeg, {x}, {}, "a");
  (void)testing::emit(g, OpKind::kSilu, {a}, {}, "dead_silu");  // read by nothing
  const auto y = testing::emit(g, OpKind::kLinear, {x, w}, {}, "y");
  const auto d1 = testing::emit(g, OpKind::kAdd, {x, only_dead}, {}, "dead_add");  // a dead chain
  (void)testing::emit(g, OpKind::kMul, {d1, a}, {}, "dead_mul");
  g.set_outputs({y, a});
  return g;
}

TEST(DeadCode, RemovesWhatNoOutputNeedsAndKeepsTheOutputsBitExact) {
  const ir::Graph before = dead_code_input();
  const ir::Graph after = testing::expect_single_pass("dead-code", before, "dead_code.txt", 5);
  EXPECT_EQ(before.live_node_count(), 5);
  EXPECT_EQ(after.live_node_count(), 2);
  for (const char* gone : {"unread", "only_dead", "dead_silu", "dead_add", "dead_mul"}) {
    EXPECT_FALSE(after.find_value(gone).has_value()) << gone;
  }
}

}  // namespace
}  // namespace hs::passes
