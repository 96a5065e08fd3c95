// Tests of ir/graph.h: building, names, replace_all_uses, topo_sort, compact, dead code.
#include "headsplit/ir/graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "headsplit/ir/verifier.h"
#include "testing/testing.h"

namespace hs::ir {
namespace {

using ::testing::HasSubstr;

BufferView f32_data(const std::vector<float>& v) {
  auto buf = HeapBuffer::copy_of(std::as_bytes(std::span(v)));
  return BufferView{buf, 0, buf->size()};
}

// The names of the live nodes' first results, in node order.
std::vector<std::string> node_names(const Graph& g) {
  std::vector<std::string> names;
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    if (!g.node(n).erased) names.push_back(g.value(g.node(n).outputs[0]).name);
  }
  return names;
}

TEST(Graph, EmitInfersTypesAndSetsProducers) {
  Graph g("t");
  HS_ASSERT_OK_AND_ASSIGN(ValueId x, g.add_input("x", TensorType::f32({1, 4})));
  HS_ASSERT_OK_AND_ASSIGN(ValueId w, g.add_constant("w", TensorType::f32({3, 4}),
                                                    f32_data(std::vector<float>(12, 1.0f))));
  HS_ASSERT_OK_AND_ASSIGN(ValueId y, g.emit(OpKind::kLinear, {x, w}, {}, "y"));
  EXPECT_EQ(g.type(y), TensorType::f32({1, 3}));
  EXPECT_EQ(g.value(y).producer, 0);
  EXPECT_EQ(g.producer(y), &g.node(0));
  EXPECT_EQ(g.producer(x), nullptr);
  EXPECT_TRUE(g.value(w).is_constant());
  EXPECT_FALSE(g.value(x).is_constant());
  EXPECT_TRUE(g.is_graph_input(x));
  EXPECT_FALSE(g.is_graph_input(w));
  EXPECT_EQ(g.find_value("y"), y);
  EXPECT_EQ(g.find_value("nope"), std::nullopt);
  EXPECT_EQ(g.constant_bytes(), 48);
  g.add_output(y);
  EXPECT_TRUE(g.is_graph_output(y));
  HS_EXPECT_OK(verify(g));
  // add_node with an explicit (quantized) result type.
  TensorType q{DType::kU8, {1, 3}, QuantParams::per_tensor(0.1f, 128, 8, 0, 255)};
  HS_ASSERT_OK_AND_ASSIGN(NodeId n, g.add_node(OpKind::kQuantize, {y}, {}, {{"yq", q}}));
  EXPECT_EQ(n, 1);
  EXPECT_EQ(g.type(g.node(n).outputs[0]), q);
}

TEST(Graph, RejectsDuplicateAndEmptyNames) {
  Graph g("t");
  HS_ASSERT_OK(g.add_input("x", TensorType::f32({2})));
  auto dup = g.add_input("x", TensorType::f32({2}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(dup.error().message(), HasSubstr("'x' is already used"));
  auto dup_node = g.emit(OpKind::kNeg, {0}, {}, "x");
  ASSERT_FALSE(dup_node.ok());
  EXPECT_THAT(dup_node.error().message(), HasSubstr("'x' is already used"));
  EXPECT_FALSE(g.add_input("", TensorType::f32({2})).ok());
  EXPECT_EQ(g.unique_name("x"), "x.1");
  EXPECT_EQ(g.unique_name("y"), "y");
  // A constant with the wrong byte count is rejected.
  auto bad = g.add_constant("c", TensorType::f32({3}), f32_data({1, 2}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.kind(), ErrorKind::kShape);
  EXPECT_THAT(bad.error().message(), HasSubstr("'c' of type f32[3] needs 12 bytes, got 8"));
  // emit reports the node name and the shape error.
  auto shape = g.emit(OpKind::kSoftmax, {0}, {{"axis", int64_t{3}}}, "s");
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.kind(), ErrorKind::kShape);
  EXPECT_THAT(shape.error().message(), HasSubstr("node 's': softmax: axis 3 out of range"));
  EXPECT_FALSE(g.emit(OpKind::kNeg, {7}, {}, "z").ok());
}

TEST(Graph, ReplaceAllUsesIncludingOutputs) {
  Graph g("t");
  ValueId x = *g.add_input("x", TensorType::f32({2}));
  ValueId a = *g.emit(OpKind::kNeg, {x}, {}, "a");
  ValueId b = *g.emit(OpKind::kAdd, {a, a}, {}, "b");
  ValueId c = *g.emit(OpKind::kSilu, {x}, {}, "c");
  g.set_outputs({a, b});
  g.replace_all_uses(a, c);
  EXPECT_EQ(g.node(1).inputs, (std::vector<ValueId>{c, c}));
  EXPECT_EQ(g.outputs(), (std::vector<ValueId>{c, b}));
  EXPECT_EQ(g.node(0).inputs, (std::vector<ValueId>{x}));  // the producer of `a` is unchanged
  // replace_uses_except leaves the excepted node alone.
  ValueId d = *g.emit(OpKind::kNeg, {c}, {}, "d");
  g.replace_uses_except(c, d, 3);
  EXPECT_EQ(g.node(1).inputs, (std::vector<ValueId>{d, d}));
  EXPECT_EQ(g.node(3).inputs, (std::vector<ValueId>{c}));
  EXPECT_EQ(g.outputs(), (std::vector<ValueId>{d, b}));
  auto uses = g.compute_uses();
  ASSERT_EQ(uses[static_cast<size_t>(d)].size(), 2u);
  EXPECT_EQ(uses[static_cast<size_t>(d)][1].node, 1);
  EXPECT_EQ(uses[static_cast<size_t>(d)][1].operand, 1);
  EXPECT_TRUE(uses[static_cast<size_t>(a)].empty());
}

TEST(Graph, TopoSortMovesAppendedNodesAndKeepsValidOrder) {
  Graph g("t");
  ValueId x = *g.add_input("x", TensorType::f32({2}));
  ValueId a = *g.emit(OpKind::kNeg, {x}, {}, "a");
  ValueId b = *g.emit(OpKind::kSilu, {a}, {}, "b");
  ValueId c = *g.emit(OpKind::kNeg, {x}, {}, "c");
  ValueId d = *g.emit(OpKind::kAdd, {b, c}, {}, "d");
  g.set_outputs({d});
  // Insert a node between a and b: appended at the end, then b is redirected to it.
  ValueId a2 = *g.emit(OpKind::kSilu, {a}, {}, "a2");
  g.replace_uses_except(a, a2, g.value(a2).producer);
  EXPECT_EQ(verify(g).kind(), ErrorKind::kInvalidArgument);  // b now reads a2 before it exists
  HS_ASSERT_OK(g.topo_sort());
  EXPECT_EQ(node_names(g), (std::vector<std::string>{"a", "a2", "b", "c", "d"}));
  for (NodeId n = 0; n < g.num_nodes(); ++n) EXPECT_EQ(g.value(g.node(n).outputs[0]).producer, n);
  HS_EXPECT_OK(verify(g));
  // Already valid: unchanged.
  HS_ASSERT_OK(g.topo_sort());
  EXPECT_EQ(node_names(g), (std::vector<std::string>{"a", "a2", "b", "c", "d"}));
}

TEST(Graph, TopoSortPutsErasedNodesLastAndDetectsCycles) {
  Graph g("t");
  ValueId x = *g.add_input("x", TensorType::f32({2}));
  ValueId a = *g.emit(OpKind::kNeg, {x}, {}, "a");
  ValueId b = *g.emit(OpKind::kNeg, {a}, {}, "b");
  ValueId c = *g.emit(OpKind::kNeg, {x}, {}, "c");
  g.set_outputs({b, c});
  g.erase_node(0);
  g.node(1).inputs = {c};
  HS_ASSERT_OK(g.topo_sort());
  EXPECT_EQ(node_names(g), (std::vector<std::string>{"c", "b"}));
  EXPECT_TRUE(g.node(2).erased);
  EXPECT_EQ(g.value(a).producer, 2);
  HS_EXPECT_OK(verify(g));

  Graph cyc("cyc");
  ValueId y = *cyc.add_input("y", TensorType::f32({2}));
  ValueId p = *cyc.emit(OpKind::kNeg, {y}, {}, "p");
  ValueId q = *cyc.emit(OpKind::kNeg, {p}, {}, "q");
  cyc.node(0).inputs = {q};  // p = neg(q), q = neg(p)
  Status st = cyc.topo_sort();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.kind(), ErrorKind::kInternal);
  EXPECT_THAT(st.error().message(), HasSubstr("graph 'cyc' has a cycle through value 'p'"));
}

// A long chain stored in reverse order: topo_sort must not recurse once per node.
TEST(Graph, TopoSortReversesALongChain) {
  Graph g("chain");
  ValueId cur = *g.add_input("x", TensorType::f32({1}));
  const int kNodes = 50000;
  for (int i = 0; i < kNodes; ++i) cur = *g.emit(OpKind::kNeg, {cur}, {}, fmt::format("v{}", i));
  g.set_outputs({cur});
  Graph reversed = g;
  for (NodeId n = 0; n < kNodes; ++n) {
    reversed.node(n) = g.node(kNodes - 1 - n);
    reversed.value(reversed.node(n).outputs[0]).producer = n;
  }
  EXPECT_EQ(verify(reversed).kind(), ErrorKind::kInvalidArgument);
  HS_ASSERT_OK(reversed.topo_sort());
  HS_EXPECT_OK(verify(reversed));
  EXPECT_EQ(reversed.value(reversed.node(0).outputs[0]).name, "v0");
  EXPECT_EQ(reversed.value(reversed.node(kNodes - 1).outputs[0]).name,
            fmt::format("v{}", kNodes - 1));
}

TEST(Graph, CompactRenumbersIdsProducersAndNames) {
  Graph g("t");
  ValueId x = *g.add_input("x", TensorType::f32({2}));
  ValueId unused_const = *g.add_constant("k", TensorType::f32({2}), f32_data({1, 2}));
  ValueId a = *g.emit(OpKind::kNeg, {x}, {}, "a");
  ValueId b = *g.emit(OpKind::kSilu, {x}, {}, "b");
  ValueId c = *g.emit(OpKind::kNeg, {b}, {}, "c");
  (void)unused_const;
  (void)a;
  g.set_outputs({c});
  g.erase_node(0);  // a
  EXPECT_EQ(g.compact(), 1);
  ASSERT_EQ(g.num_values(), 3);  // x, b, c: the unused constant and a are gone
  ASSERT_EQ(g.num_nodes(), 2);
  EXPECT_EQ(g.value(0).name, "x");
  EXPECT_EQ(g.value(1).name, "b");
  EXPECT_EQ(g.value(2).name, "c");
  EXPECT_EQ(g.value(1).producer, 0);
  EXPECT_EQ(g.value(2).producer, 1);
  EXPECT_EQ(g.node(1).inputs, (std::vector<ValueId>{1}));
  EXPECT_EQ(g.outputs(), (std::vector<ValueId>{2}));
  EXPECT_EQ(g.inputs(), (std::vector<ValueId>{0}));
  EXPECT_EQ(g.find_value("c"), 2);
  EXPECT_EQ(g.find_value("a"), std::nullopt);
  EXPECT_EQ(g.find_value("k"), std::nullopt);
  HS_EXPECT_OK(verify(g));
}

TEST(Graph, EliminateDeadCodeCountsAndKeepsInputs) {
  Graph g("t");
  ValueId x = *g.add_input("x", TensorType::f32({2}));
  ValueId unused_in = *g.add_input("unused", TensorType::f32({3}));
  ValueId a = *g.emit(OpKind::kNeg, {x}, {}, "a");
  ValueId dead1 = *g.emit(OpKind::kSilu, {a}, {}, "dead1");
  HS_ASSERT_OK(g.emit(OpKind::kNeg, {dead1}, {}, "dead2"));
  ValueId b = *g.emit(OpKind::kSilu, {a}, {}, "b");
  g.set_outputs({b});
  (void)unused_in;
  EXPECT_EQ(g.op_counts(), (std::map<std::string, int64_t>{{"neg", 2}, {"silu", 2}}));
  EXPECT_EQ(g.eliminate_dead_code(), 2);
  EXPECT_EQ(g.live_node_count(), 2);
  EXPECT_EQ(node_names(g), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(g.inputs().size(), 2u);  // graph inputs stay even when unused
  EXPECT_EQ(g.op_counts(), (std::map<std::string, int64_t>{{"neg", 1}, {"silu", 1}}));
  EXPECT_EQ(g.eliminate_dead_code(), 0);
  HS_EXPECT_OK(verify(g));
}

TEST(Graph, RenameValue) {
  Graph g("t");
  ValueId x = *g.add_input("x", TensorType::f32({2}));
  g.rename_value(x, "tokens");
  EXPECT_EQ(g.find_value("tokens"), x);
  EXPECT_EQ(g.find_value("x"), std::nullopt);
  EXPECT_EQ(g.value(x).name, "tokens");
}

// Seeded property: a random chain graph whose nodes are shuffled is put back in a valid order
// by topo_sort, verify passes, and dead-code elimination keeps exactly the live cone.
TEST(Graph, TopoSortRestoresRandomShuffles) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 50; ++trial) {
    Graph g("rand");
    std::vector<ValueId> vals{*g.add_input("x", TensorType::f32({3}))};
    int count = 2 + static_cast<int>(rng() % 20);
    for (int i = 0; i < count; ++i) {
      ValueId a = vals[rng() % vals.size()];
      ValueId b = vals[rng() % vals.size()];
      vals.push_back(*g.emit(OpKind::kAdd, {a, b}, {}, fmt::format("v{}", i)));
    }
    g.set_outputs({vals.back()});
    // Shuffle node order (fixing producers) so that the order is usually invalid.
    std::vector<NodeId> perm(static_cast<size_t>(g.num_nodes()));
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<NodeId>(i);
    std::shuffle(perm.begin(), perm.end(), rng);
    Graph shuffled = g;
    for (size_t i = 0; i < perm.size(); ++i) {
      shuffled.node(static_cast<NodeId>(i)) = g.node(perm[i]);
      shuffled.value(shuffled.node(static_cast<NodeId>(i)).outputs[0]).producer =
          static_cast<NodeId>(i);
    }
    HS_ASSERT_OK(shuffled.topo_sort());
    HS_ASSERT_OK(verify(shuffled));
    // Same set of nodes; every node still computes the same thing.
    ASSERT_EQ(shuffled.num_nodes(), g.num_nodes());
    for (NodeId n = 0; n < shuffled.num_nodes(); ++n) {
      const Node& node = shuffled.node(n);
      EXPECT_EQ(node.inputs, g.node(g.value(node.outputs[0]).producer).inputs);
    }
    // The live cone of the output: count it independently by a backward walk.
    std::vector<bool> live(static_cast<size_t>(g.num_values()), false);
    live[static_cast<size_t>(vals.back())] = true;
    int64_t live_nodes = 0;
    for (NodeId n = g.num_nodes() - 1; n >= 0; --n) {
      if (!live[static_cast<size_t>(g.node(n).outputs[0])]) continue;
      ++live_nodes;
      for (ValueId v : g.node(n).inputs) live[static_cast<size_t>(v)] = true;
    }
    EXPECT_EQ(shuffled.eliminate_dead_code(), g.num_nodes() - live_nodes);
    EXPECT_EQ(shuffled.live_node_count(), live_nodes);
    HS_EXPECT_OK(verify(shuffled));
  }
}

}  // namespace
}  // namespace hs::ir
