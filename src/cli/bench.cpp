// `headsplit bench`: prompt and decode speed of a .hsa artifact in the shape of llama.cpp's
// llama-bench: tests "pp N" (N prompt tokens from an empty cache, through the artifact's prefill
// graph in AR-N chunks, as `run` prefills a prompt: the logits of the last token only, as
// llama-bench's prompt test computes them) and "tg N" (N tokens decoded one per step with the AR-1 graph after a
// one-token prefill, which is not timed), each repeated -r times per thread count; t/s = tokens
// / seconds per repetition, reported as mean +/- sample standard deviation (llama-bench's
// avg_ts, stddev_ts). Output: a Markdown table, JSON or CSV with llama-bench's field names where
// the meaning is the same. --compare-gguf runs llama-bench on a GGUF with the same shape and
// prints both with the ratio.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headsplit/artifact/reader.h"
#include "headsplit/cli/commands.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/runner/decoder.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/support/file.h"
#include "headsplit/support/shared_dir.h"

namespace hs::cli {

namespace {

struct BenchArgs {
  std::string model;
  std::vector<int64_t> prompt = {128};
  std::vector<int64_t> gen = {64};
  std::vector<int> threads = {0};
  int reps = 3;
  std::string output = "md";
  std::string compare_gguf;
  std::string llama_bench;
  bool mmap = false;
};

struct Row {
  int64_t n_prompt = 0, n_gen = 0;
  int threads = 0;
  std::vector<double> samples_ns, samples_ts;
  double avg_ts() const {
    double s = 0;
    for (double x : samples_ts) s += x;
    return samples_ts.empty() ? 0 : s / static_cast<double>(samples_ts.size());
  }
  double stddev_ts() const { return stddev(samples_ts); }
  double avg_ns() const {
    double s = 0;
    for (double x : samples_ns) s += x;
    return samples_ns.empty() ? 0 : s / static_cast<double>(samples_ns.size());
  }
  static double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    double mean = 0;
    for (double x : v) mean += x;
    mean /= static_cast<double>(v.size());
    double s2 = 0;
    for (double x : v) s2 += (x - mean) * (x - mean);
    return std::sqrt(s2 / static_cast<double>(v.size() - 1));
  }
  std::string test() const {
    return n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
  }
};

struct ModelFacts {
  std::string name, filename, type;
  int64_t size = 0, params = 0, context = 0;
  std::vector<int64_t> ar_lens;
};

using Clock = std::chrono::steady_clock;

// One repetition: seconds for `n_prompt` prompt tokens (Decoder::prefill, the prompt path of
// `run`), or for `n_gen` decoded tokens.
Result<double> time_once(runner::StepModel& model, int64_t n_prompt, int64_t n_gen) {
  const int64_t v = model.info().vocab_size;
  const int64_t n = n_prompt > 0 ? n_prompt : n_gen + 1;
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 1) % v);
  if (n_prompt > 0) {
    HS_ASSIGN_OR_RETURN(runner::Decoder decoder, runner::Decoder::create(model, {}));
    const Clock::time_point start = Clock::now();
    HS_TRY(decoder.prefill(tokens));
    return std::chrono::duration<double>(Clock::now() - start).count();
  }
  Clock::time_point start = Clock::now();
  auto on_logits = [&](int64_t pos, std::span<const float>) {
    if (n_prompt == 0 && pos == 0) start = Clock::now();  // after the one-token prefill
  };
  HS_TRY(ptq::run_window(model, tokens, n_prompt > 0 ? 0 : n_gen, on_logits));
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Result<std::vector<Row>> run_bench(const BenchArgs& a, ModelFacts& facts) {
  HS_ASSIGN_OR_RETURN(artifact::LoadedArtifact loaded,
                      artifact::load_artifact(a.model, {.residence = residence_of(a.mmap)}));
  auto art = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
  const artifact::ModelMetadata& meta = art->program().metadata;
  facts.name = meta.model_name;
  facts.filename = a.model;
  facts.type = fmt::format("{} {}", meta.model_name,
                           meta.quant_scheme.empty() ? std::string("f32") : meta.quant_scheme);
  facts.size = static_cast<int64_t>(art->file_size());
  for (const artifact::WeightDesc& w : art->program().weights) facts.params += w.numel();
  facts.context = meta.context_len;
  facts.ar_lens = meta.ar_lengths;
  std::vector<Row> rows;
  for (int threads : a.threads) {
    HS_ASSIGN_OR_RETURN(auto model, runtime::ArtifactStepModel::create(art, {.threads = threads}));
    const int used = model->threads();
    const int64_t limit = ptq::window_length(model->info());
    std::vector<Row> tests;
    for (int64_t p : a.prompt) tests.push_back({.n_prompt = p, .threads = used});
    for (int64_t g : a.gen) tests.push_back({.n_gen = g, .threads = used});
    for (Row& row : tests) {
      const int64_t need = row.n_prompt > 0 ? row.n_prompt : row.n_gen + 1;
      if (need > limit) {
        return errorf(ErrorKind::kInvalidArgument,
                      "{} needs {} tokens in the context, but {} holds at most {} (context {} "
                      "minus the prefill AR length {})",
                      row.test(), need, a.model, limit, facts.context, facts.context - limit);
      }
      HS_TRY(time_once(*model, row.n_prompt, row.n_gen));  // warm-up, not counted
      for (int r = 0; r < a.reps; ++r) {
        HS_ASSIGN_OR_RETURN(double s, time_once(*model, row.n_prompt, row.n_gen));
        const double tokens = static_cast<double>(row.n_prompt > 0 ? row.n_prompt : row.n_gen);
        row.samples_ns.push_back(s * 1e9);
        row.samples_ts.push_back(tokens / s);
      }
      rows.push_back(row);
    }
  }
  return rows;
}

