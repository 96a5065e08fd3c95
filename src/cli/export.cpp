// `headsplit export`: load a checkpoint, run the export pipeline (build, calibrate, quantize,
// preprocess with the MHA -> SHA split, op-support check, memory plan, lowering) and write one
// .hsa artifact atomically; print a summary of what was done and how long each phase took.
#include "headsplit/backend/export.h"

#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "headsplit/cli/commands.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/onnx/export.h"
#include "headsplit/passes/pass.h"
#include "headsplit/support/file.h"
#include "headsplit/support/memory.h"
#include "headsplit/support/message.h"
#include "headsplit/support/shared_dir.h"

namespace hs::cli {
namespace {

struct ExportArgs {
  std::string model;
  std::string tokenizer;
  std::string output;
  std::string quant;  // "": the family's recipe
  std::string recipe;
  std::vector<std::string> rules;
  int kv_bits = 0;
  std::string block_scales = "lpbq";
  std::vector<std::string> calib;
  std::string calib_prompt;
  std::string calib_precision = "bf16";
  int seq_mse = -1;  // -1: the recipe's
  bool gptq = false;
  std::string seq_mse_tokens = "last";
  int64_t ar_len = 32;
  int64_t lookahead_ar = 0;
  int64_t ctx_len = 0;
  bool r3 = false;
  bool masked_softmax = false;
  bool no_split = false;
  std::string attention = "mha";
  std::string kv_layout = "per-layer";
  std::vector<std::string> print_after;
  bool verify_each = false;
  bool log = false;
  std::string format = "hsa";  // or "onnx": a folder of ONNX models (docs/onnx.md)
};

// "<stem>.hsa" in the current directory: stories260K.bin -> stories260K.hsa; a Hugging Face
// folder SmolLM2-135M/ -> SmolLM2-135M.hsa.
std::string default_output(const std::string& model) {
  std::filesystem::path p = std::filesystem::path(model).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  const std::string stem = p.stem().string();
  return (stem.empty() ? std::string("model") : stem) + ".hsa";
}

Result<backend::ExportOptions> export_options(const ExportArgs& a) {
  backend::ExportOptions o;
  o.prefill_ar_len = a.ar_len;
  o.lookahead_ar_len = a.lookahead_ar;
  o.context_len = a.ctx_len;
  o.r3 = a.r3;
  o.mask = a.masked_softmax ? frontend::MaskKind::kMaskedSoftmax : frontend::MaskKind::kAdditive;
  o.form = a.attention == "sha" ? frontend::AttentionForm::kShaFromSource
                                : frontend::AttentionForm::kMha;
  o.cache_layout = a.kv_layout == "per-head" ? frontend::CacheLayout::kPerHead
                                             : frontend::CacheLayout::kPerLayer;
  if (o.cache_layout == frontend::CacheLayout::kPerHead &&
      o.form != frontend::AttentionForm::kShaFromSource) {
    return Error(ErrorKind::kInvalidArgument,
                 "--kv-layout per-head needs --attention sha (the MHA form keeps one cache "
                 "tensor per layer)");
  }
  o.preprocess.split = !a.no_split;
  o.verify_each = a.verify_each;
  for (const std::string& p : a.print_after) {
    if (p != "all" && passes::find_pass(p) == nullptr) {
      return errorf(ErrorKind::kInvalidArgument,
                    "--print-after: no pass named '{}' (see 'headsplit passes')",
                    clip_for_message(p));
    }
  }
  o.print_after.insert(a.print_after.begin(), a.print_after.end());
  o.quant.scheme = a.quant;
  o.quant.recipe = a.recipe;
  o.quant.rules = a.rules;
  o.quant.kv_bits = a.kv_bits;
  o.quant.lpbq = a.block_scales == "lpbq";
  o.quant.calibration_files = a.calib;
  if (o.quant.calibration_files.empty()) {
    const std::string sample = shared_path("data/tinystories/valid-sample.txt");
    if (file_exists(sample)) o.quant.calibration_files.push_back(sample);
  }
  o.quant.calibration_prompt = a.calib_prompt;
  o.quant.calibration_precision = a.calib_precision == "f32" ? ptq::CalibrationPrecision::kF32
                                                             : ptq::CalibrationPrecision::kBf16;
  o.quant.seq_mse = a.seq_mse;
  o.quant.gptq = a.gptq;
  o.quant.seq_mse_all_tokens = a.seq_mse_tokens == "all";
  return o;
}

backend::ExportObserver stderr_observer(bool log_rewrites);

Status run_onnx_export(const ExportArgs& a, const backend::ExportOptions& options);
// Every file the export reads (a Hugging Face folder's files included): the output must be
// none of them.
std::vector<std::string> export_inputs(const ExportArgs& a) {
  std::vector<std::string> inputs = {a.model, a.tokenizer};
  if (is_directory(a.model)) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(a.model, ec)) {
      inputs.push_back(entry.path().string());
    }
  } else {
    // llama2.c tokenizers found beside the checkpoint (tokenizer.bin, tok<V>.bin).
    const std::filesystem::path parent = std::filesystem::path(a.model).parent_path();
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator(parent.empty() ? "." : parent, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("tok") && name.ends_with(".bin"))
        inputs.push_back(entry.path().string());
    }
  }
  inputs.insert(inputs.end(), a.calib.begin(), a.calib.end());
  return inputs;
}

