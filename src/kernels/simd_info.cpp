// SIMD target queries and forcing, on top of Highway's dynamic dispatch.
#include "simd_config.h"  // first: selects the Highway targets

// Compiled once per target by hwy/foreach_target.h; the path is relative to include/.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../src/kernels/simd_info.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace hs::kernels::HWY_NAMESPACE {

int64_t DispatchedTarget() { return HWY_TARGET; }

}  // namespace hs::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "headsplit/kernels/simd_info.h"
#include "headsplit/support/result.h"

namespace hs::kernels {

HWY_EXPORT(DispatchedTarget);

namespace {

std::vector<SimdTarget> targets_in(int64_t mask) {
  std::vector<SimdTarget> out;
  // Highway numbers better targets with lower bits.
  for (int64_t bits = mask; bits != 0; bits &= bits - 1) {
    const int64_t bit = bits & -bits;
    out.push_back({bit, hwy::TargetName(bit)});
  }
  return out;
}

}  // namespace

namespace detail {
int64_t dispatched_simd_target() { return HWY_DYNAMIC_DISPATCH(DispatchedTarget)(); }

bool avx512_dispatched() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  // The dispatched target, not hwy::SupportedTargets() (CPUID on every call: slow in VMs), is
  // AVX3 or better (lower bits are better x86 targets).
  const int64_t t = dispatched_simd_target();
  return cpu && t > 0 && t <= HWY_AVX3;
#else
  return false;
#endif
}
}  // namespace detail

std::string simd_target_name() { return hwy::TargetName(HWY_DYNAMIC_DISPATCH(DispatchedTarget)()); }

std::vector<SimdTarget> compiled_simd_targets() { return targets_in(HWY_TARGETS); }

std::vector<SimdTarget> runnable_simd_targets() {
  // Computed once, before any ScopedSimdTarget can change what SupportedTargets() reports.
  static const std::vector<SimdTarget> runnable = targets_in(hwy::SupportedTargets() & HWY_TARGETS);
  return runnable;
}

ScopedSimdTarget::ScopedSimdTarget(const SimdTarget& target) {
  bool runnable = false;
  for (const SimdTarget& t : runnable_simd_targets()) runnable = runnable || t.id == target.id;
  HS_CHECK(runnable, "ScopedSimdTarget: target is not runnable on this CPU");
  hwy::SetSupportedTargetsForTest(target.id);
}

ScopedSimdTarget::~ScopedSimdTarget() { hwy::SetSupportedTargetsForTest(0); }

}  // namespace hs::kernels
#endif  // HWY_ONCE
