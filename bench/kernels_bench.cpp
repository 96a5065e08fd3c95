// Fast kernel benchmarks: GEMV (M = 1, decode) and GEMM (M = 32, prefill / calibration) in
// SmolLM2-135M and Llama-3.2-1B projection shapes, for f32, int8 per-channel and int4 block-32
// weights (int4-lpbq: block 32 with LPBQ scales, exact path only), on 1 and 2 threads; and the
// ThreadPool's cost per parallel_for.
//
// Bounds, measured at start-up and attached to every result (and to the JSON context):
//   bound_read_GBps   streaming read bandwidth of a 512 MiB buffer with the same thread count
//                     (decode is memory-bound: pct_of_read_bw = weight_GBps / bound);
//   bound_fma_GFLOPs  an FMA-only register loop on the dispatched SIMD target with the same
//                     thread count (pct_of_fma_peak = GFLOPs / bound).
// Weights are cycled through enough copies to exceed 128 MiB (4x L3), so each call reads them
// from DRAM as a decode step does; HS_BENCH_HOT=1 in the environment keeps one copy instead (in
// cache for the smaller shapes: the kernel's compute, not the memory). x is token-major.
// Run: kernels_bench --benchmark_format=json --benchmark_repetitions=3
//      [--benchmark_report_aggregates_only=true] [--simd=SCALAR]
#include <cstddef>
#include <cstdint>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../bench/kernels_bench.cpp"  // relative to include/
#include "hwy/foreach_target.h"                          // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace hs_bench::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 12 independent FMA chains for `iters` steps; returns lanes * 24 * iters flops' result sum.
float FmaLoop(size_t iters, size_t* lanes) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  V a[12];
  for (size_t i = 0; i < 12; ++i) a[i] = hn::Set(d, static_cast<float>(i));
  const V m = hn::Set(d, 0.999f), c = hn::Set(d, 1e-3f);
  for (size_t it = 0; it < iters; ++it) {
    for (size_t i = 0; i < 12; ++i) a[i] = hn::MulAdd(a[i], m, c);
  }
  V sum = hn::Zero(d);
  for (size_t i = 0; i < 12; ++i) sum = hn::Add(sum, a[i]);
  *lanes = hn::Lanes(d);
  return hn::GetLane(hn::SumOfLanes(d, sum));
}

}  // namespace hs_bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "headsplit/kernels/gemm.h"
#include "headsplit/kernels/gemm_bf16.h"
#include "headsplit/kernels/qgemm.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs_bench {
HWY_EXPORT(FmaLoop);

using hs::kernels::ThreadPool;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// --- bounds -------------------------------------------------------------------------------

struct Bounds {
  double read_gbps[3] = {};   // by thread count 1, 2
  double fma_gflops[3] = {};  // by thread count 1, 2
};
Bounds g_bounds;

uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t s[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) s[j] += p[i + j];
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

void measure_bounds() {
  std::vector<uint64_t> buf((size_t{512} << 20) / 8, 1);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      std::atomic<uint64_t> sink{0};
      const Clock::time_point t0 = Clock::now();
      pool.parallel_for(threads, [&](int64_t b, int64_t e) {
        const size_t words = buf.size() / static_cast<size_t>(threads);
        for (int64_t part = b; part < e; ++part)
          sink += sum_words(buf.data() + part * words, words);
      });
      best = std::max(best, static_cast<double>(buf.size() * 8) / seconds_since(t0) / 1e9);
      benchmark::DoNotOptimize(sink.load());
    }
    g_bounds.read_gbps[threads] = best;

    constexpr size_t kIters = size_t{20} << 20;
    best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      size_t lanes = 0;
      std::atomic<float> sink{0};
      const Clock::time_point t0 = Clock::now();
      pool.parallel_for(threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) sink = sink + HWY_DYNAMIC_DISPATCH(FmaLoop)(kIters, &lanes);
      });
      const double flops = 2.0 * 12 * static_cast<double>(lanes * kIters) * threads;
      best = std::max(best, flops / seconds_since(t0) / 1e9);
      benchmark::DoNotOptimize(sink.load());
    }
    g_bounds.fma_gflops[threads] = best;
  }
}

