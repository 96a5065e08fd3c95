// Kernel dispatch of the reference interpreter: maps each op to its kernel, and each
// KernelSet to the kernels behind the compute-heavy ops. The one place that chooses kernels.
#include "interpreter_ops.h"

#include <vector>

#include "headsplit/kernels/gemm.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs::ir::detail {

namespace ref = kernels::ref;

namespace {

ref::TensorRef<float> fref(const Tensor& t) { return {t.f.data(), t.shape}; }
ref::TensorRef<int32_t> iref(const Tensor& t) { return {t.i.data(), t.shape}; }

// The kernels behind the compute-heavy ops for each KernelSet.
//   kReference: the naive kernels of kernels/reference.h (bit-exact contract, used by every
//               test that compares graphs).
//   kFast:      kernels::matmul_f32 (gemm.h: SIMD, threaded over output rows). It sums each
//               element with FMAs in a different order, so results differ from kReference by
//               the float rounding bound of gemm.h, about (K + 4) * 2^-24 * sum |x * w|. Use it
//               where speed matters and bits do not (calibration, evaluation).
struct MatmulKernels {
  Status (*conv2d_1x1)(const ref::Conv1x1Dims&, const float*, const float*, const float*, float*);
  Status (*linear)(const ref::LinearDims&, const float*, const float*, const float*, float*);
  Status (*matmul)(ref::TensorRef<float>, ref::TensorRef<float>, float*, ref::Dims);
};

Status ref_conv2d(const ref::Conv1x1Dims& d, const float* x, const float* w, const float* b,
                  float* y) {
  ref::conv2d_1x1(d, x, w, b, y);
  return {};
}
Status ref_linear(const ref::LinearDims& d, const float* x, const float* w, const float* b,
                  float* y) {
  ref::linear(d, x, w, b, y);
  return {};
}
Status ref_matmul(ref::TensorRef<float> a, ref::TensorRef<float> b, float* y, ref::Dims y_shape) {
  ref::matmul(a, b, y, y_shape);
  return {};
}

// One pool for the fast kernels of every interpreter in the process, used for calls of at
// least 2^20 multiply-adds: smaller ones run on the calling thread, where waking (and then
// spinning) workers costs more than it saves.
kernels::ThreadPool* fast_pool(int64_t m, int64_t n, int64_t k) {
  static kernels::ThreadPool pool;
  return m * n * k >= (int64_t{1} << 20) ? &pool : nullptr;
}

template <typename T>
std::span<const T> span_of(const T* p, int64_t n) {
  return {p, static_cast<size_t>(n)};
}

Status fast_conv2d(const ref::Conv1x1Dims& d, const float* x, const float* w, const float* b,
                   float* y) {
  // Per image: x[Ci,S] channel-major -> y[Co,S].
  const kernels::MatmulShape shape{d.spatial, d.co, d.ci, kernels::ActLayout::kChannelMajor};
  const kernels::F32Weights weights{span_of(w, d.co * d.ci),
                                    b != nullptr ? span_of(b, d.co) : std::span<const float>()};
  for (int64_t n = 0; n < d.n; ++n) {
    HS_TRY(kernels::matmul_f32(shape, span_of(x + n * d.ci * d.spatial, d.ci * d.spatial), weights,
                               {y + n * d.co * d.spatial, static_cast<size_t>(d.co * d.spatial)},
                               fast_pool(d.spatial, d.co, d.ci)));
  }
  return {};
}

Status fast_linear(const ref::LinearDims& d, const float* x, const float* w, const float* b,
                   float* y) {
  const kernels::MatmulShape shape{d.m, d.out, d.in, kernels::ActLayout::kTokenMajor};
  const kernels::F32Weights weights{span_of(w, d.out * d.in),
                                    b != nullptr ? span_of(b, d.out) : std::span<const float>()};
  return kernels::matmul_f32(shape, span_of(x, d.m * d.in), weights,
                             {y, static_cast<size_t>(d.m * d.out)}, fast_pool(d.m, d.out, d.in));
}

// Matrix index of an operand with batch dims `shape` read at batch index `i` of `out`
// (NumPy broadcasting: right-aligned, size-1 and missing axes repeat).
int64_t broadcast_matrix(ref::Dims shape, ref::Dims out, int64_t i) {
  int64_t index = 0, stride = 1;
  for (size_t a = out.size(), s = shape.size(); a-- > 0;) {
    const int64_t coord = i % out[a];
    i /= out[a];
    if (s == 0) continue;
    --s;
    if (shape[s] != 1) index += coord * stride;
    stride *= shape[s];
  }
  return index;
}

// y[M,N] = a[M,K] b[K,N] per (broadcast) batch matrix, as matmul_f32 in channel-major form
// with W = a (M rows of K) and x = b (K channels of N positions): y[M,N] is its [N', M'] output.
Status fast_matmul(ref::TensorRef<float> a, ref::TensorRef<float> b, float* y, ref::Dims y_shape) {
  const size_t ra = a.shape.size(), rb = b.shape.size(), ry = y_shape.size();
  const int64_t M = a.shape[ra - 2], K = a.shape[ra - 1], N = b.shape[rb - 1];
  const ref::Dims batch = y_shape.first(ry - 2);
  const kernels::MatmulShape shape{N, M, K, kernels::ActLayout::kChannelMajor};
  const int64_t matrices = ref::count(batch);
  for (int64_t i = 0; i < matrices; ++i) {
    const int64_t ia = broadcast_matrix(a.shape.first(ra - 2), batch, i);
    const int64_t ib = broadcast_matrix(b.shape.first(rb - 2), batch, i);
    HS_TRY(kernels::matmul_f32(shape, span_of(b.data + ib * K * N, K * N),
                               {span_of(a.data + ia * M * K, M * K), {}},
                               {y + i * M * N, static_cast<size_t>(M * N)},
                               fast_pool(M, N, K)));
  }
  return {};
}

const MatmulKernels& matmul_kernels(KernelSet set) {
  static constexpr MatmulKernels kReference{&ref_conv2d, &ref_linear, &ref_matmul};
  static constexpr MatmulKernels kFast{&fast_conv2d, &fast_linear, &fast_matmul};
  switch (set) {
    case KernelSet::kReference: return kReference;
    case KernelSet::kFast: return kFast;
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
      return mk.conv2d_1x1(d, x.f.data(), in[1]->f.data(),
                           in.size() > 2 ? in[2]->f.data() : nullptr, y.f.data());
    }
    case OpKind::kLinear: {
      const int64_t n_in = x.shape.back();
      const ref::LinearDims d{n_in > 0 ? x.numel() / n_in : 0, n_in, in[1]->shape[0]};
      return mk.linear(d, x.f.data(), in[1]->f.data(), in.size() > 2 ? in[2]->f.data() : nullptr,
                       y.f.data());
    }
    case OpKind::kMatMul: return mk.matmul(fref(x), fref(*in[1]), y.f.data(), y.shape);
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
