// The planner's frame: passes over the nodes, graph I/O and staging, operands (including
// constants prepared at load), output destinations and the arena overlap check. The per-op
// planning is in planner_ops.cpp.
#include "step_planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "headsplit/artifact/int4.h"
#include "steps.h"

namespace hs::runtime::detail {

using artifact::ElementType;
using artifact::OpCode;
using artifact::QuantKind;

namespace {

// The storage of an I/O tensor (its element type: f32, i32, or u8/i8/u16/i16 with per-tensor
// params; check_program has checked the params), or an error naming it.
Result<Elem> io_elem(const artifact::TensorDesc& t, std::string_view what) {
  switch (t.dtype) {
    case ElementType::kF32:
    case ElementType::kI32: return t.dtype;
    case ElementType::kU8:
    case ElementType::kI8:
    case ElementType::kU16:
    case ElementType::kI16:
      if (t.quant.kind == QuantKind::kPerTensor) return t.dtype;
      break;
    default: break;
  }
  return errorf(ErrorKind::kUnsupported,
                "{}: graph {} '{}' has type {}: the runtime binds f32, i32 and per-tensor "
                "quantized u8/i8/u16/i16 I/O",
                what, artifact::tensor_role_name(t.role), t.name, opset::type_str(t));
}


// A real tensor is held as float32 during a step (the fake-quantized value when quantized);
// i32 and bool tensors as int32.
Elem compute_elem(const artifact::TensorDesc& t) { return t.is_real() ? Elem::kF32 : Elem::kI32; }

}  // namespace

Result<NodeAttrs> check_node(const artifact::GraphDesc& graph, const artifact::NodeDesc& node,
                             std::string_view label) {
  constexpr size_t kMaxRank = 8;  // the strided copies index at most 8 axes
  if (node.outputs.size() != 1) {
    return errorf(ErrorKind::kUnsupported, "{}: {} outputs, expected 1", label,
                  node.outputs.size());
  }
  std::vector<const opset::TensorType*> types;
  for (int32_t i : node.inputs) types.push_back(&graph.tensors[static_cast<size_t>(i)]);
  const artifact::TensorDesc& out = graph.tensors[static_cast<size_t>(node.outputs[0])];
  types.push_back(&out);
  for (const opset::TensorType* t : types) {
    if (t->shape.size() > kMaxRank) {
      return errorf(ErrorKind::kUnsupported, "{}: '{}' has rank {} (at most {})", label,
                    static_cast<const artifact::TensorDesc*>(t)->name, t->shape.size(), kMaxRank);
    }
  }
  types.pop_back();
  auto inferred = opset::infer_type(node.op, types, node.attrs);
  if (!inferred.ok()) return std::move(inferred).error().with_context(label);
  HS_TRY(opset::check_result_type(node.op, out, *inferred,
                                  fmt::format("{}: output '{}'", label, out.name)));
  // The rule checked the declared attributes' presence, kinds and ranges.
  NodeAttrs a;
  const opset::Attrs& attrs = node.attrs;
  const int64_t rank = static_cast<int64_t>(types[0]->shape.size());
  const auto& specs = opset::op_info(node.op).attrs;
  if (std::any_of(specs.begin(), specs.end(),
                  [](const opset::AttrSpec& s) { return s.name == "axis"; })) {
    const int64_t axis = attrs.get_int("axis");
    const int64_t axis_rank = node.op == opset::OpKind::kUnsqueeze ? rank + 1 : rank;
    a.axis = axis < 0 ? axis + axis_rank : axis;
  }
  switch (node.op) {
    case opset::OpKind::kSlice:
      a.start = attrs.get_int("start");
      a.end = attrs.get_int("end");
      break;
    case opset::OpKind::kReduceMin: a.keepdim = attrs.get_int("keepdim") != 0; break;
    case opset::OpKind::kRmsNorm:
    case opset::OpKind::kLayerNorm: a.eps = attrs.get_float("eps"); break;
    case opset::OpKind::kGelu: a.gelu_tanh = attrs.get_string("approximate") == "tanh"; break;
    case opset::OpKind::kTranspose: a.perm = attrs.get_ints("perm"); break;
    default: break;
  }
  return a;
}

StepPlanner::StepPlanner(const artifact::LoadedArtifact& artifact, int graph_index,
                         const StepPlanOptions& options)
    : artifact_(artifact),
      graph_(artifact.program().graphs[static_cast<size_t>(graph_index)]),
      options_(options),
      what_(fmt::format("{}: graph '{}'", artifact.path(), graph_.name)) {}

const artifact::TensorDesc& StepPlanner::tensor(int32_t i) const {
  return graph_.tensors[static_cast<size_t>(i)];
}

std::string StepPlanner::node_label(int32_t node_index) const {
  const artifact::NodeDesc& n = graph_.nodes[static_cast<size_t>(node_index)];
  return fmt::format("{}: node '{}' ({})", what_, tensor(n.outputs[0]).name, opset::op_name(n.op));
}

FakeQuant StepPlanner::fake_quant_of(int32_t t) const {
  const artifact::TensorDesc& d = tensor(t);
  return FakeQuant(d.quant, d.shape);
}

int32_t StepPlanner::add_ref(uint32_t base, uint64_t offset) {
  plan_.refs.push_back({base, offset});
  return static_cast<int32_t>(plan_.refs.size() - 1);
}

int64_t StepPlanner::alloc_staging(int64_t bytes) {
  const int64_t at = plan_.staging_bytes;
  plan_.staging_bytes += (bytes + 63) / 64 * 64;
  return at;
}

Result<BuiltStepPlan> StepPlanner::build() {
  const size_t n = graph_.tensors.size();
  uses_.assign(n, {});
  producer_.assign(n, -1);
  is_output_.assign(n, false);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const artifact::NodeDesc& node = graph_.nodes[i];
    for (int32_t t : node.outputs) producer_[static_cast<size_t>(t)] = static_cast<int32_t>(i);
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      uses_[static_cast<size_t>(node.inputs[k])].emplace_back(static_cast<int32_t>(i),
                                                              static_cast<int>(k));
    }
  }
  for (int32_t t : graph_.outputs) is_output_[static_cast<size_t>(t)] = true;
  staged_.assign(n, false);
  find_head_groups();
  find_column_skips();
  find_row_outputs();
  find_ropes();
  for (;;) {
    restart_input_ = -1;
    Status status = plan_pass();
    if (status.ok()) break;
    if (restart_input_ < 0 || staged_[static_cast<size_t>(restart_input_)]) {
      return std::move(status).error();
    }
    staged_[static_cast<size_t>(restart_input_)] = true;  // dequantize it up front, then retry
  }
  return std::move(result_);
}

