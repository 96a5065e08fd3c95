// Benchmark: lowering time and memory of MHA + split versus SHA from source (issue 6).
//
// For random-weight models in real shapes (stories260K, SmolLM2-135M, Llama-3.2-1B) it exports
// the same model twice with the same calibration tokens, AR-N prefill + AR-1 decode, C slots,
// 16a8w (backend::export_model, phases timed with their own peak RSS):
//   mha  build MHA -> calibrate -> quantize -> preprocess with split -> plan/lower -> write
//   sha  build per head -> calibrate (per-head observers) -> quantize -> preprocess without
//        split -> plan/lower -> write
// then reports per phase wall time, peak RSS and node count, the artifact sizes, the cache
// I/O counts (2L for both; the per-head-cache SHA form, built only, 2*L*Hkv) and the agreement
// of the two artifacts (runtime, fast kernels) on a fixed prompt: top-1 agreement and the SQNR
// of the SHA logits against the MHA logits.
//
// Each path is exported --reps times (interleaved with the other path); times are medians,
// with the process CPU seconds beside the wall seconds (the machine may be shared).
// JSON on stdout (or --out FILE), progress on stderr; --markdown / --plot-data write the table
// and the gnuplot rows (scripts/bench-lowering.sh). --self-check validates the JSON it made
// (fields, both paths, 2L cache I/O, agreement) and fails with exit code 1 on a violation.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "headsplit/artifact/reader.h"
#include "headsplit/backend/export.h"
#include "headsplit/frontend/builder.h"
#include "headsplit/frontend/llama_model.h"
#include "headsplit/ptq/calibrate.h"
#include "headsplit/runtime/artifact_step_model.h"
#include "headsplit/support/memory.h"

