// `headsplit perplexity`: perplexity of any text file (ptq::perplexity: windows of the context,
// a stride, progress with ETA on stderr, "Final estimate: PPL = x +/- err" as llama-perplexity
// prints it), on the artifact runtime for a .hsa and on the interpreter for a checkpoint (float,
// or quantized with a scheme/recipe); --kl-divergence against the float model of the same
// checkpoint (for an artifact: --base CKPT), as llama-perplexity's KL mode.
#include "headsplit/ptq/perplexity.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headsplit/backend/export.h"
#include "headsplit/cli/commands.h"
#include "headsplit/cli/sources.h"
#include "headsplit/engine/engine.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/irexec/graph_step_model.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/ptq/quantize_model.h"
#include "headsplit/support/file.h"
#include "headsplit/support/shared_dir.h"

namespace hs::cli {

namespace {

struct PerplexityArgs {
  std::string model;
  std::string tokenizer;
  std::string file;
  std::string base;  // float checkpoint for --kl-divergence on an artifact
  int64_t ctx_len = 0;
  int64_t ar_len = 32;
  int64_t window = 0;
  int64_t stride = 0;
  int64_t decode_tokens = 0;
  bool per_line = false;
  std::string lines;  // "a-b" of the non-empty lines (implies --per-line)
  std::string quant;
  std::string recipe;
  std::vector<std::string> calib;
  bool kl = false;
  int threads = 0;
  bool json = false;
};

// The text as token ids: the whole file with one BOS, or each non-empty line with its BOS.
Result<std::vector<std::vector<int32_t>>> text_tokens(const PerplexityArgs& a,
                                                      const tokenizer::Tokenizer& tok,
                                                      std::string& description) {
  if (!a.per_line && a.lines.empty()) {
    HS_ASSIGN_OR_RETURN(std::string text, read_text_file(a.file));
    description = fmt::format("{} (the whole file, one BOS)", a.file);
    return std::vector<std::vector<int32_t>>{tok.encode(text, true)};
  }
  HS_ASSIGN_OR_RETURN(std::vector<std::string> lines, ptq::read_lines(a.file));
  if (lines.empty()) return errorf(ErrorKind::kInvalidArgument, "{}: no non-empty line", a.file);
  LineRange r{0, static_cast<int64_t>(lines.size()) - 1};
  if (!a.lines.empty()) {
    HS_ASSIGN_OR_RETURN(r, parse_lines(a.lines, static_cast<int64_t>(lines.size()), "--lines"));
  }
  std::vector<std::string> chosen(lines.begin() + r.first, lines.begin() + r.last + 1);
  description = fmt::format("lines {} of {} (one sample per line, BOS each)", r.text(), a.file);
  return ptq::encode_texts(tok, chosen);
}

// What the model runs on: the artifact runtime (engine) or interpreter graphs.
struct Models {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<irexec::GraphStepModel> graphs;  // the evaluated checkpoint model
  std::unique_ptr<irexec::GraphStepModel> base;    // float reference
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  runner::StepModel* model = nullptr;
  std::string description;
};

Result<std::unique_ptr<irexec::GraphStepModel>> interpreter_model(std::vector<ir::Graph> graphs,
                                                                  int64_t sliding_window) {
  irexec::GraphStepModelOptions o;
  o.interpreter.kernels = ir::KernelSet::kFast;
  o.sliding_window = sliding_window;
  return irexec::GraphStepModel::create(std::move(graphs), o);
}

frontend::BuildOptions mha_build(int64_t context_len) {
  frontend::BuildOptions b;
  b.context_len = context_len;
  b.form = frontend::AttentionForm::kMha;
  b.cache_layout = frontend::CacheLayout::kPerLayer;
  return b;
}

// The float graphs of a checkpoint for context C and these AR lengths.
Result<std::unique_ptr<irexec::GraphStepModel>> float_model(const frontend::LlamaModel& model,
                                                            int64_t context_len,
                                                            std::span<const int64_t> ar_lens) {
  HS_ASSIGN_OR_RETURN(std::vector<ir::Graph> graphs,
                      ptq::build_graphs(model, mha_build(context_len), ar_lens));
  return interpreter_model(std::move(graphs), model.config.sliding_window);
}

Status load_checkpoint_models(const PerplexityArgs& a, Models& m) {
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model, frontend::load_model(a.model, a.tokenizer));
  if (!model.tokenizer) {
    return errorf(ErrorKind::kNotFound, "{}: no tokenizer next to the checkpoint; pass -t",
                  a.model);
  }
  HS_ASSIGN_OR_RETURN(m.tokenizer, tokenizer::Tokenizer::create(*model.tokenizer));
  HS_ASSIGN_OR_RETURN(const frontend::StepLengths lengths,
                      frontend::step_lengths(model, a.ctx_len, a.ar_len));
  const bool quantized = !a.quant.empty() || !a.recipe.empty();
  if (!quantized && a.kl) {
    return Error(ErrorKind::kInvalidArgument,
                 "--kl-divergence compares a quantized model with the float one: give --quant "
                 "or --recipe (or an artifact with --base)");
  }
  if (!quantized || a.kl) {
    HS_ASSIGN_OR_RETURN(m.base, float_model(model, lengths.context_len, lengths.ar_lens));
  }
  m.description = fmt::format("{} float on the interpreter", a.model);
  if (!quantized) {
    m.model = m.base.get();
    return ok_status();
  }
  backend::QuantOptions q;
  q.scheme = a.quant;
  q.recipe = a.recipe;
  HS_ASSIGN_OR_RETURN(quant::QuantConfig config, backend::quant_config(model, q));
  std::vector<std::string> calib = a.calib;
  if (calib.empty()) {
    const std::string sample = shared_path("data/tinystories/valid-sample.txt");
    if (!file_exists(sample)) {
      return Error(ErrorKind::kInvalidArgument, "quantizing needs calibration text: pass --calib");
    }
    calib.push_back(sample);
  }
  HS_ASSIGN_OR_RETURN(std::vector<std::string> texts, ptq::calibration_texts(calib, ""));
  ptq::PtqOptions ptq;
  ptq.build = mha_build(lengths.context_len);
  ptq.ar_lens = lengths.ar_lens;
  ptq.config = config;
  HS_ASSIGN_OR_RETURN(ptq::QuantizedModel quantized_model,
                      ptq::quantize_model(model, ptq::encode_texts(*m.tokenizer, texts), ptq));
  HS_ASSIGN_OR_RETURN(m.graphs, interpreter_model(std::move(quantized_model.graphs), model.config.sliding_window));
  m.model = m.graphs.get();
  m.description = fmt::format("{} quantized {} (MHA) on the interpreter", a.model,
                              quant::scheme_name(config.scheme));
  return ok_status();
}

Status load_artifact_models(const PerplexityArgs& a, Models& m) {
  if (!a.quant.empty() || !a.recipe.empty() || !a.calib.empty()) {
    return Error(ErrorKind::kInvalidArgument,
                 "--quant, --recipe and --calib are for checkpoints: an artifact is already "
                 "quantized");
  }
  HS_ASSIGN_OR_RETURN(m.engine,
                      engine::Engine::load({.model_path = a.model, .threads = a.threads}));
  HS_ASSIGN_OR_RETURN(m.tokenizer, tokenizer::Tokenizer::create(m.engine->tokenizer().data()));
  m.model = &m.engine->step_model();
  m.description = fmt::format("{} ({}) on the runtime", a.model, m.engine->model_name());
  if (a.kl) {
    if (a.base.empty()) {
      return Error(ErrorKind::kInvalidArgument,
                   "--kl-divergence on an artifact needs its float checkpoint: --base CKPT");
    }
    HS_ASSIGN_OR_RETURN(frontend::LlamaModel model, frontend::load_model(a.base, a.tokenizer));
    const runner::StepModelInfo& info = m.model->info();
    HS_ASSIGN_OR_RETURN(m.base, float_model(model, info.context_len, info.ar_lens));
  }
  return ok_status();
}

nlohmann::json to_json(const ptq::PerplexityStats& s, const runner::StepModelInfo& info) {
  nlohmann::json j = {{"perplexity", s.perplexity()}, {"perplexity_error", s.perplexity_error()},
                      {"scored_tokens", s.scored},    {"tokens", s.tokens},
                      {"windows", s.windows},         {"window", s.window},
                      {"stride", s.stride},           {"context", info.context_len}};
  if (!s.kld.empty()) {
    j["base_perplexity"] = s.reference_perplexity();
    j["base_perplexity_error"] = s.reference_perplexity_error();
    j["kld"] = {{"mean", s.mean_kld()},
                {"mean_error", s.mean_kld_error()},
                {"max", s.kld_quantile(1.0)},
                {"p99", s.kld_quantile(0.99)},
                {"median", s.kld_quantile(0.5)}};
    j["same_top"] = s.same_top_fraction();
  }
  return j;
}

void print_kl(const ptq::PerplexityStats& s) {
  std::printf("====== Perplexity statistics ======\n");
  std::printf("Mean PPL(Q)                   : %10.6f +/- %10.6f\n", s.perplexity(),
              s.perplexity_error());
  std::printf("Mean PPL(base)                : %10.6f +/- %10.6f\n", s.reference_perplexity(),
              s.reference_perplexity_error());
  std::printf("PPL(Q)/PPL(base)              : %10.6f\n",
              s.perplexity() / s.reference_perplexity());
  std::printf("\n====== KL divergence statistics ======\n");
  std::printf("Mean    KLD: %10.6f +/- %10.6f\n", s.mean_kld(), s.mean_kld_error());
  std::printf("Maximum KLD: %10.6f\n", s.kld_quantile(1.0));
  std::printf("99.0%%   KLD: %10.6f\n", s.kld_quantile(0.99));
  std::printf("Median  KLD: %10.6f\n", s.kld_quantile(0.5));
  std::printf("Same top p: %7.3f %%\n", 100.0 * s.same_top_fraction());
}

Status run_perplexity(const PerplexityArgs& a) {
  HS_ASSIGN_OR_RETURN(SourceKind kind, detect_source(a.model));
  Models m;
  if (kind == SourceKind::kArtifact) {
    HS_TRY(load_artifact_models(a, m));
  } else {
    HS_TRY(load_checkpoint_models(a, m));
  }
  std::string text_description;
  HS_ASSIGN_OR_RETURN(auto texts, text_tokens(a, *m.tokenizer, text_description));
  ptq::PerplexityOptions options{
      .window = a.window, .stride = a.stride, .decode_tokens = a.decode_tokens};
  const runner::StepModelInfo& info = m.model->info();
  std::fprintf(stderr, "perplexity: %s, context %lld\ntext: %s\n", m.description.c_str(),
               static_cast<long long>(info.context_len), text_description.c_str());
  HS_ASSIGN_OR_RETURN(ptq::PerplexityStats s,
                      ptq::perplexity(*m.model, a.kl ? m.base.get() : nullptr, texts, options));
  if (a.json) {
    nlohmann::json j = to_json(s, info);
    j["model"] = m.description;
    j["text"] = text_description;
    std::puts(j.dump(2).c_str());
    return ok_status();
  }
  std::printf("%lld tokens, %lld windows of %lld tokens (stride %lld), %lld scored\n",
              static_cast<long long>(s.tokens), static_cast<long long>(s.windows),
              static_cast<long long>(s.window), static_cast<long long>(s.stride),
              static_cast<long long>(s.scored));
  if (a.kl) print_kl(s);
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", s.perplexity(), s.perplexity_error());
  return ok_status();
}

}  // namespace

