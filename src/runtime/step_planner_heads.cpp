// Batched per-head chains. The split-heads pass turns one attention into H single-head chains
// (q_h projection -> rope -> Q_h K_gᵀ -> mask -> softmax -> · V_g, and the Hkv k/v chains they
// read), each a few small ops, and joins them with concats (heads_out, k_new, v_new). Run one by
// one, a decode step pays a kernel call and, with a pool, a fork/join per small op. The artifact
// stays single-head; here the planner recognises the chains of each attention and runs them as
// one step: one parallel region over the chains, each chain's steps in order on one thread.
//
// Recognition (graph only, once per build):
//   head nodes   nodes whose output is named "<original>.h<i>" (the pass's naming), not graph
//                outputs
//   chains       connected components of the head nodes (edges: a head node reads another's
//                output); a query head and the kv head it reads are one chain (GQA: Hkv chains
//                of 1 + G heads)
//   groups       chains that feed a common non-head node (the concats): one attention
//   identical    every chain of a group has, node by node in graph order, the same op, the same
//                attributes (slices may differ in start/end: which cache slice or column range
//                they read), the same output shape, dtype and quantization kind, and inputs of
//                the same kind: the same position in its own chain, or an outside tensor of the
//                same shape, dtype and role. Weights and quantization params may differ.
//   placeable    every outside producer a group reads comes before the group's first node, so
//                the group can run at that node's place
// A group that is not identical or not placeable keeps per-node execution. The step runs in
// two phases (see "Phases" below): the nodes several query heads share, then one task per head.
// Within a phase the tasks are alike step for step, so each position's steps stack into one
// call over the heads' tensors side by side (stack_tasks; steps.h: StackState): a decode layer
// runs its attention in about as many calls as the unsplit graph (SmolLM2-135M: 758 steps per
// token against the unsplit 728; 2,258 before stacking).
//
// Memory: the backend's arena plan assumed the nodes run one at a time in graph order, so a
// chain's intermediates may share arena bytes with another chain's. Every output of a group node
// therefore moves to runtime staging: outputs read only inside the group to a scratch region all
// groups share (each tensor its own bytes within the group), outputs read after the group
// (through layout views too) to staging of their own. The j-th outputs of a phase's tasks are
// placed one after another with no padding (a block), so that their steps can stack. A group then
// writes nothing in the arena, its chains write disjoint bytes, and each chain reads only outside
// tensors (ready before the group, and live until their last reader in the group) and its own
// outputs. So each step computes what it computed unbatched: the results are bit-identical (the
// kernels' results do not depend on the thread count; see kernels/thread_pool.h).
#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "step_planner.h"

