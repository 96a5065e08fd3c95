// SeqMSE weight-search time on the SmolLM2-135M projection shapes (random weights N(0, 0.02²) as
// mkgguf.py writes them, random calibration rows), fast path and optionally the exhaustive one,
// checking that both choose the same scales. Prints JSON.
//   seq_mse_bench [--layers L] [--head-rows R] [--bits 4|8] [--block B] [--candidates N]
//                 [--tokens n] [--threads T] [--exhaustive | --exhaustive-only]
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_common.h"
#include "headsplit/kernels/thread_pool.h"
#include "headsplit/quant/weight_search.h"

namespace {

struct Shape {
  const char* name;
  int64_t rows, in;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace hs;
  int layers = 1, bits = 4, block = 32, candidates = 1000, tokens = 2, threads = 2;
  int64_t head_rows = 4096;
  bool exhaustive = false, fast = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> int64_t {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "seq_mse_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoll(argv[++i]);
    };
    if (a == "--layers") layers = static_cast<int>(next());
    else if (a == "--head-rows") head_rows = next();
    else if (a == "--bits") bits = static_cast<int>(next());
    else if (a == "--block") block = static_cast<int>(next());
    else if (a == "--candidates") candidates = static_cast<int>(next());
    else if (a == "--tokens") tokens = static_cast<int>(next());
    else if (a == "--threads") threads = static_cast<int>(next());
    else if (a == "--exhaustive") exhaustive = true;
    else if (a == "--exhaustive-only") exhaustive = true, fast = false;
    else {
      std::fprintf(stderr, "seq_mse_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  // SmolLM2-135M: C = 576, F = 1536, H = 9, Hkv = 3, Dh = 64, V = 49152.
  std::vector<Shape> shapes;
  for (int l = 0; l < layers; ++l) {
    shapes.push_back({"attn.q", 576, 576});
    shapes.push_back({"attn.k", 192, 576});
    shapes.push_back({"attn.v", 192, 576});
    shapes.push_back({"attn.o", 576, 576});
    shapes.push_back({"ffn.w1", 1536, 576});
    shapes.push_back({"ffn.w3", 1536, 576});
    shapes.push_back({"ffn.w2", 576, 1536});
  }
  if (head_rows > 0) shapes.push_back({"output", head_rows, 576});
  const quant::WeightSpec spec{bits, block};
  kernels::ThreadPool pool(threads);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  double fast_s = 0.0, exh_s = 0.0;
  int64_t rows_total = 0, mismatches = 0;
  for (const Shape& s : shapes) {
    std::vector<float> w(static_cast<size_t>(s.rows * s.in)), x(static_cast<size_t>(tokens * s.in));
    for (float& v : w) v = 0.02f * nd(rng);
    for (float& v : x) v = nd(rng);
    const quant::ErrorFactor f = quant::error_factor(x, tokens, s.in);
    auto t0 = bench::Clock::now();
    std::vector<float> a;
    if (fast) a = quant::seq_mse_scales(w, s.rows, s.in, spec, f, candidates, &pool, quant::SeqMseSearch::kFast);
    fast_s += bench::seconds_since(t0);
    if (exhaustive) {
      t0 = bench::Clock::now();
      const std::vector<float> b = quant::seq_mse_scales(w, s.rows, s.in, spec, f, candidates, &pool,
                                                         quant::SeqMseSearch::kExhaustive);
      exh_s += bench::seconds_since(t0);
      for (size_t i = 0; fast && i < a.size(); ++i) mismatches += a[i] != b[i] ? 1 : 0;
    }
    rows_total += s.rows;
  }
  fmt::print(
      "{{\"bench\":\"seq_mse\",\"rows\":{},\"bits\":{},\"block\":{},\"candidates\":{},\"tokens\":{},"
      "\"threads\":{},\"fast_seconds\":{:.3f},\"exhaustive_seconds\":{:.3f},\"scale_mismatches\":{}}}\n",
      rows_total, bits, block, candidates, tokens, threads, fast_s, exhaustive ? exh_s : 0.0,
      mismatches);
  return mismatches == 0 ? 0 : 1;
}