Status StepPlanner::plan_pass() {
  plan_ = StepPlan{};
  plan_.arena_bytes = graph_.arena_bytes;
  state_.assign(graph_.tensors.size(), TensorState{});
  lazy_.clear();
  final_steps_.clear();
  prepared_.clear();
  skip_.assign(graph_.nodes.size(), false);
  result_ = BuiltStepPlan{};
  HS_TRY(plan_io());
  plan_.column_masks = column_masks_;
  plan_.row_outputs = std::count_if(row_tokens_.begin(), row_tokens_.end(),
                                    [](int64_t t) { return t > 0; });
  for (size_t i = 0; i < node_skip_.size(); ++i) {  // one per attention: its softmax node's
    const artifact::NodeDesc& n = graph_.nodes[i];
    if (node_skip_[i] != nullptr && n.op == OpCode::kSoftmax) {
      plan_.column_skips.push_back(node_skip_[i]);
    }
  }
  place_head_group_tensors();
  std::vector<std::pair<size_t, size_t>> node_steps(graph_.nodes.size());
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const size_t first = plan_.steps.size();
    HS_TRY(plan_node(static_cast<int32_t>(i)));
    node_steps[i] = {first, plan_.steps.size()};
  }
  batch_head_groups(node_steps);
  for (auto& step : final_steps_) plan_.steps.push_back(std::move(step));
  result_.plan = std::move(plan_);
  return ok_status();
}

Status StepPlanner::plan_io() {
  binding_of_.assign(graph_.tensors.size(), -1);
  const auto n_in = static_cast<int32_t>(graph_.inputs.size());
  for (int32_t i = 0; i < n_in; ++i) {
    const int32_t t = graph_.inputs[static_cast<size_t>(i)];
    const artifact::TensorDesc& d = tensor(t);
    HS_ASSIGN_OR_RETURN(const Elem elem, io_elem(d, what_));
    const int64_t count = numel(d.shape);
    result_.inputs.push_back({d.name, t, elem, count, count * opset::dtype_size(elem)});
    binding_of_[static_cast<size_t>(t)] = i;
    const int32_t ref = add_ref(kBaseFirstBinding + static_cast<uint32_t>(i), 0);
    if (!opset::dtype_is_integer_storage(elem)) {
      state_[static_cast<size_t>(t)].src = Source{.ref = ref, .elem = elem};
      continue;
    }
    const float scale = d.quant.scales[0];
    const int32_t zp = d.quant.zero_points.empty() ? 0 : d.quant.zero_points[0];
    if (!staged_[static_cast<size_t>(t)]) {
      state_[static_cast<size_t>(t)].src =
          Source{.ref = ref, .elem = elem, .scale = scale, .zero_point = zp, .root_input = t};
      continue;
    }
    const int32_t staged = add_ref(kBaseStaging, static_cast<uint64_t>(alloc_staging(count * 4)));
    plan_.steps.push_back(make_convert_step({.label = fmt::format("{}: input '{}'", what_, d.name),
                                             .to_storage = false,
                                             .from = ref,
                                             .to = staged,
                                             .count = count,
                                             .storage = elem,
                                             .scale = scale,
                                             .zero_point = zp}));
    state_[static_cast<size_t>(t)].src = Source{.ref = staged, .elem = Elem::kF32};
    ++plan_.staged_inputs;
  }
  for (size_t j = 0; j < graph_.outputs.size(); ++j) {
    const int32_t t = graph_.outputs[j];
    const artifact::TensorDesc& d = tensor(t);
    HS_ASSIGN_OR_RETURN(const Elem elem, io_elem(d, what_));
    const int64_t count = numel(d.shape);
    result_.outputs.push_back({d.name, t, elem, count, count * opset::dtype_size(elem)});
    binding_of_[static_cast<size_t>(t)] = n_in + static_cast<int32_t>(j);
  }
  return ok_status();
}

