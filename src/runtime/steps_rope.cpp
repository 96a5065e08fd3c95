// RopeStep: rotate-half RoPE as one step (steps.h RopeSpec, step_planner_rope.cpp). Every
// element goes through the kernels the node steps would call (binary_fq_f32 where the node's
// output is fake-quantized per tensor, else binary_f32; fake_quantize_f32 for a requantizing
// concat), on the same operand values: the same bits as the nine nodes one by one.
#include <algorithm>
#include <cstring>

#include "headsplit/kernels/elementwise.h"
#include "steps.h"

namespace hs::runtime::detail {

namespace {

class RopeStep final : public Step {
 public:
  explicit RopeStep(RopeSpec spec) : Step(spec.label), s_(std::move(spec)) {
    for (size_t k = 0; k < 6; ++k) fused_[k] = s_.fq[k].params(&fq_[k]);
    out_fused_ = s_.out_fq.params(&out_);
  }

  const RopeSpec& spec() const { return s_; }
  std::unique_ptr<Step> stack(const std::vector<const Step*>& others,
                              StackState& state) const override {
    return stack_ropes(specs_of(*this, others), state);
  }

  Status run(const ExecContext& ctx) const override {
    const float* x = ctx.ptr<const float>(s_.x);
    const float* c = ctx.ptr<const float>(s_.cos);
    const float* s = ctx.ptr<const float>(s_.sin);
    float* y = ctx.ptr<float>(s_.y);
    // Rows are independent (elementwise): split over the pool when there is enough work.
    const int64_t min_rows = std::max<int64_t>(1, kParallelMin / std::max<int64_t>(1, s_.dh));
    kernels::ThreadPool* pool = s_.rows >= 2 * min_rows ? ctx.pool : nullptr;
    kernels::parallel_for(pool, s_.rows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) row(x, c, s, y, r);
    });
    return ok_status();
  }

 private:
  void op(kernels::BinaryKind kind, const float* a, const float* b, float* y, size_t k) const {
    if (fused_[k]) {
      kernels::binary_fq_f32(kind, a, b, y, s_.half, fq_[k]);
    } else {
      kernels::binary_f32(kind, a, b, y, s_.half);
    }
  }

  void row(const float* x, const float* c, const float* s, float* y, int64_t r) const {
    using kernels::BinaryKind;
    const int64_t h = s_.half;
    const float* x1 = x + r * s_.dh;
    const float* x2 = x1 + h;
    const int64_t tr = r % s_.table_rows;
    const float* cr = c + tr * h;
    const float* sr = s + tr * h;
    float t[4][kRopeMaxHalf];
    op(BinaryKind::kMul, x1, cr, t[0], 0);  // x1cos
    op(BinaryKind::kMul, x2, sr, t[1], 1);  // x2sin
    op(BinaryKind::kMul, x1, sr, t[2], 3);  // x1sin
    op(BinaryKind::kMul, x2, cr, t[3], 4);  // x2cos
    float* yr = y + r * s_.dh;
    if (s_.dh > 2 * h && yr != x1) {  // the pass-through dims (in place: already there)
      std::memmove(yr + 2 * h, x1 + 2 * h, static_cast<size_t>(s_.dh - 2 * h) * sizeof(float));
    }
    op(BinaryKind::kSub, t[0], t[1], yr, 2);      // rot_a
    op(BinaryKind::kAdd, t[2], t[3], yr + h, 5);  // rot_b
    if (out_fused_) {
      kernels::fake_quantize_f32(yr, s_.dh, out_.scale, out_.zero_point, out_.qmin, out_.qmax);
    }
  }

  RopeSpec s_;
  kernels::FakeQuantParams fq_[6], out_;
  bool fused_[6] = {};
  bool out_fused_ = false;
};

}  // namespace

std::unique_ptr<Step> make_rope_step(RopeSpec spec) {
  return std::make_unique<RopeStep>(std::move(spec));
}

}  // namespace hs::runtime::detail
