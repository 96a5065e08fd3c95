// Benchmark: the preprocess graph pipeline (canonicalize, split-heads, fold-constants,
// dead-code) on a Llama-3.2-1B-shaped graph (16 layers, random weights).
//
// Bound: weight slices are views, so the pipeline's memory is the model's weights plus the
// graph bookkeeping; the target is under 1 s and peak RSS within weights + 10%.
// Prints one JSON object. Usage: preprocess_bench [--shape llama3.2-1b] [--reps 5] [--ar-len 1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "headsplit/frontend/builder.h"
#include "headsplit/passes/passes.h"
#include "headsplit/support/memory.h"

namespace {

// Bytes of distinct constant data (views of the same bytes, e.g. a tied LM head, count once).
int64_t unique_constant_bytes(const hs::ir::Graph& g) {
  std::set<std::tuple<const void*, size_t, size_t>> seen;
  int64_t total = 0;
  for (hs::ir::ValueId v = 0; v < g.num_values(); ++v) {
    const auto& data = g.value(v).data;
    if (data && seen.emplace(data->buffer.get(), data->offset, data->size).second) {
      total += static_cast<int64_t>(data->size);
    }
  }
  return total;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "llama3.2-1b";
  int reps = 5;
  int64_t ar_len = 1, ctx = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--shape") == 0) shape = argv[i + 1];
    else if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--ar-len") == 0) ar_len = std::atoll(argv[i + 1]);
    else if (std::strcmp(argv[i], "--ctx-len") == 0) ctx = std::atoll(argv[i + 1]);
  }
  auto config = hs::frontend::named_config(shape);
  if (!config.ok()) {
    std::fprintf(stderr, "preprocess_bench: %s\n", config.error().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "generating random %s weights...\n", shape.c_str());
  hs::frontend::LlamaModel model = hs::frontend::make_random_llama(*config, 1);
  hs::frontend::BuildOptions options;
  options.ar_len = ar_len;
  options.context_len = ctx;
  auto built = hs::frontend::build_llama(model, options);
  if (!built.ok()) {
    std::fprintf(stderr, "preprocess_bench: %s\n", built.error().message().c_str());
    return 1;
  }
  const int64_t weight_bytes = unique_constant_bytes(*built);
  const int64_t nodes_before = built->live_node_count();
  const int64_t rss_before = hs::current_rss_bytes();
  hs::reset_peak_rss();

  std::vector<double> seconds;
  int64_t nodes_after = 0, constant_bytes_after = 0;
  for (int r = 0; r < reps; ++r) {
    hs::ir::Graph g = *built;
    auto start = std::chrono::steady_clock::now();
    auto runs = hs::passes::run_preprocess(g, hs::passes::PreprocessOptions{}, {});
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!runs.ok()) {
      std::fprintf(stderr, "preprocess_bench: %s\n", runs.error().message().c_str());
      return 1;
    }
    nodes_after = g.live_node_count();
    constant_bytes_after = unique_constant_bytes(g);
  }
  const int64_t peak = hs::peak_rss_bytes();
  std::printf(
      "{\"benchmark\": \"preprocess\", \"shape\": \"%s\", \"ar_len\": %lld, \"context_len\": %lld, "
      "\"layers\": %lld, \"reps\": %d, \"median_seconds\": %.4f, \"min_seconds\": %.4f, "
      "\"target_seconds\": 1.0, \"nodes_before\": %lld, \"nodes_after\": %lld, "
      "\"unique_weight_bytes\": %lld, \"unique_constant_bytes_after_split\": %lld, "
      "\"rss_before_bytes\": %lld, \"peak_rss_bytes\": %lld, "
      "\"peak_rss_over_weights\": %.4f, \"target_peak_rss_over_weights\": 1.10}\n",
      shape.c_str(), static_cast<long long>(ar_len), static_cast<long long>(ctx),
      static_cast<long long>(config->n_layers), reps, median(seconds),
      *std::min_element(seconds.begin(), seconds.end()), static_cast<long long>(nodes_before),
      static_cast<long long>(nodes_after), static_cast<long long>(weight_bytes),
      static_cast<long long>(constant_bytes_after), static_cast<long long>(rss_before),
      static_cast<long long>(peak), static_cast<double>(peak) / static_cast<double>(weight_bytes));
  return 0;
}
