// The shape and type rule of every op: the one place that says which operands an op takes and
// what it produces. The IR verifier, the graph builders and the runtime's load-time checks all
// call infer_type; check_result_type compares a node's declared result with the rule's.
#include <fmt/ranges.h>

#include "headsplit/opset/ops.h"

namespace hs::opset {

namespace {

std::string arity_str(const OpInfo& info) {
  if (info.max_inputs < 0) return fmt::format("at least {}", info.min_inputs);
  if (info.min_inputs == info.max_inputs) return fmt::format("{}", info.min_inputs);
  return fmt::format("{} or {}", info.min_inputs, info.max_inputs);
}

Status expect_real(OpKind op, const TensorType& t, int operand) {
  if (!t.is_real()) {
    return errorf(ErrorKind::kShape,
                  "{}: operand {} has type {}, expected a real (float or "
                  "quantized) tensor",
                  op_name(op), operand, type_str(t));
  }
  return {};
}

// conv2d / linear bias: a real [out] vector.
Status check_bias(OpKind op, const TensorType& bias, int64_t out) {
  HS_TRY(expect_real(op, bias, 2));
  if (bias.rank() != 1 || bias.shape[0] != out) {
    return errorf(ErrorKind::kShape, "{}: bias {} does not match {} output channels", op_name(op),
                  shape_str(bias.shape), out);
  }
  return {};
}

// A shape attribute: non-negative dimensions whose element count does not overflow.
Result<Shape> shape_attr(OpKind op, const Attrs& attrs) {
  const auto& dims = attrs.get_ints("shape");
  Shape s(dims.begin(), dims.end());
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) {
      return errorf(ErrorKind::kShape,
                    "{}: target shape {} has a negative dimension or too many elements",
                    op_name(op), shape_str(s));
    }
  }
  return s;
}

// Layout ops keep their input's kind: real in, real (f32) out; i32/bool in, the same out.
TensorType layout_result(const TensorType& x, Shape shape) {
  return TensorType{x.is_real() ? DType::kF32 : x.dtype, std::move(shape), {}};
}

Result<TensorType> infer_projection(OpKind op, std::span<const TensorType* const> in) {
  const TensorType& x = *in[0];
  const TensorType& w = *in[1];
  HS_TRY(expect_real(op, x, 0));
  HS_TRY(expect_real(op, w, 1));
  Shape s = x.shape;
  if (op == OpKind::kConv2d) {
    if (x.rank() != 4 || w.rank() != 4 || w.shape[2] != 1 || w.shape[3] != 1 ||
        w.shape[1] != x.shape[1]) {
      return errorf(ErrorKind::kShape,
                    "conv2d: input {} and weight {} are not a 1x1 conv "
                    "(weight must be [Co,Ci,1,1] with Ci = input axis 1)",
                    shape_str(x.shape), shape_str(w.shape));
    }
    s[1] = w.shape[0];
  } else {
    if (x.rank() < 1 || w.rank() != 2 || w.shape[1] != x.shape.back()) {
      return errorf(ErrorKind::kShape,
                    "linear: input {} and weight {} do not fit ([O,I] with "
                    "I = last input axis)",
                    shape_str(x.shape), shape_str(w.shape));
    }
    s.back() = w.shape[0];
  }
  if (in.size() == 3) HS_TRY(check_bias(op, *in[2], w.shape[0]));
  return TensorType::f32(std::move(s));
}