namespace {

using json = nlohmann::json;
namespace fe = hs::frontend;

struct Args {
  std::vector<std::string> shapes = {"stories260k", "smollm2-135m", "llama3.2-1b"};
  std::vector<std::string> paths = {"mha", "sha"};  // both for the agreement
  int reps = 3;  // exports per path (interleaved mha, sha); medians reported
  int reps_1b = 1;
  int samples = 8;     // calibration sequences
  int seq_len = 128;   // tokens per sequence (BOS included)
  int samples_1b = 2;  // the Llama-3.2-1B shape's calibration (fewer tokens, stated)
  int seq_len_1b = 128;
  int64_t ar_len = 32;         // N
  int64_t context_len = 1024;  // C
  int64_t decode_tokens = 4;   // per calibration window, through AR-1
  int prompt_len = 48;         // fixed agreement prompt (BOS included)
  int threads = 0;             // runtime and weight generation; 0: hardware concurrency
  std::string out;
  std::string markdown;   // a Markdown table of the results
  std::string plot_data;  // gnuplot data: one row per shape
  std::string work_dir;   // where artifacts go (default: a temp dir, removed after)
  bool keep = false;
  bool self_check = false;
};

// CPU seconds of the whole process (user + system), to tell contention from work.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec);
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

struct PathSpec {
  std::string name;
  fe::AttentionForm form;
  bool split;
};

// One export; its JSON record (phases, graphs, sizes). Errors are fatal to the benchmark.
hs::Result<json> run_export(const fe::LlamaModel& model, const PathSpec& path,
                            const std::vector<std::vector<int32_t>>& samples, const Args& a,
                            const std::string& file) {
  hs::backend::ExportOptions o;
  o.prefill_ar_len = a.ar_len;
  o.context_len = a.context_len;
  o.form = path.form;
  o.preprocess.split = path.split;
  o.quant.scheme = "16a8w";
  o.quant.recipe = "";
  o.quant.calibration_samples = samples;
  o.quant.decode_tokens = a.decode_tokens;
  hs::backend::ExportObserver observer;
  std::vector<double> cpu;  // per phase
  double cpu_start = 0;
  observer.on_phase_start = [&](std::string_view phase) {
    cpu_start = cpu_seconds();
    std::fprintf(stderr, "  [%s] %.*s ...\n", path.name.c_str(), static_cast<int>(phase.size()),
                 phase.data());
  };
  observer.on_phase_end = [&](const hs::backend::PhaseTiming& t) {
    cpu.push_back(cpu_seconds() - cpu_start);
    std::fprintf(stderr, "  [%s] %s %.2f s (cpu %.2f s), peak rss %.2f GiB\n", path.name.c_str(),
                 t.name.c_str(), t.seconds, cpu.back(), gib(t.peak_rss_bytes));
  };
  HS_ASSIGN_OR_RETURN(hs::backend::ExportSummary s,
                      hs::backend::export_model(model, file, o, observer));
  json r;
  r["path"] = path.name;
  r["attention_form"] = path.form == fe::AttentionForm::kMha ? "mha" : "sha-from-source";
  r["split"] = path.split;
  int64_t nodes_before = 0, nodes_after = 0;
  json graphs = json::array();
  for (const auto& g : s.graphs) {
    nodes_before += g.nodes_before;
    nodes_after += g.nodes_after;
    graphs.push_back({{"name", g.name},
                      {"ar_len", g.ar_len},
                      {"nodes_before_preprocess", g.nodes_before},
                      {"nodes_after_preprocess", g.nodes_after},
                      {"attention_projections_layer0", g.attention_projections_after},
                      {"cache_inputs", g.cache_inputs},
                      {"cache_outputs", g.cache_outputs},
                      {"arena_bytes", g.arena_bytes}});
  }
  r["graphs"] = graphs;
  double total = 0;
  int64_t peak = 0;
  json phases = json::array();
  double total_cpu = 0;
  for (size_t i = 0; i < s.phases.size(); ++i) {
    const auto& p = s.phases[i];
    // Node count the phase leaves (both graphs): the built/quantized graphs until preprocess.
    const bool after = p.name == "preprocess" || p.name == "plan" || p.name == "write";
    phases.push_back({{"name", p.name},
                      {"seconds", p.seconds},
                      {"cpu_seconds", cpu[i]},
                      {"peak_rss_bytes", p.peak_rss_bytes},
                      {"nodes", after ? nodes_after : nodes_before}});
    total += p.seconds;
    total_cpu += cpu[i];
    peak = std::max(peak, p.peak_rss_bytes);
  }
  r["phases"] = phases;
  r["total_seconds"] = total;
  r["total_cpu_seconds"] = total_cpu;
  r["peak_rss_bytes"] = peak;
  r["artifact_bytes"] = s.file_bytes;
  r["weights"] = s.weights;
  r["weight_bytes"] = s.weight_bytes;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One record from repeated exports of a path: medians of the per-phase and total times, the
// largest peak RSS, and every run's total.
json aggregate(const std::vector<json>& runs) {
  json r = runs.back();
  r["reps"] = runs.size();
  for (size_t k = 0; k < r["phases"].size(); ++k) {
    std::vector<double> sec, cpu;
    int64_t peak = 0;
    for (const json& run : runs) {
      sec.push_back(run["phases"][k]["seconds"]);
      cpu.push_back(run["phases"][k]["cpu_seconds"]);
      peak = std::max(peak, run["phases"][k]["peak_rss_bytes"].get<int64_t>());
    }
    r["phases"][k]["seconds"] = median(sec);
    r["phases"][k]["cpu_seconds"] = median(cpu);
    r["phases"][k]["peak_rss_bytes"] = peak;
  }
  std::vector<double> total, cpu;
  int64_t peak = 0;
  for (const json& run : runs) {
    total.push_back(run["total_seconds"]);
    cpu.push_back(run["total_cpu_seconds"]);
    peak = std::max(peak, run["peak_rss_bytes"].get<int64_t>());
  }
  r["run_total_seconds"] = total;
  r["total_seconds"] = median(total);
  r["min_total_seconds"] = *std::min_element(total.begin(), total.end());
  r["total_cpu_seconds"] = median(cpu);
  r["peak_rss_bytes"] = peak;
  return r;
}

// Logits [T*V] of every prompt position, from the artifact at `file` (runtime, fast kernels).
hs::Result<std::vector<float>> prompt_logits(const std::string& file,
                                             const std::vector<int32_t>& prompt, const Args& a) {
  HS_ASSIGN_OR_RETURN(hs::artifact::LoadedArtifact loaded, hs::artifact::load_artifact(file));
  auto shared = std::make_shared<const hs::artifact::LoadedArtifact>(std::move(loaded));
  HS_ASSIGN_OR_RETURN(auto model,
                      hs::runtime::ArtifactStepModel::create(shared, {.threads = a.threads}));
  const auto v = static_cast<size_t>(model->info().vocab_size);
  std::vector<float> logits(prompt.size() * v);
  HS_TRY(hs::ptq::run_window(
      *model, prompt, a.decode_tokens, [&](int64_t pos, std::span<const float> row) {
        std::copy(row.begin(), row.end(),
                  logits.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(pos) * v));
      }));
  return logits;
}

json agreement(const std::vector<float>& ref, const std::vector<float>& other, int64_t vocab) {
  const int64_t rows = static_cast<int64_t>(ref.size()) / vocab;
  int64_t same = 0;
  double signal = 0, noise = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = ref.data() + r * vocab;
    const float* y = other.data() + r * vocab;
    same += std::max_element(x, x + vocab) - x == std::max_element(y, y + vocab) - y;
    for (int64_t i = 0; i < vocab; ++i) {
      signal += static_cast<double>(x[i]) * x[i];
      noise += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    }
  }
  return {{"positions", rows},
          {"top1_agreement", rows > 0 ? static_cast<double>(same) / static_cast<double>(rows) : 0},
          {"logits_sqnr_db", noise > 0 ? 10.0 * std::log10(signal / noise) : 999.0},
          {"reference", "mha"}};
}

