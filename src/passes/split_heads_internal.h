// Internals of the split, in three phases:
//   match   match_attention(g, softmax) -> AttentionMatch   (kUnsupported: not an attention)
//   plan    plan_heads(g, match) -> HeadPlan                 (reads the graph only; kUnsupported:
//                                                            a structure it does not handle,
//                                                            left as MHA; kShape: fatal)
//   apply   apply_plan(g, plan)                              (appends per-head nodes and rewires
//                                                            the attention's ends; cannot fail
//                                                            for an unsupported structure: any
//                                                            error is a bug, kInternal)
// A plan is a list of families in dependency order. Family f describes the n per-head values of
// `original` restricted to the n equal chunks of `axis`; how head i is made is its HeadValue.
#pragma once

#include <cstddef>
#include <optional>
#include <variant>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/passes/split_heads.h"

namespace hs::passes::split {

using FamilyIndex = size_t;  // index into HeadPlan::families

// Every head uses the original (n == 1, or size 1 on the axis: it broadcasts).
struct Shared {};
// Head i = slice(original, axis, i*c, (i+1)*c): graph inputs (caches) and constants (weights).
struct Sliced {};
// Head i = the original's producer re-run on per-head operands.
struct Cloned {
  std::vector<std::optional<FamilyIndex>> operands;  // per operand; nullopt: the original
                                                     // operand, shared by all heads
  ir::Attrs attrs;                                   // of the per-head op
};
// Head i = head i / repeat of family `from` (the GQA repeat bypassed: query head h reads kv
// head h / G).
struct Selected {
  FamilyIndex from = 0;
  int64_t repeat = 1;
};
using HeadValue = std::variant<Shared, Sliced, Cloned, Selected>;

struct Family {
  ir::ValueId original = ir::kNoValue;
  int64_t axis = 0;
  int64_t n = 1;
  HeadValue how;
};

struct AttentionMatch {
  ir::NodeId softmax = ir::kNoNode;
  ir::NodeId av_matmul = ir::kNoNode;  // A = softmax(...) . V      [1,H,T,Dh]
  ir::NodeId transpose = ir::kNoNode;  // transpose(A, 0,2,1,3)     [1,T,H,Dh]
  int64_t heads = 0;                   // H
};

struct HeadPlan {
  AttentionMatch match;
  std::vector<Family> families;  // dependency order
  FamilyIndex top = 0;           // the family of A (split on axis 1 into H heads)
  int64_t kv_heads = 0;          // Hkv seen through the GQA repeat (H when there is none)
};

// Finds the attention around a softmax, or explains (kUnsupported) why it does not match.
Result<AttentionMatch> match_attention(const ir::Graph& g, ir::NodeId softmax);

// The per-head plan of a matched attention (the graph is not changed).
Result<HeadPlan> plan_heads(const ir::Graph& g, const AttentionMatch& match);

// Applies a plan made on `g` as it is now. Errors are kInternal (a plan that does not fit).
Status apply_plan(ir::Graph& g, const HeadPlan& plan);

}  // namespace hs::passes::split
