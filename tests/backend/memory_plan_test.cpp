// Memory planning: hand-computed placements and aliases, and a seeded property test over
// random graphs checking, independently of the planner, that aliases are legal re-views and
// that no two storages whose lifetimes intersect share a byte.
#include "headsplit/backend/memory_plan.h"

#include <algorithm>
#include <random>

#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/ir/verifier.h"
#include "headsplit/passes/passes.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

using ir::Graph;
using ir::OpKind;
using ir::TensorType;
using ir::ValueId;

ValueId emit(Graph& g, OpKind op, std::vector<ValueId> in, ir::Attrs attrs,
             const std::string& name) {
  auto r = g.emit(op, std::move(in), std::move(attrs), name);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? *r : ir::kNoValue;
}

TEST(MemoryPlan, ChainReusesFreedBytesByHand) {
  // x -> a -> b -> c -> y (output); every intermediate f32[1,16] = 64 bytes.
  // Lifetimes (node positions): a [0,1], b [1,2], c [2,3]. Equal sizes are placed in order of
  // first use: a at 0; b meets a, so 64; c meets b only, so the gap at 0.
  Graph g("chain");
  ValueId x = *g.add_input("x", TensorType::f32({1, 16}));
  ValueId a = emit(g, OpKind::kNeg, {x}, {}, "a");
  ValueId b = emit(g, OpKind::kNeg, {a}, {}, "b");
  ValueId c = emit(g, OpKind::kNeg, {b}, {}, "c");
  ValueId y = emit(g, OpKind::kNeg, {c}, {}, "y");
  g.set_outputs({y});
  HS_ASSERT_OK_AND_ASSIGN(MemoryPlan plan, plan_memory(g));
  EXPECT_EQ(plan.offsets[static_cast<size_t>(a)], 0);
  EXPECT_EQ(plan.offsets[static_cast<size_t>(b)], 64);
  EXPECT_EQ(plan.offsets[static_cast<size_t>(c)], 0);
  EXPECT_EQ(plan.offsets[static_cast<size_t>(x)], -1);  // graph I/O is bound by the runner
  EXPECT_EQ(plan.offsets[static_cast<size_t>(y)], -1);
  EXPECT_EQ(plan.arena_bytes, 128);
  EXPECT_EQ(plan.tensor_bytes, 192);
  EXPECT_EQ(plan.lifetimes[static_cast<size_t>(b)].first, 1);
  EXPECT_EQ(plan.lifetimes[static_cast<size_t>(b)].last, 2);
}

TEST(MemoryPlan, LargestFirstBestFitByHand) {
  // big f32[1,64] (256 B) lives [0,3]; s1 f32[1,16] (64 B) [1,2]; s2 [2,3]; all meet big.
  // big at 0; s1 at 256; s2 meets s1 and big: 320. Arena 384 (the sum would be 384 too).
  // Then t f32[1,16] [4,5] meets nothing alive: the best (lowest waste) place is 0.
  Graph g("fit");
  ValueId x = *g.add_input("x", TensorType::f32({1, 64}));
  ValueId x16 = *g.add_input("x16", TensorType::f32({1, 16}));
  ValueId big = emit(g, OpKind::kNeg, {x}, {}, "big");                             // 0
  ValueId s1 = emit(g, OpKind::kNeg, {x16}, {}, "s1");                             // 1
  ValueId s2 = emit(g, OpKind::kNeg, {s1}, {}, "s2");                              // 2
  ValueId y1 = emit(g, OpKind::kConcat, {big, s2}, {{"axis", int64_t{1}}}, "y1");  // 3
  ValueId t = emit(g, OpKind::kNeg, {x16}, {}, "t");                               // 4
  ValueId y2 = emit(g, OpKind::kNeg, {t}, {}, "y2");                               // 5
  g.set_outputs({y1, y2});
  ASSERT_TRUE(ir::verify(g).ok());
  HS_ASSERT_OK_AND_ASSIGN(MemoryPlan plan, plan_memory(g));
  EXPECT_EQ(plan.offsets[static_cast<size_t>(big)], 0);
  EXPECT_EQ(plan.offsets[static_cast<size_t>(s1)], 256);
  EXPECT_EQ(plan.offsets[static_cast<size_t>(s2)], 320);
  EXPECT_EQ(plan.offsets[static_cast<size_t>(t)], 0);
  EXPECT_EQ(plan.arena_bytes, 384);
}

