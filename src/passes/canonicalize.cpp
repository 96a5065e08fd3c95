// canonicalize: the forms later passes may assume.
//   identity ops vanish:  reshape(x: S) -> S,  expand(x: S) -> S,  transpose(x, identity),
//                         slice(x, a, 0, dim_a),  concat(x)                       =>  x
//   reshape(reshape(x)) => reshape(x)        (when the inner reshape does not requantize)
//   broadcast operands of add/sub/mul/div/eq/where become rank-equal to the result:
//     b: [T,C] in add(a: [1,H,T,C], b)  =>  b': [1,1,T,C]  (constants re-typed, values reshaped)
// A node whose output is a graph output is kept, so graph I/O names never change.
#include <numeric>

#include "headsplit/passes/passes.h"

namespace hs::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::NodeId;
using ir::OpKind;
using ir::ValueId;

bool is_identity(const Graph& g, const Node& n) {
  if (n.inputs.empty() || n.outputs.size() != 1) return false;
  const ir::TensorType& in = g.type(n.inputs[0]);
  const ir::TensorType& out = g.type(n.outputs[0]);
  if (in != out) return false;  // a shape change or a requantization
  switch (n.op) {
    case OpKind::kReshape:
    case OpKind::kExpand: return true;
    case OpKind::kConcat: return n.inputs.size() == 1;
    case OpKind::kSlice: return true;  // same type: the slice covers the whole axis
    case OpKind::kTranspose: {
      const auto& perm = n.attrs.get_ints("perm");
      for (size_t i = 0; i < perm.size(); ++i) {
        if (perm[i] != static_cast<int64_t>(i)) return false;
      }
      return true;
    }
    default: return false;
  }
}

// Shifts a quant axis when `extra` leading axes are added.
ir::TensorType with_leading_ones(const ir::TensorType& t, int64_t extra) {
  ir::TensorType out = t;
  out.shape.insert(out.shape.begin(), static_cast<size_t>(extra), 1);
  if (out.quant.kind == ir::QuantKind::kPerAxis || out.quant.kind == ir::QuantKind::kPerBlock) {
    out.quant.axis += static_cast<int>(extra);
    out.quant.block_axis += static_cast<int>(extra);
  }
  return out;
}

class Canonicalize final : public Pass {
 public:
  std::string_view name() const override { return "canonicalize"; }

  Result<bool> run(Graph& g, const PassContext& ctx) override {
    bool changed = false;
    const NodeId count = g.num_nodes();
    for (NodeId id = 0; id < count; ++id) {
      if (g.node(id).erased) continue;
      // Merge first: a reshape of a reshape may turn out to be an identity.
      changed |= merge_reshapes(g, id, ctx);
      changed |= drop_identity(g, id, ctx);
      if (!g.node(id).erased && ir::op_info(g.node(id).op).is_broadcast) {
        HS_ASSIGN_OR_RETURN(bool lifted, lift_operands(g, id, ctx));
        changed |= lifted;
      }
    }
    if (changed) {
      HS_TRY(g.topo_sort());
      g.compact();
    }
    return changed;
  }

 private:
  bool drop_identity(Graph& g, NodeId id, const PassContext& ctx) {
    const Node& n = g.node(id);
    if (!is_identity(g, n) || g.is_graph_output(n.outputs[0])) return false;
    ValueId in = n.inputs[0], out = n.outputs[0];
    ctx.note(name(), fmt::format("removed identity {} '{}'", ir::op_name(n.op), g.value(out).name));
    g.erase_node(id);
    g.replace_all_uses(out, in);
    return true;
  }

  bool merge_reshapes(Graph& g, NodeId id, const PassContext& ctx) {
    Node& n = g.node(id);
    if (n.op != OpKind::kReshape) return false;
    const Node* inner = g.producer(n.inputs[0]);
    if (inner == nullptr || inner->op != OpKind::kReshape) return false;
    ValueId x = inner->inputs[0];
    if (g.type(x).quant != g.type(n.inputs[0]).quant) return false;  // inner requantizes
    ctx.note(name(), fmt::format("reshape of reshape '{}' reads '{}' directly",
                                 g.value(n.outputs[0]).name, g.value(x).name));
    n.inputs[0] = x;
    return true;
  }

  Result<bool> lift_operands(Graph& g, NodeId id, const PassContext& ctx) {
    const int64_t rank = g.type(g.node(id).outputs[0]).rank();
    bool changed = false;
    for (size_t i = 0; i < g.node(id).inputs.size(); ++i) {
      ValueId v = g.node(id).inputs[i];
      const int64_t extra = rank - g.type(v).rank();
      if (extra <= 0) continue;
      const ir::Value& value = g.value(v);
      ir::TensorType lifted = with_leading_ones(value.type, extra);
      std::string lifted_name = g.unique_name(fmt::format("{}.rank{}", value.name, rank));
      ValueId replacement;
      if (value.is_constant()) {
        BufferView data = *value.data;
        HS_ASSIGN_OR_RETURN(replacement, g.add_constant(lifted_name, lifted, data));
      } else {
        ir::Attrs attrs{{"shape", std::vector<int64_t>(lifted.shape)}};
        HS_ASSIGN_OR_RETURN(NodeId r, g.add_node(OpKind::kReshape, {v}, attrs,
                                                 {{lifted_name, lifted}}));
        replacement = g.node(r).outputs[0];
      }
      ctx.note(name(), fmt::format("operand '{}' of '{}' made rank {}", g.value(v).name,
                                   g.value(g.node(id).outputs[0]).name, rank));
      g.node(id).inputs[i] = replacement;
      changed = true;
    }
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_canonicalize() { return std::make_unique<Canonicalize>(); }

}  // namespace hs::passes
