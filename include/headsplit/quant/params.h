// Observer ranges and the quantization parameters computed from them (MinMax observers as in
// the reference's recipes), and weight quantization to integer storage.
//
// Activations, per-tensor asymmetric unsigned (PyTorch MinMaxObserver, quint8/quint16):
//   lo = min(min, 0), hi = max(max, 0)          (0 is always exactly representable)
//   scale = max((hi - lo) / (qmax - qmin), eps)
//   zero_point = clamp(qmin - round_half_even(lo / scale), qmin, qmax)
// Weights, symmetric, per output channel (axis 0) or per block of `block` input channels
// (axis 1; the last block of a row covers the remaining I % block channels when I is not a
// multiple of block):
//   scale = max(max |w| / qmax, eps),  zero_point = 0,  q = clamp(round_half_even(w / scale))
// eps, the smallest scale (the reference PR's observer eps): 8-bit activations 2^-21,
// 16-bit activations 2^-29, per-channel and per-block weights 2^-29 (the reference gives
// every per-channel / per-block config 2^-29, whatever the weight width).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "headsplit/ir/graph.h"
#include "headsplit/quant/scheme.h"

namespace hs::quant {

inline constexpr float kEps8Bit = 0x1p-21f;
inline constexpr float kEps16Bit = 0x1p-29f;
inline constexpr float kEpsWeight = 0x1p-29f;

// The running min/max of one observed tensor.
struct Range {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();

  bool empty() const { return min > max; }
  void observe(std::span<const float> values);
  void merge(const Range& other);
  bool operator==(const Range&) const = default;
};

// Observed ranges by value name (what calibration produces and apply_quantization reads; the
// calibration run itself is ptq/calibrate.h).
class CalibrationTable {
 public:
  // The range of `name`, or nullptr if it was never observed.
  const Range* find(std::string_view name) const;
  // The range to update for `name` (created empty). References stay valid.
  Range& at(const std::string& name) { return ranges_[name]; }
  size_t size() const { return ranges_.size(); }
  const std::unordered_map<std::string, Range>& ranges() const { return ranges_; }

 private:
  std::unordered_map<std::string, Range> ranges_;
};

// The activation storage of a bit width: u8 0..255 or u16 0..65535.
ir::DType activation_dtype(int bits);

// Per-tensor asymmetric params of `range` at `bits` (8 or 16), as above. kInvalidArgument
// naming `what` when the range is empty or not finite.
Result<ir::QuantParams> activation_params(const Range& range, int bits, std::string_view what);

// The fixed encoding of the attention mask input: u16, scale 255/65535, zero point 65535, so
// 65535 (attend) is 0.0 and 0 (masked) is -255.0.
ir::QuantParams mask_params();

// How a weight is quantized.
struct WeightSpec {
  int bits = 8;       // 8: i8 -127..127;  4: i4 -7..7 (one value per byte in IR constants)
  int64_t block = 0;  // 0: per output channel (axis 0); > 0: per block along axis 1
  // Per block only: the scales in LPBQ form (lpbq_scales below), as QNN runs them; false keeps
  // the observer's free float scales.
  bool lpbq = true;
};

// LPBQ (low-power block quantization: QNN's blockwise expansion, which the reference's QNN
// builder derives from the observer's per-block scales s_b). Per row o with blocks b:
//   c_o = r16(max_b s_b / 16)              r16: rounded to nearest to 16 significant bits
//   m_b = clamp(round_half_even(s_b / c_o), 1, 16)      (the division in float, as torch does)
//   s'_b = c_o * m_b                       exact in float (16 + 5 bits)
// quantize_weight rounds the integers against s' (what the HTP multiplies them by); the
// reference rounds them against s_b and lets the builder re-express the scales afterwards, which
// loses accuracy (stories260K 16a4w-block32 perplexity 6.3872 here vs 6.4455 that way; free float
// scales 6.3705). GPTQ's integers (WeightOverride::q) are kept as given. The builder's own
// derivation from s' gives back c_o and m_b exactly (the largest block has m = 16), so the
// artifact's numerics and the HTP's agree. r16 (the reference keeps
// c's 24 bits; a relative change of at most 2^-17) makes every partial sum of a row's exact
// integer path an exact double, so the CPU kernels read 1-byte multipliers instead of float
// scales (kernels/qgemm.h, lpbq_factor) with the same bits. scales: [rows, blocks] in place.
void lpbq_scales(std::span<float> scales, int64_t rows, int64_t blocks);

// A quantized constant: its type (integer storage dtype, shape, params) and its bytes.
struct QuantizedWeight {
  ir::TensorType type;
  BufferView data;  // numel bytes (i8 or i4 one per byte)
};

// What replaces MinMax + round to nearest for one weight (weight_search.h): its scales (per
// row, or row-major [O, blocks]) and, for GPTQ, its integers (one per element, in
// -qmax..qmax; empty: round to nearest with `scales`).
struct WeightOverride {
  std::vector<float> scales;
  std::vector<int8_t> q;
};
using WeightOverrides = std::unordered_map<std::string, WeightOverride>;  // by weight name

// Quantizes float32 `values` of `shape` ([O, I] or [O, I, 1, 1]; any rank >= 1 for per-channel,
// where a row is everything after axis 0) with `spec`. kInvalidArgument naming `what` for a
// non-finite weight, kShape for a per-block spec on a rank-1 shape.
// With `override`, its scales replace the MinMax ones (kInvalidArgument when their count or
// values are wrong: not finite or below eps) and its integers, when given, replace rounding.
Result<QuantizedWeight> quantize_weight(std::span<const float> values, const ir::Shape& shape,
                                        const WeightSpec& spec, std::string_view what,
                                        const WeightOverride* override = nullptr);

}  // namespace hs::quant
