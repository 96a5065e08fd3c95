// Op registry and shape rules.
#include "headsplit/opset/ops.h"

#include <algorithm>
#include <array>

namespace hs::opset {

namespace {

const std::vector<OpInfo>& registry() {
  static const std::vector<OpInfo> ops = [] {
    std::vector<OpInfo> v = {
        {OpKind::kConv2d, "conv2d", 2, 3, {}},
        {OpKind::kLinear, "linear", 2, 3, {}},
        {OpKind::kMatMul, "matmul", 2, 2, {}},
        {OpKind::kAdd, "add", 2, 2, {}, false, true},
        {OpKind::kSub, "sub", 2, 2, {}, false, true},
        {OpKind::kMul, "mul", 2, 2, {}, false, true},
        {OpKind::kDiv, "div", 2, 2, {}, false, true},
        {OpKind::kNeg, "neg", 1, 1, {}},
        {OpKind::kWhere, "where", 3, 3, {}, false, true},
        {OpKind::kEq, "eq", 2, 2, {}, false, true},
        {OpKind::kReduceMin, "reduce_min", 1, 1, {{"axis", AttrKind::kInt}, {"keepdim", AttrKind::kInt}}},
        {OpKind::kSoftmax, "softmax", 1, 1, {{"axis", AttrKind::kInt}}},
        {OpKind::kRmsNorm, "rms_norm", 2, 2, {{"eps", AttrKind::kFloat}}},
        {OpKind::kSilu, "silu", 1, 1, {}},
        {OpKind::kGather, "gather", 2, 2, {}},
        {OpKind::kReshape, "reshape", 1, 1, {{"shape", AttrKind::kInts}}, true},
        {OpKind::kTranspose, "transpose", 1, 1, {{"perm", AttrKind::kInts}}, true},
        {OpKind::kSlice, "slice", 1, 1, {{"axis", AttrKind::kInt}, {"start", AttrKind::kInt}, {"end", AttrKind::kInt}}, true},
        {OpKind::kConcat, "concat", 1, -1, {{"axis", AttrKind::kInt}}, true},
        {OpKind::kUnsqueeze, "unsqueeze", 1, 1, {{"axis", AttrKind::kInt}}, true},
        {OpKind::kSqueeze, "squeeze", 1, 1, {{"axis", AttrKind::kInt}}, true},
        {OpKind::kExpand, "expand", 1, 1, {{"shape", AttrKind::kInts}}, true},
        {OpKind::kQuantize, "quantize", 1, 1, {}},
        {OpKind::kDequantize, "dequantize", 1, 1, {}},
    };
    for (size_t i = 0; i < v.size(); ++i) {
      HS_CHECK(static_cast<size_t>(v[i].op) == i, "op registry out of order");
    }
    return v;
  }();
  return ops;
}

Status expect_real(OpKind op, const TensorType& t, int operand) {
  if (!t.is_real()) {
    return errorf(ErrorKind::kShape, "{}: operand {} has type {}, expected a real (float or "
                  "quantized) tensor", op_name(op), operand, type_str(t));
  }
  return {};
}

}  // namespace

Attrs::Attrs(std::initializer_list<std::pair<std::string, AttrValue>> init) {
  for (const auto& [k, v] : init) set(k, v);
}

Attrs& Attrs::set(std::string name, AttrValue value) {
  for (auto& [k, v] : entries_) {
    if (k == name) {
      v = std::move(value);
      return *this;
    }
  }
  entries_.emplace_back(std::move(name), std::move(value));
  return *this;
}

const AttrValue* Attrs::find(std::string_view name) const {
  for (const auto& [k, v] : entries_) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool Attrs::has(std::string_view name) const { return find(name) != nullptr; }

int64_t Attrs::get_int(std::string_view name) const {
  const AttrValue* v = find(name);
  HS_CHECK(v != nullptr && std::holds_alternative<int64_t>(*v), "missing int attribute");
  return std::get<int64_t>(*v);
}

double Attrs::get_float(std::string_view name) const {
  const AttrValue* v = find(name);
  HS_CHECK(v != nullptr && std::holds_alternative<double>(*v), "missing float attribute");
  return std::get<double>(*v);
}

const std::vector<int64_t>& Attrs::get_ints(std::string_view name) const {
  const AttrValue* v = find(name);
  HS_CHECK(v != nullptr && std::holds_alternative<std::vector<int64_t>>(*v),
           "missing int-list attribute");
  return std::get<std::vector<int64_t>>(*v);
}

const std::string& Attrs::get_string(std::string_view name) const {
  const AttrValue* v = find(name);
  HS_CHECK(v != nullptr && std::holds_alternative<std::string>(*v), "missing string attribute");
  return std::get<std::string>(*v);
}

const OpInfo& op_info(OpKind op) { return registry()[static_cast<size_t>(op)]; }
std::span<const OpInfo> all_ops() { return registry(); }
std::string_view op_name(OpKind op) { return op_info(op).name; }

Result<OpKind> parse_op_name(std::string_view name) {
  for (const OpInfo& info : registry()) {
    if (info.name == name) return info.op;
  }
  return errorf(ErrorKind::kParse, "unknown op '{}'", name);
}

Result<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return errorf(ErrorKind::kShape, "shapes {} and {} do not broadcast (axis {}: {} vs {})",
                    shape_str(a), shape_str(b), i, da, db);
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Result<TensorType> infer_type(OpKind op, std::span<const TensorType* const> in,
                              const Attrs& attrs) {
  const OpInfo& info = op_info(op);
  const int n = static_cast<int>(in.size());
  if (n < info.min_inputs || (info.max_inputs >= 0 && n > info.max_inputs)) {
    return errorf(ErrorKind::kShape, "{}: {} operands, expected {}..{}", info.name, n,
                  info.min_inputs, info.max_inputs < 0 ? std::string("n") : std::to_string(info.max_inputs));
  }
  for (const AttrSpec& spec : info.attrs) {
    const AttrValue* v = attrs.find(spec.name);
    bool ok = v != nullptr && static_cast<size_t>(spec.kind) == v->index();
    if (!ok) {
      return errorf(ErrorKind::kShape, "{}: missing or mistyped attribute '{}'", info.name,
                    spec.name);
    }
  }
  const TensorType& x = *in[0];
  const int64_t rank = x.rank();
  auto f32 = [](Shape s) { return TensorType::f32(std::move(s)); };

  switch (op) {
    case OpKind::kConv2d: {
      const TensorType& w = *in[1];
      HS_TRY(expect_real(op, x, 0));
      HS_TRY(expect_real(op, w, 1));
      if (rank != 4 || w.rank() != 4 || w.shape[2] != 1 || w.shape[3] != 1 ||
          w.shape[1] != x.shape[1]) {
        return errorf(ErrorKind::kShape, "conv2d: input {} and weight {} are not a 1x1 conv "
                      "(weight must be [Co,Ci,1,1] with Ci = input axis 1)",
                      shape_str(x.shape), shape_str(w.shape));
      }
      if (n == 3 && (in[2]->rank() != 1 || in[2]->shape[0] != w.shape[0])) {
        return errorf(ErrorKind::kShape, "conv2d: bias {} does not match {} output channels",
                      shape_str(in[2]->shape), w.shape[0]);
      }
      return f32({x.shape[0], w.shape[0], x.shape[2], x.shape[3]});
    }
    case OpKind::kLinear: {
      const TensorType& w = *in[1];
      HS_TRY(expect_real(op, x, 0));
      HS_TRY(expect_real(op, w, 1));
      if (rank < 1 || w.rank() != 2 || w.shape[1] != x.shape.back()) {
        return errorf(ErrorKind::kShape, "linear: input {} and weight {} do not fit ([O,I] with "
                      "I = last input axis)", shape_str(x.shape), shape_str(w.shape));
      }
      if (n == 3 && (in[2]->rank() != 1 || in[2]->shape[0] != w.shape[0])) {
        return errorf(ErrorKind::kShape, "linear: bias {} does not match {} outputs",
                      shape_str(in[2]->shape), w.shape[0]);
      }
      Shape s = x.shape;
      s.back() = w.shape[0];
      return f32(s);
    }
    case OpKind::kMatMul: {
      const TensorType& b = *in[1];
      HS_TRY(expect_real(op, x, 0));
      HS_TRY(expect_real(op, b, 1));
      if (rank < 2 || b.rank() < 2 || x.shape[rank - 1] != b.shape[b.rank() - 2]) {
        return errorf(ErrorKind::kShape, "matmul: {} x {}: inner dimensions differ",
                      shape_str(x.shape), shape_str(b.shape));
      }
      Shape ba(x.shape.begin(), x.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
      HS_ASSIGN_OR_RETURN(Shape batch, broadcast_shapes(ba, bb));
      batch.push_back(x.shape[rank - 2]);
      batch.push_back(b.shape.back());
      return f32(batch);
    }
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kEq: {
      HS_TRY(expect_real(op, x, 0));
      HS_TRY(expect_real(op, *in[1], 1));
      auto shape = broadcast_shapes(x.shape, in[1]->shape);
      if (!shape.ok()) return std::move(shape).error().with_context(info.name);
      if (op == OpKind::kEq) return TensorType::boolean(*shape);
      return f32(*shape);
    }
    case OpKind::kNeg:
    case OpKind::kSilu:
      HS_TRY(expect_real(op, x, 0));
      return f32(x.shape);
    case OpKind::kWhere: {
      if (x.dtype != DType::kBool) {
        return errorf(ErrorKind::kShape, "where: condition has type {}, expected bool",
                      type_str(x));
      }
      HS_TRY(expect_real(op, *in[1], 1));
      HS_TRY(expect_real(op, *in[2], 2));
      auto s1 = broadcast_shapes(x.shape, in[1]->shape);
      if (!s1.ok()) return std::move(s1).error().with_context("where");
      auto s2 = broadcast_shapes(*s1, in[2]->shape);
      if (!s2.ok()) return std::move(s2).error().with_context("where");
      return f32(*s2);
    }
    case OpKind::kReduceMin: {
      HS_TRY(expect_real(op, x, 0));
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank, "reduce_min"));
      Shape s = x.shape;
      if (attrs.get_int("keepdim") != 0) {
        s[static_cast<size_t>(axis)] = 1;
      } else {
        s.erase(s.begin() + axis);
      }
      return f32(s);
    }
    case OpKind::kSoftmax: {
      HS_TRY(expect_real(op, x, 0));
      HS_TRY(normalize_axis(attrs.get_int("axis"), rank, "softmax"));
      return f32(x.shape);
    }
    case OpKind::kRmsNorm: {
      HS_TRY(expect_real(op, x, 0));
      HS_TRY(expect_real(op, *in[1], 1));
      if (rank < 1 || in[1]->rank() != 1 || in[1]->shape[0] != x.shape.back()) {
        return errorf(ErrorKind::kShape, "rms_norm: weight {} does not match last axis of {}",
                      shape_str(in[1]->shape), shape_str(x.shape));
      }
      return f32(x.shape);
    }
    case OpKind::kGather: {
      const TensorType& idx = *in[1];
      if (idx.dtype != DType::kI32 || idx.quant.is_quantized()) {
        return errorf(ErrorKind::kShape, "gather: indices have type {}, expected i32",
                      type_str(idx));
      }
      if (rank < 1) return errorf(ErrorKind::kShape, "gather: table must have rank >= 1");
      Shape s = idx.shape;
      s.insert(s.end(), x.shape.begin() + 1, x.shape.end());
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
    }
    case OpKind::kReshape: {
      const auto& shape = attrs.get_ints("shape");
      Shape s(shape.begin(), shape.end());
      for (int64_t d : s) {
        if (d < 0) return errorf(ErrorKind::kShape, "reshape: negative dimension in {}", shape_str(s));
      }
      if (num_elements(s) != x.numel()) {
        return errorf(ErrorKind::kShape, "reshape: {} has {} elements, target {} has {}",
                      shape_str(x.shape), x.numel(), shape_str(s), num_elements(s));
      }
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
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
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
    }
    case OpKind::kSlice: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank, "slice"));
      int64_t start = attrs.get_int("start"), end = attrs.get_int("end");
      int64_t dim = x.shape[static_cast<size_t>(axis)];
      if (start < 0 || end > dim || start >= end) {
        return errorf(ErrorKind::kShape, "slice: [{}, {}) is empty or outside axis {} of size {}",
                      start, end, axis, dim);
      }
      Shape s = x.shape;
      s[static_cast<size_t>(axis)] = end - start;
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
    }
    case OpKind::kConcat: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank, "concat"));
      Shape s = x.shape;
      for (int i = 1; i < n; ++i) {
        const TensorType& t = *in[i];
        bool fits = t.rank() == rank && t.is_real() == x.is_real() &&
                    (x.is_real() || t.dtype == x.dtype);
        for (int64_t a = 0; fits && a < rank; ++a) {
          fits = a == axis || t.shape[static_cast<size_t>(a)] == x.shape[static_cast<size_t>(a)];
        }
        if (!fits) {
          return errorf(ErrorKind::kShape, "concat: operand {} {} does not fit {} on axis {}", i,
                        type_str(t), type_str(x), axis);
        }
        s[static_cast<size_t>(axis)] += t.shape[static_cast<size_t>(axis)];
      }
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
    }
    case OpKind::kUnsqueeze: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank + 1, "unsqueeze"));
      Shape s = x.shape;
      s.insert(s.begin() + axis, 1);
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
    }
    case OpKind::kSqueeze: {
      HS_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(attrs.get_int("axis"), rank, "squeeze"));
      if (x.shape[static_cast<size_t>(axis)] != 1) {
        return errorf(ErrorKind::kShape, "squeeze: axis {} of {} has size {}, expected 1", axis,
                      shape_str(x.shape), x.shape[static_cast<size_t>(axis)]);
      }
      Shape s = x.shape;
      s.erase(s.begin() + axis);
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
    }
    case OpKind::kExpand: {
      const auto& shape = attrs.get_ints("shape");
      Shape s(shape.begin(), shape.end());
      bool fits = static_cast<int64_t>(s.size()) == rank;
      for (size_t a = 0; fits && a < s.size(); ++a) {
        fits = s[a] >= 0 && (x.shape[a] == s[a] || x.shape[a] == 1);
      }
      if (!fits) {
        return errorf(ErrorKind::kShape, "expand: {} cannot be expanded to {} (rank-equal, size-1 "
                      "axes stretch)", shape_str(x.shape), shape_str(s));
      }
      return TensorType{x.is_real() ? DType::kF32 : x.dtype, s, {}};
    }
    case OpKind::kQuantize:
      if (x.dtype != DType::kF32 || x.quant.is_quantized()) {
        return errorf(ErrorKind::kShape, "quantize: input has type {}, expected f32", type_str(x));
      }
      return f32(x.shape);  // the output's declared type carries the quantization
    case OpKind::kDequantize:
      if (!x.quant.is_quantized()) {
        return errorf(ErrorKind::kShape, "dequantize: input has type {}, expected a quantized type",
                      type_str(x));
      }
      return f32(x.shape);
  }
  return errorf(ErrorKind::kInternal, "infer_type: unhandled op {}", static_cast<int>(op));
}

}  // namespace hs::opset
