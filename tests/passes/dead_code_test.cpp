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
  auto emit = [&](OpKind op, std::vector<ir::ValueId> in, std::string name) {
    return g.emit(op, std::move(in), {}, std::move(name)).value();
  };
  const auto a = emit(OpKind::kNeg, {x}, "a");
  (void)emit(OpKind::kSilu, {a}, "dead_silu");                      // read by nothing
  const auto y = emit(OpKind::kLinear, {x, w}, "y");
  const auto d1 = emit(OpKind::kAdd, {x, only_dead}, "dead_add");   // a dead chain
  (void)emit(OpKind::kMul, {d1, a}, "dead_mul");
  g.set_outputs({y, a});
  return g;
}

TEST(DeadCode, RemovesWhatNoOutputNeedsAndKeepsTheOutputsBitExact) {
  const ir::Graph before = dead_code_input();
  ir::Graph after = before;
  HS_ASSERT_OK_AND_ASSIGN(testing::SinglePassRun run, testing::run_single_pass("dead-code", after));
  EXPECT_TRUE(run.changed);
  EXPECT_EQ(before.live_node_count(), 5);
  EXPECT_EQ(after.live_node_count(), 2);
  for (const char* gone : {"unread", "only_dead", "dead_silu", "dead_add", "dead_mul"}) {
    EXPECT_FALSE(after.find_value(gone).has_value()) << gone;
  }
  testing::expect_same_outputs(before, after, 5);
  testing::expect_golden(run.printed, "dead_code.txt");
  ir::Graph again = after;
  HS_ASSERT_OK_AND_ASSIGN(testing::SinglePassRun second, testing::run_single_pass("dead-code", again));
  EXPECT_FALSE(second.changed);
}

}  // namespace
}  // namespace hs::passes
