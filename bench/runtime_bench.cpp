// Runtime benchmark: decode and AR-32 prefill tokens/s of exported artifacts on the runtime, at
// 1 and 2 threads, against the memory-bandwidth bound of decode.
//
// Models (all 16a8w, exported here through the backend with a few calibration tokens: speed
// does not depend on weight values):
//   stories260K       the shared model (C = 512), split
//   smollm2 split     random weights in SmolLM2-135M's shape (frontend::named_config), C = 1024
//   smollm2 unsplit   the same, MHA kept (no split at preprocess)
//   smollm2 sha-src   SHA built from source with per-head caches (2*L*Hkv cache I/O)
// Per model and thread count, `--runs` (>= 3) generations of a 32-token prompt (one AR-32
// prefill step) then `--decode` greedy tokens; medians reported. EOS is disabled so every run
// decodes the same number of tokens.
//
// Bound: a decode step streams every weight its projections use once (bytes per decoded token:
// the weights of conv2d/linear/matmul nodes of the decode graph, plus one gathered embedding
// row) and reads the whole K and V caches (2 * L * Hkv * Dh * C elements). The read bandwidth is
// measured as bench/membw_bench.cpp does (sum a buffer far larger than the caches as uint64 with
// 8 accumulators, one contiguous part per thread), right before and after each model's runs at
// that thread count (the mean is used). bound tokens/s = bandwidth / bytes per token.
//
// Output: one JSON object on stdout (scripts/bench-runtime.sh writes bench/results/runtime.json).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "bench_common.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/backend/export.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/frontend/loader.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/runner/generator.h"
#include "headsplit/runner/sampler.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/support/shared_dir.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace {

using namespace hs;
using json = nlohmann::json;
using bench::Clock;

using bench::load_average;
using bench::median;
using bench::seconds_since;
using bench::synthetic_tokenizer;

template <typename T>
T must(Result<T> r, std::string_view what) {
  return bench::must(std::move(r), what, "runtime_bench");
}

// ---- memory bandwidth (bench/membw_bench.cpp's read method) ----

uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t s[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) s[j] += p[i + j];
  }
  for (; i < n; ++i) s[0] += p[i];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

// Read bandwidth in bytes/s: median of `runs` sums of a 512 MiB buffer.
double read_bandwidth(int threads, int runs) {
  static std::vector<uint64_t> buf;
  if (buf.empty()) {
    buf.assign((size_t{512} << 20) / 8, 0);
    for (size_t i = 0; i < buf.size(); i += 512) buf[i] = i;
  }
  kernels::ThreadPool pool(threads);
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  std::vector<double> rates;
  for (int r = 0; r < runs + 1; ++r) {
    const auto t0 = Clock::now();
    pool.parallel_for(threads, [&](int64_t b, int64_t e) {
      for (int64_t part = b; part < e; ++part) {
        const size_t words = buf.size() / static_cast<size_t>(threads);
        sums[static_cast<size_t>(part)] = sum_words(buf.data() + part * words, words);
      }
    });
    const double s = seconds_since(t0);
    if (sums[0] == 42) std::fprintf(stderr, " ");                         // keep the sums alive
    if (r > 0) rates.push_back(static_cast<double>(buf.size() * 8) / s);  // first run: warm-up
  }
  return median(rates);
}

// ---- models ----

struct Variant {
  std::string name;
  bool split = true;
  frontend::AttentionForm form = frontend::AttentionForm::kMha;
  frontend::CacheLayout cache = frontend::CacheLayout::kPerLayer;
};

std::string export_variant(const frontend::LlamaModel& model, const Variant& v, int64_t context_len,
                           const std::string& dir, json& out) {
  backend::ExportOptions options;
  options.prefill_ar_len = 32;
  options.context_len = context_len;
  options.form = v.form;
  options.cache_layout = v.cache;
  options.preprocess.split = v.split;
  options.quant.scheme = "16a8w";
  options.quant.calibration_prompt = "Once upon a time there was a little robot.";
  options.quant.decode_tokens = 1;
  options.quant.progress = false;
  const std::string path = dir + "/" + v.name + ".hsa";
  const auto t0 = Clock::now();
  const backend::ExportSummary s = must(backend::export_model(model, path, options), v.name);
  out["export_seconds"] = seconds_since(t0);
  out["file_bytes"] = s.file_bytes;
  out["weight_bytes"] = s.weight_bytes;
  return path;
}

