// Internal to the runtime: op knowledge the artifact reader leaves to the runtime (arity,
// attributes, shape rules), checked for every node at load so a kernel never sees shapes it
// does not expect. The rules are the IR's (ir/ops.h), restated here because the runtime links
// no IR code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/artifact/program.h"
#include "headsplit/support/result.h"

namespace hs::runtime::detail {

// How a tensor is held during a step: real values (f32 or quantized types), int32 or bool.
enum class ValueKind : uint8_t { kReal, kInt32, kBool };

// The kind of a tensor type; kUnsupported for integer storage without quantization params.
Result<ValueKind> value_kind(const artifact::TensorDesc& t);

// A node's attributes, validated and normalized (negative axes resolved).
struct NodeAttrs {
  int64_t axis = 0;
  int64_t start = 0, end = 0;        // slice
  bool keepdim = false;              // reduce_min
  double eps = 0.0;                  // rms_norm
  std::vector<int64_t> perm;         // transpose
  std::vector<int64_t> shape;        // reshape, expand
};

// Checks `node` of `graph`: operand count, attribute names and kinds, operand kinds and
// shapes, and that the declared output has the shape and kind the op produces. Errors are
// kShape / kUnsupported and start with `label` (the node's name and op).
Result<NodeAttrs> check_node(const artifact::GraphDesc& graph, const artifact::NodeDesc& node,
                             std::string_view label);

// Row-major element strides of a shape.
std::vector<int64_t> strides_of(const std::vector<int64_t>& shape);

// NumPy broadcast of two shapes, or nothing when they do not broadcast.
bool broadcast(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
               std::vector<int64_t>& out);

}  // namespace hs::runtime::detail
