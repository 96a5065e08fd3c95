// Per-op planning: kernel selection for projections (f32 / int8 / int4 weights, per channel or
// per block), matmuls (with fused cache reads), elementwise and reference-kernel ops, gathers
// from (quantized) tables. Layout ops and fusion are in planner_layout.cpp.
#include <fmt/format.h>

#include "headsplit/artifact/int4.h"
#include "step_planner.h"
#include "steps.h"

namespace hs::runtime::detail {

using artifact::ElementType;
using artifact::OpCode;
using artifact::QuantKind;

namespace {

bool zero_points_zero(const artifact::Quant& q) {
  for (int32_t zp : q.zero_points) {
    if (zp != 0) return false;
  }
  return true;
}

// The weight address as the projection step holds it.
const float* absolute_f32(const StepPlan& plan, const Source& src) {
  return reinterpret_cast<const float*>(
      static_cast<uintptr_t>(plan.refs[static_cast<size_t>(src.ref)].offset));
}

}  // namespace

Status StepPlanner::plan_projection(int32_t i, const std::string& label) {
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  const bool conv = node.op == OpCode::kConv2d;
  const artifact::TensorDesc& x = tensor(node.inputs[0]);
  const artifact::TensorDesc& w = tensor(node.inputs[1]);
  const int32_t out = node.outputs[0];
  if (w.role != artifact::TensorRole::kConstant ||
      (node.inputs.size() == 3 && tensor(node.inputs[2]).role != artifact::TensorRole::kConstant)) {
    return errorf(ErrorKind::kUnsupported, "{}: weight and bias must be constants", label);
  }
  HS_ASSIGN_OR_RETURN(const Source xs, dense(node.inputs[0], label));
  ProjectionSpec spec{.label = label};
  spec.n = w.shape[0];
  if (conv) {
    spec.layout = kernels::ActLayout::kChannelMajor;
    spec.images = x.shape[0];
    spec.k = x.shape[1];
    spec.m = x.shape[2] * x.shape[3];
  } else {
    spec.k = x.shape.back();
    spec.m = spec.k > 0 ? numel(x.shape) / spec.k : 0;
  }
  if (node.inputs.size() == 3) {
    const Source bias = constant_dense(node.inputs[2]);
    spec.bias = absolute_f32(plan_, bias);
  }
  const artifact::Quant& q = w.quant;
  if (options_.reference_kernels || w.dtype == ElementType::kF32) {
    const Source ws = constant_dense(node.inputs[1]);
    spec.weights = options_.reference_kernels ? ProjectionSpec::Weights::kReference
                                              : ProjectionSpec::Weights::kF32;
    spec.w_f32 = absolute_f32(plan_, ws);
  } else {
    const bool int8 = w.dtype == ElementType::kI8, int4 = w.dtype == ElementType::kI4;
    const bool layout_ok = q.kind == QuantKind::kPerTensor ||
                           (q.kind == QuantKind::kPerAxis && q.axis == 0) ||
                           (q.kind == QuantKind::kPerBlock && q.axis == 0 && q.block_axis == 1);
    if (!(int8 || int4) || !layout_ok || !zero_points_zero(q)) {
      return errorf(ErrorKind::kUnsupported,
                    "{}: weight '{}' ({}, {}) has no kernel: projections take f32 weights or "
                    "symmetric int8/int4 weights per tensor, per output channel or per block "
                    "along the input channels",
                    label, w.name, opset::dtype_name(w.dtype),
                    q.kind == QuantKind::kPerBlock ? "per-block" : "quantized");
    }
    const std::span<const std::byte> bytes = artifact_.weight_bytes(w.weight);
    if (int4) {
      const artifact::Int4Rows rows =
          artifact::int4_rows(artifact_.program().weights[static_cast<size_t>(w.weight)].shape);
      if (static_cast<int64_t>(rows.rows) != spec.n || static_cast<int64_t>(rows.k) != spec.k) {
        return errorf(ErrorKind::kUnsupported,
                      "{}: int4 weight '{}' is stored as {} rows of {}, expected {} rows of {}",
                      label, w.name, rows.rows, rows.k, spec.n, spec.k);
      }
    }
    spec.weights = ProjectionSpec::Weights::kQuantized;
    spec.w_q.bits = int4 ? kernels::WeightBits::kInt4 : kernels::WeightBits::kInt8;
    spec.w_q.data = bytes;
    spec.w_q.block = q.kind == QuantKind::kPerBlock ? q.block : 0;
    if (q.kind == QuantKind::kPerTensor) {  // widened to one scale per output channel
      auto scales = std::make_unique<float[]>(static_cast<size_t>(spec.n));
      for (int64_t c = 0; c < spec.n; ++c) scales[static_cast<size_t>(c)] = q.scales[0];
      spec.w_q.scales = std::span<const float>(scales.get(), static_cast<size_t>(spec.n));
      plan_.prepared_bytes += spec.n * 4;
      plan_.prepared_f32.push_back(std::move(scales));
    } else {
      spec.w_q.scales = q.scales;  // lives in the artifact's program
    }
    // LPBQ-form block scales (quant/params.h): the decode kernel reads 1-byte multipliers.
    if (int4 && q.kind == QuantKind::kPerBlock &&
        kernels::lpbq_factor(q.scales, spec.n, spec.k, q.block, spec.own_lpbq_scales,
                             spec.own_lpbq_mult)) {
      if (kernels::lpbq_row_sums_used(spec.m)) {  // the VNNI decode's weight sums
        spec.own_lpbq_sums =
            kernels::lpbq_row_sums(bytes, spec.own_lpbq_mult, spec.n, spec.k, q.block);
      }
      plan_.prepared_bytes += static_cast<int64_t>(spec.own_lpbq_scales.size() * 4 +
                                                   spec.own_lpbq_mult.size() +
                                                   spec.own_lpbq_sums.size() * 4);
      ++plan_.lpbq_projections;
    } else {
      spec.own_lpbq_scales.clear();
      spec.own_lpbq_mult.clear();
    }
    if (spec.bias != nullptr) {
      spec.w_q.bias = std::span<const float>(spec.bias, static_cast<size_t>(spec.n));
    }
    // A per-tensor quantized x of at most 16 bits: the kernel's exact integer path where it has
    // a SIMD implementation (it checks that every x is on this grid and falls back to the
    // float path if not). Its results do not depend on M, so an AR-N step and N AR-1 steps
    // agree bit for bit.
    const artifact::Quant& xq = x.quant;
    if (xq.kind == QuantKind::kPerTensor && xq.scales.size() == 1 && xq.scales[0] > 0.f &&
        int64_t{xq.qmax} - xq.qmin <= 65535 &&
        kernels::quantized_exact_is_fast(spec.w_q.bits, spec.w_q.block, spec.k)) {
      spec.w_q.act_scale = xq.scales[0];
      spec.w_q.act_offset = (xq.zero_points.empty() ? 0 : xq.zero_points[0]) - xq.qmin;
    }
  }
  HS_ASSIGN_OR_RETURN(const Source ys, output_dest(out));
  HS_TRY(check_overlap(label, ys, out, {{xs, node.inputs[0]}}, false));
  spec.x = xs.ref;
  spec.y = ys.ref;
  spec.fake_quant = fake_quant_of(out);
  spec.row_output = row_output_[static_cast<size_t>(i)];
  spec.rows = row_buffer_[static_cast<size_t>(i)];
  plan_.steps.push_back(make_projection_step(std::move(spec)));
  return ok_status();
}

Status StepPlanner::plan_matmul(int32_t i, const std::string& label) {
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  const artifact::TensorDesc& a = tensor(node.inputs[0]);
  const int32_t out = node.outputs[0];
  const std::vector<int64_t>& ys_shape = tensor(out).shape;
  HS_ASSIGN_OR_RETURN(const Source as, dense(node.inputs[0], label));
  LazyOperand b;
  const TensorState& bst = state_[static_cast<size_t>(node.inputs[1])];
  if (bst.lazy >= 0) {
    b = lazy_[static_cast<size_t>(bst.lazy)];
  } else {
    HS_ASSIGN_OR_RETURN(const Source bs, operand(node.inputs[1], label));
    b.shape = tensor(node.inputs[1]).shape;
    const int64_t kb = b.shape[b.shape.size() - 2], nb = b.shape.back();
    b.parts.push_back({.source = bs, .batch_stride = kb * nb, .begin = 0, .extent = nb});
  }
  const size_t rank = ys_shape.size();
  MatmulSpec spec{.label = label};
  spec.shape.m = ys_shape[rank - 2];
  spec.shape.n = ys_shape[rank - 1];
  spec.shape.k = a.shape.back();
  spec.shape.concat_on_n = b.concat_on_n;
  // Batch offsets: y's batch dims, with A and B broadcast (right-aligned, size-1 stretches).
  const std::vector<int64_t> y_batch(ys_shape.begin(), ys_shape.end() - 2);
  auto batch_strides = [&](const std::vector<int64_t>& shape, int64_t unit) {
    const std::vector<int64_t> dims(shape.begin(), shape.end() - 2);
    const std::vector<int64_t> row = strides_of(dims);
    std::vector<int64_t> s(y_batch.size(), 0);
    for (size_t d = 0; d < dims.size(); ++d) {
      const size_t yd = y_batch.size() - dims.size() + d;
      s[yd] = dims[d] == 1 ? 0 : row[d] * unit;
    }
    return s;
  };
  const std::vector<int64_t> sa = batch_strides(a.shape, spec.shape.m * spec.shape.k);
  const std::vector<int64_t> sb = batch_strides(b.shape, 1);
  const int64_t batches = numel(y_batch);
  std::vector<int64_t> index(y_batch.size(), 0);
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t ao = 0, bo = 0;
    for (size_t d = 0; d < index.size(); ++d) {
      ao += index[d] * sa[d];
      bo += index[d] * sb[d];
    }
    spec.a_offsets.push_back(ao);
    spec.b_batches.push_back(bo / b.batch_div);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < y_batch[d]) break;
      index[d] = 0;
    }
  }
  spec.shape.batches = batches;
  HS_ASSIGN_OR_RETURN(const Source ys, output_dest(out));
  std::vector<std::pair<Source, int32_t>> ins = {{as, node.inputs[0]}};
  if (bst.lazy < 0) ins.emplace_back(b.parts[0].source, node.inputs[1]);
  HS_TRY(check_overlap(label, ys, out, ins, false));
  for (const MatmulPartSource& p : b.parts) {  // fused parts: check each against the output
    const Ref& r = plan_.refs[static_cast<size_t>(p.source.ref)];
    const Ref& o = plan_.refs[static_cast<size_t>(ys.ref)];
    if (r.base == kBaseArena && o.base == kBaseArena && r.offset == o.offset) {
      return errorf(ErrorKind::kCorrupt, "{}: output '{}' shares arena offset {} with an operand",
                    label, tensor(out).name, o.offset);
    }
  }
  spec.a = as.ref;
  spec.y = ys.ref;
  spec.parts = std::move(b.parts);
  spec.fake_quant = fake_quant_of(out);
  spec.skip = node_skip_[static_cast<size_t>(i)];
  if (!spec.shape.concat_on_n) spec.skip_rows = dead_rows_[static_cast<size_t>(node.inputs[0])];
  plan_.steps.push_back(make_matmul_step(std::move(spec)));
  return ok_status();
}

