// Memory planning (backend/memory_plan.h): lifetimes, aliases of re-viewing layout ops, and a
// greedy best-fit placement of the storages, largest first.
#include "headsplit/backend/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "headsplit/artifact/program.h"

namespace hs::backend {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;
using ir::TensorType;
using ir::ValueId;

constexpr int64_t kAlign = artifact::kArenaAlignment;

int64_t align_up(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// When `node` only re-views the bytes of its input, the result's byte offset within the
// input's storage; otherwise -1.
int64_t alias_offset(const Graph& g, const Node& node) {
  const TensorType& in = g.type(node.inputs[0]);
  const TensorType& out = g.type(node.outputs[0]);
  if (in.dtype != out.dtype || in.quant != out.quant) return -1;
  switch (node.op) {
    case OpKind::kReshape:
    case OpKind::kSqueeze:
    case OpKind::kUnsqueeze: return 0;
    case OpKind::kTranspose: {
      // Row-major bytes are unchanged when the non-unit axes keep their order.
      int64_t previous = -1;
      for (int64_t axis : node.attrs.get_ints("perm")) {
        if (in.shape[static_cast<size_t>(axis)] == 1) continue;
        if (axis < previous) return -1;
        previous = axis;
      }
      return 0;
    }
    case OpKind::kSlice: {
      auto axis = ir::normalize_axis(node.attrs.get_int("axis"), in.rank(), "slice");
      if (!axis.ok()) return -1;
      int64_t stride = 1;
      for (int64_t a = 0; a < in.rank(); ++a) {
        if (a < *axis && in.shape[static_cast<size_t>(a)] != 1) return -1;  // not contiguous
        if (a > *axis) stride *= in.shape[static_cast<size_t>(a)];
      }
      int64_t offset = node.attrs.get_int("start") * stride * artifact::kArenaElementBytes;
      return offset % kAlign == 0 ? offset : -1;
    }
    default: return -1;
  }
}

struct Storage {
  ValueId root = ir::kNoValue;
  int64_t bytes = 0;
  Lifetime life;  // extended over every alias
  int64_t offset = -1;
};

bool intersect(const Lifetime& a, const Lifetime& b) {
  return a.first <= b.last && b.first <= a.last;
}

// Best fit among the gaps left by `placed` storages whose lifetimes intersect `s`.
int64_t place(const Storage& s, const std::vector<const Storage*>& placed) {
  std::vector<const Storage*> live;
  for (const Storage* p : placed) {
    if (intersect(p->life, s.life)) live.push_back(p);
  }
  std::sort(live.begin(), live.end(),
            [](const Storage* a, const Storage* b) { return a->offset < b->offset; });
  int64_t best = -1, best_gap = 0, end = 0;
  for (const Storage* p : live) {
    int64_t gap = p->offset - end;
    if (gap >= s.bytes && (best < 0 || gap < best_gap)) {
      best = end;
      best_gap = gap;
    }
    end = std::max(end, align_up(p->offset + p->bytes));
  }
  return best >= 0 ? best : end;
}

}  // namespace

int64_t arena_storage_bytes(const ir::TensorType& type) {
  return type.numel() * artifact::kArenaElementBytes;
}

Result<MemoryPlan> plan_memory(const ir::Graph& g, const MemoryPlanOptions& options) {
  const auto n_values = static_cast<size_t>(g.num_values());
  MemoryPlan plan;
  plan.offsets.assign(n_values, -1);
  plan.alias_of.assign(n_values, ir::kNoValue);
  plan.lifetimes.assign(n_values, Lifetime{});

  // Lifetimes of arena values, over live nodes in order.
  std::vector<bool> in_arena(n_values, false);
  std::vector<int64_t> alias_bytes(n_values, 0);  // offset within the root's storage
  std::vector<ValueId> root(n_values, ir::kNoValue);
  int32_t position = 0;
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const Node& node = g.node(n);
    if (node.erased) continue;
    for (ValueId in : node.inputs) {
      if (in_arena[static_cast<size_t>(in)])
        plan.lifetimes[static_cast<size_t>(in)].last = position;
    }
    for (ValueId out : node.outputs) {
      if (g.is_graph_output(out)) continue;
      const auto o = static_cast<size_t>(out);
      in_arena[o] = true;
      plan.lifetimes[o] = {position, position};
      root[o] = out;
      ValueId in = node.inputs.empty() ? ir::kNoValue : node.inputs[0];
      if (options.aliases && in != ir::kNoValue && in_arena[static_cast<size_t>(in)]) {
        int64_t offset = alias_offset(g, node);
        if (offset >= 0) {
          plan.alias_of[o] = in;
          root[o] = root[static_cast<size_t>(in)];
          alias_bytes[o] = alias_bytes[static_cast<size_t>(in)] + offset;
        }
      }
    }
    ++position;
  }

  // One storage per root, living as long as its longest alias.
  std::vector<Storage> storages;
  std::vector<int32_t> storage_of(n_values, -1);
  for (size_t v = 0; v < n_values; ++v) {
    if (!in_arena[v]) continue;
    ++plan.arena_tensors;
    plan.tensor_bytes += arena_storage_bytes(g.type(static_cast<ValueId>(v)));
    if (root[v] != static_cast<ValueId>(v)) {
      ++plan.aliases;
      continue;
    }
    storage_of[v] = static_cast<int32_t>(storages.size());
    storages.push_back({static_cast<ValueId>(v),
                        arena_storage_bytes(g.type(static_cast<ValueId>(v))), plan.lifetimes[v],
                        -1});
  }
  for (size_t v = 0; v < n_values; ++v) {
    if (!in_arena[v] || root[v] == static_cast<ValueId>(v)) continue;
    Lifetime& life = storages[static_cast<size_t>(storage_of[static_cast<size_t>(root[v])])].life;
    life.last = std::max(life.last, plan.lifetimes[v].last);
  }

  std::vector<size_t> order(storages.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (storages[a].bytes != storages[b].bytes) return storages[a].bytes > storages[b].bytes;
    return storages[a].life.first < storages[b].life.first;
  });
  std::vector<const Storage*> placed;
  for (size_t i : order) {
    Storage& s = storages[i];
    s.offset = place(s, placed);
    placed.push_back(&s);
    plan.arena_bytes = std::max(plan.arena_bytes, align_up(s.offset + s.bytes));
  }
  for (size_t v = 0; v < n_values; ++v) {
    if (!in_arena[v]) continue;
    const Storage& s = storages[static_cast<size_t>(storage_of[static_cast<size_t>(root[v])])];
    plan.offsets[v] = s.offset + alias_bytes[v];
  }
  return plan;
}

}  // namespace hs::backend
