// Kernel dispatch of the reference interpreter: maps each op to its kernel, and each
// KernelSet to the kernels behind the compute-heavy ops. The one place that chooses kernels.
#include "interpreter_ops.h"

namespace hs::ir::detail {

namespace ref = kernels::ref;

namespace {

ref::TensorRef<float> fref(const Tensor& t) { return {t.f.data(), t.shape}; }
ref::TensorRef<int32_t> iref(const Tensor& t) { return {t.i.data(), t.shape}; }

// The kernels behind the compute-heavy ops for each KernelSet.
// kFast maps to the reference kernels until fast ones exist.
struct MatmulKernels {
  void (*conv2d_1x1)(const ref::Conv1x1Dims&, const float*, const float*, const float*, float*);
  void (*linear)(const ref::LinearDims&, const float*, const float*, const float*, float*);
  void (*matmul)(ref::TensorRef<float>, ref::TensorRef<float>, float*, ref::Dims);
};

const MatmulKernels& matmul_kernels(KernelSet set) {
  static constexpr MatmulKernels kReference{&ref::conv2d_1x1, &ref::linear, &ref::matmul};
  switch (set) {
    case KernelSet::kReference:
    case KernelSet::kFast: return kReference;
  }
  return kReference;
}

ref::BinaryOp binary_op(OpKind op) {
  switch (op) {
    case OpKind::kSub: return ref::BinaryOp::kSub;
    case OpKind::kMul: return ref::BinaryOp::kMul;
    case OpKind::kDiv: return ref::BinaryOp::kDiv;
    default: return ref::BinaryOp::kAdd;
  }
}

// Copies the elements of x into y (same element count): reshape, (un)squeeze, (de)quantize.
void copy_elements(const Tensor& x, Tensor& y) {
  if (y.dtype == DType::kF32) {
    y.f = x.f;
  } else {
    y.i = x.i;
  }
}

}  // namespace

ref::QuantSpec quant_spec(const QuantParams& q) {
  ref::QuantSpec s;
  s.granularity = q.kind == QuantKind::kPerAxis    ? ref::QuantGranularity::kPerAxis
                  : q.kind == QuantKind::kPerBlock ? ref::QuantGranularity::kPerBlock
                                                   : ref::QuantGranularity::kPerTensor;
  s.qmin = q.qmin;
  s.qmax = q.qmax;
  s.axis = q.axis;
  s.block_axis = q.block_axis;
  s.block = q.block;
  s.scales = q.scales;
  s.zero_points = q.zero_points;
  return s;
}

ref::IntStorage int_storage(DType dtype) {
  switch (dtype) {
    case DType::kU8: return ref::IntStorage::kU8;
    case DType::kI8: return ref::IntStorage::kI8;
    case DType::kU16: return ref::IntStorage::kU16;
    case DType::kI16: return ref::IntStorage::kI16;
    case DType::kI4: return ref::IntStorage::kI4;
    default: break;
  }
  HS_CHECK(false, "int_storage: not an integer storage type");
  return ref::IntStorage::kU8;
}

// One case per op; shapes were checked when the interpreter was created.
Status run_node(const Node& node, std::span<const Tensor* const> in, KernelSet kernels, Tensor& y) {
  const MatmulKernels& mk = matmul_kernels(kernels);
  const Tensor& x = *in[0];
  const bool real = y.dtype == DType::kF32;
  switch (node.op) {
    case OpKind::kConv2d: {
      const ref::Conv1x1Dims d{x.shape[0], x.shape[1], in[1]->shape[0], x.shape[2] * x.shape[3]};
      mk.conv2d_1x1(d, x.f.data(), in[1]->f.data(), in.size() > 2 ? in[2]->f.data() : nullptr,
                    y.f.data());
      return {};
    }
    case OpKind::kLinear: {
      const int64_t n_in = x.shape.back();
      const ref::LinearDims d{n_in > 0 ? x.numel() / n_in : 0, n_in, in[1]->shape[0]};
      mk.linear(d, x.f.data(), in[1]->f.data(), in.size() > 2 ? in[2]->f.data() : nullptr,
                y.f.data());
      return {};
    }
    case OpKind::kMatMul: mk.matmul(fref(x), fref(*in[1]), y.f.data(), y.shape); return {};
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
      ref::binary(binary_op(node.op), fref(x), fref(*in[1]), y.f.data(), y.shape);
      return {};
    case OpKind::kNeg: ref::neg(x.f.data(), x.numel(), y.f.data()); return {};
    case OpKind::kSilu: ref::silu(x.f.data(), x.numel(), y.f.data()); return {};
    case OpKind::kWhere:
      ref::where(iref(x), fref(*in[1]), fref(*in[2]), y.f.data(), y.shape);
      return {};
    case OpKind::kEq: ref::equal(fref(x), fref(*in[1]), y.i.data(), y.shape); return {};
    case OpKind::kReduceMin:
    case OpKind::kSoftmax: {
      HS_ASSIGN_OR_RETURN(int64_t axis,
                          normalize_axis(node.attrs.get_int("axis"),
                                         static_cast<int64_t>(x.shape.size()), op_name(node.op)));
      const ref::AxisDims d = ref::axis_dims(x.shape, axis);
      if (node.op == OpKind::kSoftmax) {
        ref::softmax(d, x.f.data(), y.f.data());
      } else {
        ref::reduce_min(d, x.f.data(), y.f.data());
      }
      return {};
    }
    case OpKind::kRmsNorm: {
      const int64_t n = x.shape.back();
      const auto eps = static_cast<float>(node.attrs.get_float("eps"));
      ref::rms_norm(n > 0 ? x.numel() / n : 0, n, x.f.data(), in[1]->f.data(), eps, y.f.data());
      return {};
    }
    case OpKind::kGather:
      if (real) return ref::gather(fref(x), iref(*in[1]), y.f.data());
      return ref::gather(iref(x), iref(*in[1]), y.i.data());
    case OpKind::kReshape:
    case OpKind::kUnsqueeze:
    case OpKind::kSqueeze:
    case OpKind::kQuantize:
    case OpKind::kDequantize: copy_elements(x, y); return {};
    case OpKind::kTranspose: {
      const std::vector<int64_t>& perm = node.attrs.get_ints("perm");
      if (real) {
        ref::transpose(fref(x), perm, y.f.data());
      } else {
        ref::transpose(iref(x), perm, y.i.data());
      }
      return {};
    }
    case OpKind::kSlice: {
      HS_ASSIGN_OR_RETURN(int64_t axis,
                          normalize_axis(node.attrs.get_int("axis"),
                                         static_cast<int64_t>(x.shape.size()), "slice"));
      const ref::SliceSpec s{axis, node.attrs.get_int("start"), node.attrs.get_int("end")};
      if (real) {
        ref::slice(fref(x), s, y.f.data());
      } else {
        ref::slice(iref(x), s, y.i.data());
      }
      return {};
    }
    case OpKind::kConcat: {
      HS_ASSIGN_OR_RETURN(int64_t axis,
                          normalize_axis(node.attrs.get_int("axis"),
                                         static_cast<int64_t>(x.shape.size()), "concat"));
      if (real) {
        std::vector<ref::TensorRef<float>> xs;
        for (const Tensor* t : in) xs.push_back(fref(*t));
        ref::concat(xs, axis, y.f.data());
      } else {
        std::vector<ref::TensorRef<int32_t>> xs;
        for (const Tensor* t : in) xs.push_back(iref(*t));
        ref::concat(xs, axis, y.i.data());
      }
      return {};
    }
    case OpKind::kExpand:
      if (real) {
        ref::expand(fref(x), y.f.data(), y.shape);
      } else {
        ref::expand(iref(x), y.i.data(), y.shape);
      }
      return {};
  }
  return errorf(ErrorKind::kUnsupported, "no reference kernel for op {}", op_name(node.op));
}

}  // namespace hs::ir::detail
