// quantize_model: build -> calibrate (GraphStepModel, SmartMask windows) -> apply.
#include "headsplit/ptq/quantize_model.h"

#include <algorithm>
#include <chrono>

namespace hs::ptq {

Result<std::vector<ir::Graph>> build_graphs(const frontend::LlamaModel& model,
                                            const frontend::BuildOptions& build,
                                            std::span<const int64_t> ar_lens) {
  if (ar_lens.empty()) return Error(ErrorKind::kInvalidArgument, "no ar length given");
  std::vector<ir::Graph> graphs;
  for (size_t i = 0; i < ar_lens.size(); ++i) {
    if (std::find(ar_lens.begin(), ar_lens.begin() + static_cast<std::ptrdiff_t>(i), ar_lens[i]) !=
        ar_lens.begin() + static_cast<std::ptrdiff_t>(i)) {
      return errorf(ErrorKind::kInvalidArgument, "ar length {} is given twice", ar_lens[i]);
    }
    frontend::BuildOptions o = build;
    o.ar_len = ar_lens[i];
    HS_ASSIGN_OR_RETURN(ir::Graph g, frontend::build_llama(model, o));
    graphs.push_back(std::move(g));
  }
  return graphs;
}

Status capture_for_search(const ir::Graph& graph, const quant::QuantConfig& config,
                          const quant::WeightSearchOptions& search,
                          CalibrationOptions& calibration) {
  if (!search.active()) return ok_status();
  HS_ASSIGN_OR_RETURN(const std::vector<quant::Projection> projections,
                      quant::find_projections(graph, config));
  for (const quant::Projection& p : projections) {
    if (std::find(calibration.capture.begin(), calibration.capture.end(), p.input) ==
        calibration.capture.end()) {
      calibration.capture.push_back(p.input);
    }
  }
  calibration.capture_all_tokens =
      search.gptq || search.seq_mse_tokens == quant::SeqMseTokens::kAll;
  return ok_status();
}

Result<CalibratedWeights> calibrate_and_search(std::span<const ir::Graph> graphs,
                                               std::span<const std::vector<int32_t>> samples,
                                               const quant::QuantConfig& config,
                                               CalibrationOptions calibration,
                                               const quant::WeightSearchOptions& search,
                                               ir::KernelSet kernels) {
  CalibratedWeights out;
  quant::ActivationSamples captured;
  if (search.active()) {
    if (graphs.empty()) return Error(ErrorKind::kInvalidArgument, "no graph to calibrate");
    HS_TRY(capture_for_search(graphs.front(), config, search, calibration));
  }
  HS_ASSIGN_OR_RETURN(out.table, calibrate_graphs(graphs, samples, calibration, kernels,
                                                  &out.calibration, &captured));
  if (search.active()) {
    HS_TRY(quant::search_weights(graphs.front(), config, captured, search, out.overrides,
                                 &out.search));
  }
  return out;
}

Result<QuantizedModel> quantize_model(const frontend::LlamaModel& model,
                                      std::span<const std::vector<int32_t>> samples,
                                      const PtqOptions& options) {
  HS_TRY(quant::validate_config(options.config));
  HS_ASSIGN_OR_RETURN(std::vector<ir::Graph> graphs,
                      build_graphs(model, options.build, options.ar_lens));
  // Rules are checked before the (possibly long) calibration.
  for (const ir::Graph& g : graphs) HS_TRY(quant::annotate(g, options.config));

  QuantizedModel out;
  CalibrationOptions calibration = options.calibration;
  calibration.sliding_window = model.config.sliding_window;
  HS_ASSIGN_OR_RETURN(CalibratedWeights cw,
                      calibrate_and_search(graphs, samples, options.config, calibration,
                                           options.search, options.calibration_kernels));
  out.table = std::move(cw.table);
  out.calibration = cw.calibration;
  out.search = cw.search;
  const auto start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(out.graphs, quant::apply_quantization(graphs, out.table, options.config,
                                                            &cw.overrides));
  out.apply_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace hs::ptq