TEST(MemoryPlan, LayoutOpsReviewTheirInputByHand) {
  // a f32[2,32] (256 B). r = reshape(a) and u = unsqueeze(a) alias at a's offset; s1 = a[1:2]
  // on axis 0 starts 128 bytes in (aligned): an alias; s2 = slice on axis 1 [8:16] is not
  // contiguous (axis 0 has size 2): its own storage; h = a[0:1] of a [4,8] reshape at
  // row 1 starts at 32 bytes: not 64-aligned, its own storage; p = transpose(u, [1,0,2]) moves
  // only the unit axis: an alias; q = transpose(a) swaps non-unit axes: its own storage.
  Graph g("alias");
  ValueId x = *g.add_input("x", TensorType::f32({2, 32}));
  ValueId a = emit(g, OpKind::kNeg, {x}, {}, "a");
  ValueId r = emit(g, OpKind::kReshape, {a}, {{"shape", std::vector<int64_t>{4, 16}}}, "r");
  ValueId u = emit(g, OpKind::kUnsqueeze, {a}, {{"axis", int64_t{0}}}, "u");
  ValueId s1 = emit(g, OpKind::kSlice, {a},
                    {{"axis", int64_t{0}}, {"start", int64_t{1}}, {"end", int64_t{2}}}, "s1");
  ValueId s2 = emit(g, OpKind::kSlice, {a},
                    {{"axis", int64_t{1}}, {"start", int64_t{8}}, {"end", int64_t{16}}}, "s2");
  ValueId r8 = emit(g, OpKind::kReshape, {a}, {{"shape", std::vector<int64_t>{8, 8}}}, "r8");
  ValueId h = emit(g, OpKind::kSlice, {r8},
                   {{"axis", int64_t{0}}, {"start", int64_t{1}}, {"end", int64_t{2}}}, "h");
  ValueId p = emit(g, OpKind::kTranspose, {u}, {{"perm", std::vector<int64_t>{1, 0, 2}}}, "p");
  ValueId q = emit(g, OpKind::kTranspose, {a}, {{"perm", std::vector<int64_t>{1, 0}}}, "q");
  std::vector<ValueId> outs;
  for (ValueId v : {r, s1, s2, h, p, q})
    outs.push_back(emit(g, OpKind::kNeg, {v}, {}, "o" + g.value(v).name));
  g.set_outputs(outs);
  ASSERT_TRUE(ir::verify(g).ok());
  HS_ASSERT_OK_AND_ASSIGN(MemoryPlan plan, plan_memory(g));
  auto off = [&](ValueId v) { return plan.offsets[static_cast<size_t>(v)]; };
  auto alias = [&](ValueId v) { return plan.alias_of[static_cast<size_t>(v)]; };
  EXPECT_EQ(alias(r), a);
  EXPECT_EQ(off(r), off(a));
  EXPECT_EQ(alias(u), a);
  EXPECT_EQ(alias(s1), a);
  EXPECT_EQ(off(s1), off(a) + 128);
  EXPECT_EQ(alias(s2), ir::kNoValue);
  EXPECT_EQ(alias(r8), a);
  EXPECT_EQ(alias(h), ir::kNoValue);
  EXPECT_EQ(alias(p), u);
  EXPECT_EQ(off(p), off(a));
  EXPECT_EQ(alias(q), ir::kNoValue);
  EXPECT_EQ(plan.aliases, 5);  // r, u, s1, r8, p
  // a's storage lives until its last alias is read (p's reader, the last-but-one node).
  for (ValueId v : {s2, h, q}) {
    const int64_t lo = off(v), hi = lo + 4 * g.type(v).numel();
    EXPECT_TRUE(hi <= off(a) || lo >= off(a) + 256) << g.value(v).name << " overlaps a";
  }
  // Without aliases every layout result gets its own bytes.
  HS_ASSERT_OK_AND_ASSIGN(MemoryPlan plain, plan_memory(g, {.aliases = false}));
  EXPECT_EQ(plain.aliases, 0);
  EXPECT_GT(plain.arena_bytes, plan.arena_bytes);
}

TEST(MemoryPlan, DifferentParamsDoNotAlias) {
  // A reshape whose result requantizes (other params) must compute: no alias.
  Graph g("requant");
  ValueId x = *g.add_input("x", TensorType::f32({1, 16}));
  ValueId a = emit(g, OpKind::kNeg, {x}, {}, "a");
  ValueId r = emit(g, OpKind::kReshape, {a}, {{"shape", std::vector<int64_t>{16}}}, "r");
  g.value(r).type = {ir::DType::kU16, {16}, ir::QuantParams::per_tensor(0.5f, 0, 16, 0, 65535)};
  ValueId y = emit(g, OpKind::kNeg, {r}, {}, "y");
  g.set_outputs({y});
  ASSERT_TRUE(ir::verify(g).ok());
  HS_ASSERT_OK_AND_ASSIGN(MemoryPlan plan, plan_memory(g));
  EXPECT_EQ(plan.alias_of[static_cast<size_t>(r)], ir::kNoValue);
  // Four bytes per element whatever the element type: u16[16] takes 64 bytes.
  EXPECT_EQ(arena_storage_bytes(g.type(r)), 64);
}

