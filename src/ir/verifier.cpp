// The IR verifier: names, value roles and producers, topological order, per-node arity,
// attributes and result types, graph outputs. See verifier.h for the list of invariants.
#include "headsplit/ir/verifier.h"

#include <string_view>
#include <unordered_map>
#include <vector>

namespace hs::ir {

namespace {

// What a value is, as established by the first checks.
enum class Role : uint8_t {
  kNone,
  kInput,
  kConstant,
  kResult,  // result of a live node
  kDead,    // result of an erased node only
};

// Names, graph inputs, constants and producers. Fills `roles` (index = ValueId).
Status check_values(const Graph& g, std::vector<Role>& roles, std::vector<NodeId>& dead_producer) {
  const int32_t nv = g.num_values();
  std::unordered_map<std::string_view, ValueId> seen;
  for (ValueId v = 0; v < nv; ++v) {
    const std::string& name = g.value(v).name;
    if (name.empty()) return errorf(ErrorKind::kInvalidArgument, "value #{} has an empty name", v);
    auto [it, inserted] = seen.emplace(name, v);
    if (!inserted) {
      return errorf(ErrorKind::kInvalidArgument, "value name '{}' is used by values #{} and #{}",
                    name, it->second, v);
    }
  }
  roles.assign(static_cast<size_t>(nv), Role::kNone);
  for (ValueId v : g.inputs()) {
    if (v < 0 || v >= nv) {
      return errorf(ErrorKind::kInvalidArgument, "graph input id {} is outside [0,{})", v, nv);
    }
    const Value& val = g.value(v);
    if (roles[static_cast<size_t>(v)] == Role::kInput) {
      return errorf(ErrorKind::kInvalidArgument, "value '{}' is listed twice as a graph input",
                    val.name);
    }
    if (val.producer != kNoNode) {
      return errorf(ErrorKind::kInvalidArgument, "graph input '{}' has a producer (node #{})",
                    val.name, val.producer);
    }
    if (val.data) {
      return errorf(ErrorKind::kInvalidArgument, "graph input '{}' has constant data", val.name);
    }
    HS_TRY(check_type(val.type, fmt::format("graph input '{}'", val.name)));
    roles[static_cast<size_t>(v)] = Role::kInput;
  }
  for (ValueId v = 0; v < nv; ++v) {
    const Value& val = g.value(v);
    if (!val.data || roles[static_cast<size_t>(v)] != Role::kNone) continue;
    std::string what = fmt::format("constant '{}'", val.name);
    HS_TRY(check_type(val.type, what));
    int64_t expected = val.type.numel() * dtype_size(val.type.dtype);
    if (static_cast<int64_t>(val.data->size) != expected) {
      return errorf(ErrorKind::kShape, "{} of type {} has {} bytes of data, expected {}", what,
                    type_str(val.type), val.data->size, expected);
    }
    if (val.producer != kNoNode) {
      return errorf(ErrorKind::kInvalidArgument, "{} has a producer (node #{})", what,
                    val.producer);
    }
    roles[static_cast<size_t>(v)] = Role::kConstant;
  }
  std::vector<NodeId> live_producer(static_cast<size_t>(nv), kNoNode);
  dead_producer.assign(static_cast<size_t>(nv), kNoNode);
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    const Node& node = g.node(n);
    for (ValueId v : node.outputs) {
      if (v < 0 || v >= nv) {
        return errorf(ErrorKind::kInvalidArgument, "node #{} ({}): result id {} is outside [0,{})",
                      n, op_name(node.op), v, nv);
      }
      auto i = static_cast<size_t>(v);
      if (roles[i] != Role::kNone) {
        return errorf(ErrorKind::kInvalidArgument, "{}: result '{}' is a graph {}",
                      describe_node(g, n), g.value(v).name,
                      roles[i] == Role::kInput ? "input" : "constant");
      }
      if (node.erased) {
        if (dead_producer[i] == kNoNode) dead_producer[i] = n;
        continue;
      }
      if (live_producer[i] != kNoNode) {
        return errorf(ErrorKind::kInvalidArgument,
                      "value '{}' is the result of two nodes: #{} and #{}", g.value(v).name,
                      live_producer[i], n);
      }
      live_producer[i] = n;
    }
  }
  for (ValueId v = 0; v < nv; ++v) {
    auto i = static_cast<size_t>(v);
    if (roles[i] != Role::kNone) continue;
    const Value& val = g.value(v);
    if (live_producer[i] != kNoNode) {
      if (val.producer != live_producer[i]) {
        return errorf(ErrorKind::kInvalidArgument,
                      "value '{}' records producer #{} but is the result of {} (#{})", val.name,
                      val.producer, describe_node(g, live_producer[i]), live_producer[i]);
      }
      roles[i] = Role::kResult;
    } else if (dead_producer[i] != kNoNode) {
      roles[i] = Role::kDead;
    } else {
      return errorf(ErrorKind::kInvalidArgument,
                    "value '{}' is not a graph input or a constant and no node produces it",
                    val.name);
    }
  }
  return {};
}

// Topological order of live nodes and each node on its own.
Status check_nodes(const Graph& g, const std::vector<Role>& roles,
                   const std::vector<NodeId>& dead_producer) {
  std::vector<bool> defined(roles.size(), false);
  for (size_t i = 0; i < roles.size(); ++i) {
    defined[i] = roles[i] == Role::kInput || roles[i] == Role::kConstant;
  }
  for (NodeId n = 0; n < g.num_nodes(); ++n) {
    const Node& node = g.node(n);
    if (node.erased) continue;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      ValueId v = node.inputs[k];
      if (v < 0 || v >= g.num_values()) {
        return errorf(ErrorKind::kInvalidArgument, "{}: operand {} has id {}, outside [0,{})",
                      describe_node(g, n), k, v, g.num_values());
      }
      auto i = static_cast<size_t>(v);
      if (roles[i] == Role::kDead) {
        return errorf(ErrorKind::kInvalidArgument,
                      "{}: operand {} '{}' is the result of erased node #{}", describe_node(g, n),
                      k, g.value(v).name, dead_producer[i]);
      }
      if (!defined[i]) {
        return errorf(ErrorKind::kInvalidArgument,
                      "{}: operand {} '{}' is used before its definition by {} (nodes are not in "
                      "topological order)",
                      describe_node(g, n), k, g.value(v).name,
                      describe_node(g, g.value(v).producer));
      }
    }
    HS_TRY(verify_node(g, n));
    for (ValueId v : node.outputs) defined[static_cast<size_t>(v)] = true;
  }
  return {};
}

