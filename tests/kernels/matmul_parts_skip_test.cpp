// matmul_parts (concat on K, the P·V shape) skips k where the probability is exactly 0 for
// integer-storage parts; the result must stay bit-identical to `acc = acc + a*b` over every k,
// including rows that are all zero, -0 entries and cache rows with extreme values.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "headsplit/kernels/matmul_parts.h"
#include "headsplit/kernels/quant.h"
#include "headsplit/kernels/simd_info.h"
#include "headsplit/kernels/thread_pool.h"

namespace hs::kernels {
namespace {

TEST(MatmulPartsSkip, ZeroProbabilitiesOverIntegerCachesAreBitExact) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  for (int64_t m : {1, 2, 3}) {
    const int64_t p = 77, t = 3, k = p + t, n = 21;  // k: cache rows then new rows
    std::vector<float> a(m * k);
    std::uniform_real_distribution<float> ud(-1.f, 1.f);
    for (int64_t i = 0; i < m * k; ++i) {
      const int kind = static_cast<int>(rng() % 4);
      a[i] = kind == 0 ? ud(rng) : (kind == 1 ? -0.f : 0.f);
    }
    for (int64_t j = 0; j < k; ++j) a[j] = 0.f;  // row 0: all zero
    std::vector<uint16_t> cache(p * n);
    for (uint16_t& q : cache) q = static_cast<uint16_t>(rng() % 4 == 0 ? 65535 : rng() % 65536);
    std::vector<float> fresh(t * n);
    for (float& f : fresh) f = ud(rng);
    const float scale = 0.37f;
    const int32_t zp = 31000;
    const MatmulPart parts[2] = {
        {.storage = opset::DType::kU16, .scale = scale, .zero_point = zp, .begin = 0, .extent = p},
        {.storage = opset::DType::kF32, .begin = p, .extent = t}};
    const std::byte* bases[2] = {reinterpret_cast<const std::byte*>(cache.data()),
                                 reinterpret_cast<const std::byte*>(fresh.data())};
    const int64_t zero = 0;
    const MatmulShapeInfo shape{.m = m,
                                .k = k,
                                .n = n,
                                .concat_on_n = false,
                                .batches = 1,
                                .a_offsets = &zero,
                                .b_batches = &zero};
    std::vector<float> want(m * n);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        float acc = 0.f;
        for (int64_t j = 0; j < k; ++j) {
          const float b =
              j < p ? dequantize_one(cache[j * n + c], scale, zp) : fresh[(j - p) * n + c];
          acc = acc + a[r * k + j] * b;
        }
        want[r * n + c] = acc;
      }
    }
    for (const SimdTarget& target : runnable_simd_targets()) {
      ScopedSimdTarget scope(target);
      std::vector<float> y(m * n, -1.f);
      matmul_parts(shape, a.data(), parts, bases, 2, y.data(), &pool);
      EXPECT_EQ(std::memcmp(y.data(), want.data(), y.size() * sizeof(float)), 0)
          << "m=" << m << " target " << target.name;
    }
  }
}

}  // namespace
}  // namespace hs::kernels
