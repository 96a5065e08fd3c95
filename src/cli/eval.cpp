// `headsplit eval`: quantize a checkpoint and report how accurate it stays: perplexity, top-1
// agreement with the float model and logits SQNR, for float, quantized MHA, quantized MHA +
// split and quantized SHA from source (quant/evaluate.h has the protocol).
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headsplit/cli/commands.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/ptq/evaluate.h"
#include "headsplit/support/file.h"
#include "headsplit/support/progress.h"
#include "headsplit/support/shared_dir.h"

namespace hs::cli {

namespace {

struct EvalArgs {
  std::string model;      // empty: the shared stories260K checkpoint
  std::string tokenizer;  // empty: next to the checkpoint (tok512.bin for the default model)
  std::string quant;      // empty: the recipe's scheme, else 16a8w
  std::string recipe;     // empty: none
  std::vector<std::string> rules;
  int kv_bits = 0;  // 0: the recipe's, else the scheme's activation bits
  std::string block_scales = "lpbq";
  std::vector<std::string> calib;
  std::string prompt;
  std::string text;
  std::string calib_lines;  // "a-b" of --text; default: the first half (when no --calib)
  std::string eval_lines;   // "a-b" of --text; default: the second half (all with --calib)
  int64_t ctx_len = 0;
  int64_t ar_len = 32;
  int64_t decode_tokens = 0;
  bool r3 = false;
  bool masked_softmax = false;
  bool json = false;
  bool no_split = false;
  bool no_sha = false;
  std::string kernels = "fast";
  int seq_mse = -1;  // -1: the recipe's
  std::string seq_mse_tokens = "last";
  bool gptq = false;
  bool compare = false;
  int threads = 0;
};

std::vector<std::string> take(const std::vector<std::string>& lines, const LineRange& r) {
  std::vector<std::string> out;
  for (int64_t i = r.first; i <= r.last; ++i) out.push_back(lines[static_cast<size_t>(i)]);
  return out;
}

Result<quant::QuantConfig> make_config(const EvalArgs& a) {
  quant::QuantConfig config;
  if (!a.recipe.empty()) {
    HS_ASSIGN_OR_RETURN(config, quant::recipe_config(a.recipe));
  } else {
    config.scheme = quant::Scheme{16, 8, 0};
  }
  if (!a.quant.empty()) {
    HS_ASSIGN_OR_RETURN(config.scheme, quant::parse_scheme(a.quant));
  }
  for (const std::string& r : a.rules) {
    HS_ASSIGN_OR_RETURN(quant::Rule rule, quant::parse_rule(r));
    config.rules.push_back(std::move(rule));
  }
  if (a.kv_bits != 0) {
    config.kv_bits = a.kv_bits;
  } else if (a.recipe.empty()) {
    config.kv_bits = config.scheme.act_bits;
  }
  config.lpbq = a.block_scales == "lpbq";
  HS_TRY(quant::validate_config(config));
  return config;
}

std::string describe_config(const quant::QuantConfig& c) {
  std::string s = quant::scheme_name(c.scheme);
  for (const quant::Rule& r : c.rules) s += ", " + r.text;
  s += fmt::format(", {}-bit KV", c.kv_bits);
  if (!c.recipe.empty()) s += fmt::format(" (recipe {})", c.recipe);
  return s;
}

nlohmann::json to_json(const ptq::EvalReport& r, const quant::QuantConfig& config,
                       const std::string& calib_source, const std::string& eval_source) {
  nlohmann::json j;
  j["quantization"] = describe_config(config);
  j["window"] = r.window;
  j["calibration"] = {{"source", calib_source},
                      {"tokens", r.mha_calibration.tokens},
                      {"windows", r.mha_calibration.windows},
                      {"mha_seconds", r.mha_calibration.seconds},
                      {"sha_seconds", r.sha_calibration.seconds}};
  j["evaluation"] = {{"source", eval_source}, {"tokens", r.eval_tokens}};
  j["split_seconds"] = r.split_seconds;
  for (const ptq::ModelMetrics& m : r.models) {
    const double sqnr = m.sqnr_db();
    j["models"].push_back(
        {{"name", m.name},
         {"perplexity", m.perplexity()},
         {"scored_tokens", m.scored_tokens},
         {"top1_agreement", m.top1_agreement()},
         {"sqnr_db", std::isinf(sqnr) ? nlohmann::json(nullptr) : nlohmann::json(sqnr)},
         {"calibration_seconds", m.calibration_seconds},
         {"search_seconds", m.search_seconds},
         {"apply_seconds", m.apply_seconds},
         {"export_seconds", m.name == "float" ? 0.0 : m.export_seconds()}});
  }
  return j;
}

void print_table(const ptq::EvalReport& r, std::FILE* out) {
  const double base = r.models.front().perplexity();
  std::fprintf(out, "%-24s %11s %9s %12s %9s %9s %9s %9s\n", "model", "perplexity", "vs float",
               "top-1 agree", "SQNR dB", "calib s", "search s", "export s");
  for (const ptq::ModelMetrics& m : r.models) {
    const double sqnr = m.sqnr_db();
    const std::string sqnr_text = std::isinf(sqnr) ? "inf" : fmt::format("{:.2f}", sqnr);
    const std::string calib =
        m.calibration_seconds > 0 ? fmt::format("{:.2f}", m.calibration_seconds) : "-";
    const bool quantized = m.calibration_seconds > 0;
    const std::string search = quantized ? fmt::format("{:.2f}", m.search_seconds) : "-";
    const std::string total = quantized ? fmt::format("{:.2f}", m.export_seconds()) : "-";
    std::fprintf(out, "%-24s %11.4f %+8.2f%% %11.2f%% %9s %9s %9s %9s\n", m.name.c_str(),
                 m.perplexity(), 100.0 * (m.perplexity() / base - 1.0), 100.0 * m.top1_agreement(),
                 sqnr_text.c_str(), calib.c_str(), search.c_str(), total.c_str());
  }
}

// The checkpoint and tokenizer to load: the given ones, or the shared stories260K
// (../shared/models/stories260K/stories260K.bin + tok512.bin) when -m is not given. Also says
// which model is used.
struct ModelChoice {
  std::string model, tokenizer, description;
};

Result<ModelChoice> choose_model(const EvalArgs& a) {
  if (!a.model.empty()) return ModelChoice{a.model, a.tokenizer, a.model};
  ModelChoice c{shared_path("models/stories260K/stories260K.bin"),
                a.tokenizer.empty() ? shared_path("models/stories260K/tok512.bin") : a.tokenizer,
                ""};
  if (!file_exists(c.model)) {
    return errorf(ErrorKind::kNotFound,
                  "no -m/--model given and the default model {} does not exist (pass -m <model>, "
                  "or set HEADSPLIT_SHARED_DIR to the shared folder)",
                  c.model);
  }
  c.description = fmt::format("stories260K (the default; -m to choose another), {} with {}",
                              c.model, c.tokenizer);
  return c;
}

Status run_eval_command(const EvalArgs& a) {
  HS_ASSIGN_OR_RETURN(quant::QuantConfig config, make_config(a));
  HS_ASSIGN_OR_RETURN(const ModelChoice choice, choose_model(a));
  HS_ASSIGN_OR_RETURN(frontend::LlamaModel model,
                      frontend::load_model(choice.model, choice.tokenizer));
  if (!model.tokenizer) {
    return errorf(ErrorKind::kNotFound,
                  "{}: no tokenizer found next to the checkpoint; pass -t/--tokenizer",
                  choice.model);
  }
  HS_ASSIGN_OR_RETURN(auto tokenizer, tokenizer::Tokenizer::create(*model.tokenizer));
  HS_ASSIGN_OR_RETURN(const frontend::StepLengths lengths,
                      frontend::step_lengths(model, a.ctx_len, a.ar_len));
  const int64_t context_len = lengths.context_len;

  const std::string text_path =
      a.text.empty() ? shared_path("data/tinystories/valid-sample.txt") : a.text;
  HS_ASSIGN_OR_RETURN(std::vector<std::string> lines, ptq::read_lines(text_path));
  const auto n = static_cast<int64_t>(lines.size());
  if (n == 0) return errorf(ErrorKind::kInvalidArgument, "{}: no non-empty line", text_path);

  // Calibration: --calib files, else lines of --text (--calib-lines, default the first half);
  // plus the prompt. Evaluation: --eval-lines, default the second half (all lines with --calib).
  ptq::EvalRequest request;
  std::vector<std::string> calib_lines;
  std::string calib_source;
  if (!a.calib_lines.empty() || a.calib.empty()) {
    LineRange r{0, std::max<int64_t>(n / 2, 1) - 1};
    if (!a.calib_lines.empty()) {
      HS_ASSIGN_OR_RETURN(r, parse_lines(a.calib_lines, n, "--calib-lines"));
    }
    calib_lines = take(lines, r);
    calib_source = fmt::format("lines {} of {}", r.text(), text_path);
  }
  if (!a.calib.empty()) {
    calib_source +=
        fmt::format("{}{}", calib_source.empty() ? "" : " + ", fmt::join(a.calib, ", "));
  }
  if (!a.prompt.empty()) calib_source += " + the prompt";
  if (calib_lines.empty()) {
    // Reports unreadable files, and empty calibration input.
    HS_ASSIGN_OR_RETURN(request.calibration_texts, ptq::calibration_texts(a.calib, a.prompt));
  } else {
    request.calibration_texts = calib_lines;
    for (const std::string& file : a.calib) {
      HS_ASSIGN_OR_RETURN(std::vector<std::string> more, ptq::read_lines(file));
      request.calibration_texts.insert(request.calibration_texts.end(), more.begin(), more.end());
    }
    if (!a.prompt.empty()) request.calibration_texts.push_back(a.prompt);
  }
  LineRange eval_range{a.calib.empty() ? n / 2 : 0, n - 1};
  if (!a.eval_lines.empty()) {
    HS_ASSIGN_OR_RETURN(eval_range, parse_lines(a.eval_lines, n, "--eval-lines"));
  }
  request.eval_texts = take(lines, eval_range);
  const std::string eval_source = fmt::format("lines {} of {}", eval_range.text(), text_path);

  request.build.context_len = context_len;
  request.build.r3 = a.r3;
  request.build.mask =
      a.masked_softmax ? frontend::MaskKind::kMaskedSoftmax : frontend::MaskKind::kAdditive;
  request.ar_len = a.ar_len;
  request.config = config;
  request.eval.decode_tokens = a.decode_tokens;
  request.split = !a.no_split;
  request.sha_from_source = !a.no_sha;
  request.kernels = a.kernels == "reference" ? ir::KernelSet::kReference : ir::KernelSet::kFast;
  request.search.seq_mse = a.seq_mse >= 0 ? a.seq_mse : config.seq_mse;
  request.search.seq_mse_tokens =
      a.seq_mse_tokens == "all" ? quant::SeqMseTokens::kAll : quant::SeqMseTokens::kLast;
  request.search.gptq = a.gptq;
  request.search.threads = a.threads;
  if (a.compare) {
    // float, MinMax, SeqMSE (N: --seq-mse, else the recipe's, else 1000), GPTQ, both.
    quant::WeightSearchOptions base = request.search;
    base.seq_mse = 0;
    base.gptq = false;
    const int n = request.search.seq_mse > 0 ? request.search.seq_mse : 1000;
    quant::WeightSearchOptions seq = base, gptq = base, both = base;
    seq.seq_mse = n;
    gptq.gptq = true;
    both.seq_mse = n;
    both.gptq = true;
    request.methods = {{"MinMax", base},
                       {fmt::format("SeqMSE {}", n), seq},
                       {"GPTQ", gptq},
                       {fmt::format("SeqMSE {} + GPTQ", n), both}};
  }

  const frontend::LlamaConfig& c = model.config;
  std::fprintf(stderr, "model: %s (L=%lld D=%lld H=%lld Hkv=%lld V=%lld), context %lld\n",
               choice.description.c_str(), static_cast<long long>(c.n_layers),
               static_cast<long long>(c.dim), static_cast<long long>(c.n_heads),
               static_cast<long long>(c.n_kv_heads), static_cast<long long>(c.vocab_size),
               static_cast<long long>(context_len));
  HS_ASSIGN_OR_RETURN(ptq::EvalReport report,
                      ptq::evaluate_quantization(model, *tokenizer, request));

  if (a.json) {
    nlohmann::json j = to_json(report, config, calib_source, eval_source);
    j["model"] = choice.description;
    j["context"] = context_len;
    std::puts(j.dump(2).c_str());
    return ok_status();
  }
  const ptq::CalibrationStats& cs = report.mha_calibration;
  std::printf("model: %s, context %lld\n", choice.description.c_str(),
              static_cast<long long>(context_len));
  std::printf("quantization: %s\n", describe_config(config).c_str());
  if (request.methods.empty()) {
    std::string ws = request.search.seq_mse > 0
                         ? fmt::format("SeqMSE {} candidates ({} tokens)", request.search.seq_mse,
                                       a.seq_mse_tokens)
                         : "MinMax";
    if (request.search.gptq) ws += " + GPTQ";
    std::printf("weights: %s\n", ws.c_str());
  }
  std::printf("graphs: AR-%lld%s, %s%s\n", static_cast<long long>(a.ar_len),
              a.ar_len > 1 ? " (prefill) + AR-1 (decode)" : "",
              a.masked_softmax ? "masked softmax" : "additive mask", a.r3 ? ", r3" : "");
  const std::string sha_time =
      a.no_sha ? "" : fmt::format(", {:.2f} s SHA from source", report.sha_calibration.seconds);
  std::printf(
      "calibration: %s: %lld samples, %lld windows, %lld tokens (%lld prefill, %lld decode); "
      "%.2f s MHA (%.0f tokens/s)%s\n",
      calib_source.c_str(), static_cast<long long>(cs.samples), static_cast<long long>(cs.windows),
      static_cast<long long>(cs.tokens), static_cast<long long>(cs.prefill_tokens),
      static_cast<long long>(cs.decode_tokens), cs.seconds, cs.tokens_per_second(),
      sha_time.c_str());
  std::printf(
      "evaluation: %s: %lld tokens; non-overlapping windows of W = C - N = %lld tokens from an "
      "empty cache (stride W), the first token of each window not scored; %lld tokens scored\n",
      eval_source.c_str(), static_cast<long long>(report.eval_tokens),
      static_cast<long long>(report.window),
      static_cast<long long>(report.models.front().scored_tokens));
  print_table(report, stdout);
  return ok_status();
}

}  // namespace

void register_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Quantize a checkpoint and compare with the float model on text: perplexity, top-1 "
      "agreement and logits SQNR for quantized MHA, MHA + split and SHA from source.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", args->model,
                  "checkpoint: llama2.c .bin, .gguf file or Hugging Face folder (default: "
                  "../shared/models/stories260K/stories260K.bin)");
  cmd->add_option("-t,--tokenizer", args->tokenizer,
                  "tokenizer.bin for llama2.c checkpoints (default: tokenizer.bin or tok<V>.bin "
                  "next to the checkpoint; tok512.bin for the default model)");
  cmd->add_option("--quant", args->quant,
                  "default scheme: 16a8w, 16a4w, 16a4w-block16/32/64, 8a8w, 8a4w (default: the "
                  "recipe's, else 16a8w)");
  cmd->add_option("--recipe", args->recipe,
                  fmt::format("named recipe: {}", fmt::join(quant::recipe_names(), ", ")))
      ->check(CLI::IsMember(
          std::vector<std::string>(quant::recipe_names().begin(), quant::recipe_names().end())));
  cmd->add_option("--rule", args->rules,
                  "mixed precision, repeatable: pattern=scheme, e.g. output=16a8w or "
                  "layers.{0-3}.ffn.w2=16a8w (later rules win)");
  cmd->add_option("--kv-bits", args->kv_bits,
                  "KV cache I/O bits, 8 or 16 (default: the recipe's, else the scheme's "
                  "activation bits)")
      ->check(CLI::IsMember({0, 8, 16}));
  cmd->add_option("--block-scales", args->block_scales,
                  "per-block (-blockN) weight scales: lpbq (one float per row times a 4-bit "
                  "multiplier per block, as QNN runs them) or float (the observer's own)")
      ->check(CLI::IsMember({"lpbq", "float"}))
      ->capture_default_str();
  cmd->add_option("--calib", args->calib,
                  "calibration text file, one sample per line (repeatable; default: the first "
                  "half of --text)");
  cmd->add_option("-p,--prompt", args->prompt, "a prompt added to the calibration samples");
  cmd->add_option("--text", args->text,
                  "evaluation text, one sample per line (default: "
                  "<shared>/data/tinystories/valid-sample.txt)");
  cmd->add_option("--calib-lines", args->calib_lines,
                  "calibrate on lines a-b of --text (0-based, non-empty lines)");
  cmd->add_option("--eval-lines", args->eval_lines,
                  "evaluate on lines a-b of --text (default: the second half, or all with "
                  "--calib)");
  cmd->add_option("--ctx-len", args->ctx_len,
                  "context length C (0: the model's max_seq_len, at most 512)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ar-len", args->ar_len, "prefill AR length N (a decode AR-1 graph is added)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--decode-tokens", args->decode_tokens,
                  "score the last n tokens of each window through the AR-1 graph")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--r3", args->r3, "rotate q and k by a Hadamard matrix after RoPE");
  cmd->add_flag("--masked-softmax", args->masked_softmax,
                "masked softmax instead of an additive mask");
  cmd->add_flag("--no-split", args->no_split, "skip the quantized MHA + split model");
  cmd->add_flag("--no-sha", args->no_sha, "skip the quantized SHA-from-source model");
  cmd->add_option("--kernels", args->kernels,
                  "interpreter kernels for calibration and evaluation: fast or reference")
      ->check(CLI::IsMember({"fast", "reference"}));
  cmd->add_option("--seq-mse", args->seq_mse,
                  "SeqMSE candidates per output channel / block (0: MinMax; default: the "
                  "recipe's, 1000 for llama3 and qwen3-0.6b, else 0)")
      ->check(CLI::Range(-1, 100000));
  cmd->add_option("--seq-mse-tokens", args->seq_mse_tokens,
                  "calibration tokens SeqMSE scores: last (each window's last, as the "
                  "reference) or all")
      ->check(CLI::IsMember({"last", "all"}));
  cmd->add_flag("--gptq", args->gptq,
                "GPTQ error-compensating rounding (on SeqMSE's scales with --seq-mse)");
  cmd->add_flag("--compare", args->compare,
                "side by side: float, MinMax, SeqMSE, GPTQ and SeqMSE + GPTQ (quantized MHA "
                "each, one calibration) with perplexity, top-1, SQNR and export time");
  cmd->add_option("--threads", args->threads, "threads of the weight search (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "print the report as JSON on stdout");
  cmd->footer(
      "Without -m it evaluates stories260K from ../shared/models/stories260K and says so.\n"
      "By default it calibrates on the first half of ../shared/data/tinystories/valid-sample.txt\n"
      "and evaluates on the second half; the report states the lines, the window (W = C - N)\n"
      "and how many tokens were scored.\n"
      "Examples:\n"
      "  headsplit eval --quant 16a8w\n"
      "      16a8w everywhere, 16-bit KV: float vs quantized MHA, MHA + split, SHA from source\n"
      "  headsplit eval --recipe stories --quant 16a4w-block32\n"
      "      the stories recipe (LM head 16a8w, 8-bit KV) with 4-bit block-32 weights\n"
      "  headsplit eval --quant 16a4w --rule output=16a8w --rule 'layers.{0-1}.ffn.w2=16a8w' "
      "--kv-bits 8\n"
      "      mixed precision by rule (later rules win)\n"
      "  headsplit eval --recipe stories --quant 16a4w-block32 --compare --seq-mse 1000\n"
      "      MinMax, SeqMSE, GPTQ and both side by side, with the export time each costs\n"
      "  headsplit eval -m model.gguf --recipe smollm2 --calib calib.txt --ctx-len 256 --json\n"
      "      another checkpoint, calibrated on a file (one sample per line), JSON report\n"
      "See docs/quantization.md for the schemes, rules and the evaluation protocol.");
  set_action(*cmd, [args] { return run_eval_command(*args); });
}

std::string LineRange::text() const { return fmt::format("{}-{}", first, last); }

Result<LineRange> parse_lines(const std::string& text, int64_t n, std::string_view option) {
  auto number = [](std::string_view s) -> std::optional<int64_t> {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  const size_t dash = text.find('-');
  auto a = number(std::string_view(text).substr(0, dash));
  auto b = dash == std::string::npos ? a : number(std::string_view(text).substr(dash + 1));
  if (!a || !b || *b < *a) {
    return errorf(ErrorKind::kInvalidArgument, "{} '{}': expected a line range a-b with a <= b",
                  option, text);
  }
  if (*b >= n) {
    return errorf(ErrorKind::kInvalidArgument, "{} '{}': the text has {} non-empty lines (0-{})",
                  option, text, n, n - 1);
  }
  return LineRange{*a, *b};
}

}  // namespace hs::cli
