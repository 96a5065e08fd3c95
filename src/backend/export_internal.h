// Pieces of the export pipeline shared by its files (not a public header): phase timing,
// summary recording, metadata, and the quantization step.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/backend/export.h"
#include "headsplit/support/memory.h"

namespace hs::backend {

// Runs `body` (returning Status) as the phase `name`: observer calls, wall time and the
// phase's peak RSS.
template <typename Body>
Status run_phase(std::string_view name, const ExportObserver& observer,
                 std::vector<PhaseTiming>& phases, Body&& body) {
  if (observer.on_phase_start) observer.on_phase_start(name);
  reset_peak_rss();  // when the kernel refuses, the peak counts from process start
  const auto start = std::chrono::steady_clock::now();
  Status status = body();
  if (!status.ok()) return status;
  const auto elapsed = std::chrono::steady_clock::now() - start;
  PhaseTiming timing{std::string(name), std::chrono::duration<double>(elapsed).count(),
                     peak_rss_bytes()};
  if (observer.on_phase_end) observer.on_phase_end(timing);
  phases.push_back(std::move(timing));
  return ok_status();
}

// What quantization did, for the metadata and the summary.
struct QuantizeResult {
  std::string scheme;  // "" for float
  std::string recipe;
  std::string calibration_source;
  std::string weight_search;  // "seq-mse N", "gptq", "seq-mse N + gptq" or "" (MinMax)
  // The calibration graphs' projections: "bf16" or "f32" ("" when nothing was calibrated).
  std::string calibration_arithmetic;
};

// Calibrates the first `calibrated` MHA graphs (prefill first) and quantizes all of them in
// place, sharing weights and KV encodings between them. Adds its phases ("calibrate",
// "weight search" with SeqMSE / GPTQ, "quantize").
Result<QuantizeResult> quantize_graphs(const frontend::LlamaModel& model,
                                       std::vector<ir::Graph>& graphs, size_t calibrated,
                                       const QuantOptions& options, const ExportObserver& observer,
                                       std::vector<PhaseTiming>& phases);

// Summary fields measured on the MHA graph, on the preprocessed graph and on its plan.
void record_before(const ir::Graph& graph, GraphSummary& summary);
void record_after(const ir::Graph& graph, GraphSummary& summary);
void record_plan(const MemoryPlan& plan, GraphSummary& summary);

// The artifact metadata; I/O bit widths are read from `graph`'s I/O types.
artifact::ModelMetadata make_metadata(const frontend::LlamaModel& model,
                                      const ExportOptions& options, int64_t context_len,
                                      const std::vector<int64_t>& ar_lens,
                                      const QuantizeResult& quant, const ir::Graph& graph);

}  // namespace hs::backend
