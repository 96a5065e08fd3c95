// Lowering: the structure of the program made from preprocessed graphs (the runtime's tests
// execute it). Every IR value maps to a tensor of the same type and role; weights are stored
// once across the hybrid pair of graphs and for a tied LM head; int4 weights round-trip
// through the packed file layout.
#include "headsplit/backend/lower.h"

#include <map>
#include <set>

#include "backend/backend_testing.h"
#include "headsplit/artifact/int4.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/backend/export.h"
#include "testing/testing.h"

namespace hs::backend {
namespace {

ExportOptions small_options() {
  ExportOptions o;
  o.prefill_ar_len = 8;
  o.context_len = 32;
  return o;
}

// What the IR says about a constant's bytes: enough to tell two weights apart.
using Content =
    std::tuple<int, std::vector<float>, std::vector<int32_t>, int64_t, int64_t, std::string>;
Content content_of(const ir::Value& v) {
  auto bytes = v.data->bytes();
  return {static_cast<int>(v.type.dtype),
          v.type.quant.scales,
          v.type.quant.zero_points,
          v.type.numel(),
          v.type.shape.empty() ? 1 : v.type.shape[0],
          std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
}

void expect_values_map_to_tensors(const PreparedExport& p) {
  for (size_t gi = 0; gi < p.graphs.size(); ++gi) {
    const ir::Graph& g = p.graphs[gi].graph;
    const artifact::GraphDesc& desc = p.lowered.program.graphs[gi];
    EXPECT_EQ(desc.name, p.graphs[gi].name);
    EXPECT_EQ(desc.arena_bytes, p.graphs[gi].plan.arena_bytes);
    const std::vector<int32_t>& map = p.lowered.tensor_of_value[gi];
    ASSERT_EQ(map.size(), static_cast<size_t>(g.num_values()));
    std::set<int32_t> seen;
    for (ir::ValueId id = 0; id < g.num_values(); ++id) {
      const ir::Value& v = g.value(id);
      ASSERT_GE(map[static_cast<size_t>(id)], 0) << v.name;
      EXPECT_TRUE(seen.insert(map[static_cast<size_t>(id)]).second) << v.name;
      const artifact::TensorDesc& t =
          desc.tensors[static_cast<size_t>(map[static_cast<size_t>(id)])];
      EXPECT_EQ(t.name, v.name);
      // The same type: element type, shape and quantization parameters.
      EXPECT_EQ(static_cast<const opset::TensorType&>(t), v.type) << v.name;
      artifact::TensorRole role = v.is_constant()         ? artifact::TensorRole::kConstant
                                  : g.is_graph_input(id)  ? artifact::TensorRole::kInput
                                  : g.is_graph_output(id) ? artifact::TensorRole::kOutput
                                                          : artifact::TensorRole::kIntermediate;
      EXPECT_EQ(t.role, role) << v.name;
      EXPECT_EQ(t.arena_offset, p.graphs[gi].plan.offsets[static_cast<size_t>(id)]) << v.name;
      if (v.is_constant()) {
        // The weight holds exactly this constant's bytes.
        auto stored = p.lowered.weight_data[static_cast<size_t>(t.weight)].bytes();
        auto bytes = v.data->bytes();
        EXPECT_TRUE(std::equal(stored.begin(), stored.end(), bytes.begin(), bytes.end())) << v.name;
      }
    }
    // Nodes in order with the same operands.
    size_t n = 0;
    for (ir::NodeId id = 0; id < g.num_nodes(); ++id) {
      const ir::Node& node = g.node(id);
      if (node.erased) continue;
      const artifact::NodeDesc& d = desc.nodes[n++];
      EXPECT_EQ(d.op, node.op);
      ASSERT_EQ(d.inputs.size(), node.inputs.size());
      for (size_t i = 0; i < d.inputs.size(); ++i) {
        EXPECT_EQ(d.inputs[i], map[static_cast<size_t>(node.inputs[i])]);
      }
      EXPECT_EQ(d.attrs, node.attrs);
    }
    EXPECT_EQ(n, desc.nodes.size());
  }
}

// Distinct constant contents over every graph: what the weights must be, one each.
size_t distinct_constants(const PreparedExport& p) {
  std::set<Content> contents;
  for (const PreparedGraph& g : p.graphs) {
    for (ir::ValueId id = 0; id < g.graph.num_values(); ++id) {
      if (g.graph.value(id).is_constant()) contents.insert(content_of(g.graph.value(id)));
    }
  }
  return contents.size();
}

int32_t weight_of(const PreparedExport& p, size_t graph, const std::string& name) {
  const ir::Graph& g = p.graphs[graph].graph;
  auto id = g.find_value(name);
  EXPECT_TRUE(id.has_value()) << name;
  if (!id) return -1;
  const auto t = p.lowered.tensor_of_value[graph][static_cast<size_t>(*id)];
  return p.lowered.program.graphs[graph].tensors[static_cast<size_t>(t)].weight;
}

TEST(Lower, FloatHybridMapsEveryValueAndStoresEachWeightOnce) {
  frontend::LlamaModel model = testing::random_stories(7);
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport p, prepare_export(model, small_options()));
  ASSERT_EQ(p.graphs.size(), 2u);
  expect_values_map_to_tensors(p);
  EXPECT_EQ(p.lowered.program.weights.size(), distinct_constants(p));
  // The same weight serves both graphs, also after the split sliced it per head.
  for (const std::string name : {"layers.0.ffn.w1.weight", "norm.weight", "rope.cos_table"}) {
    EXPECT_EQ(weight_of(p, 0, name), weight_of(p, 1, name)) << name;
  }
  // Tied LM head: output.weight [V,D,1,1] views tok_embeddings.weight [V,D]: one weight.
  const int32_t embedding = weight_of(p, 1, "tok_embeddings.weight");
  EXPECT_EQ(weight_of(p, 1, "output.weight"), embedding);
  EXPECT_EQ(p.lowered.program.weights[static_cast<size_t>(embedding)].shape,
            (std::vector<int64_t>{512, 64}));
  // Unique weight bytes: the model's parameters (float32) plus the RoPE tables and scalars.
  int64_t params = 0;
  for (const frontend::NamedWeight& w : frontend::named_weights(model)) {
    if (w.name != "output" && !w.weight->empty()) params += w.weight->numel();
  }
  EXPECT_GE(p.lowered.weight_bytes(), 4 * params);
  EXPECT_LT(p.lowered.weight_bytes(), 4 * params + 4 * 2 * 32 * 4 + 1024);
}

TEST(Lower, UntiedHeadIsItsOwnWeight) {
  frontend::LlamaModel model = testing::random_stories(7);
  std::vector<float> head(model.weights.tok_embeddings.f32().begin(),
                          model.weights.tok_embeddings.f32().end());
  const std::vector<float> same = head;
  head[5] += 1.0f;  // differs in one element
  model.weights.output = frontend::Weight::from_floats({512, 64}, head);
  model.config.tied_embeddings = false;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport p, prepare_export(model, small_options()));
  EXPECT_NE(weight_of(p, 1, "output.weight"), weight_of(p, 1, "tok_embeddings.weight"));
  // Equal bytes in another buffer are still found (content hash + compare).
  model.weights.output = frontend::Weight::from_floats({512, 64}, same);
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport q, prepare_export(model, small_options()));
  EXPECT_EQ(weight_of(q, 1, "output.weight"), weight_of(q, 1, "tok_embeddings.weight"));
}

