// The quantization step of the export pipeline: resolve the config (recipe, scheme, rules, KV
// width), calibrate the float MHA graphs together on text with the SmartMask KV loop, and
// quantize them with one weight cache (quant core, ptq calibration), so the prefill and decode
// graphs get identical encodings and share their weights.
#include <algorithm>
#include <cctype>

#include "export_internal.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/quant/annotate.h"
#include "headsplit/quant/apply.h"

namespace hs::backend {
namespace {

std::string lower_case(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string default_recipe(const frontend::LlamaModel& model) {
  const frontend::LlamaConfig& c = model.config;
  const std::string name = lower_case(c.name);
  // By family, then size (hidden size D: the published sizes of each family).
  if (c.family == "qwen2") return c.dim <= 1024 ? "qwen2.5-0.5b" : "qwen2.5-1.5b";
  if (c.family == "qwen3") return c.dim <= 1024 ? "qwen3-0.6b" : "qwen3-1.7b";
  if (c.family == "smollm3") return "smollm3-3b";
  if (c.family == "granite") return "granite";
  if (c.family == "gemma") return "gemma-2b";
  if (c.family == "gemma3") return "gemma3-1b";
  if (c.family == "phi3") return "phi-4-mini";
  if (c.family == "glm") return "glm-edge-1.5b";
  if (c.family == "codegen") return "codegen2-1b";
  if (starts_with(name, "stories")) return "stories";
  if (starts_with(name, "smollm2")) return "smollm2";
  const bool llama3 =
      starts_with(name, "llama-3") || starts_with(name, "llama3") || c.vocab_size == 128256;
  if (llama3) return c.dim >= 3072 ? "llama3.2-3b" : "llama3";
  return "";
}

Result<quant::QuantConfig> quant_config(const frontend::LlamaModel& model,
                                        const QuantOptions& options) {
  quant::QuantConfig config;
  std::string recipe = options.recipe;
  if (recipe.empty() && options.scheme.empty()) recipe = default_recipe(model);
  if (!recipe.empty()) {
    HS_ASSIGN_OR_RETURN(config, quant::recipe_config(recipe));
  } else {
    HS_ASSIGN_OR_RETURN(config.scheme,
                        quant::parse_scheme(options.scheme.empty() ? "16a8w" : options.scheme));
  }
  if (!recipe.empty() && !options.scheme.empty()) {
    HS_ASSIGN_OR_RETURN(config.scheme, quant::parse_scheme(options.scheme));
  }
  for (const std::string& text : options.rules) {
    HS_ASSIGN_OR_RETURN(quant::Rule rule, quant::parse_rule(text));
    config.rules.push_back(std::move(rule));
  }
  if (options.kv_bits != 0) config.kv_bits = options.kv_bits;
  config.lpbq = options.lpbq;
  HS_TRY(quant::validate_config(config));
  return config;
}

Result<QuantizeResult> quantize_graphs(const frontend::LlamaModel& model,
                                       std::vector<ir::Graph>& graphs, size_t calibrated,
                                       const QuantOptions& options, const ExportObserver& observer,
                                       std::vector<PhaseTiming>& phases) {
  HS_ASSIGN_OR_RETURN(quant::QuantConfig config, quant_config(model, options));
  // Rules that match nothing fail here, before the (possibly long) calibration.
  for (const ir::Graph& g : graphs) HS_TRY_CTX(quant::annotate(g, config), "quantization");
  QuantizeResult result;
  result.scheme = quant::scheme_name(config.scheme);
  result.recipe = config.recipe;
  for (const std::string& file : options.calibration_files) {
    result.calibration_source += (result.calibration_source.empty() ? "" : ", ") + file;
  }
  if (!options.calibration_prompt.empty()) {
    result.calibration_source += result.calibration_source.empty() ? "prompt" : " + prompt";
  }
  if (!options.calibration_samples.empty()) {
    result.calibration_source +=
        fmt::format("{}{} token samples", result.calibration_source.empty() ? "" : " + ",
                    options.calibration_samples.size());
  }

  quant::CalibrationTable table;
  quant::WeightOverrides overrides;
  quant::ActivationSamples captured;
  quant::WeightSearchOptions search{
      .seq_mse = options.seq_mse >= 0 ? options.seq_mse : config.seq_mse,
      .seq_mse_tokens =
          options.seq_mse_all_tokens ? quant::SeqMseTokens::kAll : quant::SeqMseTokens::kLast,
      .gptq = options.gptq,
      .threads = options.search_threads,
      .progress = options.progress};
  HS_TRY(run_phase("calibrate", observer, phases, [&]() -> Status {
    HS_ASSIGN_OR_RETURN(auto tokenizer, tokenizer::Tokenizer::create(*model.tokenizer));
    std::vector<std::vector<int32_t>> samples;
    const bool has_text = !options.calibration_files.empty() || !options.calibration_prompt.empty();
    if (has_text || options.calibration_samples.empty()) {
      HS_ASSIGN_OR_RETURN(
          std::vector<std::string> texts,
          ptq::calibration_texts(options.calibration_files, options.calibration_prompt));
      samples = ptq::encode_texts(*tokenizer, texts);
    }
    samples.insert(samples.end(), options.calibration_samples.begin(),
                   options.calibration_samples.end());
    const ptq::CalibrationOptions calibration{.decode_tokens = options.decode_tokens,
                                              .precision = options.calibration_precision,
                                              .progress = options.progress,
                                              .sliding_window = model.config.sliding_window};
    // Only the first `calibrated` graphs (prefill, decode) run; a lookahead graph takes their
    // parameters by value name.
    // With SeqMSE / GPTQ the projection inputs are captured too; the search runs on the float
    // prefill graph (its weights are every graph's) in its own phase.
    ptq::CalibrationOptions calib = calibration;
    if (search.active()) {
      HS_ASSIGN_OR_RETURN(const std::vector<quant::Projection> projections,
                          quant::find_projections(graphs.front(), config));
      for (const quant::Projection& p : projections) {
        if (std::find(calib.capture.begin(), calib.capture.end(), p.input) == calib.capture.end())
          calib.capture.push_back(p.input);
      }
      calib.capture_all_tokens = search.gptq || search.seq_mse_tokens == quant::SeqMseTokens::kAll;
    }
    ptq::CalibrationStats stats;
    HS_ASSIGN_OR_RETURN(
        table, ptq::calibrate_graphs(std::span<const ir::Graph>(graphs.data(), calibrated), samples,
                                     calib, ir::KernelSet::kFast, &stats, &captured));
    result.calibration_arithmetic = stats.bf16 ? "bf16" : "f32";
    return ok_status();
  }));
  if (search.active()) {
    result.weight_search = search.seq_mse > 0 ? fmt::format("seq-mse {}", search.seq_mse) : "";
    if (search.gptq) result.weight_search += result.weight_search.empty() ? "gptq" : " + gptq";
    HS_TRY(run_phase("weight search", observer, phases, [&]() -> Status {
      HS_TRY(quant::search_weights(graphs.front(), config, captured, search, overrides));
      captured.clear();
      return ok_status();
    }));
  }
  HS_TRY(run_phase("quantize", observer, phases, [&]() -> Status {
    HS_ASSIGN_OR_RETURN(std::vector<ir::Graph> quantized,
                        quant::apply_quantization(graphs, table, config, &overrides));
    graphs = std::move(quantized);
    return ok_status();
  }));
  return result;
}

}  // namespace hs::backend
