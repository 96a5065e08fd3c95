// Internals of the split: the attention match and the per-head plan.
//
// A plan is a list of families in dependency order. Family f describes the n per-head values
// of `original` restricted to the n equal chunks of `axis`:
//   kShare  every head uses `original` (n == 1, or size 1 on the axis: it broadcasts)
//   kSlice  head i = slice(original, axis, i*c, (i+1)*c)    graph inputs and constants
//   kClone  head i = producer op re-run on per-head operands (operands[k] = family or -1:
//           the original operand, shared by all heads)
//   kSelect head i = head (i / repeat) of family `select_from`   (GQA repeat bypassed)
// Planning reads the graph only; applying it appends nodes.
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/passes/split_heads.h"

namespace hs::passes::split {

struct Family {
  enum class How { kShare, kSlice, kClone, kSelect };
  ir::ValueId original = ir::kNoValue;
  int64_t axis = 0;
  int64_t n = 1;
  How how = How::kShare;
  std::vector<int> operands;  // kClone
  ir::Attrs attrs;            // kClone: attributes of the per-head op
  int select_from = -1;       // kSelect
  int64_t repeat = 1;         // kSelect
  std::vector<ir::ValueId> heads;  // filled when the plan is applied
};

struct AttentionMatch {
  ir::NodeId softmax = ir::kNoNode;
  ir::NodeId av_matmul = ir::kNoNode;  // A = softmax(...) . V      [1,H,T,Dh]
  ir::NodeId transpose = ir::kNoNode;  // transpose(A, 0,2,1,3)     [1,T,H,Dh]
  int64_t heads = 0;                   // H
};

// Finds the attention around a softmax, or explains (kUnsupported) why it does not match.
Result<AttentionMatch> match_attention(const ir::Graph& g, ir::NodeId softmax);

class Planner {
 public:
  explicit Planner(const ir::Graph& g) : g_(g), uses_(g.compute_uses()) {}

  // Family of `value` split into `n` chunks along `axis`. kShape errors: a dimension that does
  // not divide (fatal); kUnsupported: a structure the split does not handle (leave as MHA).
  Result<int> visit(ir::ValueId value, int64_t axis, int64_t n);

  const std::vector<Family>& families() const { return families_; }
  std::vector<Family>& families() { return families_; }
  // Kv heads seen through a GQA repeat (0 if none was crossed).
  int64_t kv_heads() const { return kv_heads_; }

 private:
  int add(Family f);
  Result<int> visit_producer(ir::ValueId value, int64_t axis, int64_t n);
  Result<int> projection(ir::ValueId value, int64_t n, bool conv);
  Result<int> reshape(ir::ValueId value, int64_t axis, int64_t n);
  // Family of operand `operand` of an elementwise/matmul-batch op broadcast to rank `rank`.
  Result<int> broadcast_operand(ir::ValueId operand, int64_t out_axis, int64_t rank,
                                int64_t out_dim, int64_t n);
  Error unsupported(ir::ValueId value, std::string_view why) const;

  const ir::Graph& g_;
  std::vector<std::vector<ir::Use>> uses_;
  std::vector<Family> families_;
  std::map<std::tuple<ir::ValueId, int64_t, int64_t>, int> memo_;
  int64_t kv_heads_ = 0;
};

// Appends the planned per-head nodes to the graph (fills Family::heads).
Status apply_plan(ir::Graph& g, std::vector<Family>& families);

}  // namespace hs::passes::split