Status run_export(const ExportArgs& a) {
  HS_ASSIGN_OR_RETURN(backend::ExportOptions options, export_options(a));
  if (a.format == "onnx") return run_onnx_export(a, options);
  const std::string output = a.output.empty() ? default_output(a.model) : a.output;
  // Before loading: fail fast, write nothing, never replace an input.
  HS_TRY(backend::check_output_path(output, export_inputs(a)));
  reset_peak_rss();
  const auto start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model, frontend::load_model(a.model, a.tokenizer));
  const backend::PhaseTiming load{
      "load", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
      peak_rss_bytes()};
  if (options.quant.scheme != "none" && options.quant.calibration_files.empty() &&
      options.quant.calibration_prompt.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "quantization needs calibration text: pass --calib <file> or --calib-prompt "
                 "(or --quant none for a float export)");
  }
  std::fprintf(stderr, "export: %s -> %s\n", model.source.c_str(), output.c_str());
  if (options.quant.scheme != "none") {
    HS_ASSIGN_OR_RETURN(const quant::QuantConfig config,
                        backend::quant_config(model, options.quant));
    const std::string how =
        !options.quant.recipe.empty()   ? "--recipe"
        : !options.quant.scheme.empty() ? "--quant without --recipe"
        : config.recipe.empty()
            ? "no recipe fits the checkpoint"
            : fmt::format("picked for family {}, D {}, L {}, name '{}'", model.config.family,
                          model.config.dim, model.config.n_layers, model.config.name);
    std::fprintf(stderr, "  recipe: %s, %s (%s)\n",
                 config.recipe.empty() ? "none" : config.recipe.c_str(),
                 quant::scheme_name(config.scheme).c_str(), how.c_str());
  }
  backend::ExportObserver observer = stderr_observer(a.log);
  HS_ASSIGN_OR_RETURN(backend::ExportSummary summary,
                      backend::export_model(model, output, options, observer));
  summary.phases.insert(summary.phases.begin(), load);
  std::fputs(backend::format_export_summary(summary).c_str(), stdout);
  return ok_status();
}

