// Compute steps: projections (fast int8/int4/f32 matmuls of kernels/qgemm.h and gemm.h, or the
// reference kernels), attention matmuls, binary ops, reference-kernel ops and I/O conversion.
// Each applies the output's fake quantization after its kernel (contract §2).
#include <mutex>
#include <span>

#include "headsplit/kernels/gemm.h"
#include "steps.h"

namespace hs::runtime::detail {

namespace ref = kernels::ref;

namespace {

class ProjectionStep final : public Step {
 public:
  explicit ProjectionStep(ProjectionSpec spec) : Step(spec.label), s_(std::move(spec)) {}

  Status run(const ExecContext& ctx) const override {
    const float* x = ctx.ptr<const float>(s_.x);
    float* y = ctx.ptr<float>(s_.y);
    const int64_t x_count = s_.m * s_.k, y_count = s_.m * s_.n;
    for (int64_t img = 0; img < s_.images; ++img) {
      const float* xi = x + img * x_count;
      float* yi = y + img * y_count;
      HS_TRY(run_one(ctx, xi, yi));
    }
    if (s_.fake_quant.active()) s_.fake_quant.apply(y);
    return ok_status();
  }

 private:
  Status run_one(const ExecContext& ctx, const float* x, float* y) const {
    const auto xs = std::span<const float>(x, static_cast<size_t>(s_.m * s_.k));
    const auto ys = std::span<float>(y, static_cast<size_t>(s_.m * s_.n));
    const kernels::MatmulShape shape{.m = s_.m, .n = s_.n, .k = s_.k, .layout = s_.layout};
    const auto bias = s_.bias != nullptr
                          ? std::span<const float>(s_.bias, static_cast<size_t>(s_.n))
                          : std::span<const float>();
    switch (s_.weights) {
      case ProjectionSpec::Weights::kF32: {
        const kernels::F32Weights w{
            .w = std::span<const float>(s_.w_f32, static_cast<size_t>(s_.n * s_.k)), .bias = bias};
        return kernels::matmul_f32(shape, xs, w, ys, ctx.pool);
      }
      case ProjectionSpec::Weights::kQuantized:
        return kernels::matmul_quantized(shape, xs, s_.w_q, ys, ctx.pool);
      case ProjectionSpec::Weights::kReference:
        if (s_.layout == kernels::ActLayout::kChannelMajor) {
          ref::conv2d_1x1({.n = 1, .ci = s_.k, .co = s_.n, .spatial = s_.m}, x, s_.w_f32, s_.bias,
                          y);
        } else {
          ref::linear({.m = s_.m, .in = s_.k, .out = s_.n}, x, s_.w_f32, s_.bias, y);
        }
        return ok_status();
    }
    return ok_status();
  }

  ProjectionSpec s_;
};

class MatmulStep final : public Step {
 public:
  explicit MatmulStep(MatmulSpec spec) : Step(spec.label), s_(std::move(spec)) {
    s_.shape.a_offsets = s_.a_offsets.data();
    s_.shape.b_batches = s_.b_batches.data();
    for (const MatmulPartSource& p : s_.parts) {
      parts_.push_back({.storage = p.source.elem,
                        .scale = p.source.scale,
                        .zero_point = p.source.zero_point,
                        .batch_stride = p.batch_stride,
                        .begin = p.begin,
                        .extent = p.extent});
    }
  }

  Status run(const ExecContext& ctx) const override {
    const std::byte* bases[8];
    for (size_t p = 0; p < s_.parts.size(); ++p) bases[p] = ctx.ptrs[s_.parts[p].source.ref];
    float* y = ctx.ptr<float>(s_.y);
    kernels::matmul_parts(s_.shape, ctx.ptr<const float>(s_.a), parts_.data(), bases,
                          static_cast<int64_t>(parts_.size()), y, ctx.pool);
    if (s_.fake_quant.active()) s_.fake_quant.apply(y);
    return ok_status();
  }

