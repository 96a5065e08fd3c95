// The export pipeline: a model in, a .hsa artifact out (`headsplit export`, `headsplit demo`).
//
//   for each AR length (prefill N, then decode 1; N = 1: decode only; then the lookahead graph
//   when asked for and not one of those):
//     build the MHA graph (frontend::build_llama)
//   calibrate on the prefill and decode graphs, quantize all graphs at once (shared weights and
//     KV encodings; every graph names its values alike, so the lookahead graph gets the same
//     params; skipped for float exports)
//   for each graph: run_preprocess (canonicalize, split heads, fold constants, dead code)
//     -> op-support check -> memory plan
//   lower both graphs into one program (weights deduplicated) -> write (temp file + rename)
//
// prepare_export runs everything but the write and keeps the preprocessed graphs (tests and
// the runtime's reference comparisons run them on the interpreter); export_model writes too.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/backend/lower.h"
#include "headsplit/backend/memory_plan.h"
#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/ir/graph.h"
#include "headsplit/passes/passes.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/quant/scheme.h"
#include "headsplit/quant/weight_search.h"

namespace hs::backend {

// What to quantize with (resolved by quant_config):
//   scheme "none"              float graphs (the default of this struct)
//   scheme "", recipe ""       the model family's recipe (default_recipe), e.g. "stories"
//   recipe R                   recipe R; a non-empty scheme then replaces its default scheme
//   scheme S, recipe ""        scheme S alone (16-bit KV unless kv_bits says otherwise)
// then `rules` are appended (later rules win) and kv_bits, when set, replaces the KV width.
struct QuantOptions {
  std::string scheme = "none";     // "none", "", or a scheme ("16a8w", "16a4w-block32", ...)
  std::string recipe;              // a recipe name ("stories", "smollm2", "llama3") or empty
  std::vector<std::string> rules;  // extra rules "pattern=scheme" (quant/scheme.h)
  int kv_bits = 0;                 // KV cache I/O bits, 8 or 16; 0: the recipe's default
  bool lpbq = true;                // per-block scales in LPBQ form (quant::QuantConfig::lpbq)
  // Calibration text: every non-empty line of these files, then the prompt (quant/calibrate.h).
  std::vector<std::string> calibration_files;
  std::string calibration_prompt;
  // Calibration samples as token ids (BOS included), calibrated on after the text samples;
  // with no files and no prompt they are the whole calibration input (benchmarks).
  std::vector<std::vector<int32_t>> calibration_samples;
  int64_t decode_tokens = 4;  // per calibration window, through the decode graph
  // Projections in bfloat16 while calibrating, where the CPU has AVX512_BF16 (ptq/calibrate.h).
  ptq::CalibrationPrecision calibration_precision = ptq::CalibrationPrecision::kBf16;
  bool progress = true;       // calibration progress line with rate and ETA on stderr
  // Weight search (quant/weight_search.h): SeqMSE candidates (-1: the recipe's, 0: off), GPTQ,
  // SeqMSE scored on every token instead of each window's last, threads (0: all cores).
  int seq_mse = -1;
  bool gptq = false;
  bool seq_mse_all_tokens = false;
  int search_threads = 0;
};

struct ExportOptions {
  int64_t prefill_ar_len = 32;  // N; 1 exports the decode graph only
  int64_t lookahead_ar_len = 0;  // > 0: also a graph of this AR length for lookahead decoding
                                 // (none is added when N or 1 already is that length)
  int64_t context_len = 0;      // C; 0: the model's max_seq_len, at most 512 (step_lengths)
  bool r3 = false;              // Hadamard rotation of q and k after RoPE
  frontend::MaskKind mask = frontend::MaskKind::kAdditive;
  frontend::AttentionForm form = frontend::AttentionForm::kMha;
  frontend::CacheLayout cache_layout = frontend::CacheLayout::kPerLayer;
  frontend::ProjectionKind projection = frontend::ProjectionKind::kConv;
  QuantOptions quant;
  passes::PreprocessOptions preprocess;  // split on by default (`--no-split` turns it off)
  bool verify_each = false;              // verify the graph after every pass
  std::set<std::string> print_after;     // print the graph after these passes ("all")
  MemoryPlanOptions memory;
};

struct PhaseTiming {
  std::string name;  // "build", "calibrate", "quantize", "preprocess", "plan", "write"
  double seconds = 0;
  int64_t peak_rss_bytes = 0;  // peak resident set during the phase (whole process if the
                               // kernel does not let the peak be reset)
};

struct ExportObserver {
  std::function<void(std::string_view phase)> on_phase_start;
  std::function<void(const PhaseTiming&)> on_phase_end;
  std::function<void(std::string_view line)> log;  // pass rewrites, one line each
  std::FILE* print_out = stdout;                   // where --print-after goes
  // Called before each weight is written; an error cancels the export (nothing is left at
  // the destination, an existing artifact there is untouched).
  std::function<Status(int64_t index, int64_t count)> before_weight;
};

struct GraphSummary {
  std::string name;  // "prefill", "decode"
  int64_t ar_len = 0;
  std::map<std::string, int64_t> ops_before, ops_after;  // op counts before / after preprocess
  int64_t nodes_before = 0, nodes_after = 0;
  // conv2d/linear nodes of layer 0's attention (q, k, v, o): 4 before the split,
  // H + 2 * Hkv + 1 after.
  int64_t attention_projections_before = 0, attention_projections_after = 0;
  int64_t cache_inputs = 0, cache_outputs = 0;  // 2L each with per-layer caches
  int64_t arena_bytes = 0;
  int64_t arena_tensor_bytes = 0;  // sum of the arena tensors (what no reuse would need)
  int64_t arena_tensors = 0, arena_aliases = 0;
};

struct ExportSummary {
  std::string path;  // the artifact written (empty before the write)
  std::string model_source;
  std::string quant_scheme;  // "" for float
  std::string calibration_arithmetic;  // "bf16" or "f32" (QuantOptions::calibration_precision)
  bool split = false;
  std::vector<GraphSummary> graphs;
  int64_t weights = 0;       // distinct weights stored
  int64_t weight_bytes = 0;  // their stored bytes (int4 packed), without padding
  int64_t file_bytes = 0;    // the artifact's size
  std::vector<PhaseTiming> phases;
};

struct PreparedGraph {
  std::string name;
  int64_t ar_len = 0;
  ir::Graph graph;  // preprocessed (split unless disabled), quantized unless float
  MemoryPlan plan;
};

struct PreparedExport {
  std::vector<PreparedGraph> graphs;  // prefill first, then decode
  LoweredProgram lowered;
  ExportSummary summary;  // everything but the file fields and the write phase
};

// The recipe of the model's family and size: qwen2 -> "qwen2.5-0.5b" (D <= 1024) or
// "qwen2.5-1.5b"; qwen3 -> "qwen3-0.6b" (D <= 1024) or "qwen3-1.7b"; smollm3 -> "smollm3-3b";
// granite -> "granite"; phi3 -> "phi-4-mini"; glm -> "glm-edge-1.5b";
// codegen -> "codegen2-1b"; llama by config name:
// "stories" (stories*), "smollm2" (smollm2*), and Llama-3 (llama-3* / llama3* or V = 128256)
// -> "llama3.2-3b" (D >= 3072) or "llama3"; "" when none fits (the scheme 16a8w is used).
std::string default_recipe(const frontend::LlamaModel& model);
// The quantizer's config for `options` (see QuantOptions); kInvalidArgument naming a bad
// scheme, recipe, rule or KV width. Not for scheme "none".
Result<quant::QuantConfig> quant_config(const frontend::LlamaModel& model,
                                        const QuantOptions& options);

// The step lengths exported for `options`: frontend::step_lengths (C and {N, 1}, or {1} when
// N == 1), then the lookahead AR length when it is set and not already there. kInvalidArgument
// for a lookahead length outside [0, C).
Result<frontend::StepLengths> export_step_lengths(const frontend::LlamaModel& model,
                                                  const ExportOptions& options);

// Runs the pipeline up to the lowered program. Errors: invalid options (kInvalidArgument:
// N >= C, ...), a model without a tokenizer (kNotFound), graphs the runtime cannot execute
// (kUnsupported, listing them), and errors of the builder, quantizer and passes.
Result<PreparedExport> prepare_export(const frontend::LlamaModel& model,
                                      const ExportOptions& options,
                                      const ExportObserver& observer = {});

// Writes a prepared export to `path` (atomic) and completes its summary.
Result<ExportSummary> write_export(const PreparedExport& prepared, const std::string& path,
                                   const ExportObserver& observer = {});

// The summary as text for people: per graph the node counts and layer 0's attention
// projections before and after preprocess, cache I/O, arena; op counts per kind; weights and
// artifact size; time and peak RSS per phase. Ends with a newline.
std::string format_export_summary(const ExportSummary& summary);

// Checks, before any work, that an artifact can be written at `path`: not a directory, its
// directory exists (kNotFound naming it) and is writable (kIo); an existing `path` must be a
// regular file (not a device or FIFO) and not the same file as any of `inputs` (the model's
// files: exporting over its own checkpoint would destroy it). kInvalidArgument otherwise.
Status check_output_path(const std::string& path, std::span<const std::string> inputs = {});

// check_output_path + prepare_export + write_export.
Result<ExportSummary> export_model(const frontend::LlamaModel& model, const std::string& path,
                                   const ExportOptions& options,
                                   const ExportObserver& observer = {});

}  // namespace hs::backend