// --- matmul cases ------------------------------------------------------------------------

struct Shape {
  const char* model;
  int64_t n, k;
};
constexpr Shape kShapes[] = {
    {"smollm2-135m", 576, 576},  {"smollm2-135m", 192, 576},   {"smollm2-135m", 1536, 576},
    {"smollm2-135m", 576, 1536}, {"smollm2-135m", 49152, 576}, {"llama3.2-1b", 2048, 2048},
    {"llama3.2-1b", 512, 2048},  {"llama3.2-1b", 8192, 2048},  {"llama3.2-1b", 2048, 8192},
};

// kInt4Lpbq: int4 block 32 with scales in LPBQ form and their factors (qgemm.h), as the
// runtime's 16a4w-block32 projections: the exact path's decode reads the 1-byte multipliers.
// kBf16: the f32 weights as bfloat16 (gemm_bf16.h, calibration on AVX512_BF16 CPUs; skipped
// elsewhere); pct_of_fma_peak stays relative to the float32 FMA peak, so 200 is its bound.
enum class Format { kF32, kBf16, kInt8PerChannel, kInt4Block32, kInt4Lpbq };
const char* format_name(Format f) {
  switch (f) {
    case Format::kF32: return "f32";
    case Format::kBf16: return "bf16";
    case Format::kInt8PerChannel: return "int8-channel";
    case Format::kInt4Block32: return "int4-block32";
    case Format::kInt4Lpbq: return "int4-lpbq";
  }
  return "?";
}

// Copies of one weight tensor totalling >= 128 MiB; one cached set at a time (benchmarks of a
// shape and format run back to back).
struct WeightSet {
  Format format;
  int64_t n = 0, k = 0;
  size_t bytes = 0;  // weight bytes read per call (data + scales)
  std::vector<std::vector<float>> f32;
  std::vector<hs::kernels::Bf16Matrix> bf16;
  std::vector<std::vector<std::byte>> data;
  std::vector<float> scales;
  std::vector<float> lpbq_c;  // kInt4Lpbq: the factors, and each copy's row sums
  std::vector<uint8_t> lpbq_m;
  std::vector<std::vector<int32_t>> lpbq_sums;
};

const WeightSet& weights_for(Format format, int64_t n, int64_t k) {
  static std::unique_ptr<WeightSet> cached;
  if (cached && cached->format == format && cached->n == n && cached->k == k) return *cached;
  cached.reset();  // free the previous set first
  auto w = std::make_unique<WeightSet>();
  w->format = format;
  w->n = n;
  w->k = k;
  const bool int4 = format == Format::kInt4Block32 || format == Format::kInt4Lpbq;
  const int64_t block = int4 ? 32 : 0;
  const size_t scale_count = static_cast<size_t>(block == 0 ? n : n * ((k + block - 1) / block));
  const size_t data_bytes = format == Format::kF32    ? static_cast<size_t>(n * k) * 4
                            : format == Format::kBf16 ? static_cast<size_t>(n * (k + k % 2)) * 2
                            : format == Format::kInt8PerChannel
                                ? static_cast<size_t>(n * k)
                                : static_cast<size_t>(n * ((k + 1) / 2));
  const bool plain = format == Format::kF32 || format == Format::kBf16;
  w->bytes = data_bytes + (plain ? 0 : scale_count * 4);
  const char* hot = std::getenv("HS_BENCH_HOT");
  const size_t copies = hot != nullptr && hot[0] == '1'
                            ? 1
                            : std::max<size_t>(1, ((size_t{128} << 20) + w->bytes - 1) / w->bytes);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
  for (size_t c = 0; c < copies; ++c) {
    if (plain) {
      std::vector<float> f(static_cast<size_t>(n * k));
      for (float& v : f) v = dist(rng);
      if (format == Format::kBf16) {
        w->bf16.push_back(hs::kernels::to_bf16(f, n, k).value());
      } else {
        w->f32.push_back(std::move(f));
      }
    } else {
      w->data.emplace_back(data_bytes);
      for (std::byte& b : w->data.back()) b = static_cast<std::byte>(rng());
    }
  }
  w->scales.assign(scale_count, 0.01f);
  if (format == Format::kInt4Lpbq) {  // s = 2^-10 * m, m in 1..16
    for (float& v : w->scales) v = std::ldexp(static_cast<float>(1 + rng() % 16), -10);
    if (!hs::kernels::lpbq_factor(w->scales, n, k, 32, w->lpbq_c, w->lpbq_m)) {
      std::fprintf(stderr, "kernels_bench: LPBQ scales of %lldx%lld did not factor\n",
                   static_cast<long long>(n), static_cast<long long>(k));
    }
    for (const auto& d : w->data) {
      w->lpbq_sums.push_back(hs::kernels::lpbq_row_sums(d, w->lpbq_m, n, k, 32));
    }
    w->bytes = data_bytes + static_cast<size_t>(n * ((k + 31) / 32));  // 1-byte multipliers
  }
  cached = std::move(w);
  return *cached;
}

