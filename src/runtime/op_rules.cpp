// Op arity, attributes and shape rules for the runtime (the IR's rules, ir/ops.cpp, restated
// over artifact descriptions). Every node is checked once at load.
#include "op_rules.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace hs::runtime::detail {

using artifact::OpCode;
using artifact::TensorDesc;

namespace {

std::string shape_text(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

const artifact::AttrValue* find_attr(const artifact::NodeDesc& node, std::string_view name) {
  for (const artifact::Attr& a : node.attrs) {
    if (a.name == name) return &a.value;
  }
  return nullptr;
}

template <typename T>
Result<T> attr(const artifact::NodeDesc& node, std::string_view name, std::string_view label) {
  const artifact::AttrValue* v = find_attr(node, name);
  if (v == nullptr || !std::holds_alternative<T>(*v)) {
    return errorf(ErrorKind::kShape, "{}: missing or mistyped attribute '{}'", label, name);
  }
  return std::get<T>(*v);
}

Result<int64_t> normalize(int64_t axis, int64_t rank, std::string_view label) {
  if (axis < -rank || axis >= rank) {
    return errorf(ErrorKind::kShape, "{}: axis {} out of range for rank {}", label, axis, rank);
  }
  return axis < 0 ? axis + rank : axis;
}

struct Operands {
  const artifact::GraphDesc& g;
  const artifact::NodeDesc& node;
  const TensorDesc& at(size_t i) const { return g.tensors[static_cast<size_t>(node.inputs[i])]; }
  size_t size() const { return node.inputs.size(); }
};

Status expect_kind(const TensorDesc& t, ValueKind want, std::string_view label, size_t operand) {
  HS_ASSIGN_OR_RETURN(ValueKind k, value_kind(t));
  if (k == want) return ok_status();
  static constexpr std::string_view kNames[] = {"real", "i32", "bool"};
  return errorf(ErrorKind::kShape, "{}: operand {} '{}' is {}, expected a {} tensor", label,
                operand, t.name, kNames[static_cast<int>(k)], kNames[static_cast<int>(want)]);
}

struct Inferred {
  std::vector<int64_t> shape;
  ValueKind kind = ValueKind::kReal;
};

Result<Inferred> infer(const Operands& in, OpCode op, NodeAttrs& a, std::string_view label) {
  const TensorDesc& x = in.at(0);
  const auto rank = static_cast<int64_t>(x.shape.size());
  HS_ASSIGN_OR_RETURN(const ValueKind xk, value_kind(x));
  auto bad = [&](std::string_view why) {
    std::vector<std::string> shapes;
    for (size_t i = 0; i < in.size(); ++i) shapes.push_back(shape_text(in.at(i).shape));
    return errorf(ErrorKind::kShape, "{}: operands {}: {}", label, fmt::join(shapes, ", "), why);
  };
  switch (op) {
    case OpCode::kConv2d:
    case OpCode::kLinear: {
      const TensorDesc& w = in.at(1);
      HS_TRY(expect_kind(x, ValueKind::kReal, label, 0));
      HS_TRY(expect_kind(w, ValueKind::kReal, label, 1));
      const bool conv = op == OpCode::kConv2d;
      const bool fits = conv ? rank == 4 && w.shape.size() == 4 && w.shape[2] == 1 &&
                                   w.shape[3] == 1 && w.shape[1] == x.shape[1]
                             : rank >= 1 && w.shape.size() == 2 && w.shape[1] == x.shape.back();
      if (!fits) return bad(conv ? "not a 1x1 conv with weight [Co,Ci,1,1]" : "weight not [O,I]");
      if (in.size() == 3) {
        HS_TRY(expect_kind(in.at(2), ValueKind::kReal, label, 2));
        if (in.at(2).shape != std::vector<int64_t>{w.shape[0]}) return bad("bias is not [out]");
      }
      std::vector<int64_t> s = x.shape;
      s[conv ? 1 : s.size() - 1] = w.shape[0];
      return Inferred{s, ValueKind::kReal};
    }
    case OpCode::kMatMul: {
      const TensorDesc& b = in.at(1);
      HS_TRY(expect_kind(x, ValueKind::kReal, label, 0));
      HS_TRY(expect_kind(b, ValueKind::kReal, label, 1));
      const auto rb = static_cast<int64_t>(b.shape.size());
      if (rank < 2 || rb < 2 || x.shape[rank - 1] != b.shape[rb - 2]) {
        return bad("inner dimensions differ");
      }
      std::vector<int64_t> batch;
      if (!broadcast({x.shape.begin(), x.shape.end() - 2}, {b.shape.begin(), b.shape.end() - 2},
                     batch)) {
        return bad("batch dims do not broadcast");
      }
      batch.push_back(x.shape[rank - 2]);
      batch.push_back(b.shape.back());
      return Inferred{batch, ValueKind::kReal};
    }
    case OpCode::kAdd:
    case OpCode::kSub:
    case OpCode::kMul:
    case OpCode::kDiv:
    case OpCode::kEq: {
      HS_TRY(expect_kind(x, ValueKind::kReal, label, 0));
      HS_TRY(expect_kind(in.at(1), ValueKind::kReal, label, 1));
      std::vector<int64_t> s;
      if (!broadcast(x.shape, in.at(1).shape, s)) return bad("shapes do not broadcast");
      return Inferred{s, op == OpCode::kEq ? ValueKind::kBool : ValueKind::kReal};
    }
    case OpCode::kNeg:
    case OpCode::kSilu:
      HS_TRY(expect_kind(x, ValueKind::kReal, label, 0));
      return Inferred{x.shape, ValueKind::kReal};
    case OpCode::kWhere: {
      HS_TRY(expect_kind(x, ValueKind::kBool, label, 0));
      HS_TRY(expect_kind(in.at(1), ValueKind::kReal, label, 1));
      HS_TRY(expect_kind(in.at(2), ValueKind::kReal, label, 2));
      std::vector<int64_t> s1, s2;
      if (!broadcast(x.shape, in.at(1).shape, s1) || !broadcast(s1, in.at(2).shape, s2)) {
        return bad("shapes do not broadcast");
      }
      return Inferred{s2, ValueKind::kReal};
    }
    case OpCode::kReduceMin:
    case OpCode::kSoftmax: {
      HS_TRY(expect_kind(x, ValueKind::kReal, label, 0));
      HS_ASSIGN_OR_RETURN(const int64_t axis, attr<int64_t>(in.node, "axis", label));
      HS_ASSIGN_OR_RETURN(a.axis, normalize(axis, rank, label));
      std::vector<int64_t> s = x.shape;
      if (op == OpCode::kReduceMin) {
        HS_ASSIGN_OR_RETURN(const int64_t keep, attr<int64_t>(in.node, "keepdim", label));
        a.keepdim = keep != 0;
        if (a.keepdim) {
          s[static_cast<size_t>(a.axis)] = 1;
        } else {
          s.erase(s.begin() + a.axis);
        }
      }
      return Inferred{s, ValueKind::kReal};
    }
    case OpCode::kRmsNorm: {
      HS_TRY(expect_kind(x, ValueKind::kReal, label, 0));
      HS_TRY(expect_kind(in.at(1), ValueKind::kReal, label, 1));
      HS_ASSIGN_OR_RETURN(a.eps, attr<double>(in.node, "eps", label));
      if (rank < 1 || in.at(1).shape != std::vector<int64_t>{x.shape.back()}) {
        return bad("weight does not match the last axis");
      }
      return Inferred{x.shape, ValueKind::kReal};
    }
    case OpCode::kGather: {
      HS_TRY(expect_kind(in.at(1), ValueKind::kInt32, label, 1));
      if (rank < 1) return bad("table must have rank >= 1");
      std::vector<int64_t> s = in.at(1).shape;
      s.insert(s.end(), x.shape.begin() + 1, x.shape.end());
      return Inferred{s, xk};
    }
    case OpCode::kReshape:
    case OpCode::kExpand: {
      HS_ASSIGN_OR_RETURN(a.shape, attr<std::vector<int64_t>>(in.node, "shape", label));
      int64_t n = 1;
      for (int64_t d : a.shape) {
        if (d < 0 || __builtin_mul_overflow(n, d, &n)) {
          return bad(fmt::format("bad dimensions in {}", shape_text(a.shape)));
        }
      }
      if (op == OpCode::kReshape) {
        int64_t xn = 1;
        for (int64_t d : x.shape) xn *= d;
        if (n != xn) return bad(fmt::format("{} does not hold the same elements", shape_text(a.shape)));
        return Inferred{a.shape, xk};
      }
      bool fits = static_cast<int64_t>(a.shape.size()) == rank;
      for (size_t i = 0; fits && i < a.shape.size(); ++i) {
        fits = x.shape[i] == a.shape[i] || x.shape[i] == 1;
      }
      if (!fits) return bad(fmt::format("cannot expand to {}", shape_text(a.shape)));
      return Inferred{a.shape, xk};
    }
    case OpCode::kTranspose: {
      HS_ASSIGN_OR_RETURN(a.perm, attr<std::vector<int64_t>>(in.node, "perm", label));
      std::vector<bool> seen(static_cast<size_t>(rank), false);
      if (static_cast<int64_t>(a.perm.size()) != rank) return bad("perm size differs from rank");
      std::vector<int64_t> s(static_cast<size_t>(rank));
      for (size_t i = 0; i < a.perm.size(); ++i) {
        const int64_t p = a.perm[i];
        if (p < 0 || p >= rank || seen[static_cast<size_t>(p)]) return bad("perm is not a permutation");
        seen[static_cast<size_t>(p)] = true;
        s[i] = x.shape[static_cast<size_t>(p)];
      }
      return Inferred{s, xk};
    }
    case OpCode::kSlice: {
      HS_ASSIGN_OR_RETURN(const int64_t axis, attr<int64_t>(in.node, "axis", label));
      HS_ASSIGN_OR_RETURN(a.axis, normalize(axis, rank, label));
      HS_ASSIGN_OR_RETURN(a.start, attr<int64_t>(in.node, "start", label));
      HS_ASSIGN_OR_RETURN(a.end, attr<int64_t>(in.node, "end", label));
      const int64_t dim = x.shape[static_cast<size_t>(a.axis)];
      if (a.start < 0 || a.end > dim || a.start >= a.end) {
        return bad(fmt::format("slice [{}, {}) outside axis {} of size {}", a.start, a.end, a.axis, dim));
      }
      std::vector<int64_t> s = x.shape;
      s[static_cast<size_t>(a.axis)] = a.end - a.start;
      return Inferred{s, xk};
    }
    case OpCode::kConcat: {
      HS_ASSIGN_OR_RETURN(const int64_t axis, attr<int64_t>(in.node, "axis", label));
      HS_ASSIGN_OR_RETURN(a.axis, normalize(axis, rank, label));
      std::vector<int64_t> s = x.shape;
      for (size_t i = 1; i < in.size(); ++i) {
        const TensorDesc& t = in.at(i);
        HS_ASSIGN_OR_RETURN(const ValueKind tk, value_kind(t));
        bool fits = tk == xk && static_cast<int64_t>(t.shape.size()) == rank;
        for (int64_t d = 0; fits && d < rank; ++d) {
          fits = d == a.axis || t.shape[static_cast<size_t>(d)] == x.shape[static_cast<size_t>(d)];
        }
        if (!fits) return bad(fmt::format("operand {} does not fit on axis {}", i, a.axis));
        s[static_cast<size_t>(a.axis)] += t.shape[static_cast<size_t>(a.axis)];
      }
      return Inferred{s, xk};
    }
    case OpCode::kUnsqueeze:
    case OpCode::kSqueeze: {
      HS_ASSIGN_OR_RETURN(const int64_t axis, attr<int64_t>(in.node, "axis", label));
      const bool unsq = op == OpCode::kUnsqueeze;
      HS_ASSIGN_OR_RETURN(a.axis, normalize(axis, unsq ? rank + 1 : rank, label));
      std::vector<int64_t> s = x.shape;
      if (unsq) {
        s.insert(s.begin() + a.axis, 1);
      } else {
        if (s[static_cast<size_t>(a.axis)] != 1) return bad("squeezed axis is not 1");
        s.erase(s.begin() + a.axis);
      }
      return Inferred{s, xk};
    }
    case OpCode::kQuantize:
      if (x.type != artifact::ElementType::kF32 || x.quant.kind != artifact::QuantKind::kNone) {
        return bad("quantize input must be f32");
      }
      return Inferred{x.shape, ValueKind::kReal};
    case OpCode::kDequantize:
      if (x.quant.kind == artifact::QuantKind::kNone) return bad("dequantize input must be quantized");
      return Inferred{x.shape, ValueKind::kReal};
  }
  return errorf(ErrorKind::kUnsupported, "{}: unknown op", label);
}

// Operand counts: {min, max}, max -1 = variadic.
std::pair<int, int> arity(OpCode op) {
  switch (op) {
    case OpCode::kConv2d:
    case OpCode::kLinear: return {2, 3};
    case OpCode::kMatMul:
    case OpCode::kAdd:
    case OpCode::kSub:
    case OpCode::kMul:
    case OpCode::kDiv:
    case OpCode::kEq:
    case OpCode::kRmsNorm:
    case OpCode::kGather: return {2, 2};
    case OpCode::kWhere: return {3, 3};
    case OpCode::kConcat: return {1, -1};
    default: return {1, 1};
  }
}

}  // namespace

Result<ValueKind> value_kind(const TensorDesc& t) {
  if (t.type == artifact::ElementType::kF32 || t.quant.kind != artifact::QuantKind::kNone) {
    return ValueKind::kReal;
  }
  if (t.type == artifact::ElementType::kI32) return ValueKind::kInt32;
  if (t.type == artifact::ElementType::kBool) return ValueKind::kBool;
  return errorf(ErrorKind::kUnsupported, "tensor '{}': element type {} without quantization params",
                t.name, artifact::element_type_name(t.type));
}

Result<NodeAttrs> check_node(const artifact::GraphDesc& graph, const artifact::NodeDesc& node,
                             std::string_view label) {
  const auto [lo, hi] = arity(node.op);
  const auto n = static_cast<int>(node.inputs.size());
  if (n < lo || (hi >= 0 && n > hi)) {
    return errorf(ErrorKind::kShape, "{}: {} operands, expected {}..{}", label, n, lo,
                  hi < 0 ? std::string("n") : std::to_string(hi));
  }
  if (node.outputs.size() != 1) {
    return errorf(ErrorKind::kUnsupported, "{}: {} outputs, expected 1", label, node.outputs.size());
  }
  for (int32_t i : node.inputs) {
    if (graph.tensors[static_cast<size_t>(i)].shape.size() > 8) {
      return errorf(ErrorKind::kUnsupported, "{}: operand '{}' has rank {} (at most 8)", label,
                    graph.tensors[static_cast<size_t>(i)].name,
                    graph.tensors[static_cast<size_t>(i)].shape.size());
    }
  }
  NodeAttrs attrs;
  HS_ASSIGN_OR_RETURN(const Inferred inferred, infer({graph, node}, node.op, attrs, label));
  const TensorDesc& out = graph.tensors[static_cast<size_t>(node.outputs[0])];
  HS_ASSIGN_OR_RETURN(const ValueKind out_kind, value_kind(out));
  if (out.shape != inferred.shape || out_kind != inferred.kind || out.shape.size() > 8) {
    return errorf(ErrorKind::kShape, "{}: output '{}' is declared {}{} but the op produces {}",
                  label, out.name, artifact::element_type_name(out.type), shape_text(out.shape),
                  shape_text(inferred.shape));
  }
  return attrs;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t a = shape.size(); a-- > 1;) s[a - 1] = s[a] * shape[a];
  return s;
}

bool broadcast(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
               std::vector<int64_t>& out) {
  const size_t rank = std::max(a.size(), b.size());
  out.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    out[i] = da == 1 ? db : da;
  }
  return true;
}

}  // namespace hs::runtime::detail
