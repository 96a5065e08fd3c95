// Post-training quantization end to end: build the float graphs of a model (one per AR
// length), calibrate them together (irexec::GraphStepModel on the interpreter, fast kernels by
// default), and apply the config to every graph with one weight cache.
//
// MHA form: the export's graphs (e.g. prefill AR-32 + decode AR-1) share value names, so one
// calibration table gives both identical encodings, and their weights one buffer.
// SHA from source (BuildOptions::form = kShaFromSource): the per-head graph calibrated on its
// own, so every head's q/k/v activations get their own observer; with per-head caches
// (CacheLayout::kPerHead) every kv head's cache gets its own encoding too.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "headsplit/frontend/builder.h"
#include "headsplit/ir/interpreter.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/quant/apply.h"
#include "headsplit/quant/weight_search.h"

namespace hs::ptq {

struct PtqOptions {
  frontend::BuildOptions build;            // form, caches, context, r3, mask (ar_len: see ar_lens)
  std::vector<int64_t> ar_lens = {32, 1};  // one graph each (distinct)
  quant::QuantConfig config;
  CalibrationOptions calibration;
  // Kernels of the calibration runs. kFast changes float summation order (gemm.h), which
  // moves observed ranges by a few ulps: harmless for min/max observers.
  ir::KernelSet calibration_kernels = ir::KernelSet::kFast;
  // SeqMSE / GPTQ on the first graph (quant/weight_search.h): the projection inputs are
  // captured during calibration and the chosen weights used by every graph.
  quant::WeightSearchOptions search;
};

struct QuantizedModel {
  std::vector<ir::Graph> graphs;  // quantized, in PtqOptions::ar_lens order
  quant::CalibrationTable table;
  CalibrationStats calibration;
  quant::WeightSearchStats search;  // zero unless options.search.active()
  double apply_seconds = 0.0;       // apply_quantization
};

// The float graphs of `model`, one per AR length (in order). Errors: no or repeated AR lengths,
// and build errors.
Result<std::vector<ir::Graph>> build_graphs(const frontend::LlamaModel& model,
                                            const frontend::BuildOptions& build,
                                            std::span<const int64_t> ar_lens);

// What a weight search needs captured during calibration: adds the inputs of `graph`'s
// projections to calibration.capture (once each) and captures every token's row when `search`
// scores all tokens (GPTQ, --seq-mse-tokens all). Nothing when !search.active().
Status capture_for_search(const ir::Graph& graph, const quant::QuantConfig& config,
                          const quant::WeightSearchOptions& search,
                          CalibrationOptions& calibration);

// Calibrates `graphs` (MinMax table) and, when search.active(), captures the projection inputs
// and runs SeqMSE / GPTQ on graphs[0]: the table and the weight overrides for
// quant::apply_quantization.
struct CalibratedWeights {
  quant::CalibrationTable table;
  quant::WeightOverrides overrides;
  CalibrationStats calibration;
  quant::WeightSearchStats search;
};
Result<CalibratedWeights> calibrate_and_search(std::span<const ir::Graph> graphs,
                                               std::span<const std::vector<int32_t>> samples,
                                               const quant::QuantConfig& config,
                                               CalibrationOptions calibration,
                                               const quant::WeightSearchOptions& search,
                                               ir::KernelSet kernels);

// Builds, calibrates on `samples` (token ids with BOS) and quantizes.
Result<QuantizedModel> quantize_model(const frontend::LlamaModel& model,
                                      std::span<const std::vector<int32_t>> samples,
                                      const PtqOptions& options);

}  // namespace hs::ptq