namespace hs::runtime::detail {

using artifact::OpCode;

namespace {

// "<name>.h<digits>"
bool head_name(const std::string& name) {
  const size_t p = name.rfind(".h");
  if (p == std::string::npos || p + 2 == name.size()) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(p + 2), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// Ops whose output may be a view of (share memory with) their first input.
bool may_view(OpCode op) {
  switch (op) {
    case OpCode::kReshape:
    case OpCode::kTranspose:
    case OpCode::kSlice:
    case OpCode::kConcat:
    case OpCode::kUnsqueeze:
    case OpCode::kSqueeze:
    case OpCode::kExpand:
    case OpCode::kDequantize: return true;
    default: return false;
  }
}

struct UnionFind {
  std::vector<int32_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int32_t find(int32_t x) {
    while (parent[static_cast<size_t>(x)] != x) {
      parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
      x = parent[static_cast<size_t>(x)];
    }
    return x;
  }
  void unite(int32_t a, int32_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[static_cast<size_t>(std::max(a, b))] = std::min(a, b);
  }
};

// A tensor's compute bytes (f32 / i32 elements), exactly and rounded up to whole 64-byte units.
int64_t exact_bytes_of(const artifact::TensorDesc& t) { return kernels::ref::count(t.shape) * 4; }
int64_t bytes_of(const artifact::TensorDesc& t) { return (exact_bytes_of(t) + 63) / 64 * 64; }

}  // namespace

void StepPlanner::find_head_groups() {
  const size_t n_nodes = graph_.nodes.size();
  node_group_.assign(n_nodes, -1);
  escaping_.assign(graph_.tensors.size(), false);
  head_groups_.clear();
  head_scratch_bytes_ = 0;
  if (!options_.batch_heads || options_.reference_kernels) return;

  std::vector<bool> head(n_nodes, false);
  for (size_t i = 0; i < n_nodes; ++i) {
    const int32_t out = graph_.nodes[i].outputs[0];
    head[i] = head_name(tensor(out).name) && !is_output_[static_cast<size_t>(out)];
  }
  auto head_producer = [&](int32_t t) {
    const int32_t p = producer_[static_cast<size_t>(t)];
    return p >= 0 && head[static_cast<size_t>(p)] ? p : -1;
  };
  UnionFind chains(n_nodes), groups(n_nodes);
  for (size_t i = 0; i < n_nodes; ++i) {
    const auto ii = static_cast<int32_t>(i);
    int32_t joined = -1;  // a non-head node joins the chains it reads into one group
    for (int32_t in : graph_.nodes[i].inputs) {
      const int32_t p = head_producer(in);
      if (p < 0) continue;
      if (head[i]) {
        chains.unite(ii, p);
        groups.unite(ii, p);
      } else if (joined < 0) {
        joined = p;
      } else {
        groups.unite(joined, p);
      }
    }
  }
  // Group root -> chain root -> nodes, in graph order.
  std::vector<int32_t> group_index(n_nodes, -1);
  std::vector<std::vector<std::vector<int32_t>>> members;
  std::vector<std::vector<int32_t>> chain_roots;
  for (size_t i = 0; i < n_nodes; ++i) {
    if (!head[i]) continue;
    const int32_t g = groups.find(static_cast<int32_t>(i));
    int32_t& gi = group_index[static_cast<size_t>(g)];
    if (gi < 0) {
      gi = static_cast<int32_t>(members.size());
      members.emplace_back();
      chain_roots.emplace_back();
    }
    const int32_t c = chains.find(static_cast<int32_t>(i));
    auto& roots = chain_roots[static_cast<size_t>(gi)];
    const auto it = std::find(roots.begin(), roots.end(), c);
    const size_t ci = static_cast<size_t>(it - roots.begin());
    if (it == roots.end()) {
      roots.push_back(c);
      members[static_cast<size_t>(gi)].emplace_back();
    }
    members[static_cast<size_t>(gi)][ci].push_back(static_cast<int32_t>(i));
  }

  std::vector<int32_t> chain_pos(n_nodes, -1);  // a head node's position in its chain
  std::vector<int32_t> chain_of(n_nodes, -1);   // its chain within the group
  for (auto& group : members) {
    if (group.size() < 2) continue;
    for (size_t c = 0; c < group.size(); ++c) {
      for (size_t k = 0; k < group[c].size(); ++k) {
        chain_pos[static_cast<size_t>(group[c][k])] = static_cast<int32_t>(k);
        chain_of[static_cast<size_t>(group[c][k])] = static_cast<int32_t>(c);
      }
    }
    // Identical chains.
    const std::vector<int32_t>& ref_chain = group[0];
    bool same = true;
    for (size_t c = 1; c < group.size() && same; ++c) {
      const std::vector<int32_t>& chain = group[c];
      if (chain.size() != ref_chain.size()) {
        same = false;
        break;
      }
      for (size_t k = 0; k < chain.size() && same; ++k) {
        const artifact::NodeDesc& a = graph_.nodes[static_cast<size_t>(ref_chain[k])];
        const artifact::NodeDesc& b = graph_.nodes[static_cast<size_t>(chain[k])];
        const artifact::TensorDesc& ya = tensor(a.outputs[0]);
        const artifact::TensorDesc& yb = tensor(b.outputs[0]);
        same = a.op == b.op && (a.op == OpCode::kSlice || a.attrs == b.attrs) &&
               ya.shape == yb.shape && ya.dtype == yb.dtype && ya.quant.kind == yb.quant.kind &&
               a.inputs.size() == b.inputs.size();
        for (size_t j = 0; j < a.inputs.size() && same; ++j) {
          const int32_t pa = head_producer(a.inputs[j]), pb = head_producer(b.inputs[j]);
          if (pa >= 0 || pb >= 0) {  // from its own chain, at the same position
            same = pa >= 0 && pb >= 0 && chain_pos[static_cast<size_t>(pa)] ==
                                             chain_pos[static_cast<size_t>(pb)];
            continue;
          }
          const artifact::TensorDesc& ta = tensor(a.inputs[j]);
          const artifact::TensorDesc& tb = tensor(b.inputs[j]);
          same = ta.shape == tb.shape && ta.dtype == tb.dtype && ta.role == tb.role &&
                 ta.quant.kind == tb.quant.kind;
        }
      }
    }
    if (!same) continue;
    // Placeable at the first node.
    int32_t first = static_cast<int32_t>(n_nodes);
    for (const auto& chain : group) first = std::min(first, chain.front());
    bool placeable = true;
    for (const auto& chain : group) {
      for (int32_t i : chain) {
        for (int32_t in : graph_.nodes[static_cast<size_t>(i)].inputs) {
          const int32_t p = producer_[static_cast<size_t>(in)];
          if (p >= 0 && !head[static_cast<size_t>(p)] && p > first) placeable = false;
        }
      }
    }
    if (!placeable) continue;
    const auto gi = static_cast<int32_t>(head_groups_.size());
    // Escaping outputs: read by a node outside the group, or viewed by a group node whose
    // output escapes (reverse graph order reaches every view before what it views).
    std::vector<int32_t> nodes;
    for (const auto& chain : group) nodes.insert(nodes.end(), chain.begin(), chain.end());
    std::sort(nodes.begin(), nodes.end());
    for (int32_t i : nodes) node_group_[static_cast<size_t>(i)] = gi;
    for (int32_t i : nodes) {
      const int32_t out = graph_.nodes[static_cast<size_t>(i)].outputs[0];
      for (const auto& [user, operand] : uses_[static_cast<size_t>(out)]) {
        (void)operand;
        if (node_group_[static_cast<size_t>(user)] != gi) escaping_[static_cast<size_t>(out)] = true;
      }
    }
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(*it)];
      if (!escaping_[static_cast<size_t>(node.outputs[0])] || !may_view(node.op)) continue;
      for (int32_t in : node.inputs) {
        const int32_t p = producer_[static_cast<size_t>(in)];
        if (p >= 0 && node_group_[static_cast<size_t>(p)] == gi) {
          escaping_[static_cast<size_t>(in)] = true;
        }
      }
    }
    // Scratch: the non-escaping outputs, except a merge's (they get a block of their own).
    std::vector<std::vector<int32_t>> merges = projection_merges(gi, nodes);
    std::vector<bool> in_merge(n_nodes, false);
    for (const auto& merge : merges) {
      for (int32_t i : merge) in_merge[static_cast<size_t>(i)] = true;
    }
    int64_t scratch = 0;
    for (int32_t i : nodes) {
      const int32_t out = graph_.nodes[static_cast<size_t>(i)].outputs[0];
      if (!escaping_[static_cast<size_t>(out)] && !in_merge[static_cast<size_t>(i)]) {
        scratch += bytes_of(tensor(out));
      }
    }
    head_scratch_bytes_ = std::max(head_scratch_bytes_, scratch);
    // Phases. A node whose value reaches two sinks of its chain (nodes read by no group node:
    // the per-query-head ·V results, ...) is shared by them: with GQA the kv head's projections,
    // RoPE and cache reads serve G query heads. Phase 0 runs the shared nodes of every chain,
    // phase 1 the rest, one task per sink: H tasks instead of Hkv chains. A shared node's
    // producers are shared too, and a node of sink s reads only shared nodes and nodes of s, so
    // tasks of one phase are independent.
    HeadGroup hg{.chains = group, .first_node = first};
    std::vector<int32_t> sink(n_nodes, -1);  // the one sink a node reaches, or -2 (several)
    hg.phases.resize(2);
    for (const auto& chain : group) {
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        const int32_t out = graph_.nodes[static_cast<size_t>(*it)].outputs[0];
        int32_t reached = -1;
        for (const auto& [user, operand] : uses_[static_cast<size_t>(out)]) {
          (void)operand;
          if (node_group_[static_cast<size_t>(user)] != gi) continue;
          const int32_t s = sink[static_cast<size_t>(user)];
          reached = reached == -1 || reached == s ? s : -2;
        }
        sink[static_cast<size_t>(*it)] = reached == -1 ? *it : reached;
      }
      std::vector<int32_t> shared;
      std::vector<std::vector<int32_t>> tasks;
      std::vector<int32_t> task_sink;
      for (int32_t i : chain) {
        const int32_t s = sink[static_cast<size_t>(i)];
        if (s == -2) {
          shared.push_back(i);
          continue;
        }
        const auto t = std::find(task_sink.begin(), task_sink.end(), s);
        if (t == task_sink.end()) {
          task_sink.push_back(s);
          tasks.push_back({i});
        } else {
          tasks[static_cast<size_t>(t - task_sink.begin())].push_back(i);
        }
      }
      if (!shared.empty()) hg.phases[0].push_back(std::move(shared));
      for (auto& t : tasks) hg.phases[1].push_back(std::move(t));
    }
    hg.merges = std::move(merges);
    head_groups_.push_back(std::move(hg));
  }
}

