// Helpers shared by the benchmark programs: medians, the machine's load, exiting on errors, and
// for random models deterministic token ids and a synthetic tokenizer (benchmarks feed ids).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "headsplit/support/result.h"
#include "headsplit/tokenizer/tokenizer.h"

namespace hs::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The value of `r`, or exits with "<program>: <what>: <error>" (benchmarks are programs).
template <typename T>
T must(Result<T> r, std::string_view what, std::string_view program = "bench") {
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s: %s\n", std::string(program).c_str(), std::string(what).c_str(),
                 r.error().message().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

// The 1-minute load average: the machine is shared, and timings mean little when it is busy.
inline double load_average() {
  double v = -1.0;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &v) != 1) v = -1.0;
    std::fclose(f);
  }
  return v;
}

// A llama2c-style tokenizer of `v` pieces (export needs one; the benchmarks feed ids directly).
inline tokenizer::TokenizerData synthetic_tokenizer(int64_t v) {
  tokenizer::TokenizerData t;
  t.kind = tokenizer::TokenizerKind::kLlama2c;
  t.pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) t.pieces.push_back(fmt::format("<0x{:02X}>", b));
  for (int64_t i = 0; static_cast<int64_t>(t.pieces.size()) < v; ++i) {
    t.pieces.push_back(fmt::format("w{}", i));
  }
  for (size_t i = 0; i < t.pieces.size(); ++i) t.scores.push_back(-static_cast<float>(i));
  t.bos_id = 1;
  t.eos_id = 2;
  t.unk_id = 0;
  t.max_token_length = 16;
  return t;
}

// Deterministic token ids in [3, V) (splitmix64), BOS (1) first.
inline std::vector<int32_t> token_sequence(uint64_t seed, int64_t n, int64_t vocab) {
  std::vector<int32_t> t{1};
  uint64_t x = seed;
  while (static_cast<int64_t>(t.size()) < n) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    t.push_back(static_cast<int32_t>(3 + z % static_cast<uint64_t>(vocab - 3)));
  }
  return t;
}

}  // namespace hs::bench
