// Memory planning of backend preprocess: tensor lifetimes -> one arena per graph.
//
// Arena tensors are the intermediates: values produced by a node that are not graph outputs
// (graph I/O is bound by the runner, constants live in the weight data). Each takes
// kArenaElementBytes (4) bytes per element whatever its element type (float32 for real
// values, int32 for i32/bool; docs/artifact.md "Execution semantics") at a 64-byte aligned
// offset. A tensor lives from the node that produces it to the last node that reads it (node
// positions, inclusive); two tensors whose lifetimes intersect never share bytes.
//
// Aliases: the result of a layout op that only re-views its input's bytes (reshape, squeeze,
// unsqueeze; a transpose that keeps the order of the non-unit axes; a slice whose axes before
// the sliced one all have size 1, when the byte offset start * stride * 4 is a multiple of 64)
// with the same dtype and quant params takes its input's storage (plus the slice's byte
// offset) instead of its own, and the storage's lifetime is extended to cover every alias.
// Allocation: storages sorted by size (largest first, then by first use), each placed at the
// lowest-waste 64-byte aligned gap between the storages already placed whose lifetimes
// intersect its own (greedy best fit).
#pragma once

#include <cstdint>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/support/result.h"

namespace hs::backend {

struct MemoryPlanOptions {
  bool aliases = true;  // let re-viewing layout ops share their input's storage
};

// Node positions [first, last], inclusive; first = -1 when the value is not in the arena.
struct Lifetime {
  int32_t first = -1;
  int32_t last = -1;
};

struct MemoryPlan {
  // Per ValueId (size graph.num_values()):
  std::vector<int64_t> offsets;       // arena byte offset, -1 when not in the arena
  std::vector<ir::ValueId> alias_of;  // the value whose storage this one re-views, or kNoValue
  std::vector<Lifetime> lifetimes;    // the value's own lifetime (producer to last reader)
  int64_t arena_bytes = 0;            // the arena size (a multiple of 64)
  int64_t tensor_bytes = 0;           // sum of every arena tensor's bytes (no reuse at all)
  int64_t arena_tensors = 0;          // values in the arena, aliases included
  int64_t aliases = 0;                // of which re-view another value's storage
};

// Bytes an arena tensor of this type occupies: 4 * numel.
int64_t arena_storage_bytes(const ir::TensorType& type);

// Plans the arena of `graph` (which must verify; erased nodes are skipped).
Result<MemoryPlan> plan_memory(const ir::Graph& graph, const MemoryPlanOptions& options = {});

}  // namespace hs::backend
