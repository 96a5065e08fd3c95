// The op registry (names, arity, attribute specs, layout/broadcast flags), attributes and
// NumPy broadcasting. The shape rules are in shape_rules.cpp.
#include "headsplit/opset/ops.h"

#include <algorithm>
#include <array>

namespace hs::opset {

namespace {

const std::vector<OpInfo>& registry() {
  static const std::vector<OpInfo> ops = [] {
    // One op a line.
    // clang-format off
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
        {OpKind::kGelu, "gelu", 1, 1, {{"approximate", AttrKind::kString}}},
        {OpKind::kLayerNorm, "layer_norm", 2, 3, {{"eps", AttrKind::kFloat}}},
        {OpKind::kTanh, "tanh", 1, 1, {}},
    };
    // clang-format on
    for (size_t i = 0; i < v.size(); ++i) {
      HS_CHECK(static_cast<size_t>(v[i].op) == i, "op registry out of order");
    }
    return v;
  }();
  return ops;
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

bool is_known_op(OpKind op) { return static_cast<size_t>(op) < registry().size(); }

const OpInfo& op_info(OpKind op) {
  HS_CHECK(is_known_op(op), "op_info: op kind outside the op set");
  return registry()[static_cast<size_t>(op)];
}

std::span<const OpInfo> all_ops() { return registry(); }
std::string_view op_name(OpKind op) { return is_known_op(op) ? op_info(op).name : "unknown"; }

std::string_view attr_kind_name(AttrKind kind) {
  switch (kind) {
    case AttrKind::kInt: return "int";
    case AttrKind::kFloat: return "float";
    case AttrKind::kInts: return "int list";
    case AttrKind::kString: return "string";
  }
  return "?";
}

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

}  // namespace hs::opset
