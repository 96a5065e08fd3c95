// write_onnx (onnx/export.h): weights placement, one ModelProto per graph, metadata, the
// tokenizer and the README; every file through an AtomicFileWriter, committed at the end.
#include "headsplit/onnx/export.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "headsplit/frontend/llama_model.h"
#include "headsplit/support/file.h"
#include "onnx_internal.h"

namespace hs::onnx {
namespace {

using detail::WeightPlacement;

constexpr const char* kWeightsFile = "weights.bin";
constexpr const char* kTokenizerFile = "tokenizer.json";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string join(const std::vector<int64_t>& v) { return fmt::format("{}", fmt::join(v, ",")); }

// metadata_props: the artifact's metadata under the same names, and this graph's own.
void add_metadata(::onnx::ModelProto& model, const artifact::ModelMetadata& m,
                  const backend::PreparedGraph& graph) {
  auto put = [&model](const std::string& key, const std::string& value) {
    auto* p = model.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  };
  put("model_name", m.model_name);
  // The model family, as the export names it for its default recipe (llama when none fits).
  frontend::LlamaModel probe;
  probe.config.name = m.model_name;
  const std::string family = backend::default_recipe(probe);
  put("family", family.empty() ? "llama" : family);
  put("model_source", m.model_source);
  put("graph", graph.name);
  put("ar_len", std::to_string(graph.ar_len));
  put("ar_lengths", join(m.ar_lengths));
  put("context_len", std::to_string(m.context_len));
  put("dim", std::to_string(m.dim));
  put("n_layers", std::to_string(m.n_layers));
  put("n_heads", std::to_string(m.n_heads));
  put("n_kv_heads", std::to_string(m.n_kv_heads));
  put("head_dim", std::to_string(m.head_dim));
  put("hidden_dim", std::to_string(m.hidden_dim));
  put("vocab_size", std::to_string(m.vocab_size));
  put("rope_theta", fmt::format("{}", m.rope_theta));
  put("rms_eps", fmt::format("{}", m.rms_eps));
  put("quant_scheme", m.quant_scheme.empty() ? "none" : m.quant_scheme);
  put("kv_cache_bits", std::to_string(m.kv_cache_bits));
  put("mask_bits", std::to_string(m.mask_bits));
  put("logits_bits", std::to_string(m.logits_bits));
  put("split_applied", m.split_applied ? "true" : "false");
  put("masked_softmax", m.masked_softmax ? "true" : "false");
  put("r3", m.r3 ? "true" : "false");
  put("tokenizer", kTokenizerFile);
  put("smartmask", "attention_mask u16 [1,T,C]: 65535 attend, 0 masked; see README.md");
  for (const auto& [key, value] : m.extra) put(key, value);
}

std::string tokenizer_json(const tokenizer::TokenizerData& t) {
  nlohmann::json j;
  j["kind"] = static_cast<int>(t.kind);
  // Pieces may be raw bytes (not UTF-8): stored as arrays of byte values.
  nlohmann::json pieces = nlohmann::json::array();
  for (const std::string& p : t.pieces) {
    nlohmann::json bytes = nlohmann::json::array();
    for (char c : p) bytes.push_back(static_cast<uint8_t>(c));
    pieces.push_back(std::move(bytes));
  }
  j["pieces"] = std::move(pieces);
  j["scores"] = t.scores;
  std::vector<int> types;
  for (auto type : t.types) types.push_back(static_cast<int>(type));
  j["types"] = types;
  j["merges"] = t.merges;
  j["pre_tokenizer"] = t.pre_tokenizer;
  j["bos_id"] = t.bos_id;
  j["eos_id"] = t.eos_id;
  j["extra_eos_ids"] = t.extra_eos_ids;
  j["unk_id"] = t.unk_id;
  j["pad_id"] = t.pad_id;
  j["add_bos"] = t.add_bos;
  j["add_space_prefix"] = t.add_space_prefix;
  j["chat_template"] = t.chat_template;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string readme(const backend::PreparedExport& prepared, const OnnxSummary& summary) {
  const artifact::ModelMetadata& m = prepared.lowered.program.metadata;
  std::string files;
  for (const OnnxGraphSummary& g : summary.graphs) {
    files += fmt::format("- `{}`: graph `{}`, AR length T = {}\n", g.file, g.name, g.ar_len);
  }
  const std::string cache =
      m.kv_cache_bits == 0 ? "float32" : fmt::format("uint{}", m.kv_cache_bits);
  return fmt::format(
      R"(# {model}: ONNX export by headsplit

Opset {opset}, {scheme}, attention {split}. One model per step graph:
{files}{weights}- `{tok}`: the tokenizer (pieces as byte arrays, scores, merges, special ids)

Metadata (`metadata_props` of every model): model dimensions, quantization scheme, recipe,
cache layout, AR lengths, context length C = {C}.

## Inputs and outputs (one step of T tokens; P = C - T cache slots)

| name | type | shape |
|---|---|---|
| tokens | int32 | [1,T] |
| attention_mask | {mask} | [1,T,C]: columns [0,P) cache slots, [P,C) this step's tokens |
| input_pos | int32 | [1,T]: the position of each token |
| k_cache.l (l < L = {L}) | {cache} | [1,Hkv,Dh,P] = [1,{Hkv},{Dh},P] (keys pre-transposed) |
| v_cache.l | {cache} | [1,Hkv,P,Dh] |
| logits (output) | {logits} | [1,T,V] = [1,T,{V}] |
| k_new.l (output) | {cache} | [1,Hkv,Dh,T] |
| v_new.l (output) | {cache} | [1,Hkv,T,Dh] |

Quantized inputs and outputs are stored integers; their scale and zero point are those of
the DequantizeLinear after the input / the QuantizeLinear before the output
(real = scale * (q - zero_point)).

## The SmartMask update the caller does

Cache slot j holds position j. The mask holds the stored values 65535 (attend) and 0
(masked); a float mask (float exports) holds 0 (attend) and -255 (masked).

1. Prefill (AR-N graph), n prompt tokens, chunks of N: causal mask (row i sees cache slots
   [0, n_past) and this step's columns P..P+i), tokens padded with the pad token, positions
   n_past + i. After each step copy the first n_update = min(N, rest) columns of k_new.l
   ([Hkv,Dh,T], column t) into k_cache.l slots [n_past, n_past + n_update) and the rows of
   v_new.l into v_cache.l likewise, unmask those slots (every row), n_past += n_update.
   The first generated token is the argmax of logits row (n - 1) mod N of the last chunk.
2. Decode (AR-1 graph): P = C - 1 slots, so move the cached slots [0, n_past) into caches
   of the decode shape (same slots, longer rows); mask row: slots [0, n_past) and the last
   column; per step feed the last token at position n_past, copy k_new/v_new into slot
   n_past, unmask it, n_past += 1.

## Running it

- ONNX Runtime (CPU): load with graph optimizations disabled to get headsplit's numbers
  exactly (the QDQ fusions of higher levels compute in integers and round differently).
- QNN (HTP): the QDQ pairs carry every tensor's encoding; see docs/onnx.md of headsplit.
)",
      fmt::arg("model", m.model_name), fmt::arg("opset", kOpsetVersion),
      fmt::arg("scheme", m.quant_scheme.empty() ? std::string("float graphs (no QDQ)")
                                                : "QDQ form (" + m.quant_scheme + ")"),
      fmt::arg("split", m.split_applied ? "split into single heads" : "multi-head"),
      fmt::arg("files", files),
      fmt::arg("weights", summary.external
                              ? fmt::format("- `{}`: the weights, shared by the models (ONNX "
                                            "external data)\n",
                                            kWeightsFile)
                              : std::string()),
      fmt::arg("tok", kTokenizerFile), fmt::arg("C", m.context_len), fmt::arg("L", m.n_layers),
      fmt::arg("Hkv", m.n_kv_heads), fmt::arg("Dh", m.head_dim), fmt::arg("V", m.vocab_size),
      fmt::arg("mask",
               m.mask_bits == 0 ? std::string("float32") : fmt::format("uint{}", m.mask_bits)),
      fmt::arg("logits",
               m.logits_bits == 0 ? std::string("float32") : fmt::format("uint{}", m.logits_bits)),
      fmt::arg("cache", cache));
}

// Counts of the model for the summary.
void count_nodes(const ::onnx::GraphProto& g, OnnxGraphSummary& s) {
  s.nodes = g.node_size();
  for (const auto& n : g.node()) {
    if (n.op_type() == "QuantizeLinear") ++s.quantize_nodes;
    if (n.op_type() == "DequantizeLinear") ++s.dequantize_nodes;
    // Projections: Conv (or the MatMul of a linear) computing a value of layer 0's attention.
    const bool projection =
        n.op_type() == "Conv" || (n.op_type() == "MatMul" && n.input_size() == 2 &&
                                  n.input(1).find("/weight_t") != std::string::npos);
    if (projection && starts_with(n.output(0), "layers.0.attn.")) ++s.attention_projections;
  }
  for (const auto& in : g.input()) {
    if (starts_with(in.name(), "k_cache.") || starts_with(in.name(), "v_cache.")) ++s.cache_inputs;
  }
  for (const auto& out : g.output()) {
    if (starts_with(out.name(), "k_new.") || starts_with(out.name(), "v_new.")) ++s.cache_outputs;
  }
}

}  // namespace

Result<OnnxSummary> write_onnx(const backend::PreparedExport& prepared, const std::string& dir,
                               const OnnxOptions& options) {
  if (dir.empty()) return Error(ErrorKind::kInvalidArgument, "no output folder given");
  if (file_exists(dir) && !is_directory(dir)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "output '{}' is a file; --format onnx writes a folder of models", dir);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return errorf(ErrorKind::kIo, "cannot create output folder '{}': {}", dir, ec.message());
  const backend::LoweredProgram& lowered = prepared.lowered;
  OnnxSummary summary;
  summary.dir = dir;
  std::vector<AtomicFileWriter> files;

  // 1. Weights: external (written once, shared) when they are large.
  const size_t n_weights = lowered.program.weights.size();
  std::vector<WeightPlacement> placement(n_weights);
  int64_t total = 0;
  for (size_t w = 0; w < n_weights; ++w) {
    const auto& desc = lowered.program.weights[w];
    placement[w].length = detail::raw_size(desc.dtype, desc.numel());
    total += placement[w].length;
  }
  summary.external = total > options.external_threshold_bytes;
  if (summary.external) {
    HS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::create(dir + "/" + kWeightsFile));
    for (size_t w = 0; w < n_weights; ++w) {
      if (placement[w].length < options.external_min_tensor_bytes) continue;
      HS_TRY(out.pad_to(64));
      placement[w].external = true;
      placement[w].offset = static_cast<int64_t>(out.offset());
      const auto& desc = lowered.program.weights[w];
      const std::span<const std::byte> bytes = lowered.weight_data[w].bytes();
      if (desc.dtype == ir::DType::kI4) {
        HS_TRY(out.write(detail::raw_bytes(desc.dtype, bytes)));
      } else {
        HS_TRY(out.write(bytes));
      }
    }
    summary.weight_bytes = static_cast<int64_t>(out.offset());
    files.push_back(std::move(out));
  }

