// split-heads: the driver (match, plan, apply for each softmax) and the apply phase, which
// appends the planned per-head nodes and rewires the attention's ends.
//
// For one attention (A = softmax(...) . V, [1,H,T,Dh]; its transpose Y = A^(0,2,1,3)):
//   heads_out = concat_h(A_h; axis 3)                 [1,1,T,H*Dh]   (head-major, as Y's rows)
//   users of Y read heads_out (a reshape reads it directly; others through reshape to Y's shape)
//   each per-head family whose original is a graph output (k_new.l, v_new.l) is concatenated
//   on its head axis and takes over the output's name, so graph I/O is unchanged
// Then dead MHA nodes are removed. Per-head values are named "<original>.h<i>".
#include <algorithm>

#include "headsplit/passes/slicing.h"
#include "split_heads_internal.h"

namespace hs::passes {

int64_t SplitReport::split_count() const {
  return std::count_if(attentions.begin(), attentions.end(),
                       [](const SplitAttention& a) { return a.split; });
}

int64_t SplitReport::skipped_count() const {
  return static_cast<int64_t>(attentions.size()) - split_count();
}

namespace split {

using ir::Graph;
using ir::NodeId;
using ir::OpKind;
using ir::ValueId;

namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

// The per-head values of every family (index = FamilyIndex), appending their nodes.
Result<std::vector<std::vector<ValueId>>> add_heads(Graph& g, const HeadPlan& plan) {
  std::vector<std::vector<ValueId>> heads(plan.families.size());
  for (size_t fi = 0; fi < plan.families.size(); ++fi) {
    const Family& f = plan.families[fi];
    const int64_t chunk = g.type(f.original).shape[static_cast<size_t>(f.axis)] / f.n;
    for (int64_t i = 0; i < f.n; ++i) {
      // A new node computing head i of `f` with type `type` (the original's chunk i).
      auto add = [&](OpKind op, std::vector<ValueId> inputs, ir::Attrs attrs) -> Result<ValueId> {
        HS_ASSIGN_OR_RETURN(ir::TensorType type,
                            slice_type(g.type(f.original), f.axis, i * chunk, (i + 1) * chunk));
        const std::string name = g.unique_name(fmt::format("{}.h{}", g.value(f.original).name, i));
        HS_ASSIGN_OR_RETURN(NodeId node,
                            g.add_node(op, std::move(inputs), std::move(attrs), {{name, type}}));
        return g.node(node).outputs[0];
      };
      Result<ValueId> head = std::visit(
          Overloaded{
              [&](const Shared&) -> Result<ValueId> { return f.original; },
              [&](const Selected& s) -> Result<ValueId> {
                return heads[s.from][static_cast<size_t>(i / s.repeat)];
              },
              [&](const Sliced&) -> Result<ValueId> {
                return add(OpKind::kSlice, {f.original},
                           {{"axis", f.axis}, {"start", i * chunk}, {"end", (i + 1) * chunk}});
              },
              [&](const Cloned& c) -> Result<ValueId> {
                const ir::Node& p = *g.producer(f.original);
                std::vector<ValueId> inputs;
                for (size_t k = 0; k < p.inputs.size(); ++k) {
                  inputs.push_back(c.operands[k] ? heads[*c.operands[k]][static_cast<size_t>(i)]
                                                 : p.inputs[k]);
                }
                return add(p.op, std::move(inputs), c.attrs);
              },
          },
          f.how);
      HS_TRY(head);
      heads[fi].push_back(*head);
    }
  }
  return heads;
}

// Replaces graph-output value `original` by concat(heads; axis), which takes over its name.
Status concat_graph_output(Graph& g, const Family& f, const std::vector<ValueId>& heads) {
  const std::string name = g.value(f.original).name;
  const ir::TensorType type = g.type(f.original);
  g.rename_value(f.original, g.unique_name(name + ".mha"));
  HS_ASSIGN_OR_RETURN(NodeId node,
                      g.add_node(OpKind::kConcat, heads, {{"axis", f.axis}}, {{name, type}}));
  ValueId concat = g.node(node).outputs[0];
  auto& outputs = g.mutable_outputs();
  std::replace(outputs.begin(), outputs.end(), f.original, concat);
  return {};
}

Status apply_heads(Graph& g, const HeadPlan& plan) {
  HS_ASSIGN_OR_RETURN(const std::vector<std::vector<ValueId>> heads, add_heads(g, plan));
  const AttentionMatch& m = plan.match;
  // Head outputs side by side on the last axis: [1,1,T,H*Dh], same flat order as Y.
  const ValueId a = g.node(m.av_matmul).outputs[0];
  const ir::TensorType at = g.type(a);
  ir::TensorType cat_type = at;
  cat_type.shape = {at.shape[0], 1, at.shape[2], at.shape[1] * at.shape[3]};
  const ValueId y = g.node(m.transpose).outputs[0];
  const ir::TensorType y_type = g.type(y);
  HS_ASSIGN_OR_RETURN(NodeId cat_node,
                      g.add_node(OpKind::kConcat, heads[plan.top], {{"axis", int64_t{3}}},
                                 {{g.unique_name(g.value(a).name + ".concat"), cat_type}}));
  const ValueId cat = g.node(cat_node).outputs[0];
  // Y's consumers: reshapes read the concat directly; anything else through a reshape.
  std::vector<ir::Use> y_uses = g.compute_uses()[static_cast<size_t>(y)];
  ValueId y_equivalent = ir::kNoValue;
  for (const ir::Use& u : y_uses) {
    if (g.node(u.node).op == OpKind::kReshape) {
      g.node(u.node).inputs[static_cast<size_t>(u.operand)] = cat;
      continue;
    }
    if (y_equivalent == ir::kNoValue) {
      HS_ASSIGN_OR_RETURN(NodeId r, g.add_node(OpKind::kReshape, {cat},
                                               {{"shape", std::vector<int64_t>(y_type.shape)}},
                                               {{g.unique_name(g.value(y).name + ".sha"), y_type}}));
      y_equivalent = g.node(r).outputs[0];
    }
    g.node(u.node).inputs[static_cast<size_t>(u.operand)] = y_equivalent;
  }
  for (size_t fi = 0; fi < plan.families.size(); ++fi) {
    const Family& f = plan.families[fi];
    if (!std::holds_alternative<Shared>(f.how) && f.n > 1 && g.is_graph_output(f.original)) {
      HS_TRY(concat_graph_output(g, f, heads[fi]));
    }
  }
  return {};
}

}  // namespace

Status apply_plan(Graph& g, const HeadPlan& plan) {
  Status applied = apply_heads(g, plan);
  if (applied.ok()) return applied;
  // The plan was checked against this graph: a failure here is a bug, never "unsupported".
  return Error(
      ErrorKind::kInternal,
      fmt::format("split-heads: applying the plan of '{}' failed: {}",
                  g.value(g.node(plan.match.softmax).outputs[0]).name, applied.error().message()));
}

}  // namespace split

