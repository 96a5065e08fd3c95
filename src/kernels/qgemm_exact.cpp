// The exact integer path of matmul_quantized, portable C++ (qgemm_exact.h): x -> integers n on
// the activation grid, per-block integer dot products in int64, the shared epilogues.
#include "qgemm_exact.h"

#include <atomic>
#include <cmath>

#include "headsplit/kernels/qgemm.h"

namespace hs::kernels::detail {
namespace {

// n[m * K + k] = x[m,k] / scale when every x is exactly scale * n with n + offset in
// [0, 65535]; false otherwise. (Such an n is unique, so any rounding that finds it is fine.)
bool grid_ints(const MatmulCall& c, ActGrid g, int32_t* n) {
  for (size_t m = 0; m < c.m; ++m) {
    for (size_t k = 0; k < c.k; ++k) {
      const float x = c.layout == ActLayout::kTokenMajor ? c.x[m * c.k + k] : c.x[k * c.m + m];
      const float r = x / g.scale;
      if (!(std::fabs(r) < 131072.f)) return false;  // also NaN
      const auto v = static_cast<int32_t>(std::nearbyint(r));
      const int32_t u = v + g.offset;
      if (u < 0 || u > 65535 || g.scale * static_cast<float>(v) != x) return false;
      n[m * c.k + k] = v;
    }
  }
  return true;
}

int32_t weight_at(const QWeightsCall& q, int bits, size_t k_total, size_t n, size_t k) {
  if (bits == 8) return reinterpret_cast<const int8_t*>(q.data)[n * k_total + k];
  return int4_at(q.data + n * ((k_total + 1) / 2), k);
}

}  // namespace

float finish_channel(int64_t d, float s_w, double s_a, float bias) {
  const double t = static_cast<double>(s_w) * static_cast<double>(d);
  return static_cast<float>(t * s_a + static_cast<double>(bias));
}

float finish_blocks(const double* a, double s_a, float bias) {
  const double total = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  return static_cast<float>(total * s_a + static_cast<double>(bias));
}

bool exact_simd_handles(const MatmulCall& c, const QWeightsCall& q, int bits) {
  if (c.k > kExactSimdMaxK) return false;
  return bits == 8 ? q.block == 0 : (q.block == 0 || q.block == 32);
}

ExactSimd exact_simd() {
  // AVX2 first where both run (ExactIsa: measured faster on AMD Zen 4).
  const bool avx2 = avx2_supported();
  if (avx2 && exact_isa() == ExactIsa::kAvx2) return ExactSimd::kAvx2;
  if (vnni_supported()) return ExactSimd::kVnni;
  return avx2 ? ExactSimd::kAvx2 : ExactSimd::kPortable;
}

Status matmul_exact(const MatmulCall& c, const QWeightsCall& q, int bits, ActGrid grid, bool* ran) {
  *ran = false;
  if (exact_simd_handles(c, q, bits)) {
    switch (exact_simd()) {
      case ExactSimd::kVnni: return matmul_vnni(c, q, bits, grid, ran);
      case ExactSimd::kAvx2: return matmul_avx2(c, q, bits, grid, ran);
      case ExactSimd::kPortable: break;
    }
  }
  auto* n = reinterpret_cast<int32_t*>(thread_scratch(ScratchSlot::kExactAct, c.m * c.k));
  if (n == nullptr) return out_of_memory("matmul_quantized", c.m * c.k);
  if (!grid_ints(c, grid, n)) return ok_status();
  *ran = true;
  const double s_a = grid.scale;
  std::atomic<bool> oom{false};
  for_rows(c, 1, [&](size_t n_begin, size_t n_end) {
    auto* w = reinterpret_cast<int32_t*>(thread_scratch(ScratchSlot::kExactComb, c.k));
    if (w == nullptr) {
      oom = true;
      return;
    }
    for (size_t row = n_begin; row < n_end; ++row) {
      for (size_t k = 0; k < c.k; ++k) w[k] = weight_at(q, bits, c.k, row, k);
      const float bias = c.bias != nullptr ? c.bias[row] : 0.f;
      for (size_t m = 0; m < c.m; ++m) {
        const int32_t* x = n + m * c.k;
        float y = 0.f;
        if (q.block == 0) {
          int64_t d = 0;
          for (size_t k = 0; k < c.k; ++k) d += int64_t{x[k]} * w[k];
          y = finish_channel(d, q.scales[row], s_a, bias);
        } else {
          double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          for (size_t b = 0; b < q.blocks; ++b) {
            int64_t d = 0;
            const size_t k1 = std::min(c.k, (b + 1) * q.block);
            for (size_t k = b * q.block; k < k1; ++k) d += int64_t{x[k]} * w[k];
            acc[b % 8] +=
                static_cast<double>(q.scales[row * q.blocks + b]) * static_cast<double>(d);
          }
          y = finish_blocks(acc, s_a, bias);
        }
        if (c.layout == ActLayout::kTokenMajor) {
          c.y[m * c.n + row] = y;
        } else {
          c.y[row * c.m + m] = y;
        }
      }
    }
  });
  if (oom) return out_of_memory("matmul_quantized", c.k);
  return ok_status();
}

}  // namespace hs::kernels::detail