Status StepPlanner::plan_node(int32_t i) {
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  const std::string label = node_label(i);
  HS_ASSIGN_OR_RETURN(const NodeAttrs attrs, check_node(graph_, node, label));
  if (skip_[static_cast<size_t>(i)]) return ok_status();  // part of a fused cache read
  if (rope_member_[static_cast<size_t>(i)]) return ok_status();  // computed by its RoPE step
  if (rope_at_[static_cast<size_t>(i)] >= 0) return plan_rope(i, label);
  switch (node.op) {
    case OpCode::kConv2d:
    case OpCode::kLinear: return plan_projection(i, label);
    case OpCode::kMatMul: return plan_matmul(i, label);
    case OpCode::kGather: return plan_gather(i, label);
    case OpCode::kReshape:
    case OpCode::kTranspose:
    case OpCode::kSlice:
    case OpCode::kConcat:
    case OpCode::kUnsqueeze:
    case OpCode::kSqueeze:
    case OpCode::kExpand:
    case OpCode::kQuantize:
    case OpCode::kDequantize: return plan_layout(i, label, attrs);
    default: return plan_elementwise(i, label, attrs);
  }
}

Result<Source> StepPlanner::operand(int32_t t, std::string_view label) {
  const TensorState& st = state_[static_cast<size_t>(t)];
  if (st.src.ref >= 0) return st.src;
  if (tensor(t).role == artifact::TensorRole::kConstant) return constant_dense(t);
  return errorf(ErrorKind::kInternal,
                "{}: operand '{}' has no storage (a fused tensor read by "
                "an op that cannot fuse it)",
                label, tensor(t).name);
}

Result<Source> StepPlanner::dense(int32_t t, std::string_view label) {
  HS_ASSIGN_OR_RETURN(const Source src, operand(t, label));
  if (src.dense()) return src;
  restart_input_ = src.root_input;
  return errorf(ErrorKind::kInternal, "{}: integer input '{}' read as float", label,
                tensor(t).name);
}

Source StepPlanner::constant_dense(int32_t t) {
  const artifact::TensorDesc& d = tensor(t);
  const auto it = prepared_.find(t);
  const Elem elem = compute_elem(d);
  if (it != prepared_.end()) return Source{.ref = it->second, .elem = elem};
  const std::span<const std::byte> bytes = artifact_.weight_bytes(d.weight);
  const int64_t count = numel(d.shape);
  const std::byte* address = bytes.data();
  if (d.dtype == ElementType::kBool) {
    auto buf = std::make_unique<int32_t[]>(static_cast<size_t>(count));
    for (int64_t e = 0; e < count; ++e) buf[e] = bytes[static_cast<size_t>(e)] != std::byte{0};
    address = reinterpret_cast<const std::byte*>(buf.get());
    plan_.prepared_i32.push_back(std::move(buf));
    plan_.prepared_bytes += count * 4;
  } else if (d.quant.kind != QuantKind::kNone) {
    // A quantized constant outside a projection or gather (rare: the quantizer keeps norm
    // weights, tables and scalars in f32): dequantized once, as the interpreter does.
    auto buf = std::make_unique<float[]>(static_cast<size_t>(count));
    std::vector<int8_t> unpacked;
    const std::byte* data = bytes.data();
    if (d.dtype == ElementType::kI4) {
      const artifact::Int4Rows rows =
          artifact::int4_rows(artifact_.program().weights[static_cast<size_t>(d.weight)].shape);
      unpacked.resize(static_cast<size_t>(count));
      artifact::unpack_int4(bytes, rows, unpacked);
      data = reinterpret_cast<const std::byte*>(unpacked.data());
    }
    kernels::ref::dequantize(data, d.dtype, d.shape, d.quant, buf.get());
    address = reinterpret_cast<const std::byte*>(buf.get());
    plan_.prepared_f32.push_back(std::move(buf));
    plan_.prepared_bytes += count * 4;
  }
  const int32_t ref = add_ref(kBaseAbsolute, reinterpret_cast<uintptr_t>(address));
  prepared_[t] = ref;
  return Source{.ref = ref, .elem = elem};
}