Status check_outputs(const Graph& g, const std::vector<Role>& roles,
                     const std::vector<NodeId>& dead_producer) {
  std::vector<bool> listed(roles.size(), false);
  for (ValueId v : g.outputs()) {
    if (v < 0 || v >= g.num_values()) {
      return errorf(ErrorKind::kInvalidArgument, "graph output id {} is outside [0,{})", v,
                    g.num_values());
    }
    auto i = static_cast<size_t>(v);
    if (roles[i] == Role::kDead) {
      return errorf(ErrorKind::kInvalidArgument,
                    "graph output '{}' is the result of erased node #{}", g.value(v).name,
                    dead_producer[i]);
    }
    if (listed[i]) {
      return errorf(ErrorKind::kInvalidArgument, "value '{}' is listed twice as a graph output",
                    g.value(v).name);
    }
    listed[i] = true;
  }
  return {};
}

}  // namespace

std::string describe_node(const Graph& graph, NodeId id) {
  const Node& node = graph.node(id);
  if (!node.outputs.empty() && node.outputs[0] >= 0 && node.outputs[0] < graph.num_values()) {
    return fmt::format("node '{}' ({})", graph.value(node.outputs[0]).name, op_name(node.op));
  }
  return fmt::format("node #{} ({})", id, op_name(node.op));
}

Status verify_node(const Graph& graph, NodeId id) {
  if (id < 0 || id >= graph.num_nodes()) {
    return errorf(ErrorKind::kInvalidArgument, "node id {} is outside [0,{})", id,
                  graph.num_nodes());
  }
  const Node& node = graph.node(id);
  const std::string what = describe_node(graph, id);
  if (node.erased) return errorf(ErrorKind::kInvalidArgument, "{}: node is erased", what);
  const int n = static_cast<int>(node.inputs.size());
  HS_TRY_CTX(check_signature(node.op, n, node.attrs), what);
  std::vector<const TensorType*> types;
  for (int k = 0; k < n; ++k) {
    ValueId v = node.inputs[static_cast<size_t>(k)];
    if (v < 0 || v >= graph.num_values()) {
      return errorf(ErrorKind::kInvalidArgument, "{}: operand {} has id {}, outside [0,{})", what,
                    k, v, graph.num_values());
    }
    types.push_back(&graph.type(v));
  }
  if (node.outputs.size() != 1) {
    return errorf(ErrorKind::kShape, "{}: {} results, expected 1", what, node.outputs.size());
  }
  ValueId out = node.outputs[0];
  if (out < 0 || out >= graph.num_values()) {
    return errorf(ErrorKind::kInvalidArgument, "{}: result id {} is outside [0,{})", what, out,
                  graph.num_values());
  }
  auto inferred = infer_type(node.op, types, node.attrs);
  if (!inferred.ok()) return std::move(inferred).error().with_context(what);
  const TensorType& actual = graph.type(out);
  HS_TRY(check_type(actual, what));
  return check_result_type(node.op, actual, *inferred, what);
}

Status verify(const Graph& graph) {
  std::vector<Role> roles;
  std::vector<NodeId> dead_producer;
  HS_TRY(check_values(graph, roles, dead_producer));
  HS_TRY(check_nodes(graph, roles, dead_producer));
  return check_outputs(graph, roles, dead_producer);
}

}  // namespace hs::ir
