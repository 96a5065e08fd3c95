// Internal to the interpreter: the KernelSet::kFast plan that runs the GQA repeat of a KV
// tensor (unsqueeze -> expand -> reshape, builder_attention.cpp repeat_kv) and the matmul
// reading it as one batched matmul over the unexpanded tensor, so the G-fold copy of each
// layer's cache is never made.
#pragma once

#include <vector>

#include "headsplit/ir/graph.h"

namespace hs::ir::detail {

// Per node of the graph (index = NodeId).
//   skip[n]:   the node is not run (its output is never materialised nor observed).
//   source[n]: for a fused matmul, the unexpanded KV value X its second operand repeats;
//              kNoValue otherwise.
//   group[n]:  for a fused matmul, G (query heads per KV head).
// A chain X[...,Hkv,a,b] -unsqueeze-> [...,Hkv,1,a,b] -expand-> [...,Hkv,G,a,b] -reshape->
// R[...,Hkv*G,a,b] -> matmul(A, R) is fused when U, E and R are real, not quantized (their
// fake quantization could change the values), not graph outputs, and each has exactly one
// use (the next op of the chain; R as the matmul's second operand only). Shapes alone fix
// what the three layout ops do, so R's matrix h of batch o is X's matrix h / G of batch o.
struct FusionPlan {
  std::vector<bool> skip;
  std::vector<ValueId> source;
  std::vector<int64_t> group;
  bool empty() const { return fused == 0; }
  int fused = 0;  // number of fused matmuls
};

inline constexpr ValueId kNoValue = -1;

FusionPlan plan_repeat_kv_matmuls(const Graph& g);

}  // namespace hs::ir::detail