// Candidates: conv2d / linear nodes of group `group` whose x is an outside tensor and whose
// weight is a constant, bucketed by x, weight type and granularity and output type (quant
// params included): the per-head slices of one q, k or v projection. A bucket of two or more
// is a merge, in graph order (head order). Its outputs are placed side by side with no padding,
// so the merged y is their concatenation when it is channel-major (conv2d: y [n, M], one image)
// or a single token (linear with M = 1). The step
// level (merge_projections) checks the rest and may still refuse; the parts then run alone.
std::vector<std::vector<int32_t>> StepPlanner::projection_merges(
    int32_t group, const std::vector<int32_t>& nodes) const {
  std::vector<std::vector<int32_t>> buckets;
  auto same_bucket = [&](const artifact::NodeDesc& a, const artifact::NodeDesc& b) {
    const artifact::TensorDesc& wa = tensor(a.inputs[1]);
    const artifact::TensorDesc& wb = tensor(b.inputs[1]);
    return a.op == b.op && a.inputs[0] == b.inputs[0] && a.inputs.size() == b.inputs.size() &&
           wa.dtype == wb.dtype && wa.quant.kind == wb.quant.kind &&
           wa.quant.block == wb.quant.block && tensor(a.outputs[0]).dtype == tensor(b.outputs[0]).dtype &&
           tensor(a.outputs[0]).quant == tensor(b.outputs[0]).quant;
  };
  for (int32_t i : nodes) {
    const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
    if (node.op != OpCode::kConv2d && node.op != OpCode::kLinear) continue;
    if (node.inputs.size() < 2) continue;
    const artifact::TensorDesc& x = tensor(node.inputs[0]);
    const artifact::TensorDesc& w = tensor(node.inputs[1]);
    const int32_t xp = producer_[static_cast<size_t>(node.inputs[0])];
    if (xp >= 0 && node_group_[static_cast<size_t>(xp)] == group) continue;
    if (w.role != artifact::TensorRole::kConstant || w.weight < 0) continue;
    const bool one_image = node.op == OpCode::kConv2d
                               ? x.shape[0] == 1
                               : x.shape.back() == kernels::ref::count(x.shape);
    if (!one_image) continue;
    auto it = std::find_if(buckets.begin(), buckets.end(), [&](const std::vector<int32_t>& b) {
      return same_bucket(graph_.nodes[static_cast<size_t>(b[0])], node);
    });
    if (it == buckets.end()) it = buckets.insert(buckets.end(), std::vector<int32_t>{});
    it->push_back(i);
  }
  std::erase_if(buckets, [](const std::vector<int32_t>& b) { return b.size() < 2; });
  return buckets;
}

