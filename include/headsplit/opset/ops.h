// The op set: names, attributes, arity and shape rules, defined once for the IR (verifier,
// builders, passes) and the runtime (every node of an artifact is checked at load).
//
// Every op has exact semantics (docs/ir.md), a shape rule (infer_type), a reference kernel
// (kernels/reference.h) and tests. Broadcasting follows NumPy: shapes are aligned at the
// right; a size-1 dimension stretches. Canonicalization makes broadcast operands rank-equal.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "headsplit/opset/types.h"

namespace hs::opset {

// uint16_t: the artifact stores op codes as 16-bit values (room for fused ops).
enum class OpKind : uint16_t {
  kConv2d,      // (x[N,Ci,Hh,Ww], w[Co,Ci,1,1], b?[Co]) -> [N,Co,Hh,Ww]; 1x1, stride 1, no pad
  kLinear,      // (x[...,I], w[O,I], b?[O]) -> [...,O]
  kMatMul,      // (a[...,M,K], b[...,K,N]) -> [...,M,N]; batch dims broadcast
  kAdd,         // (a, b) -> broadcast(a, b)
  kSub,         //
  kMul,         //
  kDiv,         //
  kNeg,         // (x) -> x
  kWhere,       // (cond bool, a, b) -> broadcast: cond ? a : b
  kEq,          // (a, b) -> bool broadcast: a == b
  kReduceMin,   // (x) {axis, keepdim} -> min over axis
  kSoftmax,     // (x) {axis}: exp(x - max) / sum(exp(x - max))
  kRmsNorm,     // (x[...,D], w[D]) {eps}: x / sqrt(mean(x^2) + eps) * w, over the last axis
  kSilu,        // (x): x * sigmoid(x)
  kGather,      // (table[N,...], indices i32[...]) -> [indices..., table[1:]...]; rows of axis 0
  kReshape,     // (x) {shape}: same elements, new shape (row-major)
  kTranspose,   // (x) {perm}: out.shape[i] = x.shape[perm[i]]
  kSlice,       // (x) {axis, start, end}: x[..., start:end, ...] on axis
  kConcat,      // (x0, x1, ...) {axis}
  kUnsqueeze,   // (x) {axis}: insert a size-1 axis at `axis` of the output
  kSqueeze,     // (x) {axis}: remove a size-1 axis
  kExpand,      // (x) {shape}: broadcast x to `shape` (rank-equal; size-1 axes stretch)
  kQuantize,    // (x f32) -> quantized type (output type carries the params)
  kDequantize,  // (x quantized) -> f32
  // Appended after the first set (the artifact's op codes stay stable):
  kGelu,        // (x) {approximate "none" | "tanh"}: 0.5 x (1 + erf(x / sqrt 2)), or with
                //   tanh(sqrt(2/pi) (x + 0.044715 x^3)) in place of the erf
  kLayerNorm,   // (x[...,D], w[D], b?[D]) {eps}: (x - mean) / sqrt(var + eps) * w (+ b), over
                //   the last axis; var = mean((x - mean)^2)
  kTanh,        // (x): tanh(x) (logit soft-capping)
};

inline constexpr int kNumOpKinds = static_cast<int>(OpKind::kTanh) + 1;

// False for a value outside the enum (an op code from a newer or corrupt file).
bool is_known_op(OpKind op);
// "conv2d", "matmul", "reduce_min", ...; "unknown" when !is_known_op(op).
std::string_view op_name(OpKind op);
Result<OpKind> parse_op_name(std::string_view name);

// An attribute value: integer, float, integer list or string.
using AttrValue = std::variant<int64_t, double, std::vector<int64_t>, std::string>;

// Named attributes of a node, in insertion order (printed in that order).
class Attrs {
 public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<std::string, AttrValue>> init);

  Attrs& set(std::string name, AttrValue value);
  bool has(std::string_view name) const;
  const AttrValue* find(std::string_view name) const;
  // Typed getters; the verifier guarantees required attributes exist with the right type.
  int64_t get_int(std::string_view name) const;
  double get_float(std::string_view name) const;
  const std::vector<int64_t>& get_ints(std::string_view name) const;
  const std::string& get_string(std::string_view name) const;

  const std::vector<std::pair<std::string, AttrValue>>& entries() const { return entries_; }
  bool operator==(const Attrs&) const = default;

 private:
  std::vector<std::pair<std::string, AttrValue>> entries_;
};

// The kinds of AttrValue, in the variant's order.
enum class AttrKind : uint8_t { kInt, kFloat, kInts, kString };
std::string_view attr_kind_name(AttrKind kind);  // "int", "float", "int list", "string"

struct AttrSpec {
  std::string_view name;
  AttrKind kind;
};

struct OpInfo {
  OpKind op;
  std::string_view name;
  int min_inputs;
  int max_inputs;  // -1: variadic
  std::vector<AttrSpec> attrs;
  // Layout ops move elements without arithmetic; their outputs share their input's quant
  // params (reshape, transpose, slice, concat, unsqueeze, squeeze, expand).
  bool is_layout = false;
  // Elementwise ops with NumPy broadcasting.
  bool is_broadcast = false;
};

const OpInfo& op_info(OpKind op);  // op must be known
std::span<const OpInfo> all_ops();

// --- the shape and type rules (shape_rules.cpp) ---------------------------------------------
// Operands are `real` (f32, or integer storage with quantization params: the value is
// scale * (q - zero_point)), i32 or bool. Every rule checks its operands' kinds and shapes.

// The operand count and the attributes of the op's spec (present, with their kinds); other
// attributes are carried along. kShape errors without the op's name ("4 operands, expected 2
// or 3", "missing int attribute 'axis'"); kUnsupported for an unknown op kind.
Status check_signature(OpKind op, int n_inputs, const Attrs& attrs);

// The result type (dtype and shape; quant none) of `op` applied to `inputs`: the signature,
// then the op's rule. Errors start with the op's name and give the offending shapes.
Result<TensorType> infer_type(OpKind op, std::span<const TensorType* const> inputs,
                              const Attrs& attrs);

// A node's declared result type against the inferred one: the same shape; a real result may
// be f32 or quantized, quantize's must be quantized, dequantize's plain f32; i32 and bool
// results exactly. kShape errors start with `what`.
Status check_result_type(OpKind op, const TensorType& declared, const TensorType& inferred,
                         std::string_view what);

// NumPy broadcast of two shapes, or a kShape error.
Result<Shape> broadcast_shapes(const Shape& a, const Shape& b);

}  // namespace hs::opset
