// The ONNX export's structure, read back with the same onnx.proto: opset and I/O contract,
// per-layer projections (H + 2*Hkv + 1 after the split, 4 before), 2L cache inputs, the QDQ
// parameters of int8 per-channel and int4 blocked weights (values decoded from the file and
// compared with headsplit's integers), external data written once for both models, float
// exports, metadata, and bad output paths. Numbers against ONNX Runtime: ort_crosscheck.mjs.
#include "headsplit/onnx/export.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "headsplit/frontend/loader.h"
#include "headsplit/support/file.h"
#include "onnx.pb.h"
#include "testing/testing.h"

namespace hs::onnx {
namespace {

using testing::shared_file;
using testing::temp_dir;

struct Config {
  std::string scheme;  // "none" for float
  bool split = true;
};
void PrintTo(const Config& c, std::ostream* os) {
  *os << c.scheme << (c.split ? " split" : " mha");
}

// stories260K prepared once per configuration (C = 64, N = 8, two calibration lines).
const backend::PreparedExport* prepared(const Config& c) {
  static std::map<std::pair<std::string, bool>, std::unique_ptr<backend::PreparedExport>> cache;
  auto& slot = cache[{c.scheme, c.split}];
  if (slot) return slot.get();
  auto model = frontend::load_model(shared_file("models/stories260K/stories260K.bin"),
                                    shared_file("models/stories260K/tok512.bin"));
  EXPECT_TRUE(model.ok()) << model.error().message();
  if (!model.ok()) return nullptr;
  const std::string calib = temp_dir() + "/calib.txt";
  {
    std::ifstream in(shared_file("data/tinystories/valid-sample.txt"));
    std::ofstream out(calib);
    std::string line;
    for (int i = 0; i < 2 && std::getline(in, line); ++i) out << line << "\n";
  }
  backend::ExportOptions options;
  options.prefill_ar_len = 8;
  options.context_len = 64;
  options.quant.scheme = c.scheme;
  options.quant.calibration_files = {calib};
  options.quant.progress = false;
  options.preprocess.split = c.split;
  auto p = backend::prepare_export(*model, options);
  EXPECT_TRUE(p.ok()) << p.error().message();
  if (!p.ok()) return nullptr;
  slot = std::make_unique<backend::PreparedExport>(std::move(p).value());
  return slot.get();
}

::onnx::ModelProto read_model(const std::string& path) {
  ::onnx::ModelProto model;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(model.ParseFromIstream(&in)) << path;
  return model;
}

std::string meta(const ::onnx::ModelProto& m, const std::string& key) {
  for (const auto& p : m.metadata_props()) {
    if (p.key() == key) return p.value();
  }
  return "<missing>";
}

const ::onnx::TensorProto* find_initializer(const ::onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

const ::onnx::NodeProto* consumer(const ::onnx::GraphProto& g, const std::string& input) {
  for (const auto& n : g.node()) {
    for (const auto& in : n.input()) {
      if (in == input) return &n;
    }
  }
  return nullptr;
}

int64_t attr(const ::onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return a.i();
  }
  return -1;
}

// Per layer: Conv nodes computing a value of that layer's attention.
std::vector<int64_t> projections_per_layer(const ::onnx::GraphProto& g, int64_t layers) {
  std::vector<int64_t> count(static_cast<size_t>(layers), 0);
  for (const auto& n : g.node()) {
    if (n.op_type() != "Conv") continue;
    for (int64_t l = 0; l < layers; ++l) {
      if (n.output(0).rfind(fmt::format("layers.{}.attn.", l), 0) == 0)
        ++count[static_cast<size_t>(l)];
    }
  }
  return count;
}

class OnnxExport : public ::testing::TestWithParam<Config> {};

TEST_P(OnnxExport, StructureMatchesTheGraphs) {
  HS_REQUIRE_SHARED();
  const Config c = GetParam();
  const backend::PreparedExport* p = prepared(c);
  ASSERT_NE(p, nullptr);
  const std::string dir = temp_dir() + "/" + c.scheme + (c.split ? "-split" : "-mha");
  HS_ASSERT_OK_AND_ASSIGN(OnnxSummary summary, write_onnx(*p, dir));
  const artifact::ModelMetadata& m = p->lowered.program.metadata;
  const int64_t L = m.n_layers, H = m.n_heads, Hkv = m.n_kv_heads;
  ASSERT_EQ(summary.graphs.size(), p->graphs.size());
  for (size_t i = 0; i < p->graphs.size(); ++i) {
    const ir::Graph& graph = p->graphs[i].graph;
    const ::onnx::ModelProto model = read_model(dir + "/" + summary.graphs[i].file);
    EXPECT_EQ(model.ir_version(), kIrVersion);
    ASSERT_EQ(model.opset_import_size(), 1);
    EXPECT_EQ(model.opset_import(0).version(), 21);
    const ::onnx::GraphProto& g = model.graph();
    // The artifact's I/O: names in order, shapes, storage types.
    ASSERT_EQ(g.input_size(), static_cast<int>(graph.inputs().size()));
    for (int k = 0; k < g.input_size(); ++k) {
      const ir::Value& v = graph.value(graph.inputs()[static_cast<size_t>(k)]);
      EXPECT_EQ(g.input(k).name(), v.name);
      const auto& t = g.input(k).type().tensor_type();
      ASSERT_EQ(t.shape().dim_size(), v.type.rank()) << v.name;
      for (int d = 0; d < t.shape().dim_size(); ++d) {
        EXPECT_EQ(t.shape().dim(d).dim_value(), v.type.shape[static_cast<size_t>(d)]) << v.name;
      }
      const bool cache = v.name.rfind("k_cache.", 0) == 0 || v.name.rfind("v_cache.", 0) == 0;
      if (cache) {
        EXPECT_EQ(t.elem_type(), c.scheme == "none" ? 1 : 4) << v.name;  // f32 / u16
      }
    }
    ASSERT_EQ(g.output_size(), static_cast<int>(graph.outputs().size()));
    for (int k = 0; k < g.output_size(); ++k) {
      EXPECT_EQ(g.output(k).name(), graph.value(graph.outputs()[static_cast<size_t>(k)]).name);
    }
    // 2L cache inputs and outputs; per layer H + 2*Hkv + 1 projections split, 4 unsplit.
    EXPECT_EQ(summary.graphs[i].cache_inputs, 2 * L);
    EXPECT_EQ(summary.graphs[i].cache_outputs, 2 * L);
    const std::vector<int64_t> per_layer = projections_per_layer(g, L);
    for (int64_t l = 0; l < L; ++l) {
      EXPECT_EQ(per_layer[static_cast<size_t>(l)], c.split ? H + 2 * Hkv + 1 : 4) << "layer " << l;
    }
    EXPECT_EQ(summary.graphs[i].attention_projections, per_layer[0]);
    // QDQ pairs only in quantized exports.
    EXPECT_EQ(summary.graphs[i].quantize_nodes > 0, c.scheme != "none");
    // Metadata.
    EXPECT_EQ(meta(model, "graph"), p->graphs[i].name);
    EXPECT_EQ(meta(model, "family"), "stories");
    EXPECT_EQ(meta(model, "ar_lengths"), "8,1");
    EXPECT_EQ(meta(model, "cache_layout"), "per-layer");
    EXPECT_EQ(meta(model, "quant_scheme"), c.scheme);
    EXPECT_EQ(meta(model, "split_applied"), c.split ? "true" : "false");
    EXPECT_EQ(meta(model, "tokenizer"), "tokenizer.json");
  }
  EXPECT_FALSE(summary.external);  // 1 MiB of weights: inline
  HS_ASSERT_OK_AND_ASSIGN(std::string tok, read_text_file(dir + "/tokenizer.json"));
  const auto json = nlohmann::json::parse(tok);
  EXPECT_EQ(json["pieces"].size(), static_cast<size_t>(m.vocab_size));
  EXPECT_EQ(json["bos_id"], p->lowered.program.tokenizer.bos_id);
  EXPECT_TRUE(file_exists(dir + "/README.md"));
}

INSTANTIATE_TEST_SUITE_P(Configs, OnnxExport,
                         ::testing::Values(Config{"16a8w", true}, Config{"16a4w-block32", false},
                                           Config{"none", true}, Config{"none", false}),
                         [](const auto& info) {
                           std::string s =
                               info.param.scheme + (info.param.split ? "_split" : "_mha");
                           for (char& ch : s)
                             ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return s;
                         });

// Every quantized weight's integers, decoded from the ONNX initializer (int4: two per byte,
// low nibble first), equal headsplit's; its DequantizeLinear has the per-channel axis (int8)
// or the block size and a [Co, Ci/B, 1, 1] scale (int4).
void check_weights(const std::string& scheme, int expected_type) {
  const backend::PreparedExport* p = prepared({scheme, true});
  ASSERT_NE(p, nullptr);
  const std::string dir = temp_dir() + "/weights-" + scheme;
  HS_ASSERT_OK(write_onnx(*p, dir));
  const ::onnx::GraphProto g = read_model(dir + "/decode.onnx").graph();
  int checked = 0;
  for (size_t w = 0; w < p->lowered.program.weights.size(); ++w) {
    const artifact::WeightDesc& desc = p->lowered.program.weights[w];
    if (!desc.quant.is_quantized() || desc.rank() != 4) continue;  // the conv projections
    const ::onnx::TensorProto* t = find_initializer(g, desc.name + "/quantized");
    ASSERT_NE(t, nullptr) << desc.name;
    EXPECT_EQ(t->data_type(), expected_type) << desc.name;
    const std::span<const std::byte> ir = p->lowered.weight_data[w].bytes();
    const std::string& raw = t->raw_data();
    for (size_t k = 0; k < ir.size(); ++k) {
      int v;
      if (expected_type == 22) {
        const auto byte = static_cast<uint8_t>(raw[k / 2]);
        v = (k % 2 == 0 ? byte : byte >> 4) & 0x0F;
        if (v >= 8) v -= 16;
      } else {
        v = static_cast<int8_t>(raw[k]);
      }
      ASSERT_EQ(v, static_cast<int8_t>(ir[k])) << desc.name << " element " << k;
    }
    const ::onnx::NodeProto* dq = consumer(g, t->name());
    ASSERT_NE(dq, nullptr);
    EXPECT_EQ(dq->op_type(), "DequantizeLinear");
    const ::onnx::TensorProto* scale = find_initializer(g, dq->input(1));
    ASSERT_NE(scale, nullptr);
    if (expected_type == 22) {
      EXPECT_EQ(attr(*dq, "axis"), 1);
      EXPECT_EQ(attr(*dq, "block_size"), desc.quant.block);
      ASSERT_EQ(scale->dims_size(), 4);
      EXPECT_EQ(scale->dims(0), desc.shape[0]);
      EXPECT_EQ(scale->dims(1), (desc.shape[1] + desc.quant.block - 1) / desc.quant.block);
      // scale[c][b] is headsplit's [channel][block] scale.
      float first_of_row1;
      std::memcpy(&first_of_row1, scale->raw_data().data() + 4 * scale->dims(1), 4);
      EXPECT_EQ(first_of_row1, desc.quant.scales[static_cast<size_t>(scale->dims(1))]);
    } else {
      EXPECT_EQ(attr(*dq, "axis"), 0);
      ASSERT_EQ(scale->dims_size(), 1);
      EXPECT_EQ(scale->dims(0), desc.shape[0]);
    }
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST(OnnxWeights, Int8PerChannel) {
  HS_REQUIRE_SHARED();
  check_weights("16a8w", 3);
}

TEST(OnnxWeights, Int4Blocked) {
  HS_REQUIRE_SHARED();
  check_weights("16a4w-block32", 22);
}

// External data: weights.bin written once; both models point into it at the same offsets,
// and the bytes there are the initializers' raw data.
TEST(OnnxWeights, ExternalDataSharedByTheModels) {
  HS_REQUIRE_SHARED();
  const backend::PreparedExport* p = prepared({"16a4w-block32", true});
  ASSERT_NE(p, nullptr);
  const std::string dir = temp_dir() + "/external";
  HS_ASSERT_OK_AND_ASSIGN(OnnxSummary summary,
                          write_onnx(*p, dir, {.external_threshold_bytes = 0}));
  ASSERT_TRUE(summary.external);
  HS_ASSERT_OK_AND_ASSIGN(std::vector<std::byte> file, read_binary_file(dir + "/weights.bin"));
  EXPECT_EQ(static_cast<int64_t>(file.size()), summary.weight_bytes);
  std::map<std::string, std::pair<int64_t, int64_t>> placed;  // name -> offset, length
  int64_t stored = 0;
  for (const char* name : {"prefill.onnx", "decode.onnx"}) {
    const ::onnx::GraphProto g = read_model(dir + "/" + name).graph();
    for (const auto& t : g.initializer()) {
      if (t.data_location() != ::onnx::TensorProto::EXTERNAL) continue;
      std::map<std::string, std::string> kv;
      for (const auto& e : t.external_data()) kv[e.key()] = e.value();
      EXPECT_EQ(kv["location"], "weights.bin");
      const int64_t offset = std::stoll(kv["offset"]), length = std::stoll(kv["length"]);
      ASSERT_LE(offset + length, static_cast<int64_t>(file.size())) << t.name();
      auto [it, fresh] = placed.emplace(t.name(), std::make_pair(offset, length));
      if (fresh) {
        stored += length;
      } else {
        EXPECT_EQ(it->second, std::make_pair(offset, length)) << t.name() << " in " << name;
      }
    }
  }
  EXPECT_GT(placed.size(), 10u);
  // Each weight once (plus alignment padding), not once per model.
  EXPECT_LE(static_cast<int64_t>(file.size()), stored + 64 * static_cast<int64_t>(placed.size()));
  // An inline export of the same graphs holds the same bytes.
  const std::string inline_dir = temp_dir() + "/inline";
  HS_ASSERT_OK(write_onnx(*p, inline_dir));
  const ::onnx::GraphProto g = read_model(inline_dir + "/decode.onnx").graph();
  for (const auto& [name, place] : placed) {
    const ::onnx::TensorProto* t = find_initializer(g, name);
    ASSERT_NE(t, nullptr) << name;
    ASSERT_EQ(static_cast<int64_t>(t->raw_data().size()), place.second) << name;
    EXPECT_EQ(std::memcmp(t->raw_data().data(), file.data() + place.first, t->raw_data().size()), 0)
        << name;
  }
}

TEST(OnnxExportErrors, OutputIsAFile) {
  HS_REQUIRE_SHARED();
  const backend::PreparedExport* p = prepared({"none", true});
  ASSERT_NE(p, nullptr);
  const std::string file = temp_dir() + "/a-file";
  HS_ASSERT_OK(write_file_atomic(file, std::string_view("x")));
  auto r = write_onnx(*p, file);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message().find(file), std::string::npos) << r.error().message();
}

// 8-bit activations: uint8 QDQ pairs and uint8 caches.
TEST(OnnxExport, EightBitActivationsAreUint8) {
  HS_REQUIRE_SHARED();
  const backend::PreparedExport* p = prepared({"8a8w", true});
  ASSERT_NE(p, nullptr);
  const std::string dir = temp_dir() + "/8a8w";
  HS_ASSERT_OK(write_onnx(*p, dir));
  const ::onnx::GraphProto g = read_model(dir + "/decode.onnx").graph();
  int quantize = 0;
  for (const auto& n : g.node()) {
    if (n.op_type() != "QuantizeLinear") continue;
    ++quantize;
    const ::onnx::TensorProto* zp = find_initializer(g, n.input(2));
    ASSERT_NE(zp, nullptr) << n.name();
    EXPECT_TRUE(zp->data_type() == 2 || zp->data_type() == 4) << n.name();  // u8 (u16 KV/mask)
  }
  EXPECT_GT(quantize, 100);
  int u8 = 0;
  for (const auto& n : g.node()) {
    if (n.op_type() != "QuantizeLinear") continue;
    if (find_initializer(g, n.input(2))->data_type() == 2) ++u8;
  }
  EXPECT_GT(u8, quantize / 2);
}

}  // namespace
}  // namespace hs::onnx