// Cache I/O and nodes of the per-head-cache SHA form (built, decode graph; not exported).
hs::Result<json> per_head_form(const fe::LlamaModel& model, const Args& a) {
  fe::BuildOptions b{.ar_len = 1,
                     .context_len = a.context_len,
                     .form = fe::AttentionForm::kShaFromSource,
                     .cache_layout = fe::CacheLayout::kPerHead};
  HS_ASSIGN_OR_RETURN(hs::ir::Graph g, fe::build_llama(model, b));
  int64_t in = 0, out = 0;
  for (auto v : g.inputs())
    in += g.value(v).name.rfind("k_cache.", 0) == 0 || g.value(v).name.rfind("v_cache.", 0) == 0;
  for (auto v : g.outputs())
    out += g.value(v).name.rfind("k_new.", 0) == 0 || g.value(v).name.rfind("v_new.", 0) == 0;
  return json{{"path", "sha-per-head-cache"},
              {"exported", false},
              {"decode_nodes", g.live_node_count()},
              {"cache_inputs", in},
              {"cache_outputs", out}};
}

hs::Result<json> run_shape(const std::string& shape, const Args& a, const std::string& dir) {
  HS_ASSIGN_OR_RETURN(fe::LlamaConfig config, fe::named_config(shape));
  // 0.6B parameters and up (qwen3-0.6b, llama3.2-1b, ...): the shorter calibration and reps of
  // the --*-1b options.
  const bool big = config.dim >= 1024;
  const int n_samples = big ? a.samples_1b : a.samples;
  const int seq_len = big ? a.seq_len_1b : a.seq_len;
  std::fprintf(stderr, "%s: random weights (D %lld, L %lld, H %lld, Hkv %lld, F %lld, V %lld)\n",
               shape.c_str(), static_cast<long long>(config.dim),
               static_cast<long long>(config.n_layers), static_cast<long long>(config.n_heads),
               static_cast<long long>(config.n_kv_heads), static_cast<long long>(config.hidden_dim),
               static_cast<long long>(config.vocab_size));
  const auto gen_start = std::chrono::steady_clock::now();
  fe::LlamaModel model = fe::make_random_llama(config, 1, {.threads = a.threads});
  model.tokenizer = hs::bench::synthetic_tokenizer(config.vocab_size);
  model.source = fmt::format("random {} (seed 1)", shape);
  const double gen_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - gen_start).count();
  std::vector<std::vector<int32_t>> samples;
  for (int i = 0; i < n_samples; ++i) {
    samples.push_back(
        hs::bench::token_sequence(1000 + static_cast<uint64_t>(i), seq_len, config.vocab_size));
  }
  json r{{"shape", shape},
         {"config",
          {{"D", config.dim},
           {"L", config.n_layers},
           {"H", config.n_heads},
           {"Hkv", config.n_kv_heads},
           {"Dh", config.head_dim},
           {"F", config.hidden_dim},
           {"V", config.vocab_size},
           {"tied_head", config.tied_embeddings}}},
         {"calibration",
          {{"sequences", n_samples},
           {"tokens_per_sequence", seq_len},
           {"tokens", n_samples * seq_len},
           {"decode_tokens_per_window", a.decode_tokens}}},
         {"random_weights_seconds", gen_seconds},
         {"model_rss_bytes", hs::current_rss_bytes()}};
  std::vector<PathSpec> paths;
  for (const std::string& p : a.paths) {
    if (p == "mha") paths.push_back({"mha", fe::AttentionForm::kMha, true});
    if (p == "sha") paths.push_back({"sha", fe::AttentionForm::kShaFromSource, false});
  }
  json results = json::array();
  std::vector<std::string> files;
  for (const PathSpec& p : paths) files.push_back(fmt::format("{}/{}-{}.hsa", dir, shape, p.name));
  const int reps = std::max(1, big ? a.reps_1b : a.reps);
  std::vector<std::vector<json>> runs(paths.size());
  for (int rep = 0; rep < reps; ++rep) {  // interleaved, so drift in load hits both paths
    for (size_t i = 0; i < paths.size(); ++i) {
      const PathSpec& p = paths[i];
      std::fprintf(stderr, "%s: %s path (run %d of %d)\n", shape.c_str(), p.name.c_str(), rep + 1,
                   reps);
      HS_ASSIGN_OR_RETURN(json e, run_export(model, p, samples, a, files[i]));
      std::fprintf(stderr,
                   "%s: %s path %.2f s end to end (cpu %.2f s), peak rss %.2f GiB, artifact %.1f "
                   "MiB\n",
                   shape.c_str(), p.name.c_str(), e["total_seconds"].get<double>(),
                   e["total_cpu_seconds"].get<double>(), gib(e["peak_rss_bytes"].get<int64_t>()),
                   e["artifact_bytes"].get<double>() / (1024.0 * 1024.0));
      runs[i].push_back(std::move(e));
    }
  }
  for (auto& path_runs : runs) results.push_back(aggregate(path_runs));
  r["paths"] = results;
  HS_ASSIGN_OR_RETURN(r["per_head_cache_form"], per_head_form(model, a));
  if (paths.size() != 2) return r;  // one path: no comparison
  r["mha_over_sha_seconds"] =
      results[0]["total_seconds"].get<double>() / results[1]["total_seconds"].get<double>();

  std::fprintf(stderr, "%s: agreement on a %d-token prompt\n", shape.c_str(), a.prompt_len);
  const std::vector<int32_t> prompt = hs::bench::token_sequence(7, a.prompt_len, config.vocab_size);
  HS_ASSIGN_OR_RETURN(std::vector<float> mha, prompt_logits(files[0], prompt, a));
  HS_ASSIGN_OR_RETURN(std::vector<float> sha, prompt_logits(files[1], prompt, a));
  r["agreement"] = agreement(mha, sha, config.vocab_size);
  r["agreement"]["prompt_tokens"] = a.prompt_len;
  std::fprintf(stderr, "%s: top-1 agreement %.3f, logits sqnr %.1f dB\n", shape.c_str(),
               r["agreement"]["top1_agreement"].get<double>(),
               r["agreement"]["logits_sqnr_db"].get<double>());
  if (!a.keep) {
    for (const auto& f : files) std::filesystem::remove(f);
  }
  return r;
}

