// Fused rotary embeddings. The frontend rotates q and k (rotate-half RoPE over the first R = 2h
// of Dh dims; frontend/builder_attention.cpp rotate()) with nine nodes on x [..., Dh]:
//   x1 = slice(x, last, 0, h)          x2 = slice(x, last, h, 2h)        [..., h]
//   x1cos = x1 * C   x2sin = x2 * S    rot_a = x1cos - x2sin
//   x1sin = x1 * S   x2cos = x2 * C    rot_b = x1sin + x2cos
//   y = concat(rot_a, rot_b[, slice(x, last, 2h, Dh)], last)                [..., Dh]
// with C, S [..., h] broadcast over the leading axes (the tables' rows for the T positions).
// Run node by node that is six elementwise steps and one or two copies on [rows, h] pieces: in
// a split decode graph, seven steps per head for 32 floats each. Here they are one step
// (RopeStep, steps_rope.cpp) at the concat's place; the other eight nodes get no step.
//
// Recognition (graph only, once per build): the exact node pattern above (mul operands in
// either order, add's too; sub's as written), every intermediate read only inside the pattern
// and not a graph output, f32 values, C and S tiles of whole rows of x1's shape (their shape,
// without leading unit axes, is a suffix of x1's), h <= kRopeMaxHalf, and fake quantization the
// step can apply exactly: per tensor or none on the six products/sums, slices that keep x's
// params (a layout node with other params would requantize), and a concat whose output keeps
// its inputs' params or is per tensor. Anything else keeps per-node execution.
//
// Exactness: RopeStep computes each element with the kernels the node steps use
// (binary_fq_f32 / binary_f32, fake_quantize_f32 for the concat's params), on the same operand
// values, so the output bytes are the same (tests/runtime/rope_fusion_test.cpp).
#include <algorithm>

#include "step_planner.h"