Result<TensorType> infer_matmul(std::span<const TensorType* const> in) {
  const TensorType& a = *in[0];
  const TensorType& b = *in[1];
  HS_TRY(expect_real(OpKind::kMatMul, a, 0));
  HS_TRY(expect_real(OpKind::kMatMul, b, 1));
  const int64_t ra = a.rank(), rb = b.rank();
  if (ra < 2 || rb < 2 ||
      a.shape[static_cast<size_t>(ra - 1)] != b.shape[static_cast<size_t>(rb - 2)]) {
    return errorf(ErrorKind::kShape, "matmul: {} x {}: inner dimensions differ", shape_str(a.shape),
                  shape_str(b.shape));
  }
  Shape ba(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  auto batch = broadcast_shapes(ba, bb);
  if (!batch.ok()) return std::move(batch).error().with_context("matmul: batch dimensions");
  batch->push_back(a.shape[static_cast<size_t>(ra - 2)]);
  batch->push_back(b.shape.back());
  return TensorType::f32(std::move(*batch));
}

// add, sub, mul, div, eq (two real operands) and where (bool condition, two real operands).
Result<TensorType> infer_broadcast(OpKind op, std::span<const TensorType* const> in) {
  const bool where = op == OpKind::kWhere;
  if (where && (in[0]->dtype != DType::kBool || in[0]->quant.is_quantized())) {
    return errorf(ErrorKind::kShape, "where: condition has type {}, expected bool",
                  type_str(*in[0]));
  }
  Shape s = in[0]->shape;
  for (size_t k = 0; k < in.size(); ++k) {
    if (!where || k > 0) HS_TRY(expect_real(op, *in[k], static_cast<int>(k)));
    if (k == 0) continue;
    auto b = broadcast_shapes(s, in[k]->shape);
    if (!b.ok()) return std::move(b).error().with_context(op_name(op));
    s = std::move(*b);
  }
  if (op == OpKind::kEq) return TensorType::boolean(std::move(s));
  return TensorType::f32(std::move(s));
}

// Ops with one operand and an `axis` attribute (or none): reductions, normalization and the
// layout ops that move elements without arithmetic.
Result<TensorType> infer_unary(OpKind op, const TensorType& x, const Attrs& attrs) {
  const int64_t rank = x.rank();
  const std::string_view name = op_name(op);
  switch (op) {
    case OpKind::kNeg:
    case OpKind::kTanh:
    case OpKind::kSilu: HS_TRY(expect_real(op, x, 0)); return TensorType::f32(x.shape);
    case OpKind::kGelu: {
      HS_TRY(expect_real(op, x, 0));
      const std::string& approx = attrs.get_string("approximate");
      if (approx != "none" && approx != "tanh") {
        return errorf(ErrorKind::kShape, "gelu: approximate is '{}', expected 'none' or 'tanh'",
                      approx);
      }
      return TensorType::f32(x.shape);
    }
    case OpKind::kSoftmax:
      HS_TRY(expect_real(op, x, 0));
      HS_TRY(normalize_axis(attrs.get_int("axis"), rank, name));
      return TensorType::f32(x.shape);
    case OpKind::kReduceMin: {
      HS_TRY(expect_real(op, x, 0));
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank, name));
      Shape s = x.shape;
      if (attrs.get_int("keepdim") != 0) {
        s[static_cast<size_t>(axis)] = 1;
      } else {
        s.erase(s.begin() + axis);
      }
      return TensorType::f32(std::move(s));
    }
    case OpKind::kReshape: {
      HS_ASSIGN_OR_RETURN(Shape s, shape_attr(op, attrs));
      if (num_elements(s) != x.numel()) {
        return errorf(ErrorKind::kShape, "reshape: {} has {} elements, target {} has {}",
                      shape_str(x.shape), x.numel(), shape_str(s), num_elements(s));
      }
      return layout_result(x, std::move(s));
    }
    case OpKind::kExpand: {
      HS_ASSIGN_OR_RETURN(Shape s, shape_attr(op, attrs));
      bool fits = static_cast<int64_t>(s.size()) == rank;
      for (size_t a = 0; fits && a < s.size(); ++a) fits = x.shape[a] == s[a] || x.shape[a] == 1;
      if (!fits) {
        return errorf(ErrorKind::kShape,
                      "expand: {} cannot be expanded to {} (rank-equal, size-1 "
                      "axes stretch)",
                      shape_str(x.shape), shape_str(s));
      }
      return layout_result(x, std::move(s));
    }
    case OpKind::kTranspose: {
      const auto& perm = attrs.get_ints("perm");
      if (static_cast<int64_t>(perm.size()) != rank) {
        return errorf(ErrorKind::kShape, "transpose: perm [{}] has {} entries for rank {}",
                      fmt::join(perm, ","), perm.size(), rank);
      }
      std::vector<bool> seen(static_cast<size_t>(rank), false);
      Shape s(static_cast<size_t>(rank));
      for (size_t i = 0; i < perm.size(); ++i) {
        if (perm[i] < 0 || perm[i] >= rank || seen[static_cast<size_t>(perm[i])]) {
          return errorf(ErrorKind::kShape, "transpose: [{}] is not a permutation",
                        fmt::join(perm, ","));
        }
        seen[static_cast<size_t>(perm[i])] = true;
        s[i] = x.shape[static_cast<size_t>(perm[i])];
      }
      return layout_result(x, std::move(s));
    }
    case OpKind::kSlice: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank, name));
      const int64_t start = attrs.get_int("start"), end = attrs.get_int("end");
      const int64_t dim = x.shape[static_cast<size_t>(axis)];
      if (start < 0 || end > dim || start >= end) {
        return errorf(ErrorKind::kShape, "slice: [{}, {}) is empty or outside axis {} of size {}",
                      start, end, axis, dim);
      }
      Shape s = x.shape;
      s[static_cast<size_t>(axis)] = end - start;
      return layout_result(x, std::move(s));
    }
    case OpKind::kUnsqueeze: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank + 1, name));
      Shape s = x.shape;
      s.insert(s.begin() + axis, 1);
      return layout_result(x, std::move(s));
    }
    case OpKind::kSqueeze: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank, name));
      if (x.shape[static_cast<size_t>(axis)] != 1) {
        return errorf(ErrorKind::kShape, "squeeze: axis {} of {} has size {}, expected 1", axis,
                      shape_str(x.shape), x.shape[static_cast<size_t>(axis)]);
      }
      Shape s = x.shape;
      s.erase(s.begin() + axis);
      return layout_result(x, std::move(s));
    }
    case OpKind::kQuantize:
      if (x.dtype != DType::kF32 || x.quant.is_quantized()) {
        return errorf(ErrorKind::kShape, "quantize: input has type {}, expected f32", type_str(x));
      }
      return TensorType::f32(x.shape);  // the output's declared type carries the quantization
    case OpKind::kDequantize:
      if (!x.quant.is_quantized()) {
        return errorf(ErrorKind::kShape, "dequantize: input has type {}, expected a quantized type",
                      type_str(x));
      }
      return TensorType::f32(x.shape);
    default: break;
  }
  return errorf(ErrorKind::kInternal, "infer_type: {} is not a one-operand op", name);
}

}  // namespace

