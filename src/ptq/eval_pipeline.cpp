// evaluate_quantization: the four models of `headsplit eval` (float, quantized MHA, quantized MHA +
// split, quantized SHA from source) built, calibrated and evaluated on the same windows.
#include <algorithm>
#include <chrono>
#include <memory>

#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/passes/passes.h"
#include "headsplit/ptq/evaluate.h"
#include "headsplit/ptq/quantize_model.h"

namespace hs::ptq {

namespace {

using Graphs = std::vector<ir::Graph>;

Result<std::unique_ptr<irexec::GraphStepModel>> step_model(Graphs graphs, ir::KernelSet kernels,
                                                           int64_t sliding_window) {
  irexec::GraphStepModelOptions o;
  o.interpreter.kernels = kernels;
  o.sliding_window = sliding_window;
  return irexec::GraphStepModel::create(std::move(graphs), o);
}

// The preprocess graph pipeline (canonicalize, split, fold, dead code) on each graph.
Result<Graphs> split_graphs(Graphs graphs) {
  passes::PreprocessOptions options;
  options.split_options.require_all = true;
  for (ir::Graph& g : graphs) {
    HS_TRY_CTX(passes::run_preprocess(g, options, passes::PassContext{}),
               fmt::format("splitting graph '{}'", g.name()));
  }
  return graphs;
}

}  // namespace

Result<EvalReport> evaluate_quantization(const frontend::LlamaModel& model,
                                         const tokenizer::Tokenizer& tokenizer,
                                         const EvalRequest& request) {
  HS_TRY(quant::validate_config(request.config));
  const std::vector<std::vector<int32_t>> calib =
      encode_texts(tokenizer, request.calibration_texts);
  if (calib.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "empty calibration input: no calibration text (give --calib <file> or "
                 "calibration lines)");
  }
  const std::vector<std::vector<int32_t>> texts = encode_texts(tokenizer, request.eval_texts);
  if (texts.empty()) return Error(ErrorKind::kInvalidArgument, "no evaluation text");
  if (request.ar_len < 1) {
    return errorf(ErrorKind::kInvalidArgument, "ar length must be >= 1, got {}", request.ar_len);
  }
  std::vector<int64_t> ar_lens = {request.ar_len};
  if (request.ar_len > 1) ar_lens.push_back(1);

  EvalReport report;
  for (const auto& t : texts) report.eval_tokens += static_cast<int64_t>(t.size());
  std::vector<std::unique_ptr<irexec::GraphStepModel>> models;
  std::vector<std::string> names;
  std::vector<double> calib_seconds;
  auto make_model = [&](Graphs graphs) {
    return step_model(std::move(graphs), request.kernels, model.config.sliding_window);
  };
  // Evaluates every model on the same windows (report.models in the order of `models`).
  auto evaluate_models = [&]() -> Status {
    std::vector<runner::StepModel*> raw;
    for (auto& m : models) raw.push_back(m.get());
    report.window = window_length(raw.front()->info());
    HS_ASSIGN_OR_RETURN(report.models, evaluate(raw, names, texts, request.eval));
    for (size_t i = 0; i < report.models.size(); ++i) {
      report.models[i].calibration_seconds = calib_seconds[i];
    }
    return ok_status();
  };

  frontend::BuildOptions mha_build = request.build;
  mha_build.form = frontend::AttentionForm::kMha;
  mha_build.cache_layout = frontend::CacheLayout::kPerLayer;
  HS_ASSIGN_OR_RETURN(Graphs float_graphs, build_graphs(model, mha_build, ar_lens));
  HS_ASSIGN_OR_RETURN(auto float_model, make_model(std::move(float_graphs)));
  models.push_back(std::move(float_model));
  names.emplace_back("float");
  calib_seconds.push_back(0.0);

