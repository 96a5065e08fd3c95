#include "headsplit/ir/graph.h"

#include <algorithm>

namespace hs::ir {

Result<ValueId> Graph::add_value(std::string name, TensorType type) {
  if (name.empty()) return errorf(ErrorKind::kInvalidArgument, "graph '{}': empty value name", name_);
  if (by_name_.count(name) != 0) {
    return errorf(ErrorKind::kInvalidArgument, "graph '{}': value name '{}' is already used",
                  name_, name);
  }
  auto id = static_cast<ValueId>(values_.size());
  by_name_.emplace(name, id);
  values_.push_back(Value{std::move(name), std::move(type), kNoNode, std::nullopt});
  return id;
}

Result<ValueId> Graph::add_input(std::string name, TensorType type) {
  HS_ASSIGN_OR_RETURN(ValueId id, add_value(std::move(name), std::move(type)));
  inputs_.push_back(id);
  return id;
}

Result<ValueId> Graph::add_constant(std::string name, TensorType type, BufferView data) {
  int64_t expected = type.numel() * dtype_size(type.dtype);
  if (static_cast<int64_t>(data.size) != expected) {
    return errorf(ErrorKind::kShape, "constant '{}' of type {} needs {} bytes, got {}", name,
                  type_str(type), expected, data.size);
  }
  HS_ASSIGN_OR_RETURN(ValueId id, add_value(std::move(name), std::move(type)));
  values_[static_cast<size_t>(id)].data = std::move(data);
  return id;
}

Result<NodeId> Graph::add_node(OpKind op, std::vector<ValueId> inputs, Attrs attrs,
                               std::vector<std::pair<std::string, TensorType>> outputs) {
  for (ValueId v : inputs) {
    if (v < 0 || v >= num_values()) {
      return errorf(ErrorKind::kInvalidArgument, "{}: operand id {} does not exist", op_name(op), v);
    }
  }
  auto id = static_cast<NodeId>(nodes_.size());
  std::vector<ValueId> outs;
  for (auto& [name, type] : outputs) {
    HS_ASSIGN_OR_RETURN(ValueId v, add_value(std::move(name), std::move(type)));
    values_[static_cast<size_t>(v)].producer = id;
    outs.push_back(v);
  }
  nodes_.push_back(Node{op, std::move(inputs), std::move(outs), std::move(attrs), false});
  return id;
}

Result<ValueId> Graph::emit(OpKind op, std::vector<ValueId> inputs, Attrs attrs, std::string name) {
  std::vector<const TensorType*> types;
  for (ValueId v : inputs) {
    if (v < 0 || v >= num_values()) {
      return errorf(ErrorKind::kInvalidArgument, "{} '{}': operand id {} does not exist",
                    op_name(op), name, v);
    }
    types.push_back(&value(v).type);
  }
  auto type = infer_type(op, types, attrs);
  if (!type.ok()) return std::move(type).error().with_context(fmt::format("node '{}'", name));
  HS_ASSIGN_OR_RETURN(NodeId node,
                      add_node(op, std::move(inputs), std::move(attrs), {{std::move(name), *type}}));
  return nodes_[static_cast<size_t>(node)].outputs[0];
}

std::string Graph::unique_name(std::string_view base) const {
  std::string name(base);
  for (int i = 1; by_name_.count(name) != 0; ++i) name = fmt::format("{}.{}", base, i);
  return name;
}

std::optional<ValueId> Graph::find_value(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

const Node* Graph::producer(ValueId id) const {
  NodeId p = value(id).producer;
  return p == kNoNode ? nullptr : &node(p);
}

bool Graph::is_graph_output(ValueId id) const {
  return std::find(outputs_.begin(), outputs_.end(), id) != outputs_.end();
}

bool Graph::is_graph_input(ValueId id) const {
  return std::find(inputs_.begin(), inputs_.end(), id) != inputs_.end();
}

std::vector<std::vector<Use>> Graph::compute_uses() const {
  std::vector<std::vector<Use>> uses(values_.size());
  for (NodeId n = 0; n < num_nodes(); ++n) {
    const Node& nd = node(n);
    if (nd.erased) continue;
    for (size_t i = 0; i < nd.inputs.size(); ++i) {
      uses[static_cast<size_t>(nd.inputs[i])].push_back(Use{n, static_cast<int>(i)});
    }
  }
  return uses;
}

int64_t Graph::live_node_count() const {
  return std::count_if(nodes_.begin(), nodes_.end(), [](const Node& n) { return !n.erased; });
}

std::map<std::string, int64_t> Graph::op_counts() const {
  std::map<std::string, int64_t> counts;
  for (const Node& n : nodes_) {
    if (!n.erased) ++counts[std::string(op_name(n.op))];
  }
  return counts;
}

int64_t Graph::constant_bytes() const {
  int64_t total = 0;
  for (const Value& v : values_) {
    if (v.data) total += static_cast<int64_t>(v.data->size);
  }
  return total;
}

void Graph::replace_all_uses(ValueId from, ValueId to) { replace_uses_except(from, to, kNoNode); }

void Graph::replace_uses_except(ValueId from, ValueId to, NodeId except) {
  for (NodeId n = 0; n < num_nodes(); ++n) {
    Node& nd = node(n);
    if (nd.erased || n == except) continue;
    for (ValueId& v : nd.inputs) {
      if (v == from) v = to;
    }
  }
  for (ValueId& v : outputs_) {
    if (v == from) v = to;
  }
}

void Graph::rename_value(ValueId id, std::string name) {
  Value& v = value(id);
  by_name_.erase(v.name);
  v.name = std::move(name);
  by_name_[v.name] = id;
}

Status Graph::topo_sort() {
  // Depth-first placement: walk the live nodes in their current order and place each one after
  // the producers of its operands, placing any producer not yet placed first (an explicit
  // stack, no recursion). An order that is already valid is left unchanged, and a node that
  // was appended out of order moves up to just before its first consumer.
  const auto count = static_cast<size_t>(num_nodes());
  enum class State : uint8_t { kUnvisited, kOnStack, kPlaced };
  std::vector<State> state(count, State::kUnvisited);
  std::vector<NodeId> order;
  order.reserve(count);
  struct Frame {
    NodeId node;
    size_t next_operand;
  };
  std::vector<Frame> stack;
  for (NodeId root = 0; root < num_nodes(); ++root) {
    if (node(root).erased || state[static_cast<size_t>(root)] != State::kUnvisited) continue;
    state[static_cast<size_t>(root)] = State::kOnStack;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      Frame& top = stack.back();
      const Node& nd = node(top.node);
      if (top.next_operand == nd.inputs.size()) {
        state[static_cast<size_t>(top.node)] = State::kPlaced;
        order.push_back(top.node);
        stack.pop_back();
        continue;
      }
      ValueId v = nd.inputs[top.next_operand++];
      NodeId p = value(v).producer;
      if (p == kNoNode || state[static_cast<size_t>(p)] == State::kPlaced) continue;
      if (node(p).erased) {
        return errorf(ErrorKind::kInternal, "graph '{}': node producing '{}' was erased but is "
                      "still used", name_, value(v).name);
      }
      if (state[static_cast<size_t>(p)] == State::kOnStack) {
        return errorf(ErrorKind::kInternal, "graph '{}' has a cycle through value '{}'", name_,
                      value(v).name);
      }
      state[static_cast<size_t>(p)] = State::kOnStack;
      stack.push_back({p, 0});  // invalidates `top`, which is not used again
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(count);
  std::vector<NodeId> new_id(count, kNoNode);
  for (NodeId n : order) {
    new_id[static_cast<size_t>(n)] = static_cast<NodeId>(sorted.size());
    sorted.push_back(std::move(nodes_[static_cast<size_t>(n)]));
  }
  // Erased nodes go to the end so ids of live nodes are dense from 0.
  for (NodeId n = 0; n < static_cast<NodeId>(count); ++n) {
    if (nodes_[static_cast<size_t>(n)].erased) {
      new_id[static_cast<size_t>(n)] = static_cast<NodeId>(sorted.size());
      sorted.push_back(std::move(nodes_[static_cast<size_t>(n)]));
    }
  }
  nodes_ = std::move(sorted);
  for (Value& v : values_) {
    if (v.producer != kNoNode) v.producer = new_id[static_cast<size_t>(v.producer)];
  }
  return {};
}

int64_t Graph::compact() {
  const auto value_count = static_cast<size_t>(num_values());
  std::vector<bool> referenced(value_count, false);
  for (ValueId v : inputs_) referenced[static_cast<size_t>(v)] = true;
  for (ValueId v : outputs_) referenced[static_cast<size_t>(v)] = true;
  int64_t removed = 0;
  for (const Node& nd : nodes_) {
    if (nd.erased) {
      ++removed;
      continue;
    }
    for (ValueId v : nd.inputs) referenced[static_cast<size_t>(v)] = true;
    for (ValueId v : nd.outputs) referenced[static_cast<size_t>(v)] = true;
  }
  std::vector<ValueId> new_value(value_count, kNoValue);
  std::vector<Value> values;
  values.reserve(value_count);
  for (size_t v = 0; v < value_count; ++v) {
    if (!referenced[v]) continue;
    new_value[v] = static_cast<ValueId>(values.size());
    values.push_back(std::move(values_[v]));
  }
  std::vector<Node> nodes;
  nodes.reserve(nodes_.size());
  for (Node& nd : nodes_) {
    if (nd.erased) continue;
    for (ValueId& v : nd.inputs) v = new_value[static_cast<size_t>(v)];
    for (ValueId& v : nd.outputs) v = new_value[static_cast<size_t>(v)];
    NodeId id = static_cast<NodeId>(nodes.size());
    for (ValueId v : nd.outputs) values[static_cast<size_t>(v)].producer = id;
    nodes.push_back(std::move(nd));
  }
  for (ValueId& v : inputs_) v = new_value[static_cast<size_t>(v)];
  for (ValueId& v : outputs_) v = new_value[static_cast<size_t>(v)];
  values_ = std::move(values);
  nodes_ = std::move(nodes);
  by_name_.clear();
  for (size_t v = 0; v < values_.size(); ++v) by_name_[values_[v].name] = static_cast<ValueId>(v);
  return removed;
}

int64_t Graph::eliminate_dead_code() {
  std::vector<bool> live_value(static_cast<size_t>(num_values()), false);
  for (ValueId v : outputs_) live_value[static_cast<size_t>(v)] = true;
  // Nodes are in topological order, so one backward sweep finds everything live.
  for (NodeId n = num_nodes() - 1; n >= 0; --n) {
    Node& nd = node(n);
    if (nd.erased) continue;
    bool live = std::any_of(nd.outputs.begin(), nd.outputs.end(),
                            [&](ValueId v) { return live_value[static_cast<size_t>(v)]; });
    if (!live) {
      nd.erased = true;
      continue;
    }
    for (ValueId v : nd.inputs) live_value[static_cast<size_t>(v)] = true;
  }
  return compact();
}

}  // namespace hs::ir