 private:
  MatmulSpec s_;
  std::vector<kernels::MatmulPart> parts_;  // s_.parts as the kernel reads them
};

// How one operand of a binary op maps onto the output.
enum class Operand : uint8_t { kFull, kScalar, kTile, kGeneral };

Operand classify(const std::vector<int64_t>& x, const std::vector<int64_t>& y) {
  const int64_t n = ref::count(x);
  if (x == y || (n == ref::count(y) && n > 0 && x.size() <= y.size() &&
                 std::equal(x.begin(), x.end(), y.end() - static_cast<int64_t>(x.size())))) {
    return Operand::kFull;
  }
  if (n == 1) return Operand::kScalar;
  // x (right-aligned, leading 1s dropped) equals the trailing dims of y: it repeats as a block.
  size_t lead = 0;
  while (lead < x.size() && x[lead] == 1) ++lead;
  const size_t rest = x.size() - lead;
  if (rest <= y.size() && std::equal(x.begin() + static_cast<int64_t>(lead), x.end(),
                                     y.end() - static_cast<int64_t>(rest))) {
    return Operand::kTile;
  }
  return Operand::kGeneral;
}

class BinaryStep final : public Step {
 public:
  explicit BinaryStep(BinarySpec spec) : Step(spec.label), s_(std::move(spec)) {
    a_kind_ = classify(s_.a_shape, s_.y_shape);
    b_kind_ = classify(s_.b_shape, s_.y_shape);
    n_ = ref::count(s_.y_shape);
    a_n_ = ref::count(s_.a_shape);
    b_n_ = ref::count(s_.b_shape);
  }

  Status run(const ExecContext& ctx) const override {
    const float* a = ctx.ptr<const float>(s_.a);
    const float* b = ctx.ptr<const float>(s_.b);
    float* y = ctx.ptr<float>(s_.y);
    compute(a, b, y);
    if (s_.fake_quant.active()) s_.fake_quant.apply(y);
    return ok_status();
  }

 private:
  void compute(const float* a, const float* b, float* y) const {
    const bool fast_a = a_kind_ != Operand::kGeneral, fast_b = b_kind_ != Operand::kGeneral;
    if (!fast_a || !fast_b || (a_kind_ != Operand::kFull && b_kind_ != Operand::kFull)) {
      ref::binary(static_cast<ref::BinaryOp>(s_.op), {a, s_.a_shape}, {b, s_.b_shape}, y,
                  s_.y_shape);
      return;
    }
    if (a_kind_ == Operand::kFull && b_kind_ == Operand::kFull) {
      kernels::binary_f32(s_.op, a, b, y, n_);
    } else if (b_kind_ == Operand::kScalar) {
      kernels::binary_scalar_f32(s_.op, a, b[0], /*b_is_rhs=*/true, y, n_);
    } else if (a_kind_ == Operand::kScalar) {
      kernels::binary_scalar_f32(s_.op, b, a[0], /*b_is_rhs=*/false, y, n_);
    } else if (b_kind_ == Operand::kTile) {
      for (int64_t o = 0; o < n_; o += b_n_) kernels::binary_f32(s_.op, a + o, b, y + o, b_n_);
    } else {  // a tiles
      for (int64_t o = 0; o < n_; o += a_n_) kernels::binary_f32(s_.op, a, b + o, y + o, a_n_);
    }
  }

  BinarySpec s_;
  Operand a_kind_ = Operand::kGeneral, b_kind_ = Operand::kGeneral;
  int64_t n_ = 0, a_n_ = 0, b_n_ = 0;
};

class RefStep final : public Step {
 public:
  explicit RefStep(RefSpec spec) : Step(spec.label), s_(std::move(spec)) {}

