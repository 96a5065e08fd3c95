// Small pieces of the plan: fake quantization of a step's output (vectorized per-tensor,
// reference kernel for other granularities).
#include "step_plan.h"

#include "headsplit/kernels/elementwise.h"

namespace hs::runtime::detail {

kernels::ref::QuantSpec quant_spec(const artifact::Quant& q) {
  kernels::ref::QuantSpec s;
  switch (q.kind) {
    case artifact::QuantKind::kPerAxis: s.granularity = kernels::ref::QuantGranularity::kPerAxis; break;
    case artifact::QuantKind::kPerBlock:
      s.granularity = kernels::ref::QuantGranularity::kPerBlock;
      break;
    default: s.granularity = kernels::ref::QuantGranularity::kPerTensor; break;
  }
  s.qmin = q.qmin;
  s.qmax = q.qmax;
  s.axis = q.axis;
  s.block_axis = q.block_axis;
  s.block = q.block;
  s.scales = q.scales;
  s.zero_points = q.zero_points;
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
  kernels::ref::fake_quantize(y, shape_, quant_spec(quant_));
}

}  // namespace hs::runtime::detail
