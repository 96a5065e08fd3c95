// Lookahead benchmark: tokens accepted per step and decode tokens/s of lookahead decoding
// against plain one-token (AR-1) decoding, on the runtime.
//
// Models (16a8w, exported here with a short calibration):
//   stories260K  the shared model (real text, so the acceptance is meaningful), C = 512
//   smollm2      random weights in SmolLM2-135M's shape, C = 1024: decode streams 134 MB of
//                weights per step, so a step of T rows costs far less than T steps; random
//                weights make the acceptance meaningless (their greedy text repeats itself),
//                the step costs are what to read
// Each model is exported twice, with a lookahead graph of AR-6 and of AR-16 (besides the AR-32
// prefill and AR-1 decode graphs). Configurations N,W,G (rows = (W + G)(N - 1)):
//   2,3,3 on AR-6    fewer than 8 rows: the projections run the decode kernels, so the tokens
//                    equal AR-1's exactly (docs/lookahead.md)
//   3,4,4 on AR-16
//   3,8,8 on AR-32   (the prefill graph)
// Per configuration `--runs` (>= 1) repetitions of `--prompts` prompts x `--tokens` greedy
// tokens (EOS off); medians over runs of the summed decode time. Output: one JSON object on
// stdout (scripts/bench-lookahead.sh writes bench/results/lookahead.json). With --self-check it
// also checks its own output (configurations present, counts consistent) and exits 1 when not.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_common.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/backend/export.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/runner/generator.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/support/shared_dir.h"