  // 2. One model per graph.
  for (size_t i = 0; i < prepared.graphs.size(); ++i) {
    const backend::PreparedGraph& graph = prepared.graphs[i];
    ::onnx::ModelProto model;
    model.set_ir_version(kIrVersion);
    model.set_producer_name("headsplit");
    model.set_producer_version("0.1.0");
    model.set_domain("org.headsplit");
    model.set_doc_string(fmt::format("{} step graph '{}' (AR length {}), exported by headsplit",
                                     lowered.program.metadata.model_name, graph.name,
                                     graph.ar_len));
    auto* opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpsetVersion);
    add_metadata(model, lowered.program.metadata, graph);
    detail::GraphContext context{&lowered, i, &placement, kWeightsFile, options.isolate_ops};
    HS_TRY_CTX(detail::convert_graph(graph.graph, context, *model.mutable_graph()),
               fmt::format("ONNX export of graph '{}'", graph.name));
    OnnxGraphSummary s;
    s.name = graph.name;
    s.file = graph.name + ".onnx";
    s.ar_len = graph.ar_len;
    count_nodes(model.graph(), s);
    std::string bytes;
    if (!model.SerializeToString(&bytes)) {
      return errorf(ErrorKind::kInternal,
                    "cannot serialize the ONNX model of graph '{}' (over 2 GiB inline? lower "
                    "the external-data threshold)",
                    graph.name);
    }
    s.file_bytes = static_cast<int64_t>(bytes.size());
    HS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::create(dir + "/" + s.file));
    HS_TRY(out.write(std::string_view(bytes)));
    files.push_back(std::move(out));
    summary.graphs.push_back(std::move(s));
  }

  // 3. Tokenizer and README, then everything is committed.
  HS_ASSIGN_OR_RETURN(AtomicFileWriter tok, AtomicFileWriter::create(dir + "/" + kTokenizerFile));
  HS_TRY(tok.write(std::string_view(tokenizer_json(lowered.program.tokenizer))));
  files.push_back(std::move(tok));
  HS_ASSIGN_OR_RETURN(AtomicFileWriter text, AtomicFileWriter::create(dir + "/README.md"));
  HS_TRY(text.write(std::string_view(readme(prepared, summary))));
  files.push_back(std::move(text));
  for (AtomicFileWriter& f : files) HS_TRY(f.commit());
  return summary;
}

std::string format_onnx_summary(const OnnxSummary& summary) {
  std::string out = fmt::format("onnx: {} (opset {})\n", summary.dir, kOpsetVersion);
  for (const OnnxGraphSummary& g : summary.graphs) {
    out += fmt::format(
        "  {:<16} ar {:<4} {:6d} nodes ({} Q, {} DQ), layer-0 attention projections {}, "
        "cache inputs {}, outputs {}, {:.2f} MiB\n",
        g.file, g.ar_len, g.nodes, g.quantize_nodes, g.dequantize_nodes, g.attention_projections,
        g.cache_inputs, g.cache_outputs, static_cast<double>(g.file_bytes) / (1 << 20));
  }
  if (summary.external) {
    out += fmt::format("  {:<16} {:.2f} MiB of weights shared by the models\n", kWeightsFile,
                       static_cast<double>(summary.weight_bytes) / (1 << 20));
  }
  return out;
}

}  // namespace hs::onnx