std::string human_size(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.2f} MiB", b / (1024.0 * 1024));
  return fmt::format("{:.2f} KiB", b / 1024.0);
}

std::string human_params(int64_t n) {
  const double x = static_cast<double>(n);
  if (x >= 1e9) return fmt::format("{:.2f} B", x / 1e9);
  if (x >= 1e6) return fmt::format("{:.2f} M", x / 1e6);
  return fmt::format("{:.2f} K", x / 1e3);
}

nlohmann::json row_json(const Row& r, const ModelFacts& f) {
  return {{"model_filename", f.filename},
          {"model_type", f.type},
          {"model_size", f.size},
          {"model_n_params", f.params},
          {"n_ubatch", f.ar_lens.empty() ? 0 : f.ar_lens.front()},
          {"ar_lengths", f.ar_lens},
          {"n_ctx", f.context},
          {"n_threads", r.threads},
          {"n_prompt", r.n_prompt},
          {"n_gen", r.n_gen},
          {"avg_ns", static_cast<int64_t>(r.avg_ns())},
          {"stddev_ns", static_cast<int64_t>(Row::stddev(r.samples_ns))},
          {"avg_ts", r.avg_ts()},
          {"stddev_ts", r.stddev_ts()},
          {"samples_ns", r.samples_ns},
          {"samples_ts", r.samples_ts}};
}

void print_markdown(const std::vector<Row>& rows, const ModelFacts& f) {
  std::printf("| %-30s | %11s | %10s | %-13s | %7s | %13s | %22s |\n", "model", "size", "params",
              "backend", "threads", "test", "t/s");
  std::printf(
      "| %s | ----------: | ---------: | ------------- | ------: | ------------: | "
      "---------------------: |\n",
      std::string(30, '-').c_str());
  for (const Row& r : rows) {
    std::printf("| %-30s | %11s | %10s | %-13s | %7d | %13s | %22s |\n", f.type.c_str(),
                human_size(f.size).c_str(), human_params(f.params).c_str(), "headsplit CPU",
                r.threads, r.test().c_str(),
                fmt::format("{:.2f} ± {:.2f}", r.avg_ts(), r.stddev_ts()).c_str());
  }
}

