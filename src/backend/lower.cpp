// Lowering (backend/lower.h): IR values -> tensors, nodes -> nodes, constants -> deduplicated
// weights; then the program is checked exactly as a reader would check it.
#include "headsplit/backend/lower.h"

#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "headsplit/artifact/format.h"
#include "headsplit/artifact/int4.h"
#include "headsplit/support/hash.h"

namespace hs::backend {
namespace {

using ir::ValueId;

// The type a tensor or weight is stored with: the value's (the IR's tensor type is the op
// set's, as the artifact's). The quantization fields of a float type are written as their
// defaults, whatever a pass left in them.
opset::TensorType stored_type(const ir::TensorType& type) {
  opset::TensorType out = type;
  if (!out.quant.is_quantized()) out.quant = {};
  return out;
}

int64_t leading_dim(const ir::Shape& shape) { return shape.empty() ? 1 : shape[0]; }

// Constants that may share one weight: same storage, params, count and leading dimension.
bool same_layout(const ir::TensorType& a, const ir::TensorType& b) {
  return a.dtype == b.dtype && a.quant == b.quant && a.numel() == b.numel() &&
         leading_dim(a.shape) == leading_dim(b.shape);
}

class WeightTable {
 public:
  explicit WeightTable(LoweredProgram& out) : out_(out) {}

  Result<int32_t> intern(const ir::Value& v) {
    const BufferView& data = *v.data;
    const auto expected = static_cast<size_t>(v.type.numel() * ir::dtype_size(v.type.dtype));
    if (data.size != expected || data.bytes().size() != expected) {
      return errorf(ErrorKind::kInternal, "constant '{}' {} has {} bytes of data, expected {}",
                    v.name, ir::type_str(v.type), data.size, expected);
    }
    SourceKey key{data.buffer.get(), data.offset, data.size};
    for (int32_t index : by_source_[key]) {
      if (same_layout(types_[static_cast<size_t>(index)], v.type)) return index;
    }
    uint64_t hash = hash64(data.bytes());
    for (int32_t index : by_hash_[hash]) {
      const BufferView& other = out_.weight_data[static_cast<size_t>(index)];
      if (same_layout(types_[static_cast<size_t>(index)], v.type) &&
          std::equal(other.bytes().begin(), other.bytes().end(), data.bytes().begin(),
                     data.bytes().end())) {
        by_source_[key].push_back(index);
        return index;
      }
    }
    auto index = static_cast<int32_t>(out_.program.weights.size());
    artifact::WeightDesc w;
    static_cast<opset::TensorType&>(w) = stored_type(v.type);
    w.name = unique_name(v.name);
    w.layout = v.type.dtype == ir::DType::kI4 ? artifact::WeightLayout::kInt4Packed
                                              : artifact::WeightLayout::kPlain;
    out_.program.weights.push_back(std::move(w));
    out_.weight_data.push_back(data);
    types_.push_back(v.type);
    by_source_[key].push_back(index);
    by_hash_[hash].push_back(index);
    return index;
  }

 private:
  using SourceKey = std::tuple<const Buffer*, size_t, size_t>;

  std::string unique_name(const std::string& base) {
    std::string name = base;
    for (int i = 1; !names_.insert(name).second; ++i) name = fmt::format("{}.{}", base, i);
    return name;
  }