// exact: x is on the 16-bit activation grid x = 2^-15 * n (qgemm.h), so the exact integer path
// runs where quantized_exact_is_fast() (the runtime's 16a8w / 16a4w projections).
constexpr float kGridScale = 1.f / 32768.f;

hs::Status run_once(const WeightSet& w, size_t copy, int64_t m, const std::vector<float>& x,
                    std::vector<float>& y, ThreadPool* pool, bool exact) {
  const hs::kernels::MatmulShape shape{m, w.n, w.k, hs::kernels::ActLayout::kTokenMajor};
  if (w.format == Format::kF32)
    return hs::kernels::matmul_f32(shape, x, {w.f32[copy], {}}, y, pool);
  if (w.format == Format::kBf16)
    return hs::kernels::matmul_bf16(shape, x, w.bf16[copy], {}, y, pool);
  const bool int4 = w.format == Format::kInt4Block32 || w.format == Format::kInt4Lpbq;
  hs::kernels::QuantizedWeights q{
      int4 ? hs::kernels::WeightBits::kInt4 : hs::kernels::WeightBits::kInt8,
      w.data[copy],
      w.scales,
      int4 ? 32 : 0,
      {},
      exact ? kGridScale : 0.f,
      32768};
  if (w.format == Format::kInt4Lpbq) {
    q.lpbq_row_scales = w.lpbq_c;
    q.lpbq_mult = w.lpbq_m;
    q.lpbq_row_sums = w.lpbq_sums[copy];
  }
  return hs::kernels::matmul_quantized(shape, x, q, y, pool);
}