namespace hs::runtime::detail {

using artifact::OpCode;
using artifact::QuantKind;

namespace {

bool per_tensor_or_none(const artifact::Quant& q) {
  return q.kind == QuantKind::kNone || q.kind == QuantKind::kPerTensor;
}

}  // namespace

void StepPlanner::find_ropes() {
  ropes_.clear();
  rope_at_.assign(graph_.nodes.size(), -1);
  rope_member_.assign(graph_.nodes.size(), false);
  if (options_.reference_kernels || !options_.fuse_rope) return;
  const auto producer = [&](int32_t t) { return producer_[static_cast<size_t>(t)]; };
  const auto node = [&](int32_t n) -> const artifact::NodeDesc& {
    return graph_.nodes[static_cast<size_t>(n)];
  };
  // Only read by `readers` (as a set, each once) and not a graph output.
  const auto read_only_by = [&](int32_t t, std::vector<int32_t> readers) {
    if (is_output_[static_cast<size_t>(t)]) return false;
    std::vector<int32_t> got;
    for (const auto& [n, operand] : uses_[static_cast<size_t>(t)]) got.push_back(n);
    std::sort(got.begin(), got.end());
    std::sort(readers.begin(), readers.end());
    return got == readers;
  };
  const auto last_axis = [&](int32_t n) {
    const artifact::NodeDesc& d = node(n);
    const auto rank = static_cast<int64_t>(tensor(d.inputs[0]).shape.size());
    const int64_t axis = d.attrs.get_int("axis");
    return (axis < 0 ? axis + rank : axis) == rank - 1;
  };
  // Tensor t as a slice on the last axis: {source, start, end, t, its node}, or source -1.
  struct Slice {
    int32_t x = -1;
    int64_t start = 0, end = 0;
    int32_t tensor = -1, node = -1;
  };
  const auto slice_of = [&](int32_t t) {
    const int32_t p = producer(t);
    if (p < 0 || node(p).op != OpCode::kSlice || !last_axis(p)) return Slice{};
    return Slice{node(p).inputs[0], node(p).attrs.get_int("start"), node(p).attrs.get_int("end"),
                 t, p};
  };
  // mul(slice, table) in either order: {slice, table tensor}.
  struct Product {
    Slice slice;
    int32_t table = -1, node = -1;
  };
  const auto product_of = [&](int32_t t) {
    const int32_t p = producer(t);
    if (p < 0 || node(p).op != OpCode::kMul || node(p).inputs.size() != 2) return Product{};
    for (int k = 0; k < 2; ++k) {
      const Slice s = slice_of(node(p).inputs[static_cast<size_t>(k)]);
      if (s.x >= 0) return Product{s, node(p).inputs[static_cast<size_t>(1 - k)], p};
    }
    return Product{};
  };

  for (size_t c = 0; c < graph_.nodes.size(); ++c) {
    const artifact::NodeDesc& cat = graph_.nodes[c];
    if (cat.op != OpCode::kConcat || (cat.inputs.size() != 2 && cat.inputs.size() != 3) ||
        !last_axis(static_cast<int32_t>(c)) || row_output_[c] >= 0) {
      continue;
    }
    const int32_t pa = producer(cat.inputs[0]), pb = producer(cat.inputs[1]);
    if (pa < 0 || pb < 0 || node(pa).op != OpCode::kSub || node(pb).op != OpCode::kAdd) continue;
    const Product x1c = product_of(node(pa).inputs[0]), x2s = product_of(node(pa).inputs[1]);
    Product x1s = product_of(node(pb).inputs[0]), x2c = product_of(node(pb).inputs[1]);
    if (x1s.slice.start != 0) std::swap(x1s, x2c);  // add's operands in either order
    if (x1c.node < 0 || x2s.node < 0 || x1s.node < 0 || x2c.node < 0) continue;
    const int32_t x = x1c.slice.x;
    const int64_t h = x1c.slice.end;
    // x1 = x[..., 0:h] read by x1cos and x1sin; x2 = x[..., h:2h] by x2sin and x2cos; the
    // tables: C by x1cos and x2cos, S by x2sin and x1sin.
    const int32_t x1 = x1c.slice.tensor, x2 = x2s.slice.tensor;
    const bool pattern =
        x1c.slice.start == 0 && h > 0 && x2s.slice.start == h && x2s.slice.end == 2 * h &&
        x1s.slice.node == x1c.slice.node && x2c.slice.node == x2s.slice.node && x2s.slice.x == x &&
        x1c.table == x2c.table && x2s.table == x1s.table && x1c.table != x && x2s.table != x;
    if (!pattern || h > kRopeMaxHalf) continue;
    const std::vector<int64_t>& xs = tensor(x).shape;
    const int64_t dh = xs.empty() ? 0 : xs.back();
    if (dh < 2 * h) continue;
    int32_t pass_node = -1;
    if (cat.inputs.size() == 3) {
      const Slice p = slice_of(cat.inputs[2]);
      if (p.x != x || p.start != 2 * h || p.end != dh) continue;
      pass_node = p.node;
    } else if (dh != 2 * h) {
      continue;
    }
    const int32_t out = cat.outputs[0];
    // Shapes: the products and sums are x1's shape; the tables tile whole rows of it.
    const std::vector<int64_t>& s1 = tensor(x1).shape;
    bool shapes = tensor(out).shape == xs && s1.back() == h;
    for (int32_t t : {node(x1c.node).outputs[0], node(x2s.node).outputs[0],
                      node(x1s.node).outputs[0], node(x2c.node).outputs[0], cat.inputs[0],
                      cat.inputs[1], x2}) {
      shapes = shapes && tensor(t).shape == s1;
    }
    for (int32_t table : {x1c.table, x2s.table}) {
      std::vector<int64_t> ts = tensor(table).shape;
      while (ts.size() > 1 && ts.front() == 1) ts.erase(ts.begin());
      shapes = shapes && !ts.empty() && ts.size() <= s1.size() &&
               std::equal(ts.rbegin(), ts.rend(), s1.rbegin()) && ts.back() == h;
    }
    if (!shapes || tensor(x1c.table).shape != tensor(x2s.table).shape) continue;
    // Values: real f32 throughout; fake quantization RopeStep applies exactly.
    bool quant = true;
    for (int32_t t : {x, x1, x2, x1c.table, x2s.table, out}) quant = quant && tensor(t).is_real();
    for (int32_t t : {node(x1c.node).outputs[0], node(x2s.node).outputs[0], cat.inputs[0],
                      node(x1s.node).outputs[0], node(x2c.node).outputs[0], cat.inputs[1]}) {
      quant = quant && tensor(t).is_real() && per_tensor_or_none(tensor(t).quant);
    }
    for (int32_t t : {x1, x2}) {
      quant = quant && (tensor(t).quant == tensor(x).quant || tensor(t).quant.kind == QuantKind::kNone);
    }
    if (pass_node >= 0) {
      const artifact::Quant& pq = tensor(cat.inputs[2]).quant;
      quant = quant && (pq == tensor(x).quant || pq.kind == QuantKind::kNone);
    }
    bool same_params = true;
    for (int32_t t : cat.inputs) same_params = same_params && tensor(t).quant == tensor(out).quant;
    quant = quant && (same_params || per_tensor_or_none(tensor(out).quant));
    if (!quant) continue;
    // Every intermediate read only inside the pattern.
    const int32_t cn = static_cast<int32_t>(c);
    bool private_values = read_only_by(x1, {x1c.node, x1s.node}) &&
                          read_only_by(x2, {x2s.node, x2c.node}) &&
                          read_only_by(node(x1c.node).outputs[0], {pa}) &&
                          read_only_by(node(x2s.node).outputs[0], {pa}) &&
                          read_only_by(node(x1s.node).outputs[0], {pb}) &&
                          read_only_by(node(x2c.node).outputs[0], {pb}) &&
                          read_only_by(cat.inputs[0], {cn}) && read_only_by(cat.inputs[1], {cn});
    if (pass_node >= 0) private_values = private_values && read_only_by(cat.inputs[2], {cn});
    if (!private_values) continue;
    std::vector<int32_t> members{x1c.slice.node, x2s.slice.node, x1c.node, x2s.node,
                                 pa,             x1s.node,       x2c.node, pb};
    if (pass_node >= 0) members.push_back(pass_node);
    if (std::any_of(members.begin(), members.end(), [&](int32_t n) {
          return rope_member_[static_cast<size_t>(n)] || row_output_[static_cast<size_t>(n)] >= 0;
        })) {
      continue;
    }
    RopeMatch m;
    m.x = x;
    m.cos = x1c.table;
    m.sin = x2s.table;
    m.half = h;
    m.products = {node(x1c.node).outputs[0], node(x2s.node).outputs[0], cat.inputs[0],
                  node(x1s.node).outputs[0], node(x2c.node).outputs[0], cat.inputs[1]};
    m.requantize = !same_params;
    for (int32_t n : members) rope_member_[static_cast<size_t>(n)] = true;
    rope_at_[c] = static_cast<int32_t>(ropes_.size());
    ropes_.push_back(std::move(m));
  }
}

Status StepPlanner::plan_rope(int32_t i, const std::string& label) {
  const RopeMatch& m = ropes_[static_cast<size_t>(rope_at_[static_cast<size_t>(i)])];
  const int32_t out = graph_.nodes[static_cast<size_t>(i)].outputs[0];
  HS_ASSIGN_OR_RETURN(const Source x, dense(m.x, label));
  HS_ASSIGN_OR_RETURN(const Source cs, dense(m.cos, label));
  HS_ASSIGN_OR_RETURN(const Source sn, dense(m.sin, label));
  HS_ASSIGN_OR_RETURN(Source y, output_dest(out));
  // The backend's arena plan let y share bytes with x or a table (their last readers, the
  // slices and products, came before the concat); a step that reads them while writing y needs
  // them apart, or y exactly x (each row's products are taken before the row is written; a
  // table, smaller than y, can never be exactly y). Otherwise y moves to staging.
  const std::pair<Source, int32_t> ins[] = {{x, m.x}, {cs, m.cos}, {sn, m.sin}};
  if (overlapping_operand(y, out, ins, /*elementwise=*/true) >= 0) {
    y.ref = add_ref(kBaseStaging, static_cast<uint64_t>(alloc_staging(numel(tensor(out).shape) * 4)));
    state_[static_cast<size_t>(out)].src = y;
  }
  RopeSpec spec{.label = label};
  spec.x = x.ref;
  spec.cos = cs.ref;
  spec.sin = sn.ref;
  spec.y = y.ref;
  const std::vector<int64_t>& xs = tensor(m.x).shape;
  spec.dh = xs.back();
  spec.half = m.half;
  spec.rows = numel(xs) / spec.dh;
  spec.table_rows = numel(tensor(m.cos).shape) / m.half;
  for (size_t k = 0; k < m.products.size(); ++k) spec.fq[k] = fake_quant_of(m.products[k]);
  if (m.requantize) spec.out_fq = fake_quant_of(out);
  plan_.steps.push_back(make_rope_step(std::move(spec)));
  ++plan_.fused_ropes;
  return ok_status();
}

}  // namespace hs::runtime::detail