Result<Source> StepPlanner::output_dest(int32_t t) {
  const artifact::TensorDesc& d = tensor(t);
  const Elem elem = compute_elem(d);
  const int64_t count = numel(d.shape);
  Source src{.elem = elem};
  if (is_output_[static_cast<size_t>(t)]) {
    const int32_t b = binding_of_[static_cast<size_t>(t)];
    const int32_t bound = add_ref(kBaseFirstBinding + static_cast<uint32_t>(b), 0);
    const BindingDesc& desc = result_.outputs[static_cast<size_t>(b) - graph_.inputs.size()];
    if (!opset::dtype_is_integer_storage(desc.elem)) {
      src.ref = bound;
    } else {  // computed in float staging, quantized into the binding at the end
      // Its index among the graph's outputs: a row-computed output converts only its rows.
      const auto row_of = static_cast<size_t>(b) - graph_.inputs.size();
      src.ref = add_ref(kBaseStaging, static_cast<uint64_t>(alloc_staging(count * 4)));
      final_steps_.push_back(
          make_convert_step({.label = fmt::format("{}: output '{}'", what_, d.name),
                             .to_storage = true,
                             .from = src.ref,
                             .to = bound,
                             .count = count,
                             .storage = desc.elem,
                             .scale = d.quant.scales[0],
                             .zero_point = d.quant.zero_points.empty() ? 0 : d.quant.zero_points[0],
                             .qmin = d.quant.qmin,
                             .qmax = d.quant.qmax,
                             .row_output = row_tokens_[row_of] > 0 ? static_cast<int32_t>(row_of) : -1,
                             .row_elems = row_tokens_[row_of] > 0 ? count / row_tokens_[row_of] : 0}));
    }
  } else if (relocated_[static_cast<size_t>(t)] >= 0) {  // a head group's output
    src.ref = add_ref(kBaseStaging, static_cast<uint64_t>(relocated_[static_cast<size_t>(t)]));
  } else if (d.arena_offset >= 0) {
    src.ref = add_ref(kBaseArena, static_cast<uint64_t>(d.arena_offset));
  } else {  // an intermediate the backend did not place: give it staging memory
    src.ref = add_ref(kBaseStaging, static_cast<uint64_t>(alloc_staging(count * 4)));
  }
  state_[static_cast<size_t>(t)].src = src;
  return src;
}

int StepPlanner::overlapping_operand(const Source& out, int32_t out_tensor,
                                     std::span<const std::pair<Source, int32_t>> ins,
                                     bool elementwise) const {
  const Ref& o = plan_.refs[static_cast<size_t>(out.ref)];
  if (o.base != kBaseArena) return -1;
  const int64_t o_bytes = numel(tensor(out_tensor).shape) * 4;
  for (size_t k = 0; k < ins.size(); ++k) {
    const auto& [src, t] = ins[k];
    const Ref& r = plan_.refs[static_cast<size_t>(src.ref)];
    if (r.base != kBaseArena) continue;
    const int64_t bytes = numel(tensor(t).shape) * opset::dtype_size(src.elem);
    const auto ob = static_cast<int64_t>(o.offset), ib = static_cast<int64_t>(r.offset);
    if (ob >= ib + bytes || ib >= ob + o_bytes) continue;
    if (elementwise && ob == ib && o_bytes == bytes) continue;  // in place, element by element
    return static_cast<int>(k);
  }
  return -1;
}

Status StepPlanner::check_overlap(std::string_view label, const Source& out, int32_t out_tensor,
                                  const std::vector<std::pair<Source, int32_t>>& ins,
                                  bool elementwise) {
  const int k = overlapping_operand(out, out_tensor, ins, elementwise);
  if (k < 0) return ok_status();
  const auto& [src, t] = ins[static_cast<size_t>(k)];
  const auto ob = plan_.refs[static_cast<size_t>(out.ref)].offset;
  const auto ib = plan_.refs[static_cast<size_t>(src.ref)].offset;
  return errorf(ErrorKind::kCorrupt,
                "{}: output '{}' at arena [{}, {}) overlaps operand '{}' at [{}, {})", label,
                tensor(out_tensor).name, ob, ob + numel(tensor(out_tensor).shape) * 4,
                tensor(t).name, ib, ib + numel(tensor(t).shape) * opset::dtype_size(src.elem));
}

Result<BuiltStepPlan> build_step_plan(const artifact::LoadedArtifact& artifact, int graph_index,
                                      const StepPlanOptions& options) {
  StepPlanner planner(artifact, graph_index, options);
  return planner.build();
}

}  // namespace hs::runtime::detail