TEST(Lower, QuantizedInt4WeightsRoundTripThroughTheFile) {
  frontend::LlamaModel model = testing::random_stories(11);
  ExportOptions options = small_options();
  options.quant.scheme = "16a4w-block32";
  options.quant.calibration_prompt = "Once upon a time there was a little dog named Tim.";
  options.quant.progress = false;
  HS_ASSERT_OK_AND_ASSIGN(PreparedExport p, prepare_export(model, options));
  expect_values_map_to_tensors(p);
  EXPECT_EQ(p.lowered.program.weights.size(), distinct_constants(p));
  const std::string path = hs::testing::temp_dir() + "/int4.hsa";
  HS_ASSERT_OK(write_export(p, path));
  HS_ASSERT_OK_AND_ASSIGN(artifact::LoadedArtifact loaded, artifact::load_artifact(path));
  int int4_weights = 0;
  for (size_t i = 0; i < loaded.program().weights.size(); ++i) {
    const artifact::WeightDesc& w = loaded.program().weights[i];
    if (w.dtype != artifact::ElementType::kI4) continue;
    ++int4_weights;
    EXPECT_EQ(w.layout, artifact::WeightLayout::kInt4Packed);
    const artifact::Int4Rows rows = artifact::int4_rows(w.shape);
    EXPECT_EQ(loaded.weight_bytes(static_cast<int>(i)).size(), artifact::int4_packed_size(rows));
    std::vector<int8_t> unpacked(rows.rows * rows.k);
    artifact::unpack_int4(loaded.weight_bytes(static_cast<int>(i)), rows, unpacked);
    auto source = p.lowered.weight_data[i].bytes();
    ASSERT_EQ(source.size(), unpacked.size()) << w.name;
    EXPECT_EQ(std::memcmp(source.data(), unpacked.data(), unpacked.size()), 0) << w.name;
  }
  // Per layer: q, k, v per head (8 + 4 + 4 slices) and o, w1, w2, w3 are 4-bit; the LM head
  // stays as the scheme says (the 16a4w-block32 scheme alone: 4-bit too).
  EXPECT_GE(int4_weights, 5 * (8 + 4 + 4 + 4));
}

}  // namespace
}  // namespace hs::backend
