// Small pieces of the plan: strides, and fake quantization of a step's output (vectorized
// per-tensor, reference kernel for other granularities).
#include "step_plan.h"

#include "headsplit/kernels/elementwise.h"

namespace hs::runtime::detail {

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t a = shape.size(); a-- > 1;) s[a - 1] = s[a] * shape[a];
  return s;
}

FakeQuant::FakeQuant(const artifact::Quant& quant, std::vector<int64_t> shape)
    : kind_(quant.kind), quant_(quant), shape_(std::move(shape)) {
  count_ = kernels::ref::count(shape_);
}

void FakeQuant::apply(float* y) const {
  if (kind_ == artifact::QuantKind::kNone) return;
  if (kind_ == artifact::QuantKind::kPerTensor) {
    const int32_t zp = quant_.zero_points.empty() ? 0 : quant_.zero_points[0];
    kernels::fake_quantize_f32(y, count_, quant_.scales[0], zp, quant_.qmin, quant_.qmax);
    return;
  }
  kernels::ref::fake_quantize(y, shape_, quant_);
}

}  // namespace hs::runtime::detail