  LoweredProgram& out_;
  std::vector<ir::TensorType> types_;  // per weight: the type of its first constant
  std::map<SourceKey, std::vector<int32_t>> by_source_;
  std::unordered_map<uint64_t, std::vector<int32_t>> by_hash_;
  std::unordered_set<std::string> names_;
};

Result<artifact::GraphDesc> lower_graph(const GraphToLower& in, WeightTable& weights,
                                        std::vector<int32_t>& tensor_of_value) {
  const ir::Graph& g = *in.graph;
  const MemoryPlan& plan = *in.plan;
  if (plan.offsets.size() != static_cast<size_t>(g.num_values())) {
    return errorf(ErrorKind::kInternal, "graph '{}': memory plan covers {} values, graph has {}",
                  in.name, plan.offsets.size(), g.num_values());
  }
  artifact::GraphDesc out;
  out.name = in.name;
  out.ar_len = static_cast<int32_t>(in.ar_len);
  out.arena_bytes = plan.arena_bytes;
  tensor_of_value.assign(static_cast<size_t>(g.num_values()), -1);
  for (ValueId id = 0; id < g.num_values(); ++id) {
    const ir::Value& v = g.value(id);
    const bool input = g.is_graph_input(id), output = g.is_graph_output(id);
    if (input && output) {
      return errorf(ErrorKind::kUnsupported, "graph '{}': '{}' is both a graph input and output",
                    in.name, v.name);
    }
    artifact::TensorDesc t;
    static_cast<opset::TensorType&>(t) = stored_type(v.type);
    t.name = v.name;
    if (v.is_constant()) {
      t.role = artifact::TensorRole::kConstant;
      HS_ASSIGN_OR_RETURN(t.weight, weights.intern(v));
    } else if (input) {
      t.role = artifact::TensorRole::kInput;
    } else if (output) {
      t.role = artifact::TensorRole::kOutput;
    } else {
      t.role = artifact::TensorRole::kIntermediate;
      t.arena_offset = plan.offsets[static_cast<size_t>(id)];
    }
    tensor_of_value[static_cast<size_t>(id)] = static_cast<int32_t>(out.tensors.size());
    out.tensors.push_back(std::move(t));
  }
  for (ir::NodeId n = 0; n < g.num_nodes(); ++n) {
    const ir::Node& node = g.node(n);
    if (node.erased) continue;
    artifact::NodeDesc d;
    d.op = node.op;
    for (ValueId v : node.inputs) d.inputs.push_back(tensor_of_value[static_cast<size_t>(v)]);
    for (ValueId v : node.outputs) d.outputs.push_back(tensor_of_value[static_cast<size_t>(v)]);
    d.attrs = node.attrs;
    out.nodes.push_back(std::move(d));
  }
  for (ValueId v : g.inputs()) out.inputs.push_back(tensor_of_value[static_cast<size_t>(v)]);
  for (ValueId v : g.outputs()) out.outputs.push_back(tensor_of_value[static_cast<size_t>(v)]);
  return out;
}

}  // namespace

int64_t LoweredProgram::weight_bytes() const {
  int64_t total = 0;
  for (const artifact::WeightDesc& w : program.weights) {
    auto bytes = artifact::weight_storage_bytes(w);
    if (bytes.ok()) total += static_cast<int64_t>(*bytes);
  }
  return total;
}

Result<LoweredProgram> lower(std::span<const GraphToLower> graphs, artifact::ModelMetadata metadata,
                             tokenizer::TokenizerData tokenizer) {
  LoweredProgram out;
  out.program.metadata = std::move(metadata);
  out.program.tokenizer = std::move(tokenizer);
  WeightTable weights(out);
  for (const GraphToLower& g : graphs) {
    if (g.graph == nullptr || g.plan == nullptr) {
      return errorf(ErrorKind::kInvalidArgument, "graph '{}': no graph or memory plan to lower",
                    g.name);
    }
    out.tensor_of_value.emplace_back();
    HS_ASSIGN_OR_RETURN(artifact::GraphDesc desc,
                        lower_graph(g, weights, out.tensor_of_value.back()));
    out.program.graphs.push_back(std::move(desc));
  }
  // The reader's checks, so that a program lower() returns always writes and loads.
  HS_ASSIGN_OR_RETURN(uint64_t data_size, artifact::assign_weight_offsets(out.program.weights));
  HS_TRY_CTX(artifact::check_program(out.program, {.data_size = data_size}, "lowered program"),
             "lowering");
  return out;
}

Result<artifact::WriteSummary> write_lowered(const std::string& path, const LoweredProgram& lowered,
                                             const WriteOptions& options) {
  const auto count = static_cast<int64_t>(lowered.program.weights.size());
  std::vector<std::byte> packed;  // the current i4 weight, packed
  auto source = [&](int index,
                    const artifact::WeightDesc& w) -> Result<std::span<const std::byte>> {
    if (options.before_weight) HS_TRY(options.before_weight(index, count));
    std::span<const std::byte> bytes = lowered.weight_data[static_cast<size_t>(index)].bytes();
    if (w.layout != artifact::WeightLayout::kInt4Packed) return bytes;
    std::span<const int8_t> values(reinterpret_cast<const int8_t*>(bytes.data()), bytes.size());
    HS_ASSIGN_OR_RETURN(packed, artifact::pack_int4(values, artifact::int4_rows(w.shape), w.name));
    return std::span<const std::byte>(packed);
  };
  return artifact::write_artifact(path, lowered.program, source);
}

}  // namespace hs::backend