// --format onnx: the same pipeline up to the prepared graphs, then a folder of ONNX models.
Status run_onnx_export(const ExportArgs& a, const backend::ExportOptions& options) {
  std::string dir = a.output;
  if (dir.empty()) {
    dir = default_output(a.model);
    dir = dir.substr(0, dir.size() - 4) + "-onnx";  // "<stem>.hsa" -> "<stem>-onnx"
  }
  if (file_exists(dir) && !is_directory(dir)) {
    return errorf(ErrorKind::kInvalidArgument,
                  "output '{}' is a file; --format onnx writes a folder of models", dir);
  }
  reset_peak_rss();
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model, frontend::load_model(a.model, a.tokenizer));
  if (options.quant.scheme != "none" && options.quant.calibration_files.empty() &&
      options.quant.calibration_prompt.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "quantization needs calibration text: pass --calib <file> or --calib-prompt "
                 "(or --quant none for a float export)");
  }
  std::fprintf(stderr, "export: %s -> %s/ (onnx)\n", model.source.c_str(), dir.c_str());
  HS_ASSIGN_OR_RETURN(backend::PreparedExport prepared,
                      backend::prepare_export(model, options, stderr_observer(a.log)));
  std::fprintf(stderr, "  onnx ...\n");
  const auto start = std::chrono::steady_clock::now();
  HS_ASSIGN_OR_RETURN(onnx::OnnxSummary written, onnx::write_onnx(prepared, dir));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fputs(backend::format_export_summary(prepared.summary).c_str(), stdout);
  std::fputs(onnx::format_onnx_summary(written).c_str(), stdout);
  std::printf("onnx write: %.3f s, peak RSS %.2f MiB\n", seconds,
              static_cast<double>(peak_rss_bytes()) / (1 << 20));
  return ok_status();
}

// Phase names on stderr as they start; rewrites too with --log.
backend::ExportObserver stderr_observer(bool log_rewrites) {
  backend::ExportObserver observer;
  observer.on_phase_start = [](std::string_view phase) {
    std::fprintf(stderr, "  %.*s ...\n", static_cast<int>(phase.size()), phase.data());
  };
  if (log_rewrites) {
    observer.log = [](std::string_view line) {
      std::fprintf(stderr, "    %.*s\n", static_cast<int>(line.size()), line.data());
    };
  }
  return observer;
}

}  // namespace