void register_perplexity(CLI::App& app) {
  auto args = std::make_shared<PerplexityArgs>();
  PerplexityArgs& a = *args;
  CLI::App* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of a text file in windows of the context (like llama-perplexity): on the "
      "runtime for a .hsa artifact, on the interpreter for a checkpoint (float, or quantized "
      "with --quant/--recipe); --kl-divergence against the float model.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", a.model,
                  "a .hsa artifact, or a checkpoint (llama2.c .bin, .gguf, Hugging Face folder)")
      ->required();
  cmd->add_option("-f,--file", a.file, "the text file")->required();
  cmd->add_option("-t,--tokenizer", a.tokenizer, "tokenizer.bin for a llama2.c checkpoint");
  cmd->add_option("--ctx-len", a.ctx_len,
                  "checkpoints: context length C (0: the model's, at most 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ar-len", a.ar_len, "checkpoints: prefill AR length N (a decode AR-1 is added)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--window", a.window, "tokens per window W (0: C - N, the most that fits)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--stride", a.stride,
                  "tokens between window starts S (0: W, non-overlapping; S < W scores only the "
                  "last S tokens of each later window, with W - S tokens of context)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--per-line", a.per_line,
                "one sample per non-empty line, each with BOS (the protocol of 'eval'); default: "
                "the whole file as one text");
  cmd->add_option("--lines", a.lines,
                  "only lines a-b (0-based, non-empty lines; implies --per-line)");
  cmd->add_option("--decode-tokens", a.decode_tokens,
                  "score the last n tokens of each window through the AR-1 graph")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--quant", a.quant,
                  "checkpoints: quantize with this scheme first (16a8w, 16a4w, 16a4w-block32, "
                  "8a8w, ...)");
  cmd->add_option("--recipe", a.recipe, "checkpoints: quantize with this recipe first");
  cmd->add_option("--calib", a.calib,
                  "calibration text for --quant/--recipe, one sample per line (default: "
                  "../shared/data/tinystories/valid-sample.txt)");
  cmd->add_flag("--kl-divergence", a.kl,
                "also the KL divergence from the float model (of the checkpoint; of --base for "
                "an artifact), PPL of both and how often their top token agrees");
  cmd->add_option("--base", a.base, "the float checkpoint of an artifact, for --kl-divergence");
  cmd->add_option("--threads", a.threads, "artifact: kernel threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a.json, "print the figures as JSON on stdout");
  cmd->footer(
      "Progress with ETA goes to stderr, the result to stdout. Examples:\n"
      "  headsplit perplexity -m stories260K.hsa -f ../shared/data/tinystories/valid-sample.txt\n"
      "  headsplit perplexity -m ../shared/models/stories260K/stories260K.bin -f story.txt "
      "--window 64 --stride 32\n"
      "  headsplit perplexity -m ../shared/models/stories260K/stories260K.bin -f text.txt "
      "--quant 16a4w --kl-divergence\n"
      "  headsplit perplexity -m stories260K.hsa -f text.txt --kl-divergence --base "
      "../shared/models/stories260K/stories260K.bin\n"
      "  headsplit perplexity -m ../shared/models/stories260K/stories260K.bin -f "
      "../shared/data/tinystories/valid-sample.txt --per-line --lines 5-9\n"
      "      the windows and figure of 'headsplit eval' (float) on the same lines");
  set_action(*cmd, [args] { return run_perplexity(*args); });
}

}  // namespace hs::cli
