// quantize_model: build -> calibrate (GraphStepModel, SmartMask windows) -> apply.
#include "headsplit/ptq/quantize_model.h"

#include <algorithm>

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
  HS_ASSIGN_OR_RETURN(out.table, calibrate_graphs(graphs, samples, calibration,
                                                  options.calibration_kernels, &out.calibration));
  HS_ASSIGN_OR_RETURN(out.graphs, quant::apply_quantization(graphs, out.table, options.config));
  return out;
}

}  // namespace hs::ptq
