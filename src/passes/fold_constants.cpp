// fold-constants: a node whose operands are all constants becomes a constant.
//   slice(W, a, s, e)       => view of W's bytes when every axis before a has size 1 (per-head
//                              rows of a projection weight), else a copy; params sliced with it
//   reshape/squeeze/unsqueeze(W) => the same bytes under the new shape (same params)
//   any other node with an unquantized result => computed with the reference interpreter
// Nodes with graph-output results are kept (graph I/O never changes).
#include "headsplit/ir/interpreter.h"
#include "headsplit/passes/passes.h"
#include "headsplit/passes/slicing.h"

namespace hs::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::NodeId;
using ir::OpKind;
using ir::ValueId;

bool all_constant(const Graph& g, const Node& n) {
  for (ValueId v : n.inputs) {
    if (!g.value(v).is_constant()) return false;
  }
  return !n.inputs.empty();
}

// Runs one node on its constant operands with the reference interpreter.
Result<BufferView> compute(const Graph& g, const Node& n) {
  Graph mini("fold");
  std::vector<ValueId> inputs;
  for (ValueId v : n.inputs) {
    const ir::Value& c = g.value(v);
    auto existing = mini.find_value(c.name);
    if (existing) {
      inputs.push_back(*existing);
      continue;
    }
    HS_ASSIGN_OR_RETURN(ValueId id, mini.add_constant(c.name, c.type, *c.data));
    inputs.push_back(id);
  }
  const ir::Value& out = g.value(n.outputs[0]);
  HS_ASSIGN_OR_RETURN(NodeId id, mini.add_node(n.op, inputs, n.attrs, {{out.name, out.type}}));
  mini.set_outputs({mini.node(id).outputs[0]});
  HS_ASSIGN_OR_RETURN(auto results, ir::run_graph(mini, {}));
  const ir::Tensor& t = results[0];
  std::span<const std::byte> bytes =
      t.dtype == ir::DType::kF32 ? std::as_bytes(std::span<const float>(t.f))
                                 : std::as_bytes(std::span<const int32_t>(t.i));
  if (out.type.dtype == ir::DType::kBool) {
    std::vector<uint8_t> b(t.i.begin(), t.i.end());
    auto buffer = HeapBuffer::copy_of(std::as_bytes(std::span<const uint8_t>(b)));
    size_t size = buffer->size();
    return BufferView{std::move(buffer), 0, size};
  }
  auto buffer = HeapBuffer::copy_of(bytes);
  size_t size = buffer->size();
  return BufferView{std::move(buffer), 0, size};
}

Result<std::optional<BufferView>> fold(const Graph& g, const Node& n) {
  const ir::Value& in = g.value(n.inputs[0]);
  const ir::TensorType& out = g.type(n.outputs[0]);
  switch (n.op) {
    case OpKind::kSlice: {
      HS_ASSIGN_OR_RETURN(ir::TensorType sliced, slice_type(in.type, n.attrs.get_int("axis"),
                                                            n.attrs.get_int("start"),
                                                            n.attrs.get_int("end")));
      if (sliced != out) break;  // the slice also requantizes: compute it instead
      HS_ASSIGN_OR_RETURN(BufferView data,
                          slice_constant_data(in, n.attrs.get_int("axis"),
                                              n.attrs.get_int("start"), n.attrs.get_int("end")));
      return std::optional<BufferView>(data);
    }
    case OpKind::kReshape:
    case OpKind::kSqueeze:
    case OpKind::kUnsqueeze:
      if (in.type.dtype == out.dtype &&
          (!out.quant.is_quantized() ||
           (out.quant == in.type.quant && out.quant.kind == ir::QuantKind::kPerTensor))) {
        return std::optional<BufferView>(*in.data);
      }
      break;
    default: break;
  }
  if (out.quant.is_quantized()) return std::optional<BufferView>();  // needs a quantizer
  HS_ASSIGN_OR_RETURN(BufferView data, compute(g, n));
  return std::optional<BufferView>(data);
}

class FoldConstants final : public Pass {
 public:
  std::string_view name() const override { return "fold-constants"; }

  Result<bool> run(Graph& g, const PassContext& ctx) override {
    int64_t views = 0, computed = 0;
    for (NodeId id = 0; id < g.num_nodes(); ++id) {
      const Node& n = g.node(id);
      if (n.erased || n.outputs.size() != 1 || !all_constant(g, n)) continue;
      if (g.is_graph_output(n.outputs[0])) continue;
      auto folded = fold(g, n);
      if (!folded.ok()) {
        return std::move(folded).error().with_context(
            fmt::format("folding '{}'", g.value(n.outputs[0]).name));
      }
      if (!folded->has_value()) continue;
      const bool is_view = (*folded)->buffer == g.value(n.inputs[0]).data->buffer;
      (is_view ? views : computed) += 1;
      // The node's output value becomes the constant: same id, name and type.
      ValueId out = n.outputs[0];
      g.value(out).data = **folded;
      g.value(out).producer = ir::kNoNode;
      g.node(id).outputs.clear();
      g.erase_node(id);
    }
    if (views + computed == 0) return false;
    ctx.note(name(), fmt::format("{} constants as views of existing bytes, {} computed", views,
                                 computed));
    g.compact();
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fold_constants() { return std::make_unique<FoldConstants>(); }

}  // namespace hs::passes