Status check_signature(OpKind op, int n_inputs, const Attrs& attrs) {
  if (!is_known_op(op)) {
    return errorf(ErrorKind::kUnsupported, "unknown op kind {} (this build knows 0..{})",
                  static_cast<int>(op), kNumOpKinds - 1);
  }
  const OpInfo& info = op_info(op);
  if (n_inputs < info.min_inputs || (info.max_inputs >= 0 && n_inputs > info.max_inputs)) {
    return errorf(ErrorKind::kShape, "{} operands, expected {}", n_inputs, arity_str(info));
  }
  for (const AttrSpec& spec : info.attrs) {
    const AttrValue* v = attrs.find(spec.name);
    if (v == nullptr) {
      return errorf(ErrorKind::kShape, "missing {} attribute '{}'", attr_kind_name(spec.kind),
                    spec.name);
    }
    if (v->index() != static_cast<size_t>(spec.kind)) {
      return errorf(ErrorKind::kShape, "attribute '{}' has kind {}, expected {}", spec.name,
                    attr_kind_name(static_cast<AttrKind>(v->index())), attr_kind_name(spec.kind));
    }
  }
  return {};
}

Result<TensorType> infer_type(OpKind op, std::span<const TensorType* const> in,
                              const Attrs& attrs) {
  if (Status s = check_signature(op, static_cast<int>(in.size()), attrs); !s.ok()) {
    return std::move(s).error().with_context(op_name(op));
  }
  switch (op) {
    case OpKind::kConv2d:
    case OpKind::kLinear: return infer_projection(op, in);
    case OpKind::kMatMul: return infer_matmul(in);
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kEq:
    case OpKind::kWhere: return infer_broadcast(op, in);
    case OpKind::kRmsNorm:
    case OpKind::kLayerNorm: {
      const TensorType& x = *in[0];
      HS_TRY(expect_real(op, x, 0));
      for (size_t k = 1; k < in.size(); ++k) {
        HS_TRY(expect_real(op, *in[k], static_cast<int>(k)));
        if (x.rank() < 1 || in[k]->rank() != 1 || in[k]->shape[0] != x.shape.back()) {
          return errorf(ErrorKind::kShape, "{}: {} {} does not match last axis of {}",
                        op_name(op), k == 1 ? "weight" : "bias", shape_str(in[k]->shape),
                        shape_str(x.shape));
        }
      }
      return TensorType::f32(x.shape);
    }
    case OpKind::kGather: {
      const TensorType& table = *in[0];
      const TensorType& idx = *in[1];
      if (idx.dtype != DType::kI32 || idx.quant.is_quantized()) {
        return errorf(ErrorKind::kShape, "gather: indices have type {}, expected i32",
                      type_str(idx));
      }
      if (table.rank() < 1) return errorf(ErrorKind::kShape, "gather: table must have rank >= 1");
      Shape s = idx.shape;
      s.insert(s.end(), table.shape.begin() + 1, table.shape.end());
      return layout_result(table, std::move(s));
    }
    case OpKind::kConcat: {
      const TensorType& x = *in[0];
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), x.rank(), "concat"));
      Shape s = x.shape;
      for (size_t i = 1; i < in.size(); ++i) {
        const TensorType& t = *in[i];
        bool fits = t.rank() == x.rank() && t.is_real() == x.is_real() &&
                    (x.is_real() || t.dtype == x.dtype);
        for (int64_t a = 0; fits && a < x.rank(); ++a) {
          fits = a == axis || t.shape[static_cast<size_t>(a)] == x.shape[static_cast<size_t>(a)];
        }
        if (!fits) {
          return errorf(ErrorKind::kShape, "concat: operand {} {} does not fit {} on axis {}", i,
                        type_str(t), type_str(x), axis);
        }
        s[static_cast<size_t>(axis)] += t.shape[static_cast<size_t>(axis)];
      }
      return layout_result(x, std::move(s));
    }
    default: return infer_unary(op, *in[0], attrs);
  }
}

