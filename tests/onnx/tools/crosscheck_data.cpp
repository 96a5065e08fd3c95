// onnx_crosscheck_data OUT_DIR: the data of the ONNX Runtime cross-check
// (tests/onnx/ort_crosscheck.mjs). For stories260K with 16a8w and 16a4w-block32, split and
// unsplit (and, split, variants with the GELU / tanh / LayerNorm ops: see run()), it prepares the
// export once and writes
//   OUT_DIR/<scheme>-<split|mha>/            the ONNX models (onnx::write_onnx)
//   OUT_DIR/<scheme>-<split|mha>.hsa         the artifact of the same prepared graphs
//   OUT_DIR/<scheme>-<split|mha>-ops/        the same with OnnxOptions::isolate_ops
//   OUT_DIR/crosscheck.json                  per configuration:
//     graphs: per graph fixed inputs (stored integers for quantized inputs) and the outputs
//             of headsplit's interpreter on the same quantized graph (stored integers)
//     ops_check: the prefill graph's inputs, and every quantized intermediate of the
//             interpreter's run as stored integers (fed to / compared with the isolated model)
//     generation: prompt token ids and the greedy tokens of the engine on the .hsa (what
//             `headsplit run -p PROMPT -n N` generates), with the pad token
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <tuple>

#include "headsplit/backend/export.h"
#include "headsplit/engine/engine.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/kernels/quant.h"
#include "headsplit/onnx/export.h"
#include "headsplit/support/shared_dir.h"
#include "testing/family_configs.h"

