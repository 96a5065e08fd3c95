// Scalar quantization math shared by the quantizer, the interpreter and the runtime.
//   q    = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)
//   real = scale * (q - zero_point)
#pragma once

#include <cmath>
#include <cstdint>

namespace hs::kernels {

// Round half to even (banker's rounding): 2.5 -> 2, 3.5 -> 4, -2.5 -> -2. Built from
// std::round and std::trunc, so it does not depend on the FP rounding mode (std::nearbyint
// would). NaN stays NaN, infinities stay infinite.
inline float round_half_even(float x) {
  const float r = std::round(x);  // ties away from zero
  if (std::fabs(x - std::trunc(x)) == 0.5f) {
    return 2.f * std::round(x * 0.5f);  // a tie: the even neighbour (x * 0.5f is exact)
  }
  return r;
}

inline int32_t quantize_one(float x, float scale, int32_t zero_point, int32_t qmin, int32_t qmax) {
  float q = round_half_even(x / scale) + static_cast<float>(zero_point);
  if (!(q >= static_cast<float>(qmin))) q = static_cast<float>(qmin);  // also maps NaN to qmin
  if (q > static_cast<float>(qmax)) q = static_cast<float>(qmax);
  return static_cast<int32_t>(q);
}

inline float dequantize_one(int32_t q, float scale, int32_t zero_point) {
  return scale * static_cast<float>(q - zero_point);
}

inline float fake_quantize_one(float x, float scale, int32_t zero_point, int32_t qmin,
                               int32_t qmax) {
  return dequantize_one(quantize_one(x, scale, zero_point, qmin, qmax), scale, zero_point);
}

}  // namespace hs::kernels