// ---- property test ----------------------------------------------------------------------

// A random graph of elementwise ops and re-viewing layout ops over f32[1, k, 16] tensors.
Graph random_graph(std::mt19937& rng) {
  Graph g("random");
  std::vector<ValueId> values;
  values.push_back(
      *g.add_input("x", TensorType::f32({1, 1 + static_cast<int64_t>(rng() % 4), 16})));
  const int n = 10 + static_cast<int>(rng() % 40);
  for (int i = 0; i < n; ++i) {
    ValueId a = values[rng() % values.size()];
    const ir::Shape s = g.type(a).shape;
    const std::string name = fmt::format("v{}", i);
    ValueId v = ir::kNoValue;
    switch (rng() % 6) {
      case 0: v = emit(g, OpKind::kNeg, {a}, {}, name); break;
      case 1: {
        ValueId b = values[rng() % values.size()];
        if (g.type(b).shape != s) b = a;
        v = emit(g, OpKind::kAdd, {a, b}, {}, name);
        break;
      }
      case 2: {  // flatten, then back: both re-view the bytes
        v = emit(g, OpKind::kReshape, {a}, {{"shape", std::vector<int64_t>{ir::num_elements(s)}}},
                 name);
        v = emit(g, OpKind::kReshape, {v}, {{"shape", s}}, name + "r");
        break;
      }
      case 3: {  // slice rows (contiguous: axis 0 has size 1)
        if (s.size() != 3 || s[1] < 2) break;
        int64_t start = static_cast<int64_t>(rng() % static_cast<uint32_t>(s[1] - 1));
        v = emit(g, OpKind::kSlice, {a},
                 {{"axis", int64_t{1}}, {"start", start}, {"end", start + 1}}, name);
        break;
      }
      case 4: {  // transpose moving the unit axis (alias) or swapping rows and columns (copy)
        if (s.size() != 3) break;
        std::vector<int64_t> perm =
            rng() % 2 ? std::vector<int64_t>{1, 0, 2} : std::vector<int64_t>{0, 2, 1};
        v = emit(g, OpKind::kTranspose, {a}, {{"perm", perm}}, name);
        if (perm[1] == 2) v = emit(g, OpKind::kTranspose, {v}, {{"perm", perm}}, name + "t");
        break;
      }
      default: {  // slice columns (not contiguous unless k == 1)
        if (s.size() != 3) break;
        v = emit(g, OpKind::kSlice, {a},
                 {{"axis", int64_t{2}}, {"start", int64_t{0}}, {"end", int64_t{16}}}, name);
        break;
      }
    }
    if (v != ir::kNoValue) values.push_back(v);
  }
  std::vector<ValueId> outs = {values.back()};
  if (values.size() > 3) outs.push_back(values[values.size() / 2]);
  if (outs.size() == 2 && (outs[0] == outs[1] || g.is_graph_input(outs[1]))) outs.pop_back();
  g.set_outputs(outs);
  return g;
}

// Node positions of every value's producer and last reader, computed here from the graph.
struct Uses {
  std::vector<int32_t> def, last;
};
Uses uses_of(const Graph& g) {
  Uses u{std::vector<int32_t>(static_cast<size_t>(g.num_values()), -1),
         std::vector<int32_t>(static_cast<size_t>(g.num_values()), -1)};
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    for (ValueId in : g.node(n).inputs) u.last[static_cast<size_t>(in)] = n;
    for (ValueId out : g.node(n).outputs) {
      u.def[static_cast<size_t>(out)] = n;
      u.last[static_cast<size_t>(out)] = std::max(u.last[static_cast<size_t>(out)], n);
    }
  }
  return u;
}