namespace hs {
namespace {

constexpr const char* kPrompt = "Once upon a time, there was a little girl named Lily";
constexpr int64_t kNewTokens = 24;
constexpr int64_t kPrefillAr = 8;
constexpr int64_t kContext = 64;

std::string onnx_type_name(const ir::TensorType& t) {
  switch (t.dtype) {
    case ir::DType::kU16: return "uint16";
    case ir::DType::kU8: return "uint8";
    case ir::DType::kI32: return "int32";
    case ir::DType::kF32: return "float32";
    default: return std::string(ir::dtype_name(t.dtype));
  }
}

// Fixed inputs of one step graph: random tokens, positions n_past.., the causal SmartMask with
// n_past cached tokens, caches of random stored values near their zero point.
Result<nlohmann::json> graph_case(const backend::PreparedGraph& pg, int64_t context_len,
                                  int64_t vocab, uint32_t seed, bool with_ops) {
  const ir::Graph& g = pg.graph;
  const int64_t t_len = pg.ar_len, p = context_len - pg.ar_len;
  const int64_t n_past = std::min<int64_t>(p, 11);
  std::mt19937 rng(seed);
  nlohmann::json inputs = nlohmann::json::object(), outputs = nlohmann::json::object();
  std::vector<ir::NamedTensor> feed;
  for (ir::ValueId v : g.inputs()) {
    const ir::Value& value = g.value(v);
    const ir::TensorType& type = value.type;
    const auto n = static_cast<size_t>(type.numel());
    std::vector<int64_t> stored(n);
    if (value.name == "tokens") {
      for (auto& x : stored) x = static_cast<int64_t>(rng() % static_cast<uint32_t>(vocab));
    } else if (value.name == "input_pos") {
      for (size_t i = 0; i < n; ++i) stored[i] = n_past + static_cast<int64_t>(i);
    } else if (value.name == "attention_mask") {
      // Row i sees slots [0, n_past) and this step's columns P..P+i: 65535, else 0.
      for (int64_t i = 0; i < t_len; ++i) {
        for (int64_t c = 0; c < context_len; ++c) {
          const bool attend = c < n_past || (c >= p && c <= p + i);
          stored[static_cast<size_t>(i * context_len + c)] = attend ? 65535 : 0;
        }
      }
    } else {  // a cache
      if (!type.quant.is_quantized()) {
        return errorf(ErrorKind::kUnsupported, "{}: float caches are not cross-checked",
                      value.name);
      }
      const int64_t zp = type.quant.zero_points[0];
      for (auto& x : stored) {
        x = std::clamp<int64_t>(zp + static_cast<int64_t>(rng() % 4001) - 2000, type.quant.qmin,
                                type.quant.qmax);
      }
    }
    inputs[value.name] = {{"type", onnx_type_name(type)}, {"shape", type.shape}, {"data", stored}};
    ir::Tensor tensor;
    tensor.shape = type.shape;
    if (type.is_real()) {
      tensor.dtype = ir::DType::kF32;
      for (int64_t q : stored) {
        tensor.f.push_back(type.quant.is_quantized()
                               ? kernels::dequantize_one(static_cast<int32_t>(q),
                                                         type.quant.scales[0],
                                                         type.quant.zero_points[0])
                               : static_cast<float>(q));
      }
    } else {
      tensor.dtype = ir::DType::kI32;
      for (int64_t q : stored) tensor.i.push_back(static_cast<int32_t>(q));
    }
    feed.push_back({value.name, std::move(tensor)});
  }
  // Every quantized intermediate as stored integers, in node order (op-by-op comparison).
  nlohmann::json ops = nlohmann::json::array();
  HS_ASSIGN_OR_RETURN(ir::Interpreter interp, ir::Interpreter::create(g));
  HS_ASSIGN_OR_RETURN(std::vector<ir::Tensor> results, interp.run(feed, [&](ir::ValueId id,
                                                                            const ir::Tensor& t) {
    const ir::Value& value = g.value(id);
    const ir::QuantParams& q = value.type.quant;
    if (!with_ops || g.is_graph_output(id) || q.kind != ir::QuantKind::kPerTensor) return;
    std::vector<int64_t> stored;
    for (float x : t.f) {
      stored.push_back(kernels::quantize_one(x, q.scales[0], q.zero_points[0], q.qmin, q.qmax));
    }
    ops.push_back(
        {{"name", value.name + "/q"}, {"op", ir::op_name(g.producer(id)->op)}, {"data", stored}});
  }));
  for (size_t k = 0; k < results.size(); ++k) {
    const ir::Value& value = g.value(g.outputs()[k]);
    const ir::QuantParams& q = value.type.quant;
    if (!q.is_quantized() || q.kind != ir::QuantKind::kPerTensor) {
      return errorf(ErrorKind::kUnsupported, "{}: only per-tensor quantized outputs are compared",
                    value.name);
    }
    std::vector<int64_t> stored;
    for (float x : results[k].f) {
      stored.push_back(kernels::quantize_one(x, q.scales[0], q.zero_points[0], q.qmin, q.qmax));
    }
    outputs[value.name] = {{"type", onnx_type_name(value.type)},
                           {"shape", value.type.shape},
                           {"scale", q.scales[0]},
                           {"data", stored}};
  }
  nlohmann::json out{{"name", pg.name},
                     {"file", pg.name + ".onnx"},
                     {"ar_len", pg.ar_len},
                     {"inputs", inputs},
                     {"outputs", outputs}};
  if (with_ops) out["ops"] = std::move(ops);
  return out;
}

Result<nlohmann::json> one_config(const frontend::LlamaModel& model, const std::string& calib,
                                  const std::string& scheme, bool split, const std::string& out,
                                  bool with_ops, const std::string& variant = "") {
  backend::ExportOptions options;
  options.prefill_ar_len = kPrefillAr;
  options.context_len = kContext;
  options.quant.scheme = scheme;
  options.quant.calibration_files = {calib};
  options.quant.progress = false;
  options.preprocess.split = split;
  HS_ASSIGN_OR_RETURN(backend::PreparedExport prepared, backend::prepare_export(model, options));
  const std::string name = scheme + (split ? "-split" : "-mha") + variant;
  HS_TRY(onnx::write_onnx(prepared, out + "/" + name));
  const std::string hsa = out + "/" + name + ".hsa";
  HS_TRY(backend::write_export(prepared, hsa));
  nlohmann::json graphs = nlohmann::json::array();
  for (size_t i = 0; i < prepared.graphs.size(); ++i) {
    HS_ASSIGN_OR_RETURN(nlohmann::json g,
                        graph_case(prepared.graphs[i], kContext, model.config.vocab_size,
                                   static_cast<uint32_t>(1234 + i), false));
    graphs.push_back(std::move(g));
  }
  // Op by op: the prefill graph again with every quantized intermediate as an output.
  nlohmann::json ops_check;
  if (with_ops) {
    HS_TRY(onnx::write_onnx(prepared, out + "/" + name + "-ops", {.isolate_ops = true}));
    HS_ASSIGN_OR_RETURN(
        ops_check, graph_case(prepared.graphs[0], kContext, model.config.vocab_size, 1234, true));
    ops_check["dir"] = name + "-ops";
  }
  // The generation of `headsplit run -m NAME.hsa -p PROMPT -n kNewTokens` (greedy).
  HS_ASSIGN_OR_RETURN(auto engine, engine::Engine::load({.model_path = hsa, .threads = 1}));
  engine::GenerateOptions generate{.max_new_tokens = kNewTokens};
  HS_ASSIGN_OR_RETURN(runtime::RunReport report,
                      engine->generate(kPrompt, generate, [](std::string_view) {}));
  const std::vector<int32_t> prompt = engine->tokenizer().encode(kPrompt, true, false);
  const auto& tok = prepared.lowered.program.tokenizer;
  std::vector<int32_t> eos = tok.extra_eos_ids;
  if (tok.eos_id >= 0) eos.push_back(tok.eos_id);
  nlohmann::json generation{{"prompt", kPrompt},
                            {"prompt_tokens", prompt},
                            {"tokens", report.generation.tokens},
                            {"max_new_tokens", kNewTokens},
                            {"pad_token", 0},
                            {"eos_ids", eos},
                            {"text", report.text}};
  std::fprintf(stderr, "%s: %zu tokens: %s\n", name.c_str(), report.generation.tokens.size(),
               report.text.c_str());
  nlohmann::json result{{"name", name},
                        {"dir", name},
                        {"context_len", kContext},
                        {"prefill_ar", kPrefillAr},
                        {"graphs", graphs},
                        {"generation", generation}};
  if (with_ops) result["ops_check"] = std::move(ops_check);
  return result;
}

Status run(const std::string& out) {
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model,
                      frontend::load_model(shared_path("models/stories260K/stories260K.bin"),
                                           shared_path("models/stories260K/tok512.bin")));
  // A short calibration: the parameters only need to be the same on both sides.
  const std::string calib = out + "/calib.txt";
  {
    std::ifstream in(shared_path("data/tinystories/valid-sample.txt"));
    std::ofstream o(calib);
    std::string line;
    for (int i = 0; i < 2 && std::getline(in, line); ++i) o << line << "\n";
  }
  nlohmann::json configs = nlohmann::json::array();
  for (const char* scheme : {"16a8w", "16a4w-block32"}) {
    for (bool split : {true, false}) {
      HS_ASSIGN_OR_RETURN(nlohmann::json c, one_config(model, calib, scheme, split, out, true));
      configs.push_back(std::move(c));
    }
  }
  // The ops the Llama core does not use: stories260K's weights with a GELU-gated FFN (tanh
  // approximation, then exact erf) and logit soft-capping (cap * tanh(logits / cap), the cap
  // small enough that tanh bends the logits).
  frontend::LlamaModel gelu_tanh = model;
  gelu_tanh.config.ffn_act = frontend::FfnActivation::kGeluTanh;
  gelu_tanh.config.final_logit_softcapping = 8.0;
  frontend::LlamaModel gelu_erf = model;
  gelu_erf.config.ffn_act = frontend::FfnActivation::kGelu;
  for (const auto& [variant, m, scheme] :
       {std::tuple{"-gelu-tanh-softcap", &gelu_tanh, "16a8w"},
        std::tuple{"-gelu", &gelu_erf, "16a4w-block32"}}) {
    HS_ASSIGN_OR_RETURN(nlohmann::json c, one_config(*m, calib, scheme, true, out, true, variant));
    configs.push_back(std::move(c));
  }
  // CodeGen2's pieces: LayerNorm with bias, the parallel block, a non-gated biased GELU-tanh FFN
  // and an LM-head bias; random weights in the tests' codegen shape (D 64, H = Hkv 4, Dh 16,
  // partial rotary 8) with stories260K's vocabulary.
  frontend::LlamaConfig cg = testing::family_config("codegen");
  cg.vocab_size = model.config.vocab_size;
  frontend::LlamaModel codegen = frontend::make_random_llama(cg, 7);
  codegen.tokenizer = model.tokenizer;
  HS_ASSIGN_OR_RETURN(nlohmann::json c, one_config(codegen, calib, "16a8w", true, out, true,
                                                   "-codegen"));
  configs.push_back(std::move(c));
  std::ofstream o(out + "/crosscheck.json");
  // Generated text of random weights may hold ill-formed UTF-8 (byte tokens): U+FFFD there.
  o << nlohmann::json{{"configs", configs}}.dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
  if (!o) return errorf(ErrorKind::kIo, "cannot write {}/crosscheck.json", out);
  return ok_status();
}

}  // namespace
}  // namespace hs

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const hs::Status status = hs::run(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "onnx_crosscheck_data: %s\n", status.error().message().c_str());
    return 1;
  }
  return 0;
}