  Status run(const ExecContext& ctx) const override {
    auto in = [&](size_t i) { return ctx.ptr<const float>(s_.inputs[i]); };
    auto in_ref = [&](size_t i) { return ref::TensorRef<float>{in(i), s_.in_shapes[i]}; };
    const int64_t n = ref::count(s_.y_shape);
    switch (s_.op) {
      case RefOp::kNeg: ref::neg(in(0), n, ctx.ptr<float>(s_.y)); break;
      case RefOp::kSilu: ref::silu(in(0), n, ctx.ptr<float>(s_.y)); break;
      case RefOp::kTanh: ref::tanh(in(0), n, ctx.ptr<float>(s_.y)); break;
      case RefOp::kGelu:
        ref::gelu(in(0), n, s_.gelu_tanh ? ref::GeluApprox::kTanh : ref::GeluApprox::kNone,
                  ctx.ptr<float>(s_.y));
        break;
      case RefOp::kLayerNorm: {
        const int64_t d = s_.y_shape.empty() ? 1 : s_.y_shape.back();
        ref::layer_norm(d > 0 ? n / d : 0, d, in(0), in(1), s_.inputs.size() > 2 ? in(2) : nullptr,
                        s_.eps, ctx.ptr<float>(s_.y));
        break;
      }
      case RefOp::kRmsNorm: {
        const int64_t d = s_.y_shape.empty() ? 1 : s_.y_shape.back();
        ref::rms_norm(d > 0 ? n / d : 0, d, in(0), in(1), s_.eps, ctx.ptr<float>(s_.y));
        break;
      }
      case RefOp::kSoftmax: {
        const ref::AxisDims d = ref::axis_dims(s_.in_shapes[0], s_.axis);
        if (d.inner == 1) {
          kernels::softmax_rows_f32(in(0), ctx.ptr<float>(s_.y), d.outer, d.n, ctx.pool);
        } else {
          ref::softmax(d, in(0), ctx.ptr<float>(s_.y));
        }
        break;
      }
      case RefOp::kReduceMin:
        ref::reduce_min(ref::axis_dims(s_.in_shapes[0], s_.axis), in(0), ctx.ptr<float>(s_.y));
        break;
      case RefOp::kEq:
        ref::equal(in_ref(0), in_ref(1), ctx.ptr<int32_t>(s_.y), s_.y_shape);
        return ok_status();  // bool output: no fake quantization
      case RefOp::kWhere:
        ref::where({ctx.ptr<const int32_t>(s_.inputs[0]), s_.in_shapes[0]}, in_ref(1), in_ref(2),
                   ctx.ptr<float>(s_.y), s_.y_shape);
        break;
    }
    if (s_.fake_quant.active()) s_.fake_quant.apply(ctx.ptr<float>(s_.y));
    return ok_status();
  }

 private:
  RefSpec s_;
};

class ConvertStep final : public Step {
 public:
  explicit ConvertStep(ConvertSpec spec) : Step(spec.label), s_(std::move(spec)) {}

  Status run(const ExecContext& ctx) const override {
    if (s_.to_storage) {
      kernels::quantize_f32(ctx.ptr<const float>(s_.from), s_.count, s_.scale, s_.zero_point,
                            s_.qmin, s_.qmax, s_.storage, ctx.ptr<std::byte>(s_.to));
    } else {
      kernels::dequantize_to_f32(ctx.ptr<const std::byte>(s_.from), s_.storage, s_.count, s_.scale,
                                 s_.zero_point, ctx.ptr<float>(s_.to));
    }
    return ok_status();
  }

 private:
  ConvertSpec s_;
};

class ChainsStep final : public Step {
 public:
  explicit ChainsStep(ChainsSpec spec) : Step(spec.label), s_(std::move(spec)) {}

  Status run(const ExecContext& ctx) const override {
    for (const auto& phase : s_.phases) HS_TRY(run_phase(ctx, phase));
    return ok_status();
  }

 private:
  static Status run_phase(const ExecContext& ctx,
                          const std::vector<std::vector<std::unique_ptr<Step>>>& tasks) {
    std::mutex mutex;
    Status first = ok_status();
    int64_t first_chain = -1;
    kernels::parallel_for(
        ctx.pool, static_cast<int64_t>(tasks.size()), [&](int64_t begin, int64_t end) {
          for (int64_t c = begin; c < end; ++c) {
            for (const auto& step : tasks[static_cast<size_t>(c)]) {
              Status s = step->run(ctx);
              if (s.ok()) continue;
              std::lock_guard<std::mutex> lock(mutex);
              if (first_chain < 0 || c < first_chain) {  // the error the serial order meets first
                first_chain = c;
                first = std::move(s).error().with_context(step->label());
              }
              break;
            }
          }
        });
    return first;
  }

  ChainsSpec s_;
};

}  // namespace

std::unique_ptr<Step> make_chains_step(ChainsSpec spec) {
  return std::make_unique<ChainsStep>(std::move(spec));
}
std::unique_ptr<Step> make_projection_step(ProjectionSpec spec) {
  return std::make_unique<ProjectionStep>(std::move(spec));
}
std::unique_ptr<Step> make_matmul_step(MatmulSpec spec) {
  return std::make_unique<MatmulStep>(std::move(spec));
}
std::unique_ptr<Step> make_binary_step(BinarySpec spec) {
  return std::make_unique<BinaryStep>(std::move(spec));
}
std::unique_ptr<Step> make_ref_step(RefSpec spec) {
  return std::make_unique<RefStep>(std::move(spec));
}
std::unique_ptr<Step> make_convert_step(ConvertSpec spec) {
  return std::make_unique<ConvertStep>(std::move(spec));
}

}  // namespace hs::runtime::detail