  if (!request.methods.empty()) {
    // Side by side: one calibration (capturing what every method needs), then per method the
    // weight search and apply on the same float graphs.
    HS_ASSIGN_OR_RETURN(Graphs graphs, build_graphs(model, mha_build, ar_lens));
    for (const ir::Graph& g : graphs) HS_TRY(quant::annotate(g, request.config));
    quant::WeightSearchOptions capture_all;
    for (const EvalRequest::Method& m : request.methods) {
      capture_all.seq_mse = std::max(capture_all.seq_mse, m.search.seq_mse);
      capture_all.gptq |= m.search.gptq;
      if (m.search.seq_mse_tokens == quant::SeqMseTokens::kAll)
        capture_all.seq_mse_tokens = quant::SeqMseTokens::kAll;
    }
    quant::ActivationSamples captured;
    CalibrationOptions calib_options = request.calibration;
    calib_options.sliding_window = model.config.sliding_window;
    HS_TRY(capture_for_search(graphs.front(), request.config, capture_all, calib_options));
    HS_ASSIGN_OR_RETURN(const quant::CalibrationTable table,
                        calibrate_graphs(graphs, calib, calib_options, request.kernels,
                                         &report.mha_calibration, &captured));
    std::vector<double> search_s, apply_s;
    for (const EvalRequest::Method& m : request.methods) {
      quant::WeightOverrides overrides;
      quant::WeightSearchStats ss;
      HS_TRY_CTX(quant::search_weights(graphs.front(), request.config, captured, m.search,
                                       overrides, &ss),
                 fmt::format("method {}", m.name));
      const auto start = std::chrono::steady_clock::now();
      HS_ASSIGN_OR_RETURN(Graphs q, quant::apply_quantization(graphs, table, request.config,
                                                              &overrides));
      apply_s.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      search_s.push_back(ss.seconds);
      HS_ASSIGN_OR_RETURN(auto qm, make_model(std::move(q)));
      models.push_back(std::move(qm));
      names.push_back(m.name);
      calib_seconds.push_back(report.mha_calibration.seconds);
    }
    HS_TRY(evaluate_models());
    for (size_t i = 1; i < report.models.size(); ++i) {
      report.models[i].search_seconds = search_s[i - 1];
      report.models[i].apply_seconds = apply_s[i - 1];
    }
    return report;
  }

  PtqOptions ptq;
  ptq.build = mha_build;
  ptq.ar_lens = ar_lens;
  ptq.config = request.config;
  ptq.calibration = request.calibration;
  ptq.calibration_kernels = request.kernels;
  ptq.search = request.search;
  HS_ASSIGN_OR_RETURN(QuantizedModel mha, quantize_model(model, calib, ptq));
  report.mha_calibration = mha.calibration;
  if (request.split) {
    const auto start = std::chrono::steady_clock::now();
    HS_ASSIGN_OR_RETURN(Graphs split, split_graphs(mha.graphs));
    report.split_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    HS_ASSIGN_OR_RETURN(auto split_model, make_model(std::move(split)));
    HS_ASSIGN_OR_RETURN(auto mha_model, make_model(std::move(mha.graphs)));
    models.push_back(std::move(mha_model));
    models.push_back(std::move(split_model));
    names.emplace_back("quant MHA");
    names.emplace_back("quant MHA+split");
    calib_seconds.push_back(mha.calibration.seconds);
    calib_seconds.push_back(mha.calibration.seconds);
  } else {
    HS_ASSIGN_OR_RETURN(auto mha_model, make_model(std::move(mha.graphs)));
    models.push_back(std::move(mha_model));
    names.emplace_back("quant MHA");
    calib_seconds.push_back(mha.calibration.seconds);
  }

  if (request.sha_from_source) {
    ptq.build.form = frontend::AttentionForm::kShaFromSource;
    ptq.build.cache_layout = frontend::CacheLayout::kPerHead;
    HS_ASSIGN_OR_RETURN(QuantizedModel sha, quantize_model(model, calib, ptq));
    report.sha_calibration = sha.calibration;
    HS_ASSIGN_OR_RETURN(auto sha_model, make_model(std::move(sha.graphs)));
    models.push_back(std::move(sha_model));
    names.emplace_back("quant SHA-from-source");
    calib_seconds.push_back(sha.calibration.seconds);
  }

  HS_TRY(evaluate_models());
  return report;
}

}  // namespace hs::ptq