void print_csv(const std::vector<Row>& rows, const ModelFacts& f) {
  std::printf(
      "model_filename,model_type,model_size,model_n_params,n_ubatch,n_ctx,n_threads,n_prompt,"
      "n_gen,avg_ns,stddev_ns,avg_ts,stddev_ts\n");
  for (const Row& r : rows) {
    std::printf("\"%s\",\"%s\",%lld,%lld,%lld,%lld,%d,%lld,%lld,%lld,%lld,%.6f,%.6f\n",
                f.filename.c_str(), f.type.c_str(), static_cast<long long>(f.size),
                static_cast<long long>(f.params),
                static_cast<long long>(f.ar_lens.empty() ? 0 : f.ar_lens.front()),
                static_cast<long long>(f.context), r.threads, static_cast<long long>(r.n_prompt),
                static_cast<long long>(r.n_gen), static_cast<long long>(r.avg_ns()),
                static_cast<long long>(Row::stddev(r.samples_ns)), r.avg_ts(), r.stddev_ts());
  }
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs llama-bench with the same shape and returns its JSON rows.
Result<nlohmann::json> run_llama_bench(const BenchArgs& a, const std::vector<Row>& rows) {
  const std::string bin =
      a.llama_bench.empty() ? shared_path("anchors/llama.cpp/bin/llama-bench") : a.llama_bench;
  if (!file_exists(bin)) {
    return errorf(ErrorKind::kNotFound,
                  "--compare-gguf: llama-bench not found at {} (give --llama-bench PATH)", bin);
  }
  if (!file_exists(a.compare_gguf)) {
    return errorf(ErrorKind::kNotFound, "--compare-gguf {}: no such file", a.compare_gguf);
  }
  std::vector<int> threads;
  for (const Row& r : rows) {
    if (std::find(threads.begin(), threads.end(), r.threads) == threads.end())
      threads.push_back(r.threads);
  }
  const std::string cmd = fmt::format("{} -m {} -p {} -n {} -t {} -r {} -o json", shell_quote(bin),
                                      shell_quote(a.compare_gguf), fmt::join(a.prompt, ","),
                                      fmt::join(a.gen, ","), fmt::join(threads, ","), a.reps);
  std::fprintf(stderr, "bench: running %s\n", cmd.c_str());
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return errorf(ErrorKind::kIo, "--compare-gguf: cannot run {}", bin);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = pclose(pipe);
  if (status != 0) {
    return errorf(ErrorKind::kIo, "--compare-gguf: {} exited with status {}", bin, status);
  }
  nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) {
    return errorf(ErrorKind::kParse, "--compare-gguf: llama-bench printed no JSON array");
  }
  return j;
}

void print_comparison(const std::vector<Row>& rows, const nlohmann::json& llama,
                      const std::string& gguf) {
  std::printf("\n| %-7s | %13s | %22s | %22s | %7s |\n", "threads", "test", "headsplit t/s",
              "llama.cpp t/s", "ratio");
  std::printf(
      "| ------: | ------------: | ---------------------: | ---------------------: | "
      "------: |\n");
  for (const Row& r : rows) {
    const nlohmann::json* match = nullptr;
    for (const nlohmann::json& l : llama) {
      if (l.value("n_prompt", -1) == r.n_prompt && l.value("n_gen", -1) == r.n_gen &&
          l.value("n_threads", -1) == r.threads)
        match = &l;
    }
    std::string theirs = "-", ratio = "-";
    if (match != nullptr) {
      const double ts = match->value("avg_ts", 0.0);
      theirs = fmt::format("{:.2f} ± {:.2f}", ts, match->value("stddev_ts", 0.0));
      if (ts > 0) ratio = fmt::format("{:.2f}", r.avg_ts() / ts);
    }
    std::printf("| %7d | %13s | %22s | %22s | %7s |\n", r.threads, r.test().c_str(),
                fmt::format("{:.2f} ± {:.2f}", r.avg_ts(), r.stddev_ts()).c_str(), theirs.c_str(),
                ratio.c_str());
  }
  std::printf("ratio: headsplit t/s / llama.cpp t/s (llama.cpp on %s)\n", gguf.c_str());
}

