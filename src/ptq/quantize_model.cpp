// quantize_model: build -> calibrate (GraphStepModel, SmartMask windows) -> apply.
#include "headsplit/ptq/quantize_model.h"

#include <algorithm>

#include "headsplit/irexec/graph_step_model.h"

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

  std::vector<std::shared_ptr<const ir::Graph>> shared;
  for (ir::Graph& g : graphs) shared.push_back(std::make_shared<const ir::Graph>(std::move(g)));
  irexec::GraphStepModelOptions step_options;
  step_options.interpreter.kernels = options.calibration_kernels;
  HS_ASSIGN_OR_RETURN(auto step_model, irexec::GraphStepModel::create(shared, step_options));

  QuantizedModel out;
  HS_ASSIGN_OR_RETURN(out.table,
                      calibrate(*step_model, samples, options.calibration, &out.calibration));
  step_model.reset();  // frees the float interpreters' copies of the weights
  quant::WeightCache cache;
  for (const auto& g : shared) {
    HS_ASSIGN_OR_RETURN(ir::Graph q, quant::apply_quantization(*g, out.table, options.config, cache));
    out.graphs.push_back(std::move(q));
  }
  return out;
}

}  // namespace hs::ptq