// Bytes a decode step reads: projection weights (once each), one embedding row, the caches.
void decode_bytes(const artifact::Program& p, json& out) {
  const artifact::GraphDesc* g = p.find_graph("decode");
  std::set<int32_t> streamed;
  int64_t gathered = 0;
  for (const artifact::NodeDesc& n : g->nodes) {
    for (int32_t in : n.inputs) {
      const int32_t w = g->tensors[static_cast<size_t>(in)].weight;
      if (w < 0) continue;
      const artifact::WeightDesc& wd = p.weights[static_cast<size_t>(w)];
      if (n.op == artifact::OpCode::kGather) {
        gathered += static_cast<int64_t>(wd.size_bytes) / std::max<int64_t>(1, wd.shape[0]);
      } else if (n.op == artifact::OpCode::kConv2d || n.op == artifact::OpCode::kLinear ||
                 n.op == artifact::OpCode::kMatMul) {
        streamed.insert(w);
      }
    }
  }
  int64_t weights = 0;
  for (int32_t w : streamed)
    weights += static_cast<int64_t>(p.weights[static_cast<size_t>(w)].size_bytes);
  const artifact::ModelMetadata& m = p.metadata;
  const int64_t cache_elem = m.kv_cache_bits > 8 ? 2 : 1;
  const int64_t cache = 2 * m.n_layers * m.n_kv_heads * m.head_dim * m.context_len * cache_elem;
  out["weight_bytes_per_token"] = weights + gathered;
  out["cache_bytes_per_token"] = cache;
  out["bytes_per_token"] = weights + gathered + cache;
}

struct BenchConfig {
  int runs = 3;
  int64_t decode_tokens = 32;
};

