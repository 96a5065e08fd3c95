// Attentions whose masked score columns may be skipped (ColumnMask, ColumnSpan in step_plan.h).
//
// With SmartMask, a decode step at n_past reads all C cache columns although only n_past + T
// are live: QKᵀ, the scaling, the mask add and the softmax cost C per row whatever n_past is.
// The pattern, per attention (MHA [B, H, T, C] or one split head [B, 1, T, C]):
//
//   s0 = matmul(q, k_all)                        [.., T, C]  (its step reads the cache in place)
//   s1 = s0 op c, ..., sj = s(j-1) op c          op in {add, sub, mul, div}, c a scalar constant
//   x  = add(sj, mask)                           mask = a graph input [T, C], u8/u16
//   p  = softmax(x, axis = -1)
//
// A column c is dead in this execution when every row of the mask holds the lowest code (value
// m_dead, e.g. -255; the executor finds the longest such run). The scores matmul computes the
// live columns first, then checks per row that the dead columns cannot matter: on a dead column
// |s0| <= sum|q| * kmax (kmax: the largest |value| the cache's u8/u16 storage can hold), and
// since +, the scalar ops (non-decreasing: s + c, s - c, s * c and s / c with c > 0) and fake
// quantization are all monotone,
//   x_dead <= U = fq_x(F(fq_s0(sum|q| * kmax)) + m_dead)      F: the scalar ops with their fq
//   max_row >= L = fq_x(F(s0_a) + m_live)                     s0_a: the row's largest s0 on a
//                                                             column it attends (code >= the
//                                                             code of 0.0)
// When U - L < -104 (kernels::kSoftmaxExpZeroBelow) for every row, a dead column is never the
// row's max and its exp is exactly 0: p is exactly 0 there and the live columns do not depend on
// the dead ones, so the scalar ops and the add skip them and the softmax writes 0, bit-identical
// to the full computation; otherwise the matmul computes every column and so do the others.
// Float graphs (quant none, an f32 mask: SmartMask as 0 / -255): the same with the runtime's
// values: kmax is the largest |k| in the cache's dead columns of this execution (NaN or inf: no
// skip), m_dead the mask's smallest value (every row holds it in a dead column), a column is
// attended where the mask is >= 0 (m_live = 0), and F has no fake quantization. Every tensor
// s0..sj, x must have no other reader (their dead columns hold garbage); p's readers see exact
// values, and the P·V matmul skips p's zero rows (integer caches: as the kernel does; float
// caches: when those v rows are finite, see MatmulStep::run_live).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "headsplit/kernels/elementwise.h"
#include "step_planner.h"