Status check_result_type(OpKind op, const TensorType& declared, const TensorType& inferred,
                         std::string_view what) {
  if (declared.shape != inferred.shape) {
    return errorf(ErrorKind::kShape, "{}: result type {} has shape {}, inference gives {}", what,
                  type_str(declared), shape_str(declared.shape), shape_str(inferred.shape));
  }
  if (op == OpKind::kQuantize) {
    if (!declared.quant.is_quantized()) {
      return errorf(ErrorKind::kShape, "{}: result type {} is not quantized", what,
                    type_str(declared));
    }
    return {};
  }
  if (op == OpKind::kDequantize) {
    if (declared.dtype != DType::kF32 || declared.quant.is_quantized()) {
      return errorf(ErrorKind::kShape, "{}: result type {} is not plain f32", what,
                    type_str(declared));
    }
    return {};
  }
  if (inferred.dtype == DType::kF32) {
    if (!declared.is_real()) {
      return errorf(ErrorKind::kShape,
                    "{}: result type {} is not real (f32 or quantized), inference gives {}", what,
                    type_str(declared), type_str(inferred));
    }
    return {};
  }
  if (declared.dtype != inferred.dtype || declared.quant.is_quantized()) {
    return errorf(ErrorKind::kShape, "{}: result type {} differs from the inferred type {}", what,
                  type_str(declared), type_str(inferred));
  }
  return {};
}

}  // namespace hs::opset