// The checks of --self-check; each failure is one line.
std::vector<std::string> check(const json& doc) {
  std::vector<std::string> bad;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) bad.push_back(what);
  };
  need(doc.contains("shapes") && !doc["shapes"].empty(), "no shapes");
  for (const json& s : doc.value("shapes", json::array())) {
    const std::string name = s.value("shape", "?");
    const int64_t L = s["config"]["L"], Hkv = s["config"]["Hkv"];
    need(s["paths"].size() == 2 && s["paths"][0]["path"] == "mha" && s["paths"][1]["path"] == "sha",
         name + ": expected paths mha and sha");
    for (const json& p : s["paths"]) {
      const std::string pn = name + "/" + p.value("path", "?");
      std::vector<std::string> want = {"build",      "calibrate", "quantize",
                                       "preprocess", "plan",      "write"};
      need(p["phases"].size() == want.size(), pn + ": expected 6 phases");
      for (size_t i = 0; i < want.size() && i < p["phases"].size(); ++i) {
        const json& ph = p["phases"][i];
        need(ph["name"] == want[i], pn + ": phase " + std::to_string(i) + " is not " + want[i]);
        need(ph["seconds"].get<double>() >= 0 && ph["peak_rss_bytes"].get<int64_t>() > 0 &&
                 ph["nodes"].get<int64_t>() > 0,
             pn + ": phase " + want[i] + " lacks time, rss or nodes");
      }
      need(p["artifact_bytes"].get<int64_t>() > p["weight_bytes"].get<int64_t>(),
           pn + ": artifact smaller than its weights");
      need(p["graphs"].size() == 2, pn + ": expected prefill and decode graphs");
      for (const json& g : p["graphs"]) {
        need(g["cache_inputs"] == 2 * L && g["cache_outputs"] == 2 * L,
             pn + ": cache I/O is not 2L = " + std::to_string(2 * L));
      }
    }
    if (s["paths"].size() == 2) {
      // Split MHA and SHA from source are the same per-head graph: projections H + 2Hkv + 1.
      const int64_t H = s["config"]["H"];
      for (const json& p : s["paths"]) {
        need(p["graphs"][1]["attention_projections_layer0"] == H + 2 * Hkv + 1,
             name + ": layer 0 attention projections are not H + 2Hkv + 1");
      }
      need(s["paths"][0]["graphs"][0]["nodes_after_preprocess"].get<int64_t>() >
               s["paths"][0]["graphs"][0]["nodes_before_preprocess"].get<int64_t>(),
           name + ": the split did not add nodes");
    }
    const json& ph = s["per_head_cache_form"];
    need(ph["cache_inputs"] == 2 * L * Hkv && ph["cache_outputs"] == 2 * L * Hkv,
         name + ": per-head cache I/O is not 2*L*Hkv");
    const json& ag = s["agreement"];
    need(ag["positions"] == s["agreement"]["prompt_tokens"], name + ": agreement positions");
    const double top1 = ag["top1_agreement"], sqnr = ag["logits_sqnr_db"];
    // Both are 16a8w quantizations of one model, differing only in the q/k/v activation
    // encodings (per head vs per layer): they must agree far better than chance.
    need(top1 >= 0.5 && top1 <= 1.0, name + ": top-1 agreement " + std::to_string(top1));
    need(sqnr >= 15.0, name + ": logits sqnr " + std::to_string(sqnr) + " dB below 15");
  }
  return bad;
}

