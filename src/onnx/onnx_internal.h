// Pieces of the ONNX export shared by its files (not a public header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "headsplit/backend/lower.h"
#include "headsplit/ir/graph.h"
#include "onnx.pb.h"

namespace hs::onnx::detail {

// ONNX TensorProto.DataType values (onnx.proto; INT4 is ONNX 1.16's, the field is an int32).
enum OnnxType : int32_t {
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kInt4 = 22,
};

// The ONNX element type of a headsplit storage type (f32, i32, bool, u8, i8, u16, i16, i4).
int32_t onnx_type(ir::DType dtype);

// A tensor's bytes as ONNX raw_data: IR bytes unchanged, except i4 (one element per byte in
// the IR) packed two per byte, element 2j in the low nibble of byte j.
std::vector<std::byte> raw_bytes(ir::DType dtype, std::span<const std::byte> ir_bytes);
int64_t raw_size(ir::DType dtype, int64_t numel);

// Where a weight's bytes live in the model: inline (raw_data) or in the shared external file.
struct WeightPlacement {
  bool external = false;
  int64_t offset = 0;  // in the external file
  int64_t length = 0;  // raw bytes
};

struct GraphContext {
  const backend::LoweredProgram* lowered = nullptr;
  size_t graph_index = 0;                                   // in lowered->program.graphs
  const std::vector<WeightPlacement>* placement = nullptr;  // per weight
  std::string external_file;                                // "weights.bin"
  bool isolate_ops = false;                                 // OnnxOptions::isolate_ops
};

// Converts one preprocessed graph into `out` (nodes, initializers, inputs, outputs).
// kUnsupported naming the value for what ONNX cannot express (a restricted activation range).
Status convert_graph(const ir::Graph& graph, const GraphContext& context, ::onnx::GraphProto& out);

}  // namespace hs::onnx::detail