Result<SplitReport> split_heads(ir::Graph& g, const SplitHeadsOptions& options,
                                const PassContext& context) {
  SplitReport report;
  std::vector<ir::NodeId> softmaxes;
  for (ir::NodeId id = 0; id < g.num_nodes(); ++id) {
    if (!g.node(id).erased && g.node(id).op == ir::OpKind::kSoftmax) softmaxes.push_back(id);
  }
  for (ir::NodeId id : softmaxes) {
    SplitAttention entry;
    entry.name = g.value(g.node(id).outputs[0]).name;
    const ir::TensorType& probs = g.type(g.node(id).outputs[0]);
    if (probs.rank() == 4 && probs.shape[1] == 1) {  // already single-head: nothing to split
      context.note("split-heads", fmt::format("{}: already single-head, left as is", entry.name));
      report.single_head.push_back(entry.name);
      continue;
    }
    // Phase 1 and 2 read the graph only: a miss leaves it unchanged.
    Result<split::HeadPlan> plan = [&]() -> Result<split::HeadPlan> {
      HS_ASSIGN_OR_RETURN(split::AttentionMatch match, split::match_attention(g, id));
      return split::plan_heads(g, match);
    }();
    if (plan.ok()) {
      entry.heads = plan->match.heads;
      entry.kv_heads = plan->kv_heads;
      const int64_t nodes_before = g.num_nodes();
      HS_TRY(split::apply_plan(g, *plan));
      entry.split = true;
      context.note("split-heads",
                   fmt::format("{}: {} heads (kv {}), +{} nodes", entry.name, entry.heads,
                               entry.kv_heads, g.num_nodes() - nodes_before));
    } else if (plan.kind() == ErrorKind::kUnsupported) {
      entry.reason = plan.error().message();
      context.note("split-heads", fmt::format("{}: left as MHA: {}", entry.name, entry.reason));
      if (options.require_all) {
        return errorf(ErrorKind::kUnsupported, "split-heads: attention '{}' does not match: {}",
                      entry.name, entry.reason);
      }
    } else {
      return std::move(plan).error();
    }
    report.attentions.push_back(std::move(entry));
  }
  if (report.split_count() > 0) {
    HS_TRY(g.topo_sort());
    g.eliminate_dead_code();
  }
  return report;
}

namespace {

class SplitHeads final : public Pass {
 public:
  explicit SplitHeads(SplitHeadsOptions options) : options_(options) {}
  std::string_view name() const override { return "split-heads"; }
  Result<bool> run(ir::Graph& graph, const PassContext& context) override {
    HS_ASSIGN_OR_RETURN(SplitReport report, split_heads(graph, options_, context));
    return report.split_count() > 0;
  }

 private:
  SplitHeadsOptions options_;
};

}  // namespace

std::unique_ptr<Pass> make_split_heads(SplitHeadsOptions options) {
  return std::make_unique<SplitHeads>(options);
}

}  // namespace hs::passes
