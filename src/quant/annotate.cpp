// Annotation: value roles, sharing groups (union-find over layout ops) and group widths.
#include "headsplit/quant/annotate.h"

#include <fmt/format.h>

#include <numeric>

namespace hs::quant {

namespace {

using ir::Graph;
using ir::OpKind;
using ir::ValueId;

class UnionFind {
 public:
  explicit UnionFind(int32_t n) : parent_(static_cast<size_t>(n)) {
    std::iota(parent_.begin(), parent_.end(), 0);
  }
  int32_t find(int32_t x) {
    while (parent_[static_cast<size_t>(x)] != x) {
      parent_[static_cast<size_t>(x)] =
          parent_[static_cast<size_t>(parent_[static_cast<size_t>(x)])];
      x = parent_[static_cast<size_t>(x)];
    }
    return x;
  }
  void unite(int32_t a, int32_t b) {
    a = find(a), b = find(b);
    if (a != b) parent_[static_cast<size_t>(std::max(a, b))] = std::min(a, b);
  }

 private:
  std::vector<int32_t> parent_;
};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool is_cache_input(const Graph& g, ValueId id) {
  const std::string& n = g.value(id).name;
  return g.is_graph_input(id) && (starts_with(n, "k_cache.") || starts_with(n, "v_cache."));
}

// Roles of every value; weights and embeddings found from their consumers.
std::vector<ValueRole> value_roles(const Graph& g) {
  std::vector<ValueRole> role(static_cast<size_t>(g.num_values()), ValueRole::kInteger);
  for (ValueId id = 0; id < g.num_values(); ++id) {
    const ir::Value& v = g.value(id);
    if (!v.type.is_real()) continue;
    role[static_cast<size_t>(id)] = v.is_constant() ? ValueRole::kFloat : ValueRole::kActivation;
  }
  auto tokens = g.find_value("tokens");
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const ir::Node& node = g.node(n);
    if (node.erased) continue;
    const bool projection = node.op == OpKind::kConv2d || node.op == OpKind::kLinear;
    if (projection && g.value(node.inputs[1]).is_constant()) {
      role[static_cast<size_t>(node.inputs[1])] = ValueRole::kWeight;
    }
    if (node.op == OpKind::kGather && tokens && node.inputs[1] == *tokens &&
        g.value(node.inputs[0]).is_constant() && g.type(node.inputs[0]).is_real()) {
      role[static_cast<size_t>(node.inputs[0])] = ValueRole::kEmbedding;
    }
  }
  return role;
}

// A group needs at most one fixed encoding; returns the kind after adding `kind` from `id`.
Status set_kind(const Graph& g, ActivationGroup& group, GroupKind kind, ValueId id,
                std::vector<ValueId>& fixed_by, size_t index) {
  if (group.kind == GroupKind::kPlain || group.kind == kind) {
    if (group.kind == GroupKind::kPlain) fixed_by[index] = id;
    group.kind = kind;
    return ok_status();
  }
  return errorf(ErrorKind::kUnsupported,
                "'{}' and '{}' share one encoding through layout ops but need different fixed "
                "encodings (cache, mask, logits)",
                g.value(fixed_by[index]).name, g.value(id).name);
}

}  // namespace

std::string projection_name(std::string_view weight_name) {
  constexpr std::string_view kSuffix = ".weight";
  if (weight_name.size() > kSuffix.size() &&
      weight_name.substr(weight_name.size() - kSuffix.size()) == kSuffix) {
    weight_name.remove_suffix(kSuffix.size());
  }
  return std::string(weight_name);
}

