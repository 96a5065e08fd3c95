// The program stored in a .hsa artifact, as plain C++ values: graphs of tensors and nodes,
// quantization parameters, weight descriptions, model metadata and the tokenizer.
//
// This is the runtime's view of a compiled model. It deliberately does not include anything
// from the IR (a deployed runner links no compiler code). Element types, quantization
// parameters, op kinds and attribute values are the op set's (opset/), the same types the IR
// uses, so the backend maps ir::Graph to GraphDesc by copying values, and the runtime checks
// every node with the op set's shape rules. The file format around it is in
// artifact/format.h and docs/artifact.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "headsplit/opset/ops.h"
#include "headsplit/opset/types.h"
#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::artifact {

// Storage element type (the schema's ElementType has the same values): names, sizes
// (opset::dtype_size: bytes per element in an I/O buffer or a plain weight, i4: 1) and
// integer ranges are the op set's.
using ElementType = opset::DType;
inline constexpr int kNumElementTypes = opset::kNumDTypes;
// Every arena-resident tensor stores 4 bytes per element whatever its element type: float32
// for real tensors (f32, or integer storage with quant params: the fake-quantized value),
// int32 for i32 and bool (docs/artifact.md "Execution semantics").
inline constexpr int64_t kArenaElementBytes = 4;
// Arena offsets are multiples of this.
inline constexpr int64_t kArenaAlignment = 64;

// Quantization parameters of a tensor or weight, real = scale[c] * (q - zero_point[c]): the op
// set's QuantParams (opset/types.h has the scale counts and the checks).
using QuantKind = opset::QuantKind;
inline constexpr int kNumQuantKinds = opset::kNumQuantKinds;
using Quant = opset::QuantParams;

// Op codes are the op set's kinds (16-bit in the file). Ops added later (fused ops) are
// appended after kDequantize in a new format minor version; readers reject codes they do not
// know (opset::kNumOpKinds).
using OpCode = opset::OpKind;
inline constexpr int kNumOpCodes = opset::kNumOpKinds;

// A node's attributes: named values (integer, float, integer list or string), no name twice.
using AttrValue = opset::AttrValue;
using Attrs = opset::Attrs;

enum class TensorRole : uint8_t { kInput, kOutput, kConstant, kIntermediate };
inline constexpr int kNumTensorRoles = static_cast<int>(TensorRole::kIntermediate) + 1;

std::string_view tensor_role_name(TensorRole role);  // "input", "output", ...

// A tensor of a graph: its type (element type `dtype`, `shape`, `quant`: the op set's
// TensorType, what the shape rules read) and where it lives.
struct TensorDesc : opset::TensorType {
  std::string name;
  // Constants: index into Program::weights. The weight has the same element type and quant
  // params, the same element count and the same leading dimension; the tensor's shape is how
  // this graph views the bytes (e.g. a tied LM head [V,D,1,1] over the embedding [V,D]).
  int32_t weight = -1;
  // Intermediates: byte offset in the graph's arena (memory plan; a multiple of
  // kArenaAlignment; kArenaElementBytes * numel bytes), or -1. Always -1 for graph I/O (the
  // runner binds their buffers) and constants.
  int64_t arena_offset = -1;
  TensorRole role = TensorRole::kIntermediate;

  bool operator==(const TensorDesc&) const = default;
};

struct NodeDesc {
  OpCode op = OpCode::kAdd;
  std::vector<int32_t> inputs;   // indices into GraphDesc::tensors
  std::vector<int32_t> outputs;  // indices into GraphDesc::tensors
  Attrs attrs;

  bool operator==(const NodeDesc&) const = default;
};

struct GraphDesc {
  std::string name;    // "prefill", "decode"
  int32_t ar_len = 1;  // T
  std::vector<TensorDesc> tensors;
  std::vector<NodeDesc> nodes;   // topological order
  std::vector<int32_t> inputs;   // tensor indices, in binding order
  std::vector<int32_t> outputs;  // tensor indices, in binding order
  int64_t arena_bytes = 0;       // size of the arena the arena offsets point into

  bool operator==(const GraphDesc&) const = default;
};

