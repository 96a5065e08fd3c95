// The interpreter's GQA repeat-KV matmul fusion plan (see interpreter_fusion.h).
#include "interpreter_fusion.h"

namespace hs::ir::detail {

namespace {

// True when `id` is an intermediate the fusion may leave unmaterialised: produced by a node
// of kind `op`, real and unquantized, not a graph output, read by exactly one use.
bool fusable_link(const Graph& g, const std::vector<std::vector<Use>>& uses, ValueId id,
                  OpKind op) {
  const Value& v = g.value(id);
  const Node* p = g.producer(id);
  return p != nullptr && p->op == op && v.type.is_real() && !v.type.quant.is_quantized() &&
         !g.is_graph_output(id) && uses[static_cast<size_t>(id)].size() == 1;
}

// G when R = reshape(expand(unsqueeze(X))) is the GQA repeat of X (shapes as in the header),
// else 0.
int64_t repeat_group(const Shape& x, const Shape& u, const Shape& e, const Shape& r) {
  const size_t rx = x.size();
  if (rx < 3 || u.size() != rx + 1 || e.size() != rx + 1 || r.size() != rx) return 0;
  const size_t g_axis = rx - 2;  // the inserted axis of u and e
  for (size_t a = 0; a <= rx; ++a) {
    const int64_t want_u = a < g_axis ? x[a] : a == g_axis ? 1 : x[a - 1];
    if (u[a] != want_u) return 0;
    if (a != g_axis && e[a] != u[a]) return 0;
  }
  const int64_t group = e[g_axis];
  if (group < 1) return 0;
  for (size_t a = 0; a < rx; ++a) {
    const int64_t want_r = a == rx - 3 ? x[a] * group : x[a];
    if (r[a] != want_r) return 0;
  }
  return group;
}

}  // namespace

FusionPlan plan_repeat_kv_matmuls(const Graph& g) {
  FusionPlan plan;
  const auto n_nodes = static_cast<size_t>(g.num_nodes());
  plan.skip.assign(n_nodes, false);
  plan.source.assign(n_nodes, kNoValue);
  plan.group.assign(n_nodes, 0);
  const std::vector<std::vector<Use>> uses = g.compute_uses();
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    const Node& m = g.node(n);
    if (m.erased || m.op != OpKind::kMatMul || m.inputs.size() != 2) continue;
    const ValueId r = m.inputs[1];
    if (m.inputs[0] == r || !fusable_link(g, uses, r, OpKind::kReshape)) continue;
    const ValueId e = g.producer(r)->inputs[0];
    if (!fusable_link(g, uses, e, OpKind::kExpand)) continue;
    const ValueId u = g.producer(e)->inputs[0];
    if (!fusable_link(g, uses, u, OpKind::kUnsqueeze)) continue;
    const ValueId x = g.producer(u)->inputs[0];
    if (!g.type(x).is_real()) continue;
    const int64_t group =
        repeat_group(g.type(x).shape, g.type(u).shape, g.type(e).shape, g.type(r).shape);
    if (group == 0) continue;
    plan.skip[static_cast<size_t>(g.value(u).producer)] = true;
    plan.skip[static_cast<size_t>(g.value(e).producer)] = true;
    plan.skip[static_cast<size_t>(g.value(r).producer)] = true;
    plan.source[static_cast<size_t>(n)] = x;
    plan.group[static_cast<size_t>(n)] = group;
    ++plan.fused;
  }
  return plan;
}

}  // namespace hs::ir::detail