namespace hs::runtime::detail {

using artifact::OpCode;

namespace {

bool per_tensor(const artifact::Quant& q) {
  return q.kind == artifact::QuantKind::kPerTensor && q.scales.size() == 1 && q.scales[0] > 0.f;
}

int32_t zero_point(const artifact::Quant& q) {
  return q.zero_points.empty() ? 0 : q.zero_points[0];
}

// The real value of integer code `code` under per-tensor params q, as the input staging
// (kernels::dequantize_to_f32) computes it.
float dequantized(const artifact::Quant& q, int32_t code, opset::DType storage) {
  float y = 0.f;
  if (storage == opset::DType::kU16) {
    const auto c = static_cast<uint16_t>(code);
    kernels::dequantize_to_f32(reinterpret_cast<const std::byte*>(&c), storage, 1, q.scales[0],
                               zero_point(q), &y);
  } else {
    const auto c = static_cast<uint8_t>(code);
    kernels::dequantize_to_f32(reinterpret_cast<const std::byte*>(&c), storage, 1, q.scales[0],
                               zero_point(q), &y);
  }
  return y;
}

bool scalar_constant(const artifact::TensorDesc& t) {
  return t.role == artifact::TensorRole::kConstant && opset::num_elements(t.shape) == 1;
}

// The input of a scalar op that is not the constant.
size_t op_input_of(const artifact::NodeDesc& n, const artifact::GraphDesc& g) {
  return scalar_constant(g.tensors[static_cast<size_t>(n.inputs[0])]) ? 1 : 0;
}

}  // namespace

// `n` as a non-decreasing scalar op of the chain (s + c, c + s, s - c, s * c, c * s, s / c with
// c > 0), with its output's fake quantization; nullopt otherwise.
std::optional<ScoreOp> StepPlanner::score_op(const artifact::NodeDesc& n) const {
  if (!(n.op == OpCode::kAdd || n.op == OpCode::kSub || n.op == OpCode::kMul ||
        n.op == OpCode::kDiv) ||
      n.inputs.size() != 2) {
    return std::nullopt;
  }
  const bool c0 = scalar_constant(tensor(n.inputs[0])), c1 = scalar_constant(tensor(n.inputs[1]));
  if (c0 == c1) return std::nullopt;  // exactly one scalar constant
  const artifact::TensorDesc& out = tensor(n.outputs[0]);
  if (tensor(n.inputs[c0 ? 1 : 0]).shape != out.shape) return std::nullopt;
  const artifact::TensorDesc& ct = tensor(n.inputs[c0 ? 0 : 1]);
  const std::span<const std::byte> bytes = artifact_.weight_bytes(ct.weight);
  float c = 0.f;
  if (ct.dtype == opset::DType::kF32 && bytes.size() >= 4) {
    std::memcpy(&c, bytes.data(), 4);
  } else if ((ct.dtype == opset::DType::kU16 || ct.dtype == opset::DType::kU8) && per_tensor(ct.quant) &&
             bytes.size() >= static_cast<size_t>(opset::dtype_size(ct.dtype))) {
    kernels::dequantize_to_f32(bytes.data(), ct.dtype, 1, ct.quant.scales[0], zero_point(ct.quant), &c);
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(c)) return std::nullopt;
  ScoreOp op{.c = c, .c_left = c0};
  switch (n.op) {
    case OpCode::kAdd: op.op = kernels::BinaryKind::kAdd; break;
    case OpCode::kSub: op.op = kernels::BinaryKind::kSub; break;
    case OpCode::kMul: op.op = kernels::BinaryKind::kMul; break;
    default: op.op = kernels::BinaryKind::kDiv; break;
  }
  const bool monotone = op.op == kernels::BinaryKind::kAdd ||
                        (op.op == kernels::BinaryKind::kSub && !c0) ||
                        (op.op == kernels::BinaryKind::kMul && c > 0.f) ||
                        (op.op == kernels::BinaryKind::kDiv && !c0 && c > 0.f);
  if (!monotone) return std::nullopt;
  if (per_tensor(out.quant)) op.fq = FakeQuant(out.quant, {1});
  return op;
}


void StepPlanner::find_column_skips() {
  node_skip_.assign(graph_.nodes.size(), nullptr);
  dead_rows_.assign(graph_.tensors.size(), nullptr);
  column_masks_.clear();
  if (!options_.skip_dead_columns || options_.reference_kernels) return;
  auto node = [&](int32_t t) -> const artifact::NodeDesc* {
    const int32_t p = producer_[static_cast<size_t>(t)];
    return p < 0 ? nullptr : &graph_.nodes[static_cast<size_t>(p)];
  };
  // Read by exactly one node and not a graph output: its dead columns may hold garbage.
  auto private_to_chain = [&](int32_t t) {
    return uses_[static_cast<size_t>(t)].size() == 1 && !is_output_[static_cast<size_t>(t)];
  };
  // Follows reshape / (un)squeeze back to a graph input; -1 if t is not one's view.
  auto mask_input = [&](int32_t t) -> int32_t {
    for (;;) {
      if (tensor(t).role == artifact::TensorRole::kInput) return t;
      const artifact::NodeDesc* n = node(t);
      if (n == nullptr || n->inputs.size() != 1 ||
          !(n->op == OpCode::kReshape || n->op == OpCode::kUnsqueeze ||
            n->op == OpCode::kSqueeze)) {
        return -1;
      }
      t = n->inputs[0];
    }
  };
  for (size_t si = 0; si < graph_.nodes.size(); ++si) {
    const artifact::NodeDesc& sm = graph_.nodes[si];
    if (sm.op != OpCode::kSoftmax) continue;
    const int32_t x = sm.inputs[0];
    const std::vector<int64_t>& xs = tensor(x).shape;
    const artifact::AttrValue* axis_attr = sm.attrs.find("axis");
    const auto* axis = axis_attr != nullptr ? std::get_if<int64_t>(axis_attr) : nullptr;
    if (xs.empty() || axis == nullptr ||
        (*axis != -1 && *axis != static_cast<int64_t>(xs.size()) - 1)) {
      continue;
    }
    const int64_t c = xs.back();
    const artifact::NodeDesc* add = node(x);
    const bool float_x = tensor(x).quant.kind == artifact::QuantKind::kNone;
    if (add == nullptr || add->op != OpCode::kAdd || !private_to_chain(x) ||
        !(per_tensor(tensor(x).quant) || float_x)) {
      continue;
    }
    int32_t mask = -1, a = -1;
    for (int k = 0; k < 2 && mask < 0; ++k) {
      mask = mask_input(add->inputs[static_cast<size_t>(k)]);
      a = add->inputs[static_cast<size_t>(1 - k)];
    }
    if (mask < 0) continue;
    const artifact::TensorDesc& md = tensor(mask);
    const bool float_mask = md.dtype == opset::DType::kF32 && md.quant.kind == artifact::QuantKind::kNone;
    if (md.shape.empty() || md.shape.back() != c) continue;
    if (!float_mask && ((md.dtype != opset::DType::kU16 && md.dtype != opset::DType::kU8) ||
                        !per_tensor(md.quant))) {
      continue;
    }
    const int32_t m_zp = float_mask ? 0 : zero_point(md.quant);
    if (!float_mask && (m_zp < md.quant.qmin || m_zp > md.quant.qmax)) continue;  // 0.0 must be a code
    auto skip = std::make_shared<ColumnSkip>();
    skip->fq_x = FakeQuant(tensor(x).quant, {1});
    skip->mask_dead = float_mask ? 0.f : dequantized(md.quant, md.quant.qmin, md.dtype);  // f32: per execution
    skip->mask_live = float_mask ? 0.f : dequantized(md.quant, m_zp, md.dtype);
    skip->live_code = m_zp;
    // The chain back from `a` to the scores matmul: non-decreasing scalar-constant ops.
    std::vector<int32_t> chain = {static_cast<int32_t>(si), producer_[static_cast<size_t>(x)]};
    bool ok = false;
    for (int32_t t = a;;) {
      const artifact::TensorDesc& td = tensor(t);
      if (!private_to_chain(t) || td.shape.empty() || td.shape.back() != c ||
          !(td.quant.kind == artifact::QuantKind::kNone || per_tensor(td.quant))) {
        break;
      }
      const artifact::NodeDesc* n = node(t);
      if (n == nullptr) break;
      chain.push_back(producer_[static_cast<size_t>(t)]);
      if (n->op == OpCode::kMatMul) {
        ok = true;
        break;
      }
      std::optional<ScoreOp> op = score_op(*n);
      if (!op) break;
      skip->chain.insert(skip->chain.begin(), std::move(*op));
      t = n->inputs[op_input_of(*n, graph_)];
    }
    if (!ok) continue;
    const auto in_it = std::find(graph_.inputs.begin(), graph_.inputs.end(), mask);
    if (in_it == graph_.inputs.end()) continue;
    const auto input = static_cast<int32_t>(in_it - graph_.inputs.begin());
    for (size_t k = 0; k < column_masks_.size() && skip->mask < 0; ++k) {
      if (column_masks_[k].input == input) skip->mask = static_cast<int32_t>(k);
    }
    if (skip->mask < 0) {
      skip->mask = static_cast<int32_t>(column_masks_.size());
      column_masks_.push_back({.input = input,
                               .elem = md.dtype,
                               .rows = opset::num_elements(md.shape) / c,
                               .cols = c,
                               .dead_code = float_mask ? 0 : md.quant.qmin,
                               .live_code = m_zp});
    }
    for (int32_t n : chain) node_skip_[static_cast<size_t>(n)] = skip;
    dead_rows_[static_cast<size_t>(sm.outputs[0])] = skip;
  }
}

}  // namespace hs::runtime::detail