void StepPlanner::place_head_group_tensors() {
  relocated_.assign(graph_.tensors.size(), -1);
  if (head_groups_.empty()) return;
  const int64_t scratch = alloc_staging(head_scratch_bytes_);
  for (const HeadGroup& group : head_groups_) {
    // A merge's outputs one after another, with no padding between them (the merged y).
    for (const auto& merge : group.merges) {
      auto exact = [&](int32_t i) {
        return exact_bytes_of(tensor(graph_.nodes[static_cast<size_t>(i)].outputs[0]));
      };
      int64_t bytes = 0;
      for (int32_t i : merge) bytes += exact(i);
      int64_t at = alloc_staging(bytes);
      for (int32_t i : merge) {
        relocated_[static_cast<size_t>(graph_.nodes[static_cast<size_t>(i)].outputs[0])] = at;
        at += exact(i);
      }
    }
    // The j-th nodes of a phase's tasks one after another, in task order, so that their steps
    // may stack (steps.h: StackState): with equal sizes and the same escaping, one block with
    // no padding between them (a head's decode output may be 8 floats); else each on its own.
    int64_t at = scratch;
    auto place = [&](size_t out, int64_t bytes) {
      if (escaping_[out]) {
        relocated_[out] = alloc_staging(bytes);
      } else {
        relocated_[out] = at;
        at += (bytes + 63) / 64 * 64;  // the next tensor on a whole 64-byte unit
      }
    };
    for (const auto& phase : group.phases) {
      size_t longest = 0;
      for (const auto& task : phase) longest = std::max(longest, task.size());
      for (size_t j = 0; j < longest; ++j) {
        std::vector<size_t> outs;
        for (const auto& task : phase) {
          if (j >= task.size()) continue;
          const auto out =
              static_cast<size_t>(graph_.nodes[static_cast<size_t>(task[j])].outputs[0]);
          if (relocated_[out] < 0) outs.push_back(out);  // else a merge's
        }
        if (outs.empty()) continue;
        const int64_t exact = exact_bytes_of(graph_.tensors[outs[0]]);
        const bool block =
            outs.size() == phase.size() && std::all_of(outs.begin(), outs.end(), [&](size_t o) {
              return exact_bytes_of(graph_.tensors[o]) == exact &&
                     escaping_[o] == escaping_[outs[0]];
            });
        if (!block) {
          for (size_t out : outs) place(out, bytes_of(graph_.tensors[out]));
          continue;
        }
        place(outs[0], exact * static_cast<int64_t>(outs.size()));
        for (size_t i = 1; i < outs.size(); ++i) {
          relocated_[outs[i]] = relocated_[outs[0]] + exact * static_cast<int64_t>(i);
        }
      }
    }
  }
}

