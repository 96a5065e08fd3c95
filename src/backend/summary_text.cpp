// format_export_summary: the export summary as aligned text (`headsplit export`, `demo`).
#include <fmt/format.h>

#include <set>

#include "headsplit/backend/export.h"

namespace hs::backend {
namespace {

std::string bytes_text(int64_t bytes) {
  if (bytes >= (int64_t{1} << 20))
    return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= (int64_t{1} << 10))
    return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / (1 << 10));
  return fmt::format("{} B", bytes);
}

int64_t count_of(const std::map<std::string, int64_t>& counts, const std::string& op) {
  auto it = counts.find(op);
  return it == counts.end() ? 0 : it->second;
}

}  // namespace

std::string format_export_summary(const ExportSummary& s) {
  std::string out;
  auto line = [&out](const std::string& text) { out += text + "\n"; };
  line(fmt::format("exported {} -> {}", s.model_source, s.path.empty() ? "(not written)" : s.path));
  line(fmt::format("  quantization: {}, attention split: {}{}",
                   s.quant_scheme.empty() ? "none (float)" : s.quant_scheme,
                   s.split ? "yes (MHA -> SHA)" : "no (MHA kept)",
                   s.calibration_arithmetic.empty()
                       ? ""
                       : fmt::format(", calibrated with {} projections",
                                     s.calibration_arithmetic == "bf16" ? "bfloat16" : "float32")));
  line("");
  line(fmt::format("{:<8} {:>4}  {:>15}  {:>13}  {:>15}  {}", "graph", "T", "nodes before/after",
                   "attn proj/layer", "cache I/O", "arena"));
  for (const GraphSummary& g : s.graphs) {
    line(fmt::format(
        "{:<8} {:>4}  {:>7} -> {:<7}  {:>5} -> {:<5}  {:>5} in {:>3} out  {} ({} "
        "tensors, {} aliases; {} without reuse)",
        g.name, g.ar_len, g.nodes_before, g.nodes_after, g.attention_projections_before,
        g.attention_projections_after, g.cache_inputs, g.cache_outputs, bytes_text(g.arena_bytes),
        g.arena_tensors, g.arena_aliases, bytes_text(g.arena_tensor_bytes)));
  }
  line("");
  std::set<std::string> ops;
  for (const GraphSummary& g : s.graphs) {
    for (const auto& [op, n] : g.ops_before) ops.insert(op);
    for (const auto& [op, n] : g.ops_after) ops.insert(op);
  }
  std::string header = fmt::format("{:<12}", "op counts");
  for (const GraphSummary& g : s.graphs)
    header += fmt::format("  {:>17}", g.name + " before/after");
  line(header);
  for (const std::string& op : ops) {
    std::string row = fmt::format("{:<12}", op);
    for (const GraphSummary& g : s.graphs) {
      row += fmt::format("  {:>8} -> {:<6}", count_of(g.ops_before, op), count_of(g.ops_after, op));
    }
    line(row);
  }
  line("");
  line(fmt::format("weights: {} unique, {} ({} bytes, int4 packed)", s.weights,
                   bytes_text(s.weight_bytes), s.weight_bytes));
  if (s.file_bytes > 0) {
    line(fmt::format("artifact: {} ({} bytes)", bytes_text(s.file_bytes), s.file_bytes));
  }
  line("");
  line(fmt::format("{:<12} {:>10}  {:>12}", "phase", "time", "peak RSS"));
  double total = 0;
  for (const PhaseTiming& p : s.phases) {
    total += p.seconds;
    line(fmt::format("{:<12} {:>8.3f} s  {:>12}", p.name, p.seconds, bytes_text(p.peak_rss_bytes)));
  }
  line(fmt::format("{:<12} {:>8.3f} s", "total", total));
  return out;
}

}  // namespace hs::backend