void bench_matmul(benchmark::State& state, Format format, Shape s, int64_t m, int threads,
                  bool exact) {
  ThreadPool pool(threads);
  const WeightSet& w = weights_for(format, s.n, s.k);
  const size_t copies = format == Format::kF32    ? w.f32.size()
                        : format == Format::kBf16 ? w.bf16.size()
                                                  : w.data.size();
  std::vector<float> x(static_cast<size_t>(m * s.k)), y(static_cast<size_t>(m * s.n));
  std::mt19937 rng(2);
  for (float& v : x) {
    v = exact ? kGridScale * static_cast<float>(std::uniform_int_distribution<int>(-32768, 32767)(rng))
              : std::uniform_real_distribution<float>(-1, 1)(rng);
  }
  size_t copy = 0;
  double elapsed = 0;
  for (auto _ : state) {
    const Clock::time_point t0 = Clock::now();
    const hs::Status st = run_once(w, copy, m, x, y, &pool, exact);
    elapsed += seconds_since(t0);
    if (!st.ok()) {
      state.SkipWithError(st.error().message().c_str());
      return;
    }
    copy = (copy + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  const auto iters = static_cast<double>(state.iterations());
  const double gbps = static_cast<double>(w.bytes) * iters / elapsed / 1e9;
  const double gflops = 2.0 * static_cast<double>(m * s.n * s.k) * iters / elapsed / 1e9;
  state.counters["weight_GBps"] = gbps;
  state.counters["GFLOPs"] = gflops;
  state.counters["bound_read_GBps"] = g_bounds.read_gbps[threads];
  state.counters["bound_fma_GFLOPs"] = g_bounds.fma_gflops[threads];
  state.counters["pct_of_read_bw"] = 100.0 * gbps / g_bounds.read_gbps[threads];
  state.counters["pct_of_fma_peak"] = 100.0 * gflops / g_bounds.fma_gflops[threads];
  state.SetLabel(hs::kernels::simd_target_name());
}

// --- thread pool overhead ----------------------------------------------------------------

void bench_parallel_for(benchmark::State& state, int threads, int64_t n) {
  ThreadPool pool(threads);
  std::atomic<int64_t> sink{0};
  for (auto _ : state) {
    pool.parallel_for(
        n, [&](int64_t b, int64_t e) { sink.fetch_add(e - b, std::memory_order_relaxed); });
  }
  benchmark::DoNotOptimize(sink.load());
  state.SetLabel("time per parallel_for call (empty work)");
}

void register_benchmarks() {
  for (int threads : {1, 2}) {
    for (int64_t n : {2, 64}) {
      benchmark::RegisterBenchmark(
          ("parallel_for/threads:" + std::to_string(threads) + "/n:" + std::to_string(n)).c_str(),
          bench_parallel_for, threads, n)
          ->UseRealTime();
    }
  }
  for (const Shape& s : kShapes) {
    for (Format f : {Format::kF32, Format::kBf16, Format::kInt8PerChannel, Format::kInt4Block32,
                     Format::kInt4Lpbq}) {
      for (bool exact : {false, true}) {
        const bool plain = f == Format::kF32 || f == Format::kBf16;
        if ((exact && plain) || (!exact && f == Format::kInt4Lpbq)) continue;
        for (int64_t m : {1, 32}) {
          for (int threads : {1, 2}) {
            const std::string name = std::string("matmul/") + format_name(f) +
                                     (exact ? "-exact" : "") + "/" + s.model + "/" +
                                     std::to_string(s.n) + "x" + std::to_string(s.k) +
                                     "/M:" + std::to_string(m) +
                                     "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), bench_matmul, f, s, m, threads, exact)
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond);
          }
        }
      }
    }
  }
}

}  // namespace hs_bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::unique_ptr<hs::kernels::ScopedSimdTarget> forced;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--simd=", 0) != 0) {
      fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 1;
    }
    for (const hs::kernels::SimdTarget& t : hs::kernels::runnable_simd_targets()) {
      if (t.name == arg.substr(7)) forced = std::make_unique<hs::kernels::ScopedSimdTarget>(t);
    }
    if (!forced) {
      fprintf(stderr, "--simd: %s is not a runnable target\n", arg.substr(7).c_str());
      return 1;
    }
  }
  hs_bench::measure_bounds();
  const hs_bench::Bounds& b = hs_bench::g_bounds;
  benchmark::AddCustomContext("simd_target", hs::kernels::simd_target_name());
  benchmark::AddCustomContext("bound_read_GBps_threads1", std::to_string(b.read_gbps[1]));
  benchmark::AddCustomContext("bound_read_GBps_threads2", std::to_string(b.read_gbps[2]));
  benchmark::AddCustomContext("bound_fma_GFLOPs_threads1", std::to_string(b.fma_gflops[1]));
  benchmark::AddCustomContext("bound_fma_GFLOPs_threads2", std::to_string(b.fma_gflops[2]));
  hs_bench::register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
#endif  // HWY_ONCE