json bench_artifact(const std::string& path, const std::vector<int32_t>& prompt,
                    const BenchConfig& cfg) {
  json out;
  out["artifact"] = std::filesystem::path(path).filename().string();
  for (int threads : {1, 2}) {
    const auto t0 = Clock::now();
    auto loaded = must(artifact::load_artifact(path), path);
    const double load_s = seconds_since(t0);
    auto art = std::make_shared<const artifact::LoadedArtifact>(std::move(loaded));
    const auto t1 = Clock::now();
    auto model = must(runtime::ArtifactStepModel::create(art, {.threads = threads}), path);
    const double plan_s = seconds_since(t1);
    if (threads == 1) {
      decode_bytes(art->program(), out);
      const runtime::BindingCounts b = model->binding_counts(1);
      const runtime::PlanSummary& ps = model->executor(1)->summary();
      out["decode_graph"] = {{"nodes", ps.nodes},
                             {"steps", ps.steps},
                             {"views", ps.views},
                             {"fused_concats", ps.fused_concats},
                             {"staged_inputs", ps.staged_inputs},
                             {"arena_bytes", ps.arena_bytes}};
      out["bindings"] = {{"inputs", b.inputs},
                         {"outputs", b.outputs},
                         {"kv_inputs", b.kv_inputs},
                         {"kv_outputs", b.kv_outputs}};
      out["split"] = art->program().metadata.split_applied;
    }
    tokenizer::TokenizerData td = art->program().tokenizer;
    td.eos_id = -1;  // decode the same number of tokens every run
    td.extra_eos_ids.clear();
    auto tok = must(tokenizer::Tokenizer::create(std::move(td)), "tokenizer");
    // The bandwidth right before and after the runs (the machine is shared: it drifts).
    const double bw_before = read_bandwidth(threads, 3);
    std::vector<double> prefill, decode;
    for (int r = 0; r < cfg.runs + 1; ++r) {
      runner::Generator gen(*model, *tok);
      auto sampler = must(runner::Sampler::create({}), "sampler");
      const runner::GenerationResult g =
          must(gen.generate(prompt, sampler, {.max_new_tokens = cfg.decode_tokens}), path);
      if (r == 0) continue;  // warm-up: page in the mapping
      prefill.push_back(g.stats.prefill_tokens_per_second());
      decode.push_back(g.stats.decode_tokens_per_second());
    }
    const double bw_after = read_bandwidth(threads, 3);
    const double bandwidth = 0.5 * (bw_before + bw_after);
    const double bound = bandwidth / out["bytes_per_token"].get<double>();
    const double dec = median(decode);
    out[fmt::format("threads_{}", threads)] = {
        {"setup_seconds", load_s + plan_s},
        {"load_verify_seconds", load_s},
        {"plan_seconds", plan_s},
        {"prefill_ar32_tokens_per_second", median(prefill)},
        {"decode_tokens_per_second", dec},
        {"decode_ms_per_token", 1000.0 / dec},
        {"decode_runs", decode},
        {"read_bandwidth_GBps", bandwidth / 1e9},
        {"read_bandwidth_GBps_before_after", {bw_before / 1e9, bw_after / 1e9}},
        {"bound_tokens_per_second", bound},
        {"achieved_over_bound", dec / bound}};
    std::fprintf(stderr,
                 "  %s, %d threads: prefill %.1f tok/s, decode %.1f tok/s (%.0f%% of %.1f)\n",
                 out["artifact"].get<std::string>().c_str(), threads, median(prefill), dec,
                 100.0 * dec / bound, bound);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  BenchConfig cfg;
  bool smollm2 = true;
  std::string keep;  // keep the artifacts in this directory (profiling)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      cfg.runs = std::max(3, std::atoi(argv[++i]));
    } else if (a == "--decode" && i + 1 < argc) {
      cfg.decode_tokens = std::max(4, std::atoi(argv[++i]));
    } else if (a == "--keep" && i + 1 < argc) {
      keep = argv[++i];
    } else if (a == "--stories-only") {
      smollm2 = false;
    } else {
      std::fprintf(
          stderr,
          "usage: runtime_bench [--runs N>=3] [--decode TOKENS] [--stories-only] [--keep DIR]\n");
      return 2;
    }
  }
  json out;
  out["simd_target"] = kernels::simd_target_name();
  out["runs"] = cfg.runs;
  out["decode_tokens"] = cfg.decode_tokens;
  out["prompt_tokens"] = 32;
  out["load_average_at_start"] = load_average();

  const std::string dir =
      !keep.empty() ? keep
                    : std::filesystem::temp_directory_path().string() +
                          fmt::format("/hs-runtime-bench-{}", static_cast<long>(::getpid()));
  std::filesystem::create_directories(dir);
  // 32 prompt tokens: BOS then ids 3..33 (one AR-32 prefill step).
  std::vector<int32_t> prompt = {1};
  for (int32_t i = 3; prompt.size() < 32; ++i) prompt.push_back(i);

  {
    std::fprintf(stderr, "runtime_bench: stories260K 16a8w\n");
    frontend::LlamaModel m =
        must(frontend::load_model(shared_path("models/stories260K/stories260K.bin"),
                                  shared_path("models/stories260K/tok512.bin")),
             "stories260K");
    json r;
    const std::string path = export_variant(m, {.name = "stories260K-16a8w"}, 512, dir, r);
    r.update(bench_artifact(path, prompt, cfg));
    out["models"]["stories260K"] = r;
  }
  if (smollm2) {
    frontend::LlamaConfig c = must(frontend::named_config("smollm2-135m"), "config");
    frontend::LlamaModel m = frontend::make_random_llama(c, 7);
    m.tokenizer = synthetic_tokenizer(c.vocab_size);
    const Variant variants[] = {
        {.name = "smollm2-split"},
        {.name = "smollm2-unsplit", .split = false},
        {.name = "smollm2-sha-src",
         .form = frontend::AttentionForm::kShaFromSource,
         .cache = frontend::CacheLayout::kPerHead},
    };
    for (const Variant& v : variants) {
      std::fprintf(stderr, "runtime_bench: %s 16a8w C=1024 (export)\n", v.name.c_str());
      json r;
      const std::string path = export_variant(m, v, 1024, dir, r);
      r.update(bench_artifact(path, prompt, cfg));
      out["models"][v.name] = r;
      if (keep.empty()) std::filesystem::remove(path);
    }
    const auto dec = [&](const char* name, int t) {
      return out["models"][name][fmt::format("threads_{}", t)]["decode_ms_per_token"].get<double>();
    };
    for (int t : {1, 2}) {
      out["split_over_unsplit_decode_time"][fmt::format("threads_{}", t)] =
          dec("smollm2-split", t) / dec("smollm2-unsplit", t);
    }
  }
  out["load_average_at_end"] = load_average();
  if (keep.empty()) std::filesystem::remove_all(dir);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
