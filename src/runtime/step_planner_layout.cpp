// Layout planning: views (no step) for contiguous layout nodes, fused cache reads (a concat
// read in place by attention matmuls, through the GQA repeat), and strided copies otherwise.
#include <fmt/format.h>

#include "step_planner.h"
#include "steps.h"

namespace hs::runtime::detail {

using artifact::OpCode;
using artifact::QuantKind;

namespace {

// True when the non-unit axes of `shape` keep their relative order under `perm`: the
// transpose moves only size-1 axes and is a plain copy of the elements.
bool moves_unit_axes_only(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm) {
  int64_t last = -1;
  for (int64_t p : perm) {
    if (shape[static_cast<size_t>(p)] == 1) continue;
    if (p < last) return false;
    last = p;
  }
  return true;
}

}  // namespace

bool StepPlanner::try_view(int32_t i, const NodeAttrs& attrs) {
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  const int32_t out = node.outputs[0], in = node.inputs[0];
  const artifact::TensorDesc& x = tensor(in);
  const artifact::TensorDesc& y = tensor(out);
  int64_t first = 0;  // element of x where y starts
  switch (node.op) {
    case OpCode::kReshape:
    case OpCode::kSqueeze:
    case OpCode::kUnsqueeze:
    case OpCode::kDequantize: break;
    case OpCode::kTranspose:
      if (!moves_unit_axes_only(x.shape, attrs.perm)) return false;
      break;
    case OpCode::kExpand:
      if (numel(x.shape) != numel(y.shape)) return false;
      break;
    case OpCode::kConcat:
      if (node.inputs.size() != 1) return false;
      break;
    case OpCode::kSlice: {
      const auto axis = static_cast<size_t>(attrs.axis);
      int64_t outer = 1, inner = 1;
      for (size_t a = 0; a < axis; ++a) outer *= x.shape[a];
      for (size_t a = axis + 1; a < x.shape.size(); ++a) inner *= x.shape[a];
      if (outer != 1) return false;
      first = attrs.start * inner;
      break;
    }
    default: return false;
  }
  if (is_output_[static_cast<size_t>(out)] || state_[static_cast<size_t>(in)].lazy >= 0) {
    return false;
  }
  if (!(y.quant == x.quant || y.quant.kind == QuantKind::kNone)) return false;
  auto src = operand(in, "");
  if (!src.ok()) return false;
  const Ref r = plan_.refs[static_cast<size_t>(src->ref)];
  const uint64_t shift = static_cast<uint64_t>(first * opset::dtype_size(src->elem));
  if (r.base == kBaseArena &&
      (y.arena_offset < 0 || static_cast<uint64_t>(y.arena_offset) != r.offset + shift)) {
    return false;  // not aliased by the backend: the input's memory may be reused later
  }
  Source view = *src;
  view.ref = add_ref(r.base, r.offset + shift);
  state_[static_cast<size_t>(out)].src = view;
  ++plan_.views;
  return true;
}

bool StepPlanner::try_lazy_concat(int32_t i, const NodeAttrs& attrs) {
  if (!options_.fuse_cache_reads || options_.reference_kernels) return false;
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  const int32_t out = node.outputs[0];
  const artifact::TensorDesc& x = tensor(out);
  const size_t r = x.shape.size();
  if (r < 2 || is_output_[static_cast<size_t>(out)] || node.inputs.size() > 8 ||
      (attrs.axis != static_cast<int64_t>(r) - 1 && attrs.axis != static_cast<int64_t>(r) - 2)) {
    return false;
  }
  LazyOperand lazy;
  lazy.concat_on_n = attrs.axis == static_cast<int64_t>(r) - 1;
  lazy.shape = x.shape;
  int64_t at = 0;
  for (int32_t t : node.inputs) {
    const artifact::TensorDesc& d = tensor(t);
    if (d.quant != x.quant || state_[static_cast<size_t>(t)].lazy >= 0) return false;
    auto src = operand(t, "");
    if (!src.ok() || src->elem == Elem::kI32) return false;
    const int64_t rows = d.shape[r - 2], cols = d.shape[r - 1];
    const int64_t extent = lazy.concat_on_n ? cols : rows;
    lazy.parts.push_back(
        {.source = *src, .batch_stride = rows * cols, .begin = at, .extent = extent});
    at += extent;
  }
  // Every reader is a matmul reading it as B, directly or through unsqueeze -> expand ->
  // reshape (the GQA repeat: the new axis right before [K, N], merged into the head axis).
  struct Chain {
    int32_t nodes[3];
    int32_t result;
    int64_t repeat;
  };
  std::vector<Chain> chains;
  auto only_matmul_b = [&](int32_t t) {
    if (is_output_[static_cast<size_t>(t)] || uses_[static_cast<size_t>(t)].empty()) return false;
    for (const auto& [n, operand] : uses_[static_cast<size_t>(t)]) {
      if (graph_.nodes[static_cast<size_t>(n)].op != OpCode::kMatMul || operand != 1) return false;
    }
    return true;
  };
  auto single_use = [&](int32_t t, OpCode op) -> int32_t {
    const auto& u = uses_[static_cast<size_t>(t)];
    if (is_output_[static_cast<size_t>(t)] || u.size() != 1 || u[0].second != 0) return -1;
    const artifact::NodeDesc& n = graph_.nodes[static_cast<size_t>(u[0].first)];
    if (n.op != op || tensor(n.outputs[0]).quant != x.quant) return -1;
    return u[0].first;
  };
  for (const auto& [n, operand] : uses_[static_cast<size_t>(out)]) {
    const artifact::NodeDesc& user = graph_.nodes[static_cast<size_t>(n)];
    if (user.op == OpCode::kMatMul && operand == 1) continue;
    if (user.op != OpCode::kUnsqueeze || operand != 0 || r < 3 ||
        tensor(user.outputs[0]).quant != x.quant) {
      return false;
    }
    std::vector<int64_t> want = x.shape;
    want.insert(want.end() - 2, 1);
    if (tensor(user.outputs[0]).shape != want) return false;
    const int32_t e = single_use(user.outputs[0], OpCode::kExpand);
    if (e < 0) return false;
    const int64_t repeat = tensor(graph_.nodes[static_cast<size_t>(e)].outputs[0]).shape[r - 2];
    want[r - 2] = repeat;
    if (tensor(graph_.nodes[static_cast<size_t>(e)].outputs[0]).shape != want) return false;
    const int32_t rs =
        single_use(graph_.nodes[static_cast<size_t>(e)].outputs[0], OpCode::kReshape);
    if (rs < 0) return false;
    const int32_t result = graph_.nodes[static_cast<size_t>(rs)].outputs[0];
    std::vector<int64_t> merged = x.shape;
    merged[r - 3] *= repeat;
    if (tensor(result).shape != merged || !only_matmul_b(result)) return false;
    chains.push_back({{n, e, rs}, result, repeat});
  }
  if (uses_[static_cast<size_t>(out)].empty()) return false;
  // Arena parts (this step's new entries) are copied to staging here: the backend may reuse
  // their arena memory once the concat has run, before the matmuls read them.
  for (size_t k = 0; k < lazy.parts.size(); ++k) {
    MatmulPartSource& part = lazy.parts[k];
    if (plan_.refs[static_cast<size_t>(part.source.ref)].base != kBaseArena) continue;
    const int64_t count = numel(tensor(node.inputs[k]).shape);
    const int32_t staged = add_ref(kBaseStaging, static_cast<uint64_t>(alloc_staging(count * 4)));
    CopySpec copy{.label = node_label(i), .y = staged, .out = Elem::kF32};
    copy.pieces.push_back(
        {.src = part.source, .shape = {count}, .src_strides = {1}, .dst_strides = {1}});
    plan_.steps.push_back(make_copy_step(std::move(copy)));
    part.source = Source{.ref = staged, .elem = Elem::kF32};
  }
  lazy_.push_back(lazy);
  state_[static_cast<size_t>(out)].lazy = static_cast<int>(lazy_.size() - 1);
  for (const Chain& c : chains) {
    LazyOperand repeated = lazy;
    repeated.shape = tensor(c.result).shape;
    repeated.batch_div = c.repeat;
    lazy_.push_back(std::move(repeated));
    state_[static_cast<size_t>(c.result)].lazy = static_cast<int>(lazy_.size() - 1);
    for (int32_t n : c.nodes) skip_[static_cast<size_t>(n)] = true;
    plan_.views += 3;
  }
  ++plan_.fused_concats;
  return true;
}

Status StepPlanner::plan_layout(int32_t i, const std::string& label, const NodeAttrs& attrs) {
  const artifact::NodeDesc& node = graph_.nodes[static_cast<size_t>(i)];
  if (node.op == OpCode::kConcat && try_lazy_concat(i, attrs)) return ok_status();
  if (try_view(i, attrs)) return ok_status();
  const int32_t out = node.outputs[0];
  const artifact::TensorDesc& y = tensor(out);
  CopySpec spec{.label = label};
  std::vector<std::pair<Source, int32_t>> ins;
  bool same_params = node.op != OpCode::kQuantize;
  for (int32_t t : node.inputs) {
    HS_ASSIGN_OR_RETURN(const Source s, operand(t, label));
    if (state_[static_cast<size_t>(t)].lazy >= 0) {
      return errorf(ErrorKind::kInternal, "{}: reads a fused operand", label);
    }
    ins.emplace_back(s, t);
    same_params = same_params && tensor(t).quant == y.quant;
  }
  HS_ASSIGN_OR_RETURN(const Source ys, output_dest(out));
  HS_TRY(check_overlap(label, ys, out, ins, false));
  spec.y = ys.ref;
  spec.out = ys.elem;
  const artifact::TensorDesc& x = tensor(node.inputs[0]);
  const std::vector<int64_t> xs = strides_of(x.shape), ystr = strides_of(y.shape);
  CopyPiece piece{.src = ins[0].first};
  switch (node.op) {
    case OpCode::kTranspose:
      piece.shape = y.shape;
      for (int64_t p : attrs.perm) piece.src_strides.push_back(xs[static_cast<size_t>(p)]);
      piece.dst_strides = ystr;
      spec.pieces.push_back(piece);
      break;
    case OpCode::kSlice:
      piece.shape = y.shape;
      piece.src_strides = xs;
      piece.src_offset = attrs.start * xs[static_cast<size_t>(attrs.axis)];
      piece.dst_strides = ystr;
      spec.pieces.push_back(piece);
      break;
    case OpCode::kExpand:
      piece.shape = y.shape;
      for (size_t a = 0; a < x.shape.size(); ++a) {
        piece.src_strides.push_back(x.shape[a] == 1 ? 0 : xs[a]);
      }
      piece.dst_strides = ystr;
      spec.pieces.push_back(piece);
      break;
    case OpCode::kConcat: {
      int64_t at = 0;
      for (const auto& [src, t] : ins) {
        const artifact::TensorDesc& d = tensor(t);
        CopyPiece p{.src = src, .dst_offset = at * ystr[static_cast<size_t>(attrs.axis)]};
        p.shape = d.shape;
        p.src_strides = strides_of(d.shape);
        p.dst_strides = ystr;
        spec.pieces.push_back(std::move(p));
        at += d.shape[static_cast<size_t>(attrs.axis)];
      }
      break;
    }
    default:  // reshape, squeeze, unsqueeze, quantize, dequantize: the same elements in order
      piece.shape = {numel(y.shape)};
      piece.src_strides = {1};
      piece.dst_strides = {1};
      spec.pieces.push_back(piece);
      break;
  }
  // Layout ops share their input's params (contract §4): re-quantizing a value that already
  // holds its fake-quantized form with the same params changes nothing, so only a quantize or
  // a change of params needs the fake quantization.
  if (!same_params) spec.fake_quant = fake_quant_of(out);
  spec.row_output = row_output_[static_cast<size_t>(i)];  // step_planner_rows.cpp
  spec.rows = row_buffer_[static_cast<size_t>(i)];
  plan_.steps.push_back(make_copy_step(std::move(spec)));
  return ok_status();
}

}  // namespace hs::runtime::detail
