// Memory bandwidth: the bound for decode (T = 1), which streams every weight once per token.
//
// Read: sum a 512 MiB buffer (16x the 32 MiB L3) as uint64 with 8 accumulators (vectorized
// integer adds, far from compute-bound). Copy: memcpy 256 MiB -> 256 MiB, counting bytes read
// plus bytes written. 1 and 2 threads (ThreadPool, one contiguous part per thread).
// Output: Google Benchmark; run with --benchmark_format=json --benchmark_repetitions=3.
// Counters: GBps (1e9 bytes/s) and bytes_per_second.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"

namespace {

using hs::kernels::ThreadPool;

constexpr size_t kReadBytes = size_t{512} << 20;
constexpr size_t kCopyBytes = size_t{256} << 20;

// Buffers are allocated and touched once (no page faults in the timed loops).
std::vector<uint64_t>& buffer(int which, size_t bytes) {
  static std::vector<uint64_t> buffers[3];
  std::vector<uint64_t>& b = buffers[which];
  if (b.size() != bytes / 8) {
    b.assign(bytes / 8, 0);
    for (size_t i = 0; i < b.size(); i += 512) b[i] = i;
  }
  return b;
}

uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t s[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) s[j] += p[i + j];
  }
  for (; i < n; ++i) s[0] += p[i];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

void set_rate(benchmark::State& state, size_t bytes_per_iteration) {
  const auto bytes = static_cast<int64_t>(bytes_per_iteration) * state.iterations();
  state.SetBytesProcessed(bytes);
  state.counters["GBps"] =
      benchmark::Counter(static_cast<double>(bytes) / 1e9, benchmark::Counter::kIsRate);
}

void BM_Read(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const std::vector<uint64_t>& src = buffer(0, kReadBytes);
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  for (auto _ : state) {
    pool.parallel_for(threads, [&](int64_t b, int64_t e) {
      for (int64_t part = b; part < e; ++part) {
        const size_t words = src.size() / static_cast<size_t>(threads);
        sums[static_cast<size_t>(part)] = sum_words(src.data() + part * words, words);
      }
    });
    benchmark::DoNotOptimize(sums.data());
  }
  set_rate(state, kReadBytes);
  state.SetLabel("bytes read");
}

void BM_Copy(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const std::vector<uint64_t>& src = buffer(1, kCopyBytes);
  std::vector<uint64_t>& dst = buffer(2, kCopyBytes);
  for (auto _ : state) {
    pool.parallel_for(threads, [&](int64_t b, int64_t e) {
      for (int64_t part = b; part < e; ++part) {
        const size_t words = src.size() / static_cast<size_t>(threads);
        std::memcpy(dst.data() + part * words, src.data() + part * words, words * 8);
      }
    });
    benchmark::ClobberMemory();
  }
  set_rate(state, 2 * kCopyBytes);
  state.SetLabel("bytes read + bytes written");
}

BENCHMARK(BM_Read)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(
    benchmark::kMillisecond);
BENCHMARK(BM_Copy)->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime()->Unit(
    benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("read_buffer_bytes", std::to_string(kReadBytes));
  benchmark::AddCustomContext("copy_buffer_bytes", std::to_string(kCopyBytes));
  benchmark::AddCustomContext("simd_target", hs::kernels::simd_target_name());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
