// Matching an attention and planning its per-head form: the first two phases of the split
// (split_heads_internal.h). Both read the graph and never mutate it.
//
// Head-ness is decided from the tracked axis only: a tensor carries heads when the axis the
// walk arrived on has the full size; a size-1 axis broadcasts (shared by all heads). A
// dimension that merely equals the head count is never taken as a head axis.
#include <map>
#include <optional>
#include <tuple>

#include "split_heads_internal.h"

namespace hs::passes::split {

using ir::Graph;
using ir::Node;
using ir::NodeId;
using ir::OpKind;
using ir::ValueId;

namespace {

Error no_match(std::string_view what) {
  return Error(ErrorKind::kUnsupported, std::string(what));
}

int64_t product(const ir::Shape& s, int64_t begin, int64_t end) {
  int64_t p = 1;
  for (int64_t i = begin; i < end; ++i) p *= s[static_cast<size_t>(i)];
  return p;
}

// The QK matmul must sit within 3 producers of the softmax (through mask/scale ops).
bool has_qk_matmul(const Graph& g, ValueId v, int depth) {
  const Node* p = g.producer(v);
  if (p == nullptr || depth > 3) return false;
  if (p->op == OpKind::kMatMul && !g.value(p->inputs[0]).is_constant() &&
      !g.value(p->inputs[1]).is_constant()) {
    return true;
  }
  for (ValueId in : p->inputs) {
    if (has_qk_matmul(g, in, depth + 1)) return true;
  }
  return false;
}

}  // namespace

Result<AttentionMatch> match_attention(const Graph& g, NodeId softmax) {
  const Node& s = g.node(softmax);
  const ir::TensorType& probs = g.type(s.outputs[0]);
  if (probs.rank() != 4) return no_match("softmax output is not rank 4 [1,H,T,C]");
  if (!has_qk_matmul(g, s.inputs[0], 1)) {
    return no_match("no q.k matmul within 3 ops upstream of the softmax");
  }
  auto uses = g.compute_uses();
  const auto& su = uses[static_cast<size_t>(s.outputs[0])];
  if (su.size() != 1 || g.node(su[0].node).op != OpKind::kMatMul || su[0].operand != 0) {
    return no_match("softmax output does not feed exactly one attention.V matmul");
  }
  AttentionMatch m;
  m.softmax = softmax;
  m.av_matmul = su[0].node;
  m.heads = probs.shape[1];
  ValueId a = g.node(m.av_matmul).outputs[0];
  const auto& au = uses[static_cast<size_t>(a)];
  if (g.is_graph_output(a) || au.size() != 1 || g.node(au[0].node).op != OpKind::kTranspose) {
    return no_match("attention.V result does not feed exactly one transpose");
  }
  const auto& perm = g.node(au[0].node).attrs.get_ints("perm");
  if (perm != std::vector<int64_t>{0, 2, 1, 3}) {
    return no_match(fmt::format("post-attention transpose has perm [{}], expected [0,2,1,3]",
                                fmt::join(perm, ",")));
  }
  if (g.type(a).rank() != 4) return no_match("attention.V result is not rank 4 [1,H,T,Dh]");
  m.transpose = au[0].node;
  if (g.is_graph_output(g.node(m.transpose).outputs[0])) {
    return no_match("the post-attention transpose is a graph output");
  }
  return m;
}

namespace {

// Walks upstream from A = softmax(...) . V carrying (head axis, head count) and records one
// family per (value, axis, count), memoized, in dependency order.
class HeadPlanner {
 public:
  explicit HeadPlanner(const Graph& g) : g_(g) {}

  // Family of `value` split into `n` chunks along `axis`. kShape errors: a dimension that does
  // not divide (fatal); kUnsupported: a structure the split does not handle (leave as MHA).
  Result<FamilyIndex> visit(ValueId value, int64_t axis, int64_t n);

  std::vector<Family> take_families() { return std::move(families_); }
  // Kv heads seen through a GQA repeat (0 if none was crossed).
  int64_t kv_heads() const { return kv_heads_; }

