// exp_f32: std::exp(float) bit for bit, 4 lanes of double at a time (see kernels/exp.h).
#include "headsplit/kernels/exp.h"

#include <cmath>
#include <cstring>

#include "avx2_target.h"

namespace hs::kernels {
namespace {

void exp_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

#if HS_AVX2
// tab[i] = bits of 2^(i/32) (rounded to double) - (i << 47): adding k << 47 to tab[k mod 32]
// gives the bits of 2^(k/32) for |k| < 150 * 32 (the exponent field takes k / 32).
alignas(64) constexpr uint64_t kTab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
constexpr double kInvLn2N = 0x1.71547652b82fep+0 * 32;  // 32 / ln 2
constexpr double kShift = 0x1.8p+52;                    // z + kShift rounds z to an integer
// 2^(r/32) ~= C0 r^3 + C1 r^2 + C2 r + 1 for |r| <= 1/2.
constexpr double kC0 = 0x1.c6af84b912394p-5 / 32 / 32 / 32;
constexpr double kC1 = 0x1.ebfce50fac4f3p-3 / 32 / 32;
constexpr double kC2 = 0x1.62e42ff0c52d6p-1 / 32;
// |x| >= 88 (bits of |x| at or above those of 88.0f) or NaN: glibc's slow branch.
constexpr uint32_t kSlowAbsBits = 0x42b00000;
// x below this gives +0 in glibc (__math_uflowf); -inf too.
constexpr float kZeroBelow = -0x1.9fe368p6f;

// 4 floats -> 4 results of glibc's fast path (valid where |x| < 88).
HS_AVX2_FN inline __m128 exp4(__m128 xf) {
  const __m256d xd = _mm256_cvtps_pd(xf);
  const __m256d inv = _mm256_set1_pd(kInvLn2N), shift = _mm256_set1_pd(kShift);
  // glibc computes z = inv * x once, but GCC contracts both of its uses (z + shift and z - kd)
  // into FMAs in __expf_fma; this file is compiled with -ffp-contract=off so the fused and
  // unfused operations are exactly the ones written here. Over all floats only r's FMA changes
  // results (at x bits 0x4202422f and 0xc27c65d9); kd's and the polynomial's do not.
  __m256d kd = _mm256_fmadd_pd(inv, xd, shift);
  const __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, shift);
  const __m256d r = _mm256_fmsub_pd(inv, xd, kd);
  __m256i t = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTab),
                                     _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
  t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
  const __m256d s = _mm256_castsi256_pd(t);
  const __m256d p = _mm256_fmadd_pd(_mm256_set1_pd(kC0), r, _mm256_set1_pd(kC1));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(kC2), r, _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(p, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

HS_AVX2_FN void exp_avx2(const float* x, float* y, int64_t n) {
  const __m128i abs_mask = _mm_set1_epi32(0x7fffffff);
  const __m128i slow_bits = _mm_set1_epi32(static_cast<int>(kSlowAbsBits - 1));
  const __m128 zero_below = _mm_set1_ps(kZeroBelow);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 xf = _mm_loadu_ps(x + i);
    const __m128i a = _mm_and_si128(_mm_castps_si128(xf), abs_mask);
    const int slow = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(a, slow_bits)));
    if (slow == 0) {
      _mm_storeu_ps(y + i, exp4(xf));
      continue;
    }
    // Lanes past glibc's fast path: +0 below kZeroBelow, std::exp for the rest of them.
    const __m128 zero = _mm_cmplt_ps(xf, zero_below);
    _mm_storeu_ps(y + i, _mm_andnot_ps(zero, exp4(xf)));
    const int scalar = slow & ~_mm_movemask_ps(zero);
    if (scalar == 0) continue;
    alignas(16) float in[4];
    _mm_store_ps(in, xf);  // x may be y
    for (int q = 0; q < 4; ++q) {
      if ((scalar >> q & 1) != 0) y[i + q] = std::exp(in[q]);
    }
  }
  exp_scalar(x + i, y + i, n - i);
}

bool cpu_has_avx2_fma() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// The startup check: every 65537th float bit pattern (65536 values spread over all exponents,
// signs and NaNs) plus the arguments softmax and silu see most, compared bit for bit.
bool simd_matches_libm() {
  if (!cpu_has_avx2_fma()) return false;
  constexpr int kBlock = 1024;
  float in[kBlock], got[kBlock], want[kBlock];
  uint64_t u = 0;
  while (u < (uint64_t{1} << 32)) {
    int m = 0;
    for (; m < kBlock && u < (uint64_t{1} << 32); ++m, u += 65537) {
      const auto bits = static_cast<uint32_t>(u);
      std::memcpy(&in[m], &bits, 4);
    }
    exp_avx2(in, got, m);
    exp_scalar(in, want, m);
    if (std::memcmp(got, want, sizeof(float) * static_cast<size_t>(m)) != 0) return false;
  }
  for (int m = 0; m < kBlock; ++m) in[m] = -104.f + 0.125f * static_cast<float>(m) * 0.8125f;
  // The only two floats whose result depends on r being fused (see exp4).
  const uint32_t fused_r[2] = {0x4202422f, 0xc27c65d9};
  std::memcpy(in, fused_r, sizeof fused_r);
  exp_avx2(in, got, kBlock);
  exp_scalar(in, want, kBlock);
  return std::memcmp(got, want, sizeof got) == 0;
}
#endif

bool use_simd() {
#if HS_AVX2
  static const bool ok = simd_matches_libm();
  return ok;
#else
  return false;
#endif
}

}  // namespace

void exp_f32(const float* x, float* y, int64_t n) {
#if HS_AVX2
  if (use_simd()) {
    exp_avx2(x, y, n);
    return;
  }
#endif
  exp_scalar(x, y, n);
}

bool exp_f32_is_vectorized() { return use_simd(); }

bool exp_f32_simd_unchecked(const float* x, float* y, int64_t n) {
#if HS_AVX2
  if (!cpu_has_avx2_fma()) return false;
  exp_avx2(x, y, n);
  return true;
#else
  (void)x;
  (void)y;
  (void)n;
  return false;
#endif
}

}  // namespace hs::kernels