std::string markdown_table(const json& doc) {
  std::string t = fmt::format(
      "Lowering: MHA + split vs SHA from source, {} (AR-{} prefill + AR-1 decode, C = {}), "
      "random weights. Times are medians of the runs (wall seconds; CPU seconds of the process "
      "in the total column), peak RSS the largest of any phase.\n\n",
      doc["quant_scheme"].get<std::string>(), doc["prefill_ar_len"].get<int64_t>(),
      doc["context_len"].get<int64_t>());
  t += "| shape | path | calib tokens | runs | build | calibrate | quantize | preprocess | "
       "plan+lower | write | total (cpu) | peak RSS | nodes prefill (before -> after) | "
       "artifact | cache I/O | top-1 | SQNR |\n";
  t += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const json& s : doc["shapes"]) {
    for (const json& p : s["paths"]) {
      t += fmt::format("| {} | {} | {}x{} | {} |", s["shape"].get<std::string>(),
                       p["path"].get<std::string>(), s["calibration"]["sequences"].get<int>(),
                       s["calibration"]["tokens_per_sequence"].get<int>(), p["reps"].get<int>());
      for (const json& ph : p["phases"]) t += fmt::format(" {:.2f} |", ph["seconds"].get<double>());
      const json& g = p["graphs"][0];
      t += fmt::format(" {:.2f} ({:.2f}) | {:.2f} GiB | {} -> {} | {:.1f} MiB | {} in / {} out |",
                       p["total_seconds"].get<double>(), p["total_cpu_seconds"].get<double>(),
                       gib(p["peak_rss_bytes"].get<int64_t>()),
                       g["nodes_before_preprocess"].get<int64_t>(),
                       g["nodes_after_preprocess"].get<int64_t>(),
                       p["artifact_bytes"].get<double>() / (1024.0 * 1024.0),
                       g["cache_inputs"].get<int64_t>(), g["cache_outputs"].get<int64_t>());
      if (s.contains("agreement") && p["path"] == "sha") {
        t += fmt::format(" {:.3f} | {:.1f} dB |\n", s["agreement"]["top1_agreement"].get<double>(),
                         s["agreement"]["logits_sqnr_db"].get<double>());
      } else {
        t += " (ref) | (ref) |\n";
      }
    }
    const json& ph = s["per_head_cache_form"];
    t += fmt::format(
        "| {} | sha, per-head caches (built only) | | | | | | | | | | | | | {} in / {} "
        "out | | |\n",
        s["shape"].get<std::string>(), ph["cache_inputs"].get<int64_t>(),
        ph["cache_outputs"].get<int64_t>());
  }
  return t;
}