// One phase's tasks as phases of the chains step: where every task has the same number of
// steps, the steps at each position stack into one where they can (Step::stack; the placement
// put their outputs side by side). A run of stacked positions becomes a phase of one task (its
// steps in order, each with the pool), a run of the others a phase of the tasks' steps at those
// positions. Each stacked step reads what earlier positions of every task wrote and writes what
// later positions read, so this order computes what the tasks did.
std::vector<StepPlanner::Tasks> StepPlanner::stack_tasks(Tasks tasks, StackState& state) {
  std::vector<Tasks> out;
  if (tasks.empty()) return out;
  const size_t len = tasks[0].size();
  const bool same =
      tasks.size() >= 2 &&
      std::all_of(tasks.begin(), tasks.end(), [&](const auto& t) { return t.size() == len; });
  if (!same) {
    out.push_back(std::move(tasks));
    return out;
  }
  bool last_stacked = false;
  for (size_t j = 0; j < len; ++j) {
    std::vector<const Step*> others;
    for (size_t t = 1; t < tasks.size(); ++t) others.push_back(tasks[t][j].get());
    std::unique_ptr<Step> one = tasks[0][j]->stack(others, state);
    const bool stacked = one != nullptr;
    if (stacked) {
      if (out.empty() || !last_stacked) out.emplace_back(1);
      out.back()[0].push_back(std::move(one));
      ++plan_.stacked_calls;
      plan_.stacked_parts += static_cast<int64_t>(tasks.size());
    } else {
      if (out.empty() || last_stacked) out.emplace_back(tasks.size());
      for (size_t t = 0; t < tasks.size(); ++t) out.back()[t].push_back(std::move(tasks[t][j]));
    }
    last_stacked = stacked;
  }
  return out;
}