Status run_bench_command(const BenchArgs& a) {
  ModelFacts facts;
  HS_ASSIGN_OR_RETURN(std::vector<Row> rows, run_bench(a, facts));
  std::fprintf(stderr,
               "bench: %s: prompts in AR-%lld chunks (the artifact's prefill graph), decode on "
               "AR-1, context %lld (the artifact's AR lengths: %s)\n",
               a.model.c_str(),
               static_cast<long long>(facts.ar_lens.empty() ? 0 : facts.ar_lens.front()),
               static_cast<long long>(facts.context),
               fmt::format("{}", fmt::join(facts.ar_lens, ", ")).c_str());
  nlohmann::json llama;
  if (!a.compare_gguf.empty()) {
    HS_ASSIGN_OR_RETURN(llama, run_llama_bench(a, rows));
  }
  if (a.output == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const Row& r : rows) j.push_back(row_json(r, facts));
    if (!a.compare_gguf.empty()) {
      std::puts(nlohmann::json{{"headsplit", j}, {"llama.cpp", llama}}.dump(2).c_str());
    } else {
      std::puts(j.dump(2).c_str());
    }
    return ok_status();
  }
  if (a.output == "csv") {
    print_csv(rows, facts);
  } else {
    print_markdown(rows, facts);
  }
  if (!a.compare_gguf.empty()) print_comparison(rows, llama, a.compare_gguf);
  return ok_status();
}

}  // namespace

void register_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  BenchArgs& a = *args;
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Prompt (pp N) and decode (tg N) speed of a .hsa artifact in the shape of llama-bench: "
      "mean ± sd of tokens/s over repetitions, per thread count; Markdown, JSON or CSV.");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--model", a.model, "the .hsa artifact")->required();
  cmd->add_option("-p,--n-prompt", a.prompt, "prompt sizes, comma separated (0: none)")
      ->delimiter(',');
  cmd->add_option("-n,--n-gen", a.gen, "decode lengths, comma separated (0: none)")->delimiter(',');
  cmd->add_option("-t,--threads", a.threads, "thread counts, comma separated (0: all cores)")
      ->delimiter(',');
  cmd->add_option("-r,--repetitions", a.reps, "repetitions of each test (after one warm-up)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-o,--output", a.output, "md, json or csv")
      ->check(CLI::IsMember({"md", "json", "csv"}));
  cmd->add_option("--compare-gguf", a.compare_gguf,
                  "also run llama.cpp's llama-bench on this GGUF with the same -p/-n/-t/-r and "
                  "print both with the ratio");
  cmd->add_option("--llama-bench", a.llama_bench,
                  "llama-bench binary (default: ../shared/anchors/llama.cpp/bin/llama-bench)");
  add_mmap_flag(*cmd, a.mmap);
  cmd->footer(
      "Prompts go through the artifact's prefill graph (AR-N chunks, N fixed at export) as\n"
      "`run` prefills them (logits of the last token only, like llama-bench) and decoding\n"
      "through its AR-1 graph; tests must fit the artifact's context (C - N tokens).\n"
      "JSON rows carry llama-bench's fields (n_prompt, n_gen, n_threads, avg_ts, stddev_ts, ...).\n"
      "Examples:\n"
      "  headsplit bench -m stories260K.hsa -p 64,128 -n 32 -t 1,2 -r 3\n"
      "  headsplit bench -m stories260K.hsa -p 128 -n 64 -o json\n"
      "  headsplit bench -m smollm2.hsa -p 128 -n 64 -t 2 --compare-gguf smollm2-q8_0.gguf");
  set_action(*cmd, [args] { return run_bench_command(*args); });
}

}  // namespace hs::cli