Result<Annotation> annotate(const Graph& g, const QuantConfig& config) {
  HS_TRY(validate_config(config));
  Annotation a;
  a.role = value_roles(g);
  const auto nv = static_cast<size_t>(g.num_values());
  a.projection.resize(nv);
  a.weight_scheme.resize(nv);

  // Sharing groups.
  UnionFind uf(g.num_values());
  auto is_act = [&](ValueId id) {
    return a.role[static_cast<size_t>(id)] == ValueRole::kActivation;
  };
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const ir::Node& node = g.node(n);
    if (node.erased || !ir::op_info(node.op).is_layout || !is_act(node.outputs[0])) continue;
    for (ValueId in : node.inputs) {
      if (is_act(in)) uf.unite(in, node.outputs[0]);
    }
  }
  a.group.assign(nv, -1);
  std::vector<int32_t> group_of_root(nv, -1);
  for (ValueId id = 0; id < g.num_values(); ++id) {
    if (!is_act(id)) continue;
    int32_t& gi = group_of_root[static_cast<size_t>(uf.find(id))];
    if (gi < 0) {
      gi = static_cast<int32_t>(a.groups.size());
      a.groups.push_back(ActivationGroup{.bits = config.scheme.act_bits});
    }
    a.group[static_cast<size_t>(id)] = gi;
    a.groups[static_cast<size_t>(gi)].members.push_back(id);
  }

  // Weight schemes; rules raise the width of the groups their projections read and write.
  std::vector<bool> rule_used(config.rules.size(), false);
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const ir::Node& node = g.node(n);
    if (node.erased || (node.op != OpKind::kConv2d && node.op != OpKind::kLinear)) continue;
    const ValueId w = node.inputs[1];
    if (a.role[static_cast<size_t>(w)] != ValueRole::kWeight) continue;
    std::string name = projection_name(g.value(w).name);
    for (size_t r = 0; r < config.rules.size(); ++r) {
      rule_used[r] = rule_used[r] || config.rules[r].matches(name);
    }
    const Scheme& s = config.scheme_for(name);
    a.weight_scheme[static_cast<size_t>(w)] = s;
    a.projection[static_cast<size_t>(w)] = std::move(name);
    for (ValueId v : {node.inputs[0], node.outputs[0]}) {
      if (!is_act(v)) continue;
      ActivationGroup& group = a.groups[static_cast<size_t>(a.group[static_cast<size_t>(v)])];
      group.bits = std::max(group.bits, s.act_bits);
    }
  }
  for (size_t r = 0; r < config.rules.size(); ++r) {
    if (rule_used[r]) continue;
    return errorf(ErrorKind::kInvalidArgument,
                  "rule '{}' matches no projection of graph '{}' (projections are named like "
                  "layers.0.attn.q, layers.0.attn.o_proj, layers.0.ffn.w2, output)",
                  config.rules[r].text, g.name());
  }

  // Fixed encodings: caches, mask, logits.
  std::vector<ValueId> fixed_by(a.groups.size(), ir::kNoValue);
  for (ValueId id = 0; id < g.num_values(); ++id) {
    if (!is_act(id)) continue;
    const auto gi = static_cast<size_t>(a.group[static_cast<size_t>(id)]);
    const std::string& name = g.value(id).name;
    if (is_cache_input(g, id)) {
      HS_TRY(set_kind(g, a.groups[gi], GroupKind::kKvCache, id, fixed_by, gi));
    } else if ((name == "attention_mask" || name == "window_attention_mask") &&
               g.is_graph_input(id)) {  // both masks: the one fixed mask encoding
      HS_TRY(set_kind(g, a.groups[gi], GroupKind::kMask, id, fixed_by, gi));
    } else if (name == "logits" && g.is_graph_output(id)) {
      HS_TRY(set_kind(g, a.groups[gi], GroupKind::kLogits, id, fixed_by, gi));
    }
  }
  for (ActivationGroup& group : a.groups) {
    if (group.kind == GroupKind::kKvCache) group.bits = config.kv_bits;
    if (group.kind == GroupKind::kMask || group.kind == GroupKind::kLogits) group.bits = 16;
  }
  return a;
}

}  // namespace hs::quant
