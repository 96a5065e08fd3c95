// SIMD targets of the fast kernels: which instruction set they dispatch to, and a way to force
// one (tests run every kernel on every target this CPU can run, so the portable path is tested).
//
// The kernels are compiled once per Highway target (x86: AVX3 = AVX-512, AVX2, SSE4 and the
// portable SCALAR path) and pick the best one the CPU supports at run time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hs::kernels {

struct SimdTarget {
  int64_t id = 0;    // a Highway target bit (HWY_AVX2, ...)
  std::string name;  // "AVX3", "AVX2", "SSE4", "SCALAR", ...
};

// The target the kernels dispatch to now (the best runnable one unless forced).
std::string simd_target_name();
// Targets this build compiled the kernels for, best first.
std::vector<SimdTarget> compiled_simd_targets();
// Compiled targets this CPU can run, best first (not affected by ScopedSimdTarget).
std::vector<SimdTarget> runnable_simd_targets();

// Forces every kernel to dispatch to `target` (one of runnable_simd_targets()) until destroyed,
// then restores the automatic choice. Process-wide: for tests and benchmarks, not for use while
// another thread runs kernels. Scopes do not nest.
class ScopedSimdTarget {
 public:
  explicit ScopedSimdTarget(const SimdTarget& target);
  ~ScopedSimdTarget();
  ScopedSimdTarget(const ScopedSimdTarget&) = delete;
  ScopedSimdTarget& operator=(const ScopedSimdTarget&) = delete;
};

}  // namespace hs::kernels
