// Small pieces of the plan: strides, and fake quantization of a step's output (vectorized
// per-tensor, reference kernel for other granularities).
#include "step_plan.h"

#include <algorithm>

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
  if (kind_ == artifact::QuantKind::kPerTensor) {
    pt_ = {.scale = quant_.scales[0],
           .zero_point = quant_.zero_points.empty() ? 0 : quant_.zero_points[0],
           .qmin = quant_.qmin,
           .qmax = quant_.qmax};
  }
}

void FakeQuant::apply(float* y, kernels::ThreadPool* pool) const {
  if (kind_ == artifact::QuantKind::kNone) return;
  if (kind_ == artifact::QuantKind::kPerTensor) {
    for_chunks(pool, count_, [&](int64_t first, int64_t last) {
      kernels::fake_quantize_f32(y + first, last - first, pt_.scale, pt_.zero_point, pt_.qmin,
                                 pt_.qmax);
    });
    return;
  }
  kernels::ref::fake_quantize(y, shape_, quant_);
}

void FakeQuant::apply_first(float* y, int64_t count) const {
  if (kind_ != artifact::QuantKind::kPerTensor) {
    apply(y);
    return;
  }
  kernels::fake_quantize_f32(y, count, pt_.scale, pt_.zero_point, pt_.qmin, pt_.qmax);
}

bool FakeQuant::params(kernels::FakeQuantParams* p) const {
  if (kind_ != artifact::QuantKind::kPerTensor) return false;
  *p = pt_;
  return true;
}

float FakeQuant::one(float x) const {
  if (kind_ != artifact::QuantKind::kPerTensor) return x;
  kernels::fake_quantize_f32(&x, 1, pt_.scale, pt_.zero_point, pt_.qmin, pt_.qmax);
  return x;
}

bool FakeQuant::same_per_tensor(const FakeQuant& other) const {
  const bool flat = kind_ == artifact::QuantKind::kNone || kind_ == artifact::QuantKind::kPerTensor;
  return flat && kind_ == other.kind_ && quant_ == other.quant_;
}

FakeQuant FakeQuant::over(int64_t count) const {
  FakeQuant f = *this;
  f.shape_ = {count};
  f.count_ = count;
  return f;
}

void FakeQuant::apply_live(float* y, int64_t row_len, ColumnSpan dead) const {
  if (kind_ != artifact::QuantKind::kPerTensor || dead.empty() || row_len <= 0 ||
      count_ % row_len != 0) {
    apply(y);
    return;
  }
  const int64_t d0 = std::clamp<int64_t>(dead.begin, 0, row_len);
  const int64_t d1 = std::clamp<int64_t>(dead.end, d0, row_len);
  for (int64_t o = 0; o < count_; o += row_len) {
    kernels::fake_quantize_f32(y + o, d0, pt_.scale, pt_.zero_point, pt_.qmin, pt_.qmax);
    kernels::fake_quantize_f32(y + o + d1, row_len - d1, pt_.scale, pt_.zero_point, pt_.qmin,
                               pt_.qmax);
  }
}

}  // namespace hs::runtime::detail