Status StepPlanner::plan_elementwise(int32_t i, const std::string& label, const NodeAttrs& attrs) {
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  const int32_t out = node.outputs[0];
  std::vector<std::pair<Source, int32_t>> ins;
  for (int32_t t : node.inputs) {
    HS_ASSIGN_OR_RETURN(const Source s, dense(t, label));
    ins.emplace_back(s, t);
  }
  HS_ASSIGN_OR_RETURN(const Source ys, output_dest(out));
  const bool binary = node.op == OpCode::kAdd || node.op == OpCode::kSub ||
                      node.op == OpCode::kMul || node.op == OpCode::kDiv;
  const bool in_place_ok = binary || node.op == OpCode::kNeg || node.op == OpCode::kSilu ||
                           node.op == OpCode::kTanh || node.op == OpCode::kGelu;
  HS_TRY(check_overlap(label, ys, out, ins, in_place_ok));
  if (binary) {
    BinarySpec spec{.label = label};
    spec.op = node.op == OpCode::kAdd   ? BinaryKind::kAdd
              : node.op == OpCode::kSub ? BinaryKind::kSub
              : node.op == OpCode::kMul ? BinaryKind::kMul
                                        : BinaryKind::kDiv;
    spec.a = ins[0].first.ref;
    spec.b = ins[1].first.ref;
    spec.a_shape = tensor(node.inputs[0]).shape;
    spec.b_shape = tensor(node.inputs[1]).shape;
    spec.y_shape = tensor(out).shape;
    spec.y = ys.ref;
    spec.fake_quant = fake_quant_of(out);
    spec.skip = node_skip_[static_cast<size_t>(i)];
    plan_.steps.push_back(make_binary_step(std::move(spec)));
    return ok_status();
  }
  RefSpec spec{.label = label};
  switch (node.op) {
    case OpCode::kNeg: spec.op = RefOp::kNeg; break;
    case OpCode::kSilu: spec.op = RefOp::kSilu; break;
    case OpCode::kTanh: spec.op = RefOp::kTanh; break;
    case OpCode::kGelu: spec.op = RefOp::kGelu; break;
    case OpCode::kRmsNorm: spec.op = RefOp::kRmsNorm; break;
    case OpCode::kLayerNorm: spec.op = RefOp::kLayerNorm; break;
    case OpCode::kSoftmax: spec.op = RefOp::kSoftmax; break;
    case OpCode::kReduceMin: spec.op = RefOp::kReduceMin; break;
    case OpCode::kEq: spec.op = RefOp::kEq; break;
    case OpCode::kWhere: spec.op = RefOp::kWhere; break;
    default:
      return errorf(ErrorKind::kUnsupported, "{}: no kernel for op {}", label,
                    opset::op_name(node.op));
  }
  for (size_t k = 0; k < ins.size(); ++k) {
    spec.inputs.push_back(ins[k].first.ref);
    spec.in_shapes.push_back(tensor(node.inputs[k]).shape);
  }
  spec.y = ys.ref;
  spec.y_shape = tensor(out).shape;
  spec.axis = attrs.axis;
  spec.eps = static_cast<float>(attrs.eps);
  spec.gelu_tanh = attrs.gelu_tanh;
  spec.fake_quant = fake_quant_of(out);
  if (node.op == OpCode::kSoftmax) spec.skip = node_skip_[static_cast<size_t>(i)];
  plan_.steps.push_back(make_ref_step(std::move(spec)));
  return ok_status();
}