namespace {

using namespace hs;
using json = nlohmann::json;
using bench::Clock;

template <typename T>
T must(Result<T> r, std::string_view what) {
  return bench::must(std::move(r), what, "lookahead_bench");
}

struct Options {
  int runs = 3;
  int64_t tokens = 128;
  size_t prompts = 5;
  int threads = 1;
  bool smollm2 = true;
  bool self_check = false;
};

struct LookaheadConfig {
  runner::LookaheadOptions lookahead;
  int64_t export_ar;  // the artifact whose lookahead graph it uses (6 or 16)
};

const LookaheadConfig kConfigs[] = {
    {{.ngram = 2, .window = 3, .guesses = 3, .ar_len = 6}, 6},
    {{.ngram = 3, .window = 4, .guesses = 4, .ar_len = 16}, 16},
    {{.ngram = 3, .window = 8, .guesses = 8, .ar_len = 32}, 16},
};

std::string export_model(const frontend::LlamaModel& model, int64_t context_len,
                         int64_t lookahead_ar, const std::string& path) {
  backend::ExportOptions options;
  options.context_len = context_len;
  options.lookahead_ar_len = lookahead_ar;
  options.quant.scheme = "16a8w";
  options.quant.calibration_prompt = "Once upon a time there was a little robot.";
  options.quant.decode_tokens = 1;
  options.quant.progress = false;
  must(backend::export_model(model, path, options), path);
  return path;
}

struct Totals {
  std::vector<std::vector<int32_t>> tokens;  // per prompt
  double decode_seconds = 0;
  int64_t decode_tokens = 0, decode_steps = 0, lookahead_steps = 0, lookahead_tokens = 0;
};

Totals generate_all(runner::StepModel& model, const tokenizer::Tokenizer& tok,
                    const std::vector<std::vector<int32_t>>& prompts, const Options& o,
                    const runner::LookaheadOptions& lookahead) {
  Totals t;
  for (const std::vector<int32_t>& prompt : prompts) {
    runner::Generator generator(model, tok);
    auto sampler = must(runner::Sampler::create({}), "sampler");
    const runner::GenerationResult r = must(
        generator.generate(prompt, sampler, {.max_new_tokens = o.tokens, .lookahead = lookahead}),
        "generate");
    t.tokens.push_back(r.tokens);
    t.decode_seconds += r.stats.decode_seconds;
    t.decode_tokens += r.stats.decode_tokens;
    t.decode_steps += r.stats.decode_steps;
    t.lookahead_steps += r.stats.lookahead_steps;
    t.lookahead_tokens += r.stats.lookahead_tokens;
  }
  return t;
}

// Plain decoding and every configuration on the artifacts (index: the export's lookahead AR).
json bench_model(const std::map<int64_t, std::string>& paths,
                 const std::vector<std::vector<int32_t>>& prompts, const Options& o) {
  json out;
  std::map<int64_t, std::unique_ptr<runtime::ArtifactStepModel>> models;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  for (const auto& [ar, path] : paths) {
    auto loaded = must(artifact::load_artifact(path), path);
    auto art = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
    models[ar] = must(runtime::ArtifactStepModel::create(art, {.threads = o.threads}), path);
    if (!tok) {
      tokenizer::TokenizerData td = art->program().tokenizer;
      td.eos_id = -1;  // the same number of tokens every run
      td.extra_eos_ids.clear();
      tok = must(tokenizer::Tokenizer::create(std::move(td)), "tokenizer");
    }
  }
  runtime::ArtifactStepModel& base = *models.begin()->second;
  generate_all(base, *tok, prompts, o, {});  // warm-up: page in the mapping
  std::vector<double> rates;
  Totals plain;
  for (int r = 0; r < o.runs; ++r) {
    plain = generate_all(base, *tok, prompts, o, {});
    rates.push_back(static_cast<double>(plain.decode_tokens) / plain.decode_seconds);
  }
  const double plain_rate = bench::median(rates);
  out["plain"] = {{"ar_len", 1},
                  {"decode_tokens", plain.decode_tokens},
                  {"decode_steps", plain.decode_steps},
                  {"decode_tokens_per_second", plain_rate},
                  {"ms_per_step", 1e3 / plain_rate},
                  {"decode_tokens_per_second_runs", rates}};
  std::fprintf(stderr, "  plain AR-1: %.1f tok/s\n", plain_rate);
  for (const LookaheadConfig& c : kConfigs) {
    runtime::ArtifactStepModel& model = *models.at(c.export_ar);
    std::vector<double> la_rates, step_ms;
    Totals t;
    for (int r = 0; r < o.runs; ++r) {
      t = generate_all(model, *tok, prompts, o, c.lookahead);
      la_rates.push_back(static_cast<double>(t.decode_tokens) / t.decode_seconds);
      step_ms.push_back(1e3 * t.decode_seconds / static_cast<double>(t.decode_steps));
    }
    const double rate = bench::median(la_rates);
    const runner::LookaheadOptions& l = c.lookahead;
    const double per_step = static_cast<double>(t.lookahead_tokens) /
                            static_cast<double>(std::max<int64_t>(1, t.lookahead_steps));
    out["lookahead"].push_back(
        {{"config", fmt::format("N={} W={} G={}", l.ngram, l.window, l.guesses)},
         {"rows", runner::lookahead_rows(l)},
         {"ar_len", l.ar_len},
         {"lookahead_steps", t.lookahead_steps},
         {"lookahead_tokens", t.lookahead_tokens},
         {"tokens_per_step", per_step},
         {"accepted_guesses_per_step", per_step - 1.0},
         {"decode_tokens", t.decode_tokens},
         {"decode_steps", t.decode_steps},
         {"decode_tokens_per_second", rate},
         {"ms_per_step", bench::median(step_ms)},
         {"step_cost_over_ar1_step", bench::median(step_ms) * plain_rate / 1e3},
         {"speedup_over_ar1", rate / plain_rate},
         {"same_tokens_as_ar1", t.tokens == plain.tokens},
         {"decode_tokens_per_second_runs", la_rates}});
    std::fprintf(stderr, "  %s on AR-%lld: %.2f tokens/step, %.1f tok/s (%.2fx), same tokens: %s\n",
                 out["lookahead"].back()["config"].get<std::string>().c_str(),
                 static_cast<long long>(l.ar_len), per_step, rate, rate / plain_rate,
                 t.tokens == plain.tokens ? "yes" : "no");
  }
  return out;
}

// The first `count` lines of the TinyStories sample, cut to 12 tokens (BOS included).
std::vector<std::vector<int32_t>> story_prompts(const tokenizer::Tokenizer& tok, size_t count) {
  std::vector<std::vector<int32_t>> prompts;
  std::ifstream in(shared_path("data/tinystories/valid-sample.txt"));
  std::string line;
  while (prompts.size() < count && std::getline(in, line)) {
    std::vector<int32_t> ids = tok.encode(line, /*add_bos=*/true);
    ids.resize(std::min<size_t>(ids.size(), 12));
    prompts.push_back(std::move(ids));
  }
  while (prompts.size() < count) prompts.push_back(tok.encode("Once upon a time", true));
  return prompts;
}

bool self_check(const json& out, const Options& o) {
  bool ok = true;
  for (const auto& [name, m] : out["models"].items()) {
    const auto& la = m["lookahead"];
    if (!la.is_array() || la.size() != std::size(kConfigs)) {
      std::fprintf(stderr, "self-check: %s: expected %zu lookahead configurations\n", name.c_str(),
                   std::size(kConfigs));
      ok = false;
      continue;
    }
    const int64_t want = m["plain"]["decode_tokens"].get<int64_t>();
    for (const auto& c : la) {
      const bool counts =
          c["decode_tokens"].get<int64_t>() == want &&
          c["lookahead_tokens"].get<int64_t>() >= c["lookahead_steps"].get<int64_t>() &&
          c["decode_steps"].get<int64_t>() <= want;
      if (!counts) {
        std::fprintf(stderr, "self-check: %s %s: inconsistent counts\n", name.c_str(),
                     c["config"].get<std::string>().c_str());
        ok = false;
      }
    }
    // Below 8 rows the projections run the decode kernels: the tokens are AR-1's.
    if (!la[0]["same_tokens_as_ar1"].get<bool>()) {
      std::fprintf(stderr, "self-check: %s: AR-6 lookahead parted from AR-1\n", name.c_str());
      ok = false;
    }
  }
  (void)o;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      o.runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--tokens" && i + 1 < argc) {
      o.tokens = std::max(8, std::atoi(argv[++i]));
    } else if (a == "--prompts" && i + 1 < argc) {
      o.prompts = static_cast<size_t>(std::max(1, std::atoi(argv[++i])));
    } else if (a == "--threads" && i + 1 < argc) {
      o.threads = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--stories-only") {
      o.smollm2 = false;
    } else if (a == "--self-check") {
      o.self_check = true;
    } else {
      std::fprintf(stderr,
                   "usage: lookahead_bench [--runs N] [--tokens N] [--prompts N] [--threads N] "
                   "[--stories-only] [--self-check]\n");
      return 2;
    }
  }
  json out;
  out["simd_target"] = kernels::simd_target_name();
  out["threads"] = o.threads;
  out["runs"] = o.runs;
  out["new_tokens"] = o.tokens;
  out["prompts"] = o.prompts;
  out["load_average_at_start"] = bench::load_average();
  // 77: ctest's skip code (the bench test runs without the shared data folder too).
  if (!std::filesystem::is_regular_file(shared_path("models/stories260K/stories260K.bin"))) {
    std::fprintf(stderr, "lookahead_bench: SKIP: %s not found (set HEADSPLIT_SHARED_DIR)\n",
                 shared_path("models/stories260K/stories260K.bin").c_str());
    return 77;
  }
  const std::string dir = std::filesystem::temp_directory_path().string() +
                          fmt::format("/hs-lookahead-bench-{}", static_cast<long>(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::fprintf(stderr, "lookahead_bench: stories260K 16a8w, C = 512\n");
    frontend::LlamaModel m =
        must(frontend::load_model(shared_path("models/stories260K/stories260K.bin"),
                                  shared_path("models/stories260K/tok512.bin")),
             "stories260K");
    std::map<int64_t, std::string> paths;
    for (int64_t ar : {6, 16}) {
      paths[ar] = export_model(m, 512, ar, fmt::format("{}/stories-la{}.hsa", dir, ar));
    }
    auto tok = must(tokenizer::Tokenizer::create(*m.tokenizer), "tokenizer");
    out["models"]["stories260K"] = bench_model(paths, story_prompts(*tok, o.prompts), o);
  }
  if (o.smollm2) {
    std::fprintf(stderr, "lookahead_bench: smollm2-135m shape, random weights, 16a8w, C = 1024\n");
    frontend::LlamaConfig c = must(frontend::named_config("smollm2-135m"), "config");
    frontend::LlamaModel m = frontend::make_random_llama(c, 7);
    m.tokenizer = bench::synthetic_tokenizer(c.vocab_size);
    std::map<int64_t, std::string> paths;
    for (int64_t ar : {6, 16}) {
      paths[ar] = export_model(m, 1024, ar, fmt::format("{}/smollm2-la{}.hsa", dir, ar));
    }
    // BOS then ids 300.. (one AR-32 prefill chunk of 12 tokens), a different start per prompt.
    std::vector<std::vector<int32_t>> prompts;
    for (size_t p = 0; p < o.prompts; ++p) {
      std::vector<int32_t> ids = {1};
      for (int32_t i = 0; i < 11; ++i) ids.push_back(300 + static_cast<int32_t>(p) * 11 + i);
      prompts.push_back(std::move(ids));
    }
    out["models"]["smollm2-135m-shape-random"] = bench_model(paths, prompts, o);
  }
  out["load_average_at_end"] = bench::load_average();
  std::filesystem::remove_all(dir);
  std::printf("%s\n", out.dump(2).c_str());
  if (o.self_check && !self_check(out, o)) return 1;
  return 0;
}