void register_export(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Compile a checkpoint into one .hsa artifact: build the static graphs (prefill AR-N and "
      "decode AR-1), calibrate and quantize them in multi-head form, split attention into "
      "single heads, plan memory and write the file atomically.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", args->model,
                  "checkpoint: llama2.c .bin, .gguf file or Hugging Face folder")
      ->required();
  cmd->add_option("-t,--tokenizer", args->tokenizer,
                  "tokenizer.bin for llama2.c checkpoints (default: tokenizer.bin or tok<V>.bin "
                  "next to the checkpoint)");
  cmd->add_option("-o,--output", args->output,
                  "artifact path (default: <model stem>.hsa); with --format onnx a folder "
                  "(default: <model stem>-onnx)");
  cmd->add_option("--format", args->format,
                  "hsa: one .hsa artifact; onnx: one ONNX QDQ model per step graph, opset 21, "
                  "for ONNX Runtime and QNN (docs/onnx.md)")
      ->check(CLI::IsMember({"hsa", "onnx"}));
  cmd->add_option("--quant", args->quant,
                  "weight/activation scheme: 16a8w, 16a4w, 16a4w-block16/32/64, 8a8w, or none "
                  "for a float artifact (default: the model family's recipe, e.g. stories for "
                  "stories260K; 16a8w when no recipe fits)");
  cmd->add_option("--recipe", args->recipe,
                  fmt::format("named recipe (scheme + rules + KV width, R3 and masked softmax "
                              "where the family uses them): {}; --quant then replaces its default "
                              "scheme (default: picked from the checkpoint's family and size)",
                              fmt::join(quant::recipe_names(), ", ")));
  cmd->add_option("--rule", args->rules,
                  "mixed precision, repeatable: pattern=scheme, e.g. output=16a8w or "
                  "layers.{0-3}.ffn.w2=16a8w (later rules win)");
  cmd->add_option("--kv-bits", args->kv_bits, "KV cache I/O bits, 8 or 16 (0: the recipe's)")
      ->check(CLI::IsMember({0, 8, 16}));
  cmd->add_option("--block-scales", args->block_scales,
                  "per-block (-blockN) weight scales: lpbq = one float per row times a 4-bit "
                  "multiplier 1..16 per block, as QNN runs them (the reference's LPBQ; the CPU "
                  "runtime then reads 1 byte per block instead of 4), float = the observer's "
                  "free float scales")
      ->check(CLI::IsMember({"lpbq", "float"}))
      ->capture_default_str();
  cmd->add_option("--calib", args->calib,
                  "calibration text, one sample per line, repeatable (default: "
                  "../shared/data/tinystories/valid-sample.txt when present)");
  cmd->add_option("--calib-prompt", args->calib_prompt, "one more calibration sample");
  cmd->add_option("--calib-precision", args->calib_precision,
                  "arithmetic of the projections while calibrating: bf16 = bfloat16 operands "
                  "with float32 sums on CPUs with AVX512_BF16 (about 2x faster; ranges move by "
                  "about 2^-8 relative; float32 on other CPUs and with --seq-mse / --gptq), "
                  "f32 = float32 everywhere")
      ->check(CLI::IsMember({"bf16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--seq-mse", args->seq_mse,
                  "SeqMSE: per output channel (per block for -block schemes) pick the weight "
                  "scale among N candidates max|w|/qmax * (1..N)/N that minimises the "
                  "projection's output error on the calibration activations (0: MinMax; "
                  "default: the recipe's, 1000 for llama3 and qwen3-0.6b, else 0)")
      ->check(CLI::Range(-1, 100000));
  cmd->add_option("--seq-mse-tokens", args->seq_mse_tokens,
                  "which calibration tokens SeqMSE scores: last (each window's last token, as "
                  "the reference) or all")
      ->check(CLI::IsMember({"last", "all"}));
  cmd->add_flag("--gptq", args->gptq,
                "GPTQ: round weights column by column, pushing each rounding error onto the "
                "columns not yet rounded (Hessian X^T X of the calibration activations, 1% "
                "damping); with --seq-mse it rounds on SeqMSE's scales");
  cmd->add_option("--ar-len", args->ar_len,
                  "prefill AR length N: the artifact holds an AR-N prefill graph and an AR-1 "
                  "decode graph (1: the decode graph only)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--lookahead-ar", args->lookahead_ar,
                  "also export a graph of this AR length for lookahead decoding (run "
                  "--lookahead N,W,G needs one >= (W + G)(N - 1); 0: none beyond N and 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ctx-len", args->ctx_len,
                  "context length C (0: the model's max_seq_len, at most 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--r3", args->r3, "rotate q and k by a Hadamard matrix after RoPE (SpinQuant R3)");
  cmd->add_flag("--masked-softmax", args->masked_softmax,
                "masked softmax (where(mask == 0, s, rowmin(s) - 20)) instead of an additive mask");
  cmd->add_flag("--no-split", args->no_split, "keep multi-head attention (no MHA -> SHA split)");
  cmd->add_option("--attention", args->attention,
                  "attention form to build: mha (split at preprocess), or sha (per-head graph "
                  "built from source, for comparison)")
      ->check(CLI::IsMember({"mha", "sha"}));
  cmd->add_option("--kv-layout", args->kv_layout,
                  "cache I/O: per-layer (2L tensors) or per-head (2*L*Hkv, needs --attention sha)")
      ->check(CLI::IsMember({"per-layer", "per-head"}));
  cmd->add_option("--print-after", args->print_after,
                  "print the graph after this pass, repeatable: canonicalize, split-heads, "
                  "fold-constants, dead-code, or all");
  cmd->add_flag("--verify-each", args->verify_each, "verify the graph after every pass");
  cmd->add_flag("--log", args->log, "print one line per applied rewrite");
  cmd->footer(
      "The summary goes to stdout, progress to stderr. Example (16a4w with the stories recipe, "
      "calibrated on the TinyStories sample):\n"
      "  headsplit export -m ../shared/models/stories260K/stories260K.bin \\\n"
      "      -t ../shared/models/stories260K/tok512.bin -o stories260K.hsa\n"
      "then: headsplit run -m stories260K.hsa -p \"Once upon a time\"");
  set_action(*cmd, [args] { return run_export(*args); });
}

}  // namespace hs::cli
