// Graph outputs whose token rows a caller may limit (GraphExecutor::set_output_rows): a
// prefill chunk needs the logits of its last stored token only, yet the LM head costs
// T * V * D multiply-adds, the largest single matmul of a small model.
//
// The pattern: a projection y = W x over T tokens (linear: y [.., T, V] token-major; conv2d
// 1x1: y [1, V, 1, T] or [1, V, T, 1], channel-major), then only layout nodes (transpose,
// reshape, (un)squeeze) down to a graph output whose non-unit axes are [T, V] in this order.
// Following the axes through the layout nodes proves that output row t is the projection of
// token t, so computing only tokens [first, first + count) gives exactly those rows (the
// projection kernels' results do not depend on which other tokens are in the call when the
// exact integer path runs; see qgemm.h). Every tensor of the chain must have no other reader
// and the same quantization params as the projection's output (layout ops, contract §4).
//
// The restriction is carried down the chain without moving V x T values: the projection writes
// the requested rows token-major into a RowBuffer shared with the chain's last node (the copy
// into the graph output), which copies them to their rows of the output; the chain's other copy
// steps do nothing, and an integer output's final conversion quantizes only those rows (the
// output's non-unit axes are [T, V], so token row t is the contiguous range [t V, (t + 1) V)).
// A graph output's other rows are never written: they keep the bytes of the bound buffer.
#include <algorithm>

#include "step_planner.h"

namespace hs::runtime::detail {

using artifact::OpCode;

void StepPlanner::find_row_outputs() {
  row_output_.assign(graph_.nodes.size(), -1);
  row_buffer_.assign(graph_.nodes.size(), nullptr);
  row_tokens_.assign(graph_.outputs.size(), 0);
  if (options_.reference_kernels) return;
  enum Axis : uint8_t { kUnit, kTokens, kChannels };
  for (size_t j = 0; j < graph_.outputs.size(); ++j) {
    // Back from the output through single-reader layout nodes to a projection.
    std::vector<int32_t> chain;  // node indices, output first
    int32_t proj = -1;
    for (int32_t t = graph_.outputs[j];;) {
      const int32_t p = producer_[static_cast<size_t>(t)];
      if (p < 0) break;
      if (t != graph_.outputs[j] &&
          (uses_[static_cast<size_t>(t)].size() != 1 || is_output_[static_cast<size_t>(t)])) {
        break;
      }
      const artifact::NodeDesc& n = graph_.nodes[static_cast<size_t>(p)];
      if (n.op == OpCode::kConv2d || n.op == OpCode::kLinear) {
        proj = p;
        break;
      }
      if (!(n.op == OpCode::kTranspose || n.op == OpCode::kReshape || n.op == OpCode::kSqueeze ||
            n.op == OpCode::kUnsqueeze) ||
          n.inputs.empty() || tensor(n.inputs[0]).quant != tensor(t).quant) {
        break;
      }
      chain.push_back(p);
      t = n.inputs[0];
    }
    if (proj < 0) continue;
    // Fake quantization per tensor or none: it applies to the computed rows alone.
    const artifact::QuantKind yq = tensor(graph_.nodes[static_cast<size_t>(proj)].outputs[0]).quant.kind;
    if (yq != artifact::QuantKind::kNone && yq != artifact::QuantKind::kPerTensor) continue;
    // The axes of the projection's output, then through the layout nodes in graph order.
    const artifact::NodeDesc& pn = graph_.nodes[static_cast<size_t>(proj)];
    const std::vector<int64_t>& ys = tensor(pn.outputs[0]).shape;
    std::vector<Axis> axes(ys.size(), kUnit);
    if (pn.op == OpCode::kConv2d) {
      if (ys.size() != 4 || ys[0] != 1 || (ys[2] != 1 && ys[3] != 1)) continue;
      axes = {kUnit, kChannels, ys[2] != 1 ? kTokens : kUnit, ys[3] != 1 ? kTokens : kUnit};
    } else {
      if (ys.size() < 2) continue;
      axes.back() = kChannels;
      int non_unit = 0;
      for (size_t a = 0; a + 1 < ys.size(); ++a) {
        if (ys[a] != 1) {
          axes[a] = kTokens;
          ++non_unit;
        }
      }
      if (non_unit != 1) continue;
    }
    if (std::count(axes.begin(), axes.end(), kTokens) != 1) continue;
    bool ok = true;
    for (auto it = chain.rbegin(); it != chain.rend() && ok; ++it) {
      const artifact::NodeDesc& n = graph_.nodes[static_cast<size_t>(*it)];
      const std::vector<int64_t>& in = tensor(n.inputs[0]).shape;
      const std::vector<int64_t>& out = tensor(n.outputs[0]).shape;
      std::vector<Axis> next(out.size(), kUnit);
      if (n.op == OpCode::kTranspose) {
        const artifact::AttrValue* perm_attr = n.attrs.find("perm");
        const auto* perm =
            perm_attr != nullptr ? std::get_if<std::vector<int64_t>>(perm_attr) : nullptr;
        ok = perm != nullptr && perm->size() == out.size() && in.size() == axes.size();
        for (size_t a = 0; ok && a < out.size(); ++a) {
          const int64_t src = (*perm)[a];
          ok = src >= 0 && src < static_cast<int64_t>(axes.size());
          if (ok) next[a] = axes[static_cast<size_t>(src)];
        }
      } else {  // reshape / (un)squeeze: the non-unit axes must stay the same, in order
        std::vector<Axis> carried;
        std::vector<int64_t> in_sizes, out_sizes;
        for (size_t a = 0; a < in.size(); ++a) {
          if (in[a] != 1) {
            carried.push_back(axes[a]);
            in_sizes.push_back(in[a]);
          }
        }
        size_t k = 0;
        for (size_t a = 0; a < out.size(); ++a) {
          if (out[a] == 1) continue;
          out_sizes.push_back(out[a]);
          if (k < carried.size()) next[a] = carried[k++];
        }
        ok = in_sizes == out_sizes && in.size() == axes.size();
      }
      axes = std::move(next);
    }
    if (!ok) continue;
    std::vector<Axis> order;
    for (Axis a : axes) {
      if (a != kUnit) order.push_back(a);
    }
    if (order != std::vector<Axis>{kTokens, kChannels}) continue;
    row_output_[static_cast<size_t>(proj)] = static_cast<int32_t>(j);
    for (int32_t node : chain) row_output_[static_cast<size_t>(node)] = static_cast<int32_t>(j);
    if (!chain.empty()) {
      auto buffer = std::make_shared<RowBuffer>();
      row_buffer_[static_cast<size_t>(proj)] = buffer;
      row_buffer_[static_cast<size_t>(chain.front())] = std::move(buffer);
    }
    const std::vector<int64_t>& os = tensor(graph_.outputs[j]).shape;
    const auto at = std::find(axes.begin(), axes.end(), kTokens);
    row_tokens_[j] = os[static_cast<size_t>(at - axes.begin())];
  }
}

}  // namespace hs::runtime::detail