 private:
  FamilyIndex add(Family f);
  Result<FamilyIndex> visit_producer(ValueId value, int64_t axis, int64_t n);
  Result<FamilyIndex> projection(ValueId value, int64_t n, bool conv);
  Result<FamilyIndex> reshape(ValueId value, int64_t axis, int64_t n);
  // Family of operand `operand` of an elementwise/matmul-batch op broadcast to rank `rank`;
  // nullopt when it broadcasts over the head axis (shared by all heads).
  Result<std::optional<FamilyIndex>> broadcast_operand(ValueId operand, int64_t out_axis,
                                                       int64_t rank, int64_t out_dim, int64_t n);
  Error unsupported(ValueId value, std::string_view why) const;

  const Graph& g_;
  std::vector<Family> families_;
  std::map<std::tuple<ValueId, int64_t, int64_t>, FamilyIndex> memo_;
  int64_t kv_heads_ = 0;
};

FamilyIndex HeadPlanner::add(Family f) {
  families_.push_back(std::move(f));
  return families_.size() - 1;
}

Error HeadPlanner::unsupported(ValueId value, std::string_view why) const {
  const Node* p = g_.producer(value);
  return Error(ErrorKind::kUnsupported,
               fmt::format("'{}' ({}): {}", g_.value(value).name,
                           p ? ir::op_name(p->op) : std::string_view("input"), why));
}

Result<FamilyIndex> HeadPlanner::visit(ValueId value, int64_t axis, int64_t n) {
  auto key = std::make_tuple(value, axis, n);
  if (auto it = memo_.find(key); it != memo_.end()) return it->second;
  const ir::TensorType& t = g_.type(value);
  const int64_t dim = t.shape[static_cast<size_t>(axis)];
  FamilyIndex family;
  if (n == 1 || dim == 1) {
    family = add(Family{value, axis, n, Shared{}});
  } else if (dim % n != 0) {
    const Node* p = g_.producer(value);
    return errorf(ErrorKind::kShape, "split-heads: '{}' ({}): axis {} of size {} does not divide "
                  "into {} heads", g_.value(value).name,
                  p ? ir::op_name(p->op) : std::string_view("input"), axis, dim, n);
  } else if (g_.producer(value) == nullptr) {
    family = add(Family{value, axis, n, Sliced{}});  // cache inputs, constants
  } else {
    HS_ASSIGN_OR_RETURN(family, visit_producer(value, axis, n));
  }
  memo_[key] = family;
  return family;
}

Result<std::optional<FamilyIndex>> HeadPlanner::broadcast_operand(ValueId operand, int64_t out_axis,
                                                                  int64_t rank, int64_t out_dim,
                                                                  int64_t n) {
  const ir::TensorType& t = g_.type(operand);
  const int64_t axis = out_axis - (rank - t.rank());  // right-aligned broadcasting
  if (axis < 0 || t.shape[static_cast<size_t>(axis)] == 1) return std::nullopt;  // shared
  if (t.shape[static_cast<size_t>(axis)] != out_dim) {
    return unsupported(operand, "operand does not broadcast along the head axis");
  }
  HS_ASSIGN_OR_RETURN(FamilyIndex family, visit(operand, axis, n));
  return std::optional<FamilyIndex>(family);
}

Result<FamilyIndex> HeadPlanner::projection(ValueId value, int64_t n, bool conv) {
  // conv2d(X, W[O,I,1,1], b[O]) -> [1,O,1,T]  /  linear(x, W[O,I], b[O]) -> [...,O]:
  // head i = op(X, W[i*O/n:(i+1)*O/n], b[i*O/n:(i+1)*O/n]); X is shared.
  const Node& p = *g_.producer(value);
  Cloned c{.operands = {std::nullopt}, .attrs = p.attrs};
  for (size_t i = 1; i < p.inputs.size(); ++i) {
    const int64_t rows = g_.type(p.inputs[i]).shape[0];
    if (rows % n != 0) {
      return errorf(ErrorKind::kShape, "split-heads: projection '{}': {} output channels of "
                    "'{}' do not divide into {} heads", g_.value(value).name, rows,
                    g_.value(p.inputs[i]).name, n);
    }
    HS_ASSIGN_OR_RETURN(FamilyIndex w, visit(p.inputs[i], 0, n));
    c.operands.push_back(w);
  }
  return add(Family{value, conv ? 1 : g_.type(value).rank() - 1, n, std::move(c)});
}

Result<FamilyIndex> HeadPlanner::reshape(ValueId value, int64_t axis, int64_t n) {
  const Node& p = *g_.producer(value);
  const ir::Shape& out = g_.type(value).shape;
  const ValueId x = p.inputs[0];
  // GQA repeat: reshape(expand(unsqueeze(kv, u), [.., Hkv, G, ..]), [.., Hkv*G, ..]) with the
  // head axis = u - 1: head i reads kv head i / G. The unsqueeze and expand are bypassed.
  const Node* expand = g_.producer(x);
  const Node* unsq = expand && expand->op == OpKind::kExpand ? g_.producer(expand->inputs[0])
                                                             : nullptr;
  if (unsq != nullptr && unsq->op == OpKind::kUnsqueeze &&
      unsq->attrs.get_int("axis") == axis + 1) {
    const ValueId kv = unsq->inputs[0];
    const ir::Shape& es = g_.type(x).shape;
    const int64_t hkv = g_.type(kv).shape[static_cast<size_t>(axis)];
    const int64_t group = es[static_cast<size_t>(axis + 1)];
    ir::Shape merged = es;
    merged[static_cast<size_t>(axis)] *= group;
    merged.erase(merged.begin() + axis + 1);
    if (merged == out && n == hkv * group) {
      HS_ASSIGN_OR_RETURN(FamilyIndex kv_family, visit(kv, axis, hkv));
      kv_heads_ = hkv;
      return add(Family{value, axis, n, Selected{.from = kv_family, .repeat = group}});
    }
  }
  // General reshape: output axis `axis` is input axis b when both start at the same flat
  // offset (equal prefix products) and b splits into n chunks; then chunk i of the output is
  // chunk i of the input (same contiguous range within each prefix block).
  const ir::Shape& in = g_.type(x).shape;
  const int64_t prefix = product(out, 0, axis);
  for (int64_t b = 0; b < static_cast<int64_t>(in.size()); ++b) {
    const int64_t d = in[static_cast<size_t>(b)];
    if (product(in, 0, b) != prefix || d == 1) continue;
    if (d % n != 0) {
      return errorf(ErrorKind::kShape, "split-heads: '{}' (reshape): its head axis {} comes from "
                    "input axis {} of size {}, which does not divide into {} heads",
                    g_.value(value).name, axis, b, d, n);
    }
    HS_ASSIGN_OR_RETURN(FamilyIndex xf, visit(x, b, n));
    ir::Shape head_shape = out;
    head_shape[static_cast<size_t>(axis)] /= n;
    Cloned c{.operands = {xf}};
    c.attrs.set("shape", std::vector<int64_t>(head_shape));
    return add(Family{value, axis, n, std::move(c)});
  }
  return unsupported(value, "reshape mixes the head axis with other axes");
}

Result<FamilyIndex> HeadPlanner::visit_producer(ValueId value, int64_t axis, int64_t n) {
  const Node& p = *g_.producer(value);
  const int64_t rank = g_.type(value).rank();
  const int64_t dim = g_.type(value).shape[static_cast<size_t>(axis)];
  Cloned c{.attrs = p.attrs};
  auto follow = [&](ValueId operand, int64_t operand_axis) -> Status {
    HS_ASSIGN_OR_RETURN(FamilyIndex family, visit(operand, operand_axis, n));
    c.operands.push_back(family);
    return {};
  };
  auto shared = [&] { c.operands.push_back(std::nullopt); };
  auto attr_axis = [&](std::string_view name, int64_t r) {
    int64_t a = p.attrs.get_int(name);
    return a < 0 ? a + r : a;
  };

  switch (p.op) {
    case OpKind::kConv2d:
      if (axis == 1) return projection(value, n, true);
      HS_TRY(follow(p.inputs[0], axis));  // 1x1 conv is per position: split X alike
      for (size_t i = 1; i < p.inputs.size(); ++i) shared();
      break;
    case OpKind::kLinear:
      if (axis == rank - 1) return projection(value, n, false);
      HS_TRY(follow(p.inputs[0], axis));
      for (size_t i = 1; i < p.inputs.size(); ++i) shared();
      break;
    case OpKind::kMatMul: {
      const ValueId a = p.inputs[0], b = p.inputs[1];
      if (axis < rank - 2) {  // a batch axis: both operands broadcast on it
        for (ValueId operand : {a, b}) {
          const int64_t r = g_.type(operand).rank();
          const int64_t oa = axis - (rank - r);
          if (oa < 0 || oa >= r - 2 || g_.type(operand).shape[static_cast<size_t>(oa)] == 1) {
            shared();
          } else {
            HS_TRY(follow(operand, oa));
          }
        }
      } else if (axis == rank - 2) {
        HS_TRY(follow(a, g_.type(a).rank() - 2));
        shared();
      } else {
        shared();
        HS_TRY(follow(b, g_.type(b).rank() - 1));
      }
      break;
    }
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kEq:
    case OpKind::kWhere:
      for (ValueId operand : p.inputs) {
        HS_ASSIGN_OR_RETURN(std::optional<FamilyIndex> family,
                            broadcast_operand(operand, axis, rank, dim, n));
        c.operands.push_back(family);
      }
      break;
    case OpKind::kNeg:
    case OpKind::kSilu:
    case OpKind::kTanh:
    case OpKind::kGelu:
    case OpKind::kQuantize:
    case OpKind::kDequantize: HS_TRY(follow(p.inputs[0], axis)); break;
    case OpKind::kSoftmax:
      if (attr_axis("axis", rank) == axis) return unsupported(value, "softmax over the head axis");
      HS_TRY(follow(p.inputs[0], axis));
      break;
    case OpKind::kReduceMin: {
      const int64_t in_rank = g_.type(p.inputs[0]).rank();
      const int64_t r = attr_axis("axis", in_rank);
      const bool keep = p.attrs.get_int("keepdim") != 0;
      const int64_t in_axis = keep || axis < r ? axis : axis + 1;
      if (in_axis == r) return unsupported(value, "reduction over the head axis");
      HS_TRY(follow(p.inputs[0], in_axis));
      break;
    }
    case OpKind::kRmsNorm:
    case OpKind::kLayerNorm:
      if (axis == rank - 1) return unsupported(value, "normalization over the head axis");
      HS_TRY(follow(p.inputs[0], axis));
      for (size_t k = 1; k < p.inputs.size(); ++k) shared();  // weight (and bias): every head's
      break;
    case OpKind::kTranspose:
      HS_TRY(follow(p.inputs[0], p.attrs.get_ints("perm")[static_cast<size_t>(axis)]));
      break;
    case OpKind::kReshape: return reshape(value, axis, n);
    case OpKind::kSqueeze: {
      const int64_t s = attr_axis("axis", rank + 1);
      HS_TRY(follow(p.inputs[0], axis < s ? axis : axis + 1));
      break;
    }
    case OpKind::kUnsqueeze: {
      const int64_t u = attr_axis("axis", rank);
      HS_TRY(follow(p.inputs[0], axis < u ? axis : axis - 1));
      break;
    }
    case OpKind::kSlice:
      if (attr_axis("axis", rank) == axis) return unsupported(value, "slices the head axis");
      HS_TRY(follow(p.inputs[0], axis));
      break;
    case OpKind::kConcat:
      if (attr_axis("axis", rank) == axis) {
        return unsupported(value, "concatenates along the head axis");
      }
      for (ValueId operand : p.inputs) HS_TRY(follow(operand, axis));
      break;
    case OpKind::kExpand: {
      auto shape = p.attrs.get_ints("shape");
      shape[static_cast<size_t>(axis)] /= n;
      c.attrs.set("shape", shape);
      if (g_.type(p.inputs[0]).shape[static_cast<size_t>(axis)] == 1) {
        shared();  // expanding a broadcast input: each head expands it
      } else {
        HS_TRY(follow(p.inputs[0], axis));
      }
      break;
    }
    case OpKind::kGather: return unsupported(value, "gather along the head axis");
  }
  return add(Family{value, axis, n, std::move(c)});
}

}  // namespace

Result<HeadPlan> plan_heads(const Graph& g, const AttentionMatch& match) {
  HeadPlanner planner(g);
  HeadPlan plan{.match = match};
  HS_ASSIGN_OR_RETURN(plan.top, planner.visit(g.node(match.av_matmul).outputs[0], 1, match.heads));
  plan.families = planner.take_families();
  plan.kv_heads = planner.kv_heads() > 0 ? planner.kv_heads() : match.heads;
  return plan;
}

}  // namespace hs::passes::split