// gnuplot rows: shape, then per path (mha, sha) total seconds, calibrate seconds, peak GiB.
std::string plot_rows(const json& doc) {
  std::string t =
      "# shape mha_total sha_total mha_calibrate sha_calibrate mha_peak_gib sha_peak_gib\n";
  for (const json& s : doc["shapes"]) {
    if (s["paths"].size() != 2) continue;
    const json& m = s["paths"][0];
    const json& h = s["paths"][1];
    t += fmt::format(
        "{} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f}\n", s["shape"].get<std::string>(),
        m["total_seconds"].get<double>(), h["total_seconds"].get<double>(),
        m["phases"][1]["seconds"].get<double>(), h["phases"][1]["seconds"].get<double>(),
        gib(m["peak_rss_bytes"].get<int64_t>()), gib(h["peak_rss_bytes"].get<int64_t>()));
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"lowering benchmark: MHA + split versus SHA from source"};
  app.add_option("--shapes", a.shapes,
                 fmt::format("named shapes: {}", fmt::join(fe::named_config_names(), ", ")))
      ->delimiter(',');
  app.add_option("--paths", a.paths, "mha, sha (both: agreement too)")->delimiter(',');
  app.add_option("--reps", a.reps, "exports per path (medians reported)");
  app.add_option("--reps-1b", a.reps_1b, "exports per path of shapes with D >= 1024");
  app.add_option("--samples", a.samples, "calibration sequences");
  app.add_option("--seq-len", a.seq_len, "tokens per calibration sequence (BOS included)");
  app.add_option("--samples-1b", a.samples_1b, "calibration sequences of shapes with D >= 1024");
  app.add_option("--seq-len-1b", a.seq_len_1b,
                 "tokens per calibration sequence of shapes with D >= 1024");
  app.add_option("--ar-len", a.ar_len, "prefill AR length N");
  app.add_option("--context-len", a.context_len, "context length C");
  app.add_option("--decode-tokens", a.decode_tokens, "calibration tokens per window via AR-1");
  app.add_option("--prompt-len", a.prompt_len, "agreement prompt tokens");
  app.add_option("--threads", a.threads, "runtime/weight generation threads (0: all)");
  app.add_option("--out", a.out, "write the JSON here (default stdout)");
  app.add_option("--markdown", a.markdown, "write a Markdown table here");
  app.add_option("--plot-data", a.plot_data, "write gnuplot data here");
  app.add_option("--work-dir", a.work_dir, "directory for the artifacts (default: temp)");
  app.add_flag("--keep", a.keep, "keep the artifacts");
  app.add_flag("--self-check", a.self_check, "validate the JSON; exit 1 on a violation");
  CLI11_PARSE(app, argc, argv);

  std::string dir = a.work_dir;
  if (dir.empty()) {
    dir = (std::filesystem::temp_directory_path() / fmt::format("hs-lowering-{}", ::getpid()))
              .string();
  }
  std::filesystem::create_directories(dir);
  json doc{{"benchmark", "lowering"},
           {"quant_scheme", "16a8w"},
           {"prefill_ar_len", a.ar_len},
           {"decode_ar_len", 1},
           {"context_len", a.context_len},
           {"hardware_threads", std::thread::hardware_concurrency()},
           {"calibration_kernels", "interpreter kFast"},
           {"shapes", json::array()}};
  for (const std::string& shape : a.shapes) {
    auto r = run_shape(shape, a, dir);
    if (!r.ok()) {
      std::fprintf(stderr, "lowering_bench: %s: %s\n", shape.c_str(), r.error().message().c_str());
      return 1;
    }
    doc["shapes"].push_back(std::move(*r));
  }
  if (a.work_dir.empty() && !a.keep) std::filesystem::remove_all(dir);
  const std::string text = doc.dump(2) + "\n";
  if (a.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::ofstream(a.out) << text;
  }
  if (!a.markdown.empty()) std::ofstream(a.markdown) << markdown_table(doc);
  if (!a.plot_data.empty()) std::ofstream(a.plot_data) << plot_rows(doc);
  if (a.self_check) {
    const std::vector<std::string> bad = check(doc);
    for (const auto& b : bad) std::fprintf(stderr, "self-check: %s\n", b.c_str());
    if (!bad.empty()) return 1;
    std::fprintf(stderr, "self-check: ok\n");
  }
  return 0;
}