// Checks a plan against the graph without trusting the planner's lifetimes.
void check_plan(const Graph& g, const MemoryPlan& plan) {
  const Uses u = uses_of(g);
  const auto n = static_cast<size_t>(g.num_values());
  std::vector<ValueId> root(n, ir::kNoValue);
  for (size_t v = 0; v < n; ++v) {
    const bool arena = u.def[v] >= 0 && !g.is_graph_output(static_cast<ValueId>(v));
    ASSERT_EQ(plan.offsets[v] >= 0, arena) << g.value(static_cast<ValueId>(v)).name;
    if (!arena) continue;
    EXPECT_EQ(plan.offsets[v] % 64, 0);
    EXPECT_LE(plan.offsets[v] + 4 * g.type(static_cast<ValueId>(v)).numel(), plan.arena_bytes);
    root[v] = static_cast<ValueId>(v);
    const ValueId of = plan.alias_of[v];
    if (of == ir::kNoValue) continue;
    // A legal alias: the producer is a layout op reading `of`, the types' params are equal,
    // and the bytes are where a row-major re-view puts them.
    const ir::Node& node = g.node(u.def[v]);
    ASSERT_EQ(node.inputs[0], of);
    EXPECT_EQ(g.type(of).quant, g.type(static_cast<ValueId>(v)).quant);
    int64_t expected = plan.offsets[static_cast<size_t>(of)];
    if (node.op == OpKind::kSlice) {
      const ir::Shape& s = g.type(of).shape;
      const int64_t axis = node.attrs.get_int("axis");
      int64_t stride = 1;
      for (size_t d = 0; d < s.size(); ++d) {
        if (static_cast<int64_t>(d) < axis) {
          EXPECT_EQ(s[d], 1);
        }
        if (static_cast<int64_t>(d) > axis) stride *= s[d];
      }
      expected += node.attrs.get_int("start") * stride * 4;
    } else if (node.op == OpKind::kTranspose) {
      std::vector<int64_t> order;
      for (int64_t p : node.attrs.get_ints("perm")) {
        if (g.type(of).shape[static_cast<size_t>(p)] != 1) order.push_back(p);
      }
      EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
    } else {
      EXPECT_TRUE(node.op == OpKind::kReshape || node.op == OpKind::kSqueeze ||
                  node.op == OpKind::kUnsqueeze);
    }
    EXPECT_EQ(plan.offsets[v], expected) << g.value(static_cast<ValueId>(v)).name;
    root[v] = root[static_cast<size_t>(of)];
  }
  // Storage lifetime: from the root's producer to the last read of any alias.
  std::vector<int32_t> first(n, -1), last(n, -1);
  for (size_t v = 0; v < n; ++v) {
    if (root[v] == ir::kNoValue) continue;
    const auto r = static_cast<size_t>(root[v]);
    first[r] = u.def[r];
    last[r] = std::max(last[r], u.last[v]);
    // An alias lies inside its root's bytes.
    EXPECT_GE(plan.offsets[v], plan.offsets[r]);
    EXPECT_LE(plan.offsets[v] + 4 * g.type(static_cast<ValueId>(v)).numel(),
              plan.offsets[r] + 4 * g.type(root[v]).numel());
  }
  for (size_t a = 0; a < n; ++a) {
    if (root[a] != static_cast<ValueId>(a)) continue;
    for (size_t b = a + 1; b < n; ++b) {
      if (root[b] != static_cast<ValueId>(b)) continue;
      if (last[a] < first[b] || last[b] < first[a]) continue;  // never alive together
      const int64_t a0 = plan.offsets[a], a1 = a0 + 4 * g.type(static_cast<ValueId>(a)).numel();
      const int64_t b0 = plan.offsets[b], b1 = b0 + 4 * g.type(static_cast<ValueId>(b)).numel();
      EXPECT_TRUE(a1 <= b0 || b1 <= a0 || a1 == a0 || b1 == b0)
          << g.value(static_cast<ValueId>(a)).name << " and "
          << g.value(static_cast<ValueId>(b)).name << " are alive together and overlap";
    }
  }
}

TEST(MemoryPlan, RandomGraphsNeverOverlapLiveTensors) {
  std::mt19937 rng(2024);
  int64_t aliases = 0;
  for (int iter = 0; iter < 200; ++iter) {
    Graph g = random_graph(rng);
    ASSERT_TRUE(ir::verify(g).ok()) << ir::verify(g).error().message();
    for (bool with_aliases : {true, false}) {
      HS_ASSERT_OK_AND_ASSIGN(MemoryPlan plan, plan_memory(g, {.aliases = with_aliases}));
      SCOPED_TRACE(fmt::format("iteration {}, aliases {}", iter, with_aliases));
      check_plan(g, plan);
      if (::testing::Test::HasFailure()) return;
      aliases += plan.aliases;
    }
  }
  EXPECT_GT(aliases, 100);  // the generator does exercise aliasing
}

TEST(MemoryPlan, StoriesShapedGraphsReuseMemory) {
  // A random model in stories260K's shape, built and preprocessed (split) like an export.
  HS_ASSERT_OK_AND_ASSIGN(frontend::LlamaConfig config, frontend::named_config("stories260k"));
  frontend::LlamaModel model = frontend::make_random_llama(config, 3);
  for (int64_t t : {int64_t{1}, int64_t{16}}) {
    HS_ASSERT_OK_AND_ASSIGN(Graph g,
                            frontend::build_llama(model, {.ar_len = t, .context_len = 64}));
    ASSERT_TRUE(passes::run_preprocess(g, {}, {}).ok());
    HS_ASSERT_OK_AND_ASSIGN(MemoryPlan plan, plan_memory(g));
    check_plan(g, plan);
    EXPECT_LT(plan.arena_bytes * 4, plan.tensor_bytes) << "T=" << t;
    EXPECT_GT(plan.aliases, 0);
  }
}

}  // namespace
}  // namespace hs::backend