Status StepPlanner::plan_gather(int32_t i, const std::string& label) {
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  const artifact::TensorDesc& table = tensor(node.inputs[0]);
  const int32_t out = node.outputs[0];
  HS_ASSIGN_OR_RETURN(const Source idx, dense(node.inputs[1], label));
  GatherSpec spec{.label = label};
  spec.indices = idx.ref;
  spec.count = numel(tensor(node.inputs[1]).shape);
  spec.rows = table.shape[0];
  spec.width = spec.rows > 0 ? numel(table.shape) / spec.rows : 0;
  const artifact::Quant& q = table.quant;
  const bool rows_ok = q.kind == QuantKind::kPerTensor ||
                       (q.kind == QuantKind::kPerAxis && q.axis == 0) ||
                       (q.kind == QuantKind::kPerBlock && q.axis == 0 && q.block_axis == 1 &&
                        table.shape.size() == 2);
  const bool constant = table.role == artifact::TensorRole::kConstant;
  const bool int_table = table.dtype == ElementType::kU8 || table.dtype == ElementType::kI8 ||
                         table.dtype == ElementType::kU16 || table.dtype == ElementType::kI16;
  std::pair<Source, int32_t> in{Source{}, node.inputs[0]};
  if (constant && rows_ok && (int_table || table.dtype == ElementType::kI4)) {
    const std::span<const std::byte> bytes = artifact_.weight_bytes(table.weight);
    spec.data = bytes.data();
    spec.scales = q.scales;
    spec.zero_points = q.zero_points;
    spec.block = q.kind == QuantKind::kPerBlock ? q.block : 0;
    if (table.dtype == ElementType::kI4) {
      const artifact::Int4Rows rows =
          artifact::int4_rows(artifact_.program().weights[static_cast<size_t>(table.weight)].shape);
      if (static_cast<int64_t>(rows.rows) != spec.rows) {
        return errorf(ErrorKind::kUnsupported,
                      "{}: int4 table '{}' is stored as {} rows, expected {}", label, table.name,
                      rows.rows, spec.rows);
      }
      spec.table = GatherSpec::Table::kInt4;
    } else {
      spec.table = GatherSpec::Table::kQuantized;
      spec.storage = table.dtype;  // u8, i8, u16 or i16
    }
  } else {
    HS_ASSIGN_OR_RETURN(in.first, dense(node.inputs[0], label));
    spec.table = GatherSpec::Table::kDense;
    spec.table_ref = in.first.ref;
    spec.dense_elem = in.first.elem;
  }
  HS_ASSIGN_OR_RETURN(const Source ys, output_dest(out));
  std::vector<std::pair<Source, int32_t>> ins = {{idx, node.inputs[1]}};
  if (in.first.ref >= 0) ins.push_back(in);
  HS_TRY(check_overlap(label, ys, out, ins, false));
  spec.y = ys.ref;
  spec.fake_quant = fake_quant_of(out);
  plan_.steps.push_back(make_gather_step(std::move(spec)));
  return ok_status();
}

}  // namespace hs::runtime::detail