enum class WeightLayout : uint8_t {
  kPlain,       // opset::dtype_size(dtype) bytes per element, row-major
  kInt4Packed,  // i4 only: rows = shape[0] of K = numel / rows elements, ceil(K / 2) bytes
                // per row; element 2j of a row in the low nibble of its byte j, 2j+1 in the
                // high nibble; odd K pads the row's last high nibble with 0 (artifact/int4.h)
};
inline constexpr int kNumWeightLayouts = static_cast<int>(WeightLayout::kInt4Packed) + 1;

// A weight shared by every graph of the program: its type (dtype, shape, quant) and name. Its
// bytes live in the data section.
struct WeightDesc : opset::TensorType {
  std::string name;
  uint64_t offset = 0;      // from the start of the data section (assigned by the writer)
  uint64_t size_bytes = 0;  // stored size (assigned by the writer)
  WeightLayout layout = WeightLayout::kPlain;
  // Per-axis / per-block quant params are stored once, in the data section after the weight
  // (assigned by the writer, see weight_params_bytes): `quant.scales` as f32 at params_offset
  // (from the start of the data section, a multiple of 64), then `quant.zero_points` as i32
  // unless all are zero. params_size = 0: the params are stored inline in the program.
  uint64_t params_offset = 0;
  uint64_t params_size = 0;

  bool operator==(const WeightDesc&) const = default;
};

// What the runner and `headsplit info` need to know about the model, beyond the graphs.
struct ModelMetadata {
  std::string model_name;    // "stories260K"
  std::string model_source;  // "stories260K.bin"
  int64_t dim = 0;           // D
  int64_t n_layers = 0;      // L
  int64_t n_heads = 0;       // H
  int64_t n_kv_heads = 0;    // Hkv
  int64_t head_dim = 0;      // Dh
  int64_t hidden_dim = 0;    // F
  int64_t vocab_size = 0;    // V
  int64_t context_len = 0;   // C
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  std::string rope_scaling_type;  // "" (none) or "llama3"
  double rope_scaling_factor = 0.0;
  double rope_low_freq_factor = 0.0;
  double rope_high_freq_factor = 0.0;
  int64_t rope_original_max_positions = 0;
  std::vector<int64_t> ar_lengths;  // T of each graph, e.g. {32, 1}
  std::string quant_scheme;         // "16a4w", "8a8w", ...; "" for float
  int32_t kv_cache_bits = 0;        // 8 or 16 for quantized caches, 0 for float
  int32_t mask_bits = 0;            // attention_mask I/O: 16 (u16), 0 for float
  int32_t logits_bits = 0;          // logits I/O: 16 (u16), 0 for float
  bool split_applied = false;       // MHA -> SHA split ran at preprocess
  bool r3 = false;                  // Hadamard rotation of q and k after RoPE
  bool masked_softmax = false;      // where(mask == 0, s, rowmin(s) - 20) instead of add
  std::string producer;             // "headsplit 0.1.0"
  std::map<std::string, std::string> extra;

  bool operator==(const ModelMetadata&) const = default;
};

struct Program {
  ModelMetadata metadata;
  tokenizer::TokenizerData tokenizer;
  std::vector<WeightDesc> weights;  // shared by all graphs
  std::vector<GraphDesc> graphs;    // e.g. prefill (AR-N) and decode (AR-1)

  // The graph called `name`, or nullptr.
  const GraphDesc* find_graph(std::string_view name) const;
};

// Whether a weight's quant params go to the data section (per-axis and per-block, the ones whose
// count grows with the weight) rather than inline in the program (per-tensor).
bool params_in_data_section(const Quant& quant);
// Bytes of a weight's params in the data section: 4 per scale, plus 4 per zero point unless
// every zero point is 0; 0 when the params stay inline.
uint64_t weight_params_bytes(const Quant& quant);

// Bytes a weight occupies in the data section: dtype_size * numel, or
// rows * ceil(K / 2) for kInt4Packed (artifact/int4.h). Errors name the weight.
Result<uint64_t> weight_storage_bytes(const WeightDesc& weight);

}  // namespace hs::artifact
