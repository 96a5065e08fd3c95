// The program stored in a .hsa artifact, as plain C++ values: graphs of tensors and nodes,
// quantization parameters, weight descriptions, model metadata and the tokenizer.
//
// This is the runtime's view of a compiled model. It deliberately does not include anything
// from the IR (a deployed runner links no compiler code); the backend maps ir::Graph to
// GraphDesc, and the enums below mirror the IR's by name and order so that mapping is a cast.
// The file format around it is in artifact/format.h and docs/artifact.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::artifact {

// Storage element type; mirrors ir::DType in the same order.
enum class ElementType : uint8_t { kF32, kI32, kBool, kU8, kI8, kU16, kI16, kI4 };
inline constexpr int kNumElementTypes = static_cast<int>(ElementType::kI4) + 1;

std::string_view element_type_name(ElementType type);  // "f32", "i32", ..., "i4"
// Bytes per element in an I/O buffer or a plain weight (i4: 1, one element per byte unpacked).
int64_t element_size(ElementType type);
// Every arena-resident tensor stores 4 bytes per element whatever its element type: float32
// for real tensors (f32, or integer storage with quant params: the fake-quantized value),
// int32 for i32 and bool (docs/artifact.md "Execution semantics").
inline constexpr int64_t kArenaElementBytes = 4;
// Arena offsets are multiples of this.
inline constexpr int64_t kArenaAlignment = 64;
// The integer range of a storage type (i4: -8..7, u16: 0..65535, ...); f32 and bool: 0..0.
int64_t element_min(ElementType type);
int64_t element_max(ElementType type);

enum class QuantKind : uint8_t { kNone, kPerTensor, kPerAxis, kPerBlock };
inline constexpr int kNumQuantKinds = static_cast<int>(QuantKind::kPerBlock) + 1;

// Quantization parameters of a tensor or weight:
//   real = scale[c] * (q - zero_point[c])
// with q an integer in [qmin, qmax] stored in the element type, and c the channel:
//   per_tensor: scales.size() == 1
//   per_axis:   scales.size() == shape[axis]
//   per_block:  scales.size() == shape[axis] * ceil(shape[block_axis] / block), row-major
//               [channel][block]; the last block of a row may be partial.
// zero_points has the same size as scales (all zero for symmetric schemes).
struct Quant {
  QuantKind kind = QuantKind::kNone;
  int32_t bits = 0;
  int32_t qmin = 0;
  int32_t qmax = 0;
  int32_t axis = 0;
  int32_t block_axis = 1;
  int64_t block = 0;
  std::vector<float> scales;
  std::vector<int32_t> zero_points;

  bool operator==(const Quant&) const = default;
};

// Mirrors ir::OpKind by name and order. Ops the backend adds later (fused ops) are appended
// after kDequantize in a new format minor version; readers reject codes they do not know.
enum class OpCode : uint16_t {
  kConv2d,
  kLinear,
  kMatMul,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kNeg,
  kWhere,
  kEq,
  kReduceMin,
  kSoftmax,
  kRmsNorm,
  kSilu,
  kGather,
  kReshape,
  kTranspose,
  kSlice,
  kConcat,
  kUnsqueeze,
  kSqueeze,
  kExpand,
  kQuantize,
  kDequantize,
};
inline constexpr int kNumOpCodes = static_cast<int>(OpCode::kDequantize) + 1;

std::string_view op_code_name(OpCode op);  // "conv2d", "reduce_min", ... (the IR's names)

// An attribute value: integer, float, integer list or string (the IR's AttrValue).
using AttrValue = std::variant<int64_t, double, std::vector<int64_t>, std::string>;

struct Attr {
  std::string name;
  AttrValue value;

  bool operator==(const Attr&) const = default;
};

enum class TensorRole : uint8_t { kInput, kOutput, kConstant, kIntermediate };
inline constexpr int kNumTensorRoles = static_cast<int>(TensorRole::kIntermediate) + 1;

std::string_view tensor_role_name(TensorRole role);  // "input", "output", ...

struct TensorDesc {
  std::string name;
  ElementType type = ElementType::kF32;
  std::vector<int64_t> shape;
  Quant quant;
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
  std::vector<Attr> attrs;

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
  kPlain,       // element_size(type) bytes per element, row-major
  kInt4Packed,  // i4 only: rows = shape[0] of K = numel / rows elements, ceil(K / 2) bytes
                // per row; element 2j of a row in the low nibble of its byte j, 2j+1 in the
                // high nibble; odd K pads the row's last high nibble with 0 (artifact/int4.h)
};
inline constexpr int kNumWeightLayouts = static_cast<int>(WeightLayout::kInt4Packed) + 1;

// A weight shared by every graph of the program. Its bytes live in the data section.
struct WeightDesc {
  std::string name;
  ElementType type = ElementType::kF32;
  std::vector<int64_t> shape;
  Quant quant;
  uint64_t offset = 0;      // from the start of the data section (assigned by the writer)
  uint64_t size_bytes = 0;  // stored size (assigned by the writer)
  WeightLayout layout = WeightLayout::kPlain;

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

// Element count of a shape; error (naming `what`) on a negative dim or an overflow.
Result<int64_t> checked_numel(const std::vector<int64_t>& shape, std::string_view what);
// Bytes a weight occupies in the data section: element_size * numel, or
// rows * ceil(K / 2) for kInt4Packed (artifact/int4.h). Errors name the weight.
Result<uint64_t> weight_storage_bytes(const WeightDesc& weight);

}  // namespace hs::artifact
