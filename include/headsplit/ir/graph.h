// The graph: values (typed tensors) and nodes (ops) in topological order.
//
// A value is a graph input, a constant (it has data) or the output of exactly one node.
// Values and nodes are addressed by dense ids. Rewrites append nodes, redirect uses with
// replace_all_uses, mark nodes erased, then call topo_sort() and compact().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "headsplit/ir/ops.h"
#include "headsplit/ir/types.h"
#include "headsplit/support/buffer.h"

namespace hs::ir {

using ValueId = int32_t;
using NodeId = int32_t;
inline constexpr ValueId kNoValue = -1;
inline constexpr NodeId kNoNode = -1;

struct Value {
  std::string name;
  TensorType type;
  NodeId producer = kNoNode;         // kNoNode for graph inputs and constants
  std::optional<BufferView> data;    // set for constants: numel * dtype_size bytes, row-major

  bool is_constant() const { return data.has_value(); }
};

struct Node {
  OpKind op;
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  Attrs attrs;
  bool erased = false;
};

// For each value, the (node, operand index) pairs that read it.
struct Use {
  NodeId node;
  int operand;
};

class Graph {
 public:
  explicit Graph(std::string name = "main") : name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  // --- building ---------------------------------------------------------------------------
  // Names must be unique within the graph; add_* returns a kInvalidArgument error otherwise.
  Result<ValueId> add_input(std::string name, TensorType type);
  Result<ValueId> add_constant(std::string name, TensorType type, BufferView data);
  // Adds a node whose outputs are new values with the given names and types.
  Result<NodeId> add_node(OpKind op, std::vector<ValueId> inputs, Attrs attrs,
                          std::vector<std::pair<std::string, TensorType>> outputs);
  // Adds a single-output node whose output type is inferred from the inputs (quant: none).
  Result<ValueId> emit(OpKind op, std::vector<ValueId> inputs, Attrs attrs, std::string name);
  void set_outputs(std::vector<ValueId> outputs) { outputs_ = std::move(outputs); }
  void add_output(ValueId value) { outputs_.push_back(value); }

  // A name not yet used in the graph: `base` if free, else "base.1", "base.2", ...
  std::string unique_name(std::string_view base) const;

  // --- access -----------------------------------------------------------------------------
  const Value& value(ValueId id) const { return values_[static_cast<size_t>(id)]; }
  Value& value(ValueId id) { return values_[static_cast<size_t>(id)]; }
  const Node& node(NodeId id) const { return nodes_[static_cast<size_t>(id)]; }
  Node& node(NodeId id) { return nodes_[static_cast<size_t>(id)]; }
  const TensorType& type(ValueId id) const { return value(id).type; }
  int32_t num_values() const { return static_cast<int32_t>(values_.size()); }
  int32_t num_nodes() const { return static_cast<int32_t>(nodes_.size()); }
  const std::vector<ValueId>& inputs() const { return inputs_; }
  const std::vector<ValueId>& outputs() const { return outputs_; }
  std::vector<ValueId>& mutable_outputs() { return outputs_; }
  std::optional<ValueId> find_value(std::string_view name) const;
  // The producing node of a value, or nullptr for inputs and constants.
  const Node* producer(ValueId id) const;
  bool is_graph_output(ValueId id) const;
  bool is_graph_input(ValueId id) const;

  // Uses of every value (index = ValueId), over non-erased nodes, in node order.
  std::vector<std::vector<Use>> compute_uses() const;
  // Number of live (non-erased) nodes, total and per op kind.
  int64_t live_node_count() const;
  std::map<std::string, int64_t> op_counts() const;
  // Bytes of constant data referenced by the graph (views counted at their own size).
  int64_t constant_bytes() const;

  // --- mutation ---------------------------------------------------------------------------
  // Every operand and graph output that reads `from` reads `to` instead.
  void replace_all_uses(ValueId from, ValueId to);
  // Like replace_all_uses, but skips uses by node `except` (for inserting a node after `from`).
  void replace_uses_except(ValueId from, ValueId to, NodeId except);
  void erase_node(NodeId id) { node(id).erased = true; }
  void rename_value(ValueId id, std::string name);
  // Reorders live nodes so that every node follows the producers of its inputs; keeps the
  // current relative order where possible. Error if there is a cycle.
  Status topo_sort();
  // Drops erased nodes and the values nothing refers to any more (graph inputs stay);
  // renumbers ids, keeping relative order. Returns the number of nodes removed.
  int64_t compact();
  // Erases every node whose outputs no graph output depends on, then compacts.
  // Returns the number of nodes removed.
  int64_t eliminate_dead_code();

 private:
  Result<ValueId> add_value(std::string name, TensorType type);

  std::string name_;
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<ValueId> inputs_;
  std::vector<ValueId> outputs_;
  std::unordered_map<std::string, ValueId> by_name_;
};

}  // namespace hs::ir
