// The op-support check (backend/op_support.h): one rule per kind of value, each returning
// why a use is unsupported (empty when it is fine). The runtime's planner applies the same
// rules when it loads an artifact (src/runtime/planner*.cpp); this check reports them all at
// export time, by IR name, before anything is written.
#include "headsplit/backend/op_support.h"

#include <algorithm>
#include <array>

#include "headsplit/ir/verifier.h"

namespace hs::backend {
namespace {

using ir::DType;
using ir::OpKind;
using ir::QuantKind;
using ir::TensorType;

// The runtime's kernel list (docs/artifact.md): every op of the IR.
constexpr std::array<OpKind, ir::kNumOpKinds> kRuntimeOps = {
    OpKind::kConv2d,    OpKind::kLinear, OpKind::kMatMul,    OpKind::kAdd,
    OpKind::kSub,       OpKind::kMul,    OpKind::kDiv,       OpKind::kNeg,
    OpKind::kWhere,     OpKind::kEq,     OpKind::kReduceMin, OpKind::kSoftmax,
    OpKind::kRmsNorm,   OpKind::kSilu,   OpKind::kGather,    OpKind::kReshape,
    OpKind::kTranspose, OpKind::kSlice,  OpKind::kConcat,    OpKind::kUnsqueeze,
    OpKind::kSqueeze,   OpKind::kExpand, OpKind::kQuantize,  OpKind::kDequantize,
    OpKind::kGelu,      OpKind::kLayerNorm, OpKind::kTanh,
};

// "i4[8,8] per_block": enough to name the combination without printing every scale.
std::string brief_type(const TensorType& t) {
  std::string s = fmt::format("{}{}", ir::dtype_name(t.dtype), ir::shape_str(t.shape));
  if (t.quant.is_quantized()) s += fmt::format(" {}", ir::quant_kind_name(t.quant.kind));
  return s;
}

bool all_zero(const std::vector<int32_t>& zero_points) {
  return std::all_of(zero_points.begin(), zero_points.end(), [](int32_t z) { return z == 0; });
}

// Every value: integer storage means nothing without quant params.
std::string check_storage(const TensorType& t) {
  if (ir::dtype_is_integer_storage(t.dtype) && !t.quant.is_quantized()) {
    return "integer storage without quantization params";
  }
  return {};
}

// Operands 1 and 2 of conv2d / linear.
std::string check_projection_operand(const ir::Value& v, int operand) {
  if (!v.is_constant()) {
    return operand == 1 ? "conv2d/linear weights must be constants"
                        : "conv2d/linear biases must be constants";
  }
  const TensorType& t = v.type;
  if (operand == 2 || t.dtype == DType::kF32) return {};
  const ir::QuantParams& q = t.quant;
  if (t.dtype != DType::kI8 && t.dtype != DType::kI4) {
    return "quantized conv2d/linear weights must be i8 or i4";
  }
  const bool layout = q.kind == QuantKind::kPerTensor ||
                      (q.kind == QuantKind::kPerAxis && q.axis == 0) ||
                      (q.kind == QuantKind::kPerBlock && q.axis == 0 && q.block_axis == 1);
  if (!layout) {
    return "quantized conv2d/linear weights must be per-tensor, per-axis on axis 0 or per-block "
           "on axis 0 with blocks along axis 1";
  }
  if (!all_zero(q.zero_points)) {
    return "quantized conv2d/linear weights must be symmetric (zero points 0)";
  }
  return {};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Graph I/O: a name the runner binds and a storage it binds.
std::string check_io(const std::string& name, const TensorType& t, bool input) {
  const bool known =
      input ? name == "tokens" || name == "input_pos" || name == "attention_mask" ||
                  name == "window_attention_mask" || starts_with(name, "k_cache.") ||
                  starts_with(name, "v_cache.")
            : name == "logits" || starts_with(name, "k_new.") || starts_with(name, "v_new.");
  if (!known) {
    return input ? "not an input the runner binds (tokens, attention_mask, "
                   "window_attention_mask, input_pos, k_cache.{l}, v_cache.{l})"
                 : "not an output the runner binds (logits, k_new.{l}, v_new.{l})";
  }
  const QuantKind kind = t.quant.kind;
  switch (t.dtype) {
    case DType::kF32:
    case DType::kI32: return kind == QuantKind::kNone ? "" : "f32 and i32 I/O take no quant params";
    case DType::kU8:
    case DType::kI8:
    case DType::kU16:
    case DType::kI16:
      return kind == QuantKind::kPerTensor ? "" : "quantized I/O must be per-tensor";
    default: return "graph I/O is f32, i32, or per-tensor u8 / i8 / u16 / i16";
  }
}

}  // namespace

bool runtime_supports_op(ir::OpKind op) {
  return std::find(kRuntimeOps.begin(), kRuntimeOps.end(), op) != kRuntimeOps.end();
}

std::vector<std::string> find_unsupported(const ir::Graph& graph) {
  std::vector<std::string> lines;
  auto io = [&](const std::vector<ir::ValueId>& values, bool input) {
    for (ir::ValueId id : values) {
      const ir::Value& v = graph.value(id);
      std::string why = check_io(v.name, v.type, input);
      if (!why.empty()) {
        lines.push_back(fmt::format("graph {} '{}' {}: {}", input ? "input" : "output", v.name,
                                    brief_type(v.type), why));
      }
    }
  };
  io(graph.inputs(), true);
  io(graph.outputs(), false);
  for (ir::ValueId id = 0; id < graph.num_values(); ++id) {
    const ir::Value& v = graph.value(id);
    std::string why = check_storage(v.type);
    if (!why.empty()) {
      lines.push_back(fmt::format("value '{}' {}: {}", v.name, brief_type(v.type), why));
    }
  }
  for (ir::NodeId n = 0; n < graph.num_nodes(); ++n) {
    const ir::Node& node = graph.node(n);
    if (node.erased) continue;
    const std::string what = ir::describe_node(graph, n);
    if (!runtime_supports_op(node.op)) {
      lines.push_back(
          fmt::format("{}: the runtime has no kernel for {}", what, ir::op_name(node.op)));
      continue;
    }
    if (node.op != OpKind::kConv2d && node.op != OpKind::kLinear) continue;
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      const ir::Value& v = graph.value(node.inputs[i]);
      std::string why = check_projection_operand(v, static_cast<int>(i));
      if (!why.empty()) {
        lines.push_back(
            fmt::format("{}: operand {} '{}' {}: {}", what, i, v.name, brief_type(v.type), why));
      }
    }
  }
  return lines;
}

Status check_op_support(const ir::Graph& graph) {
  std::vector<std::string> lines = find_unsupported(graph);
  if (lines.empty()) return ok_status();
  return errorf(ErrorKind::kUnsupported,
                "graph '{}': {} op/dtype combination{} the runtime cannot execute:\n  {}",
                graph.name(), lines.size(), lines.size() == 1 ? "" : "s", fmt::join(lines, "\n  "));
}

}  // namespace hs::backend