void StepPlanner::batch_head_groups(const std::vector<std::pair<size_t, size_t>>& node_steps) {
  if (head_groups_.empty()) return;
  std::vector<std::unique_ptr<Step>> steps;
  steps.reserve(plan_.steps.size());
  const size_t prefix = node_steps.empty() ? plan_.steps.size() : node_steps[0].first;
  for (size_t s = 0; s < prefix; ++s) steps.push_back(std::move(plan_.steps[s]));
  std::vector<bool> merged(node_steps.size(), false);  // a merged projection's part
  auto move_node = [&](int32_t i, std::vector<std::unique_ptr<Step>>& to) {
    const auto [begin, end] = node_steps[static_cast<size_t>(i)];
    for (size_t s = begin; s < end; ++s) to.push_back(std::move(plan_.steps[s]));
  };
  for (size_t i = 0; i < node_steps.size(); ++i) {
    const int32_t g = node_group_[i];
    if (g < 0) {
      move_node(static_cast<int32_t>(i), steps);
      continue;
    }
    const HeadGroup& group = head_groups_[static_cast<size_t>(g)];
    if (group.first_node != static_cast<int32_t>(i)) continue;  // moved with its group
    ChainsSpec spec{.label = fmt::format("{} and the {} per-head chains it starts",
                                         node_label(group.first_node), group.chains.size())};
    StackState stack{.refs = &plan_.refs};
    for (const auto& merge : group.merges) {
      std::vector<const Step*> parts;
      for (int32_t n : merge) {
        const auto [begin, end] = node_steps[static_cast<size_t>(n)];
        if (end == begin + 1) parts.push_back(plan_.steps[begin].get());
      }
      int64_t copied = 0;
      std::unique_ptr<Step> one =
          parts.size() == merge.size() ? merge_projections(parts, plan_.refs, &copied) : nullptr;
      if (one == nullptr) continue;  // the parts stay in their tasks
      plan_.prepared_bytes += copied;
      for (int32_t n : merge) merged[static_cast<size_t>(n)] = true;
      spec.prologue.push_back(std::move(one));
      ++plan_.chain_steps;
      ++plan_.merged_calls;
      plan_.merged_parts += static_cast<int64_t>(merge.size());
    }
    for (const auto& phase : group.phases) {
      std::vector<std::vector<std::unique_ptr<Step>>> tasks;
      for (const auto& task : phase) {
        tasks.emplace_back();
        for (int32_t n : task) {
          if (!merged[static_cast<size_t>(n)]) move_node(n, tasks.back());
        }
        if (tasks.back().empty()) tasks.pop_back();
      }
      for (auto& part : stack_tasks(std::move(tasks), stack)) {
        plan_.head_tasks += static_cast<int64_t>(part.size());
        for (const auto& task : part) plan_.chain_steps += static_cast<int64_t>(task.size());
        spec.phases.push_back(std::move(part));
      }
    }
    steps.push_back(make_chains_step(std::move(spec)));
    ++plan_.head_groups;
    plan_.head_chains += static_cast<int64_t>(group.chains.size());
  }
  for (size_t s = node_steps.empty() ? prefix : node_steps.back().second; s < plan_.steps.size();
       ++s) {
    steps.push_back(std::move(plan_.steps[s]));
  }
  plan_.steps = std::move(steps);
}

}  // namespace hs::runtime::detail
