// The export pipeline (backend/export.h): build -> (calibrate, quantize) -> preprocess ->
// op-support check -> memory plan -> lower -> write, each phase timed with its peak RSS.
#include "headsplit/backend/export.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "export_internal.h"
#include "headsplit/backend/op_support.h"
#include "headsplit/support/file.h"

namespace hs::backend {
namespace {

Status check_options(const frontend::LlamaModel& model, const ExportOptions& options) {
  if (!model.tokenizer) {
    return errorf(ErrorKind::kNotFound,
                  "{}: the model has no tokenizer, and an artifact must carry one (pass "
                  "-t/--tokenizer)",
                  model.source);
  }
  // Quantization settings and calibration files are checked before any (possibly long) work;
  // rules are checked against the built graphs, before calibration.
  if (options.quant.scheme != "none") {
    HS_TRY(quant_config(model, options.quant));
    for (const std::string& file : options.quant.calibration_files) {
      if (!file_exists(file) || is_directory(file)) {
        return errorf(ErrorKind::kNotFound, "calibration file '{}' does not exist", file);
      }
    }
  }
  return ok_status();
}

// "prefill" (AR-N), "decode" (AR-1) and "lookahead" (the extra graph, always last).
std::string graph_name(const std::vector<int64_t>& ar_lens, size_t index) {
  if (ar_lens[index] == 1) return "decode";
  return index == 0 ? "prefill" : "lookahead";
}

}  // namespace

// Before any work: the write comes last and an export can take minutes.
Status check_output_path(const std::string& path, std::span<const std::string> inputs) {
  if (path.empty()) return Error(ErrorKind::kInvalidArgument, "no output path given");
  if (is_directory(path)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "output '{}' is a directory; give the artifact's file path, e.g. {}/model.hsa",
                  path, path);
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  if (!is_directory(dir)) {
    return errorf(ErrorKind::kNotFound,
                  "output directory '{}' of '{}' does not exist (create it first)", dir, path);
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return errorf(ErrorKind::kIo, "output directory '{}' of '{}' is not writable", dir, path);
  }
  return check_output_file(path, inputs);
}

Result<frontend::StepLengths> export_step_lengths(const frontend::LlamaModel& model,
                                                  const ExportOptions& options) {
  HS_ASSIGN_OR_RETURN(frontend::StepLengths lengths,
                      frontend::step_lengths(model, options.context_len, options.prefill_ar_len));
  const int64_t lookahead = options.lookahead_ar_len;
  if (lookahead < 0 || lookahead >= lengths.context_len) {
    return errorf(ErrorKind::kInvalidArgument,
                  "lookahead ar length {} must be smaller than the context length {}", lookahead,
                  lengths.context_len);
  }
  std::vector<int64_t>& ar_lens = lengths.ar_lens;
  if (lookahead > 0 && std::find(ar_lens.begin(), ar_lens.end(), lookahead) == ar_lens.end()) {
    ar_lens.push_back(lookahead);
  }
  return lengths;
}

Result<PreparedExport> prepare_export(const frontend::LlamaModel& model,
                                      const ExportOptions& options,
                                      const ExportObserver& observer) {
  HS_TRY(check_options(model, options));
  HS_ASSIGN_OR_RETURN(const frontend::StepLengths lengths, export_step_lengths(model, options));
  const int64_t context_len = lengths.context_len;
  const std::vector<int64_t>& ar_lens = lengths.ar_lens;
  // Graph features the quantization recipe turns on (R3, masked softmax) join the options'.
  bool r3 = options.r3;
  frontend::MaskKind mask = options.mask;
  if (options.quant.scheme != "none") {
    HS_ASSIGN_OR_RETURN(const quant::QuantConfig config, quant_config(model, options.quant));
    r3 = r3 || config.r3;
    if (config.masked_softmax) mask = frontend::MaskKind::kMaskedSoftmax;
  }
  PreparedExport out;
  ExportSummary& summary = out.summary;
  summary.model_source = model.source;
  summary.split = options.preprocess.split;

  // 1. The MHA graphs, one per AR length, over the same weights.
  std::vector<ir::Graph> graphs;
  HS_TRY(run_phase("build", observer, summary.phases, [&]() -> Status {
    for (size_t i = 0; i < ar_lens.size(); ++i) {
      frontend::BuildOptions build{.ar_len = ar_lens[i],
                                   .context_len = context_len,
                                   .r3 = r3,
                                   .mask = mask,
                                   .form = options.form,
                                   .cache_layout = options.cache_layout,
                                   .projection = options.projection};
      HS_ASSIGN_OR_RETURN(ir::Graph graph, frontend::build_llama(model, build));
      graph.set_name(graph_name(ar_lens, i));
      graphs.push_back(std::move(graph));
    }
    return ok_status();
  }));

  // 2. Calibration and quantization of both graphs at once.
  QuantizeResult quantized;
  if (options.quant.scheme != "none") {
    // Calibration runs the prefill and decode graphs (the lookahead graph would change the
    // calibration windows when it is the largest).
    const size_t calibrated = std::min<size_t>(graphs.size(), options.prefill_ar_len == 1 ? 1 : 2);
    HS_ASSIGN_OR_RETURN(quantized, quantize_graphs(model, graphs, calibrated, options.quant,
                                                   observer, summary.phases));
    for (size_t i = 0; i < graphs.size(); ++i) graphs[i].set_name(graph_name(ar_lens, i));
  }
  summary.quant_scheme = quantized.scheme;
  summary.calibration_arithmetic = quantized.calibration_arithmetic;

  // 3. Preprocess and the op-support check, graph by graph.
  passes::PassContext context;
  context.verify_each = options.verify_each;
  context.print_after = options.print_after;
  context.print_out = observer.print_out;
  context.log = observer.log;
  HS_TRY(run_phase("preprocess", observer, summary.phases, [&]() -> Status {
    for (size_t i = 0; i < graphs.size(); ++i) {
      ir::Graph& graph = graphs[i];
      GraphSummary s;
      s.name = graph.name();
      s.ar_len = ar_lens[i];
      record_before(graph, s);
      HS_TRY_CTX(passes::run_preprocess(graph, options.preprocess, context),
                 fmt::format("graph '{}'", graph.name()));
      HS_TRY(check_op_support(graph));
      record_after(graph, s);
      summary.graphs.push_back(std::move(s));
    }
    return ok_status();
  }));

  // 4. Memory plans and the program.
  HS_TRY(run_phase("plan", observer, summary.phases, [&]() -> Status {
    std::vector<GraphToLower> to_lower;
    for (size_t i = 0; i < graphs.size(); ++i) {
      HS_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(graphs[i], options.memory));
      record_plan(plan, summary.graphs[i]);
      out.graphs.push_back({graphs[i].name(), ar_lens[i], std::move(graphs[i]), std::move(plan)});
    }
    for (const PreparedGraph& g : out.graphs) {
      to_lower.push_back({&g.graph, g.name, g.ar_len, &g.plan});
    }
    artifact::ModelMetadata metadata =
        make_metadata(model, options, context_len, ar_lens, quantized, out.graphs.front().graph);
    HS_ASSIGN_OR_RETURN(out.lowered, lower(to_lower, std::move(metadata), *model.tokenizer));
    return ok_status();
  }));
  summary.weights = static_cast<int64_t>(out.lowered.program.weights.size());
  summary.weight_bytes = out.lowered.weight_bytes();
  return out;
}

Result<ExportSummary> write_export(const PreparedExport& prepared, const std::string& path,
                                   const ExportObserver& observer) {
  ExportSummary summary = prepared.summary;
  artifact::WriteSummary written;
  HS_TRY(run_phase("write", observer, summary.phases, [&]() -> Status {
    HS_ASSIGN_OR_RETURN(
        written, write_lowered(path, prepared.lowered, {.before_weight = observer.before_weight}));
    return ok_status();
  }));
  summary.path = path;
  summary.file_bytes = static_cast<int64_t>(written.file_size);
  return summary;
}

Result<ExportSummary> export_model(const frontend::LlamaModel& model, const std::string& path,
                                   const ExportOptions& options, const ExportObserver& observer) {
  std::vector<std::string> inputs = {model.source};
  HS_TRY(check_output_path(path, inputs));
  HS_ASSIGN_OR_RETURN(PreparedExport prepared, prepare_export(model, options, observer));
  return write_export(prepared, path, observer);
}

}  // namespace hs::backend
