// Names and sizes of the artifact's enums and the size arithmetic shared by writer and reader.
#include "headsplit/artifact/program.h"

#include <array>

#include "headsplit/artifact/int4.h"

namespace hs::artifact {

std::string_view element_type_name(ElementType type) {
  static constexpr std::array<std::string_view, kNumElementTypes> kNames = {
      "f32", "i32", "bool", "u8", "i8", "u16", "i16", "i4"};
  auto i = static_cast<size_t>(type);
  return i < kNames.size() ? kNames[i] : "unknown";
}

int64_t element_size(ElementType type) {
  switch (type) {
    case ElementType::kF32: return 4;
    case ElementType::kI32: return 4;
    case ElementType::kU16: return 2;
    case ElementType::kI16: return 2;
    case ElementType::kBool:
    case ElementType::kU8:
    case ElementType::kI8:
    case ElementType::kI4: return 1;
  }
  return 0;
}

int64_t element_min(ElementType type) {
  switch (type) {
    case ElementType::kI32: return INT32_MIN;
    case ElementType::kI16: return INT16_MIN;
    case ElementType::kI8: return INT8_MIN;
    case ElementType::kI4: return -8;
    default: return 0;
  }
}

int64_t element_max(ElementType type) {
  switch (type) {
    case ElementType::kI32: return INT32_MAX;
    case ElementType::kU16: return UINT16_MAX;
    case ElementType::kI16: return INT16_MAX;
    case ElementType::kU8: return UINT8_MAX;
    case ElementType::kI8: return INT8_MAX;
    case ElementType::kI4: return 7;
    default: return 0;
  }
}

std::string_view op_code_name(OpCode op) {
  static constexpr std::array<std::string_view, kNumOpCodes> kNames = {
      "conv2d",   "linear",    "matmul",  "add",     "sub",        "mul",
      "div",      "neg",       "where",   "eq",      "reduce_min", "softmax",
      "rms_norm", "silu",      "gather",  "reshape", "transpose",  "slice",
      "concat",   "unsqueeze", "squeeze", "expand",  "quantize",   "dequantize"};
  auto i = static_cast<size_t>(op);
  return i < kNames.size() ? kNames[i] : "unknown";
}

std::string_view tensor_role_name(TensorRole role) {
  static constexpr std::array<std::string_view, kNumTensorRoles> kNames = {
      "input", "output", "constant", "intermediate"};
  auto i = static_cast<size_t>(role);
  return i < kNames.size() ? kNames[i] : "unknown";
}

const GraphDesc* Program::find_graph(std::string_view name) const {
  for (const GraphDesc& graph : graphs) {
    if (graph.name == name) return &graph;
  }
  return nullptr;
}

Result<int64_t> checked_numel(const std::vector<int64_t>& shape, std::string_view what) {
  int64_t numel = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return errorf(ErrorKind::kShape, "{}: dimension {} is {}, expected >= 0", what, i, shape[i]);
    }
    // Cap at 2^53 elements: far beyond any real tensor, and leaves room for byte sizes.
    if (__builtin_mul_overflow(numel, shape[i], &numel) || numel > (int64_t{1} << 53)) {
      return errorf(ErrorKind::kOutOfRange, "{}: element count overflows at dimension {}", what, i);
    }
  }
  return numel;
}

Result<uint64_t> weight_storage_bytes(const WeightDesc& weight) {
  HS_ASSIGN_OR_RETURN(int64_t numel,
                      checked_numel(weight.shape, fmt::format("weight '{}'", weight.name)));
  if (weight.layout == WeightLayout::kInt4Packed) {
    return int4_packed_size(int4_rows(weight.shape));  // checked_numel: no overflow
  }
  return static_cast<uint64_t>(numel) * static_cast<uint64_t>(element_size(weight.type));
}

}  // namespace hs::artifact
