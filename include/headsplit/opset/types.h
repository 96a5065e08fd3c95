// Tensor types: element type, static shape and quantization parameters. Defined once here,
// below both halves: the IR's values (ir::TensorType is this type) and the artifact's tensor
// and weight descriptions (artifact::TensorDesc is one) carry the same struct.
//
// Quantization lives in the type, so every producer and consumer sees it:
//   real = scale[c] * (q - zero_point[c])
// where c is the channel (per-axis), the (channel, block) pair (per-block) or 0 (per-tensor),
// and q is an integer in [qmin, qmax] stored in `dtype`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "headsplit/support/result.h"

namespace hs::opset {

enum class DType : uint8_t {
  kF32,
  kI32,
  kBool,
  kU8,
  kI8,
  kU16,
  kI16,
  kI4,  // 4-bit signed; one element per byte in IR constants (the artifact packs two per byte)
};
inline constexpr int kNumDTypes = static_cast<int>(DType::kI4) + 1;

// "f32", "i32", "bool", "u8", "i8", "u16", "i16", "i4"; "unknown" outside the enum (a corrupt
// file's value, named in its error).
std::string_view dtype_name(DType dtype);
Result<DType> parse_dtype(std::string_view name);
// Bytes per element in IR constants, the artifact's I/O buffers and plain weights (i4: 1, one
// element per byte unpacked).
int64_t dtype_size(DType dtype);
bool dtype_is_integer_storage(DType dtype);  // u8, i8, u16, i16, i4: a quantized storage type
// The natural integer range of a storage type (i4: -8..7, i8: -128..127, u16: 0..65535, ...).
int64_t dtype_min(DType dtype);
int64_t dtype_max(DType dtype);

using Shape = std::vector<int64_t>;
int64_t num_elements(const Shape& shape);   // for shapes already checked
std::string shape_str(const Shape& shape);  // "[1,8,16]"

enum class QuantKind : uint8_t {
  kNone,
  kPerTensor,  // one {scale, zero_point}
  kPerAxis,    // one {scale, zero_point} per index of `axis`
  kPerBlock,   // one scale per (index of `axis`, block of `block` along `block_axis`); zp = 0
};
inline constexpr int kNumQuantKinds = static_cast<int>(QuantKind::kPerBlock) + 1;

std::string_view quant_kind_name(QuantKind kind);

// Quantization parameters of a tensor.
//   per-tensor: scales.size() == 1
//   per-axis:   scales.size() == shape[axis]
//   per-block:  scales.size() == shape[axis] * ceil(shape[block_axis] / block), row-major
//               [channel][block]; the last block of a row may be partial (shape[block_axis]
//               not a multiple of block): it covers the remaining elements only.
// zero_points has the same size as scales (all zero for symmetric schemes).
struct QuantParams {
  QuantKind kind = QuantKind::kNone;
  int bits = 0;      // 4, 8 or 16
  int32_t qmin = 0;  // integer range, e.g. -127..127 for symmetric int8 weights
  int32_t qmax = 0;
  int axis = 0;        // per-axis / per-block: the channel axis
  int block_axis = 1;  // per-block: the axis split into blocks
  int64_t block = 0;   // per-block: block size
  std::vector<float> scales;
  std::vector<int32_t> zero_points;

  bool is_quantized() const { return kind != QuantKind::kNone; }
  bool operator==(const QuantParams&) const = default;

  static QuantParams per_tensor(float scale, int32_t zero_point, int bits, int32_t qmin,
                                int32_t qmax);
  static QuantParams per_axis(int axis, std::vector<float> scales, std::vector<int32_t> zero_points,
                              int bits, int32_t qmin, int32_t qmax);
  static QuantParams per_block(int axis, int block_axis, int64_t block, std::vector<float> scales,
                               int bits, int32_t qmin, int32_t qmax);

  // Number of blocks per channel for a dimension of size `dim` (ceil(dim / block)).
  int64_t blocks_for(int64_t dim) const { return block > 0 ? (dim + block - 1) / block : 0; }
};

// The type of a value. `dtype` is the storage element type: f32 for float tensors, i32/bool for
// integer and boolean tensors, and an integer storage type (u16, u8, i8, i4, ...) for quantized
// tensors, whose real values are given by `quant`.
struct TensorType {
  DType dtype = DType::kF32;
  Shape shape;
  QuantParams quant;

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const { return num_elements(shape); }
  int64_t dim(int64_t axis) const;  // negative axes count from the end
  // A tensor with real values: float, or integer storage with quantization parameters.
  bool is_real() const { return dtype == DType::kF32 || quant.is_quantized(); }
  bool operator==(const TensorType&) const = default;

  static TensorType f32(Shape shape) { return {DType::kF32, std::move(shape), {}}; }
  static TensorType i32(Shape shape) { return {DType::kI32, std::move(shape), {}}; }
  static TensorType boolean(Shape shape) { return {DType::kBool, std::move(shape), {}}; }
};

// "f32[1,8,16]", with " q<...>" appended for quantized types (the text form's syntax).
std::string type_str(const TensorType& type);

// The one check of a type's quantization parameters, for the IR verifier and the artifact
// reader alike: integer storage (u8, i8, u16, i16, i4) exactly when quantized; no params when
// not; bits 4, 8 or 16 fitting the storage; qmin < qmax within the storage's range; axes in
// range; scale and zero-point counts matching the shape; scales positive and finite; zero
// points within [qmin, qmax]. Errors start with `what` (the tensor) and have kind `kind`
// (the IR: kShape; a file being read: kCorrupt).
Status check_quant(const TensorType& type, std::string_view what,
                   ErrorKind kind = ErrorKind::kShape);

// The most elements a tensor may have (2^53: far beyond any real tensor, room for bytes).
inline constexpr int64_t kMaxElements = int64_t{1} << 53;

// The element count of a shape from outside (a file, a user): an error of kind `kind` naming
// `what` for a negative dimension or more than kMaxElements elements.
Result<int64_t> checked_num_elements(const Shape& shape, std::string_view what,
                                     ErrorKind kind = ErrorKind::kShape);

// checked_num_elements on the shape, then check_quant.
Status check_type(const TensorType& type, std::string_view what,
                  ErrorKind kind = ErrorKind::kShape);

// Normalizes an axis in [-rank, rank) to [0, rank); error if out of range.
Result<int64_t> normalize_axis(int64_t axis, int64_t rank, std::string_view what);

// `type` restricted to [start, end) along `axis`: the shape, and the quantization params
// (per-axis on `axis`: scales/zero points [start, end); per-block on the channel axis: rows
// [start, end) of the [channel][block] scales; per-block on the block axis: whole blocks only),
// so params always travel with the elements they describe. kShape errors: a range outside the
// axis, or one that cuts through quantization blocks.
Result<TensorType> slice_type(const TensorType& type, int64_t axis, int64_t start, int64_t end);

}  // namespace hs::opset
