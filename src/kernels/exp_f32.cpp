// exp_f32 and silu_f32 (kernels/elementwise.h): std::exp (glibc's expf) eight lanes at a time,
// bit for bit.
//
// glibc's expf (since 2.27, from ARM's optimized-routines; sysdeps/ieee754/flt-32/e_expf.c) is
// evaluated in double: with N = 32, InvLn2N = N / ln 2, SHIFT = 1.5 * 2^52 and T[32] the
// table 2^(i/N) (bits minus i << 47),
//   kd = InvLn2N * x + SHIFT        (ki = bits(kd): round(x N / ln 2) in its low bits)
//   kd = kd - SHIFT,  r = InvLn2N * x - kd           (r in [-1/2, 1/2])
//   s  = double(T[ki mod N] + (ki << 47))             (2^(k/N))
//   y  = s * ((C0 r + C1) r^2 + (C2 r + 1)),  then rounded to float.
// On x86-64 CPUs with AVX2 and FMA glibc's ifunc runs __expf_fma, the same source compiled
// with FMA contraction. Its machine code (libm 2.36, checked with gdb) is, in this order:
//   kd = fma(InvLn2N, x, SHIFT); kd -= SHIFT; r = fma(InvLn2N, x, -kd);
//   z = fma(C0, r, C1); r2 = r * r; y = fma(C2, r, 1); y = fma(z, r2, y); y *= s; (float) y
// The AVX2 lanes below perform exactly these double operations, so each lane is the same bits
// as the scalar call. Inputs on glibc's slow path (|x| >= 88, inf, NaN: top 12 bits of
// |x| >= 0x42a) go through std::exp, a whole group of 8 at a time.
//
// Being the same bits rests on glibc's code, so the vector path is only used after a check at
// first use: AVX2 + FMA present, and the lanes equal std::exp on a sweep of inputs (every float
// in [-104, 89] at a stride of 2^10 bit patterns, both signs, the special values, and the two
// inputs where an evaluation without FMA contraction differs: kFmaWitnesses). On a
// CPU or libm that differs, every call falls back to std::exp (exp_f32_vectorized() says
// which). tests/kernels/exp_test.cpp compares the two over a sweep of all float bit patterns
// (HS_EXP_EXHAUSTIVE=1: every one of the 2^32).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "avx2_target.h"
#include "headsplit/kernels/elementwise.h"

namespace hs::kernels {

namespace {

// glibc's __exp2f_data: tab[32], invln2_scaled, poly_scaled[3], shift (the values of
// optimized-routines' exp2f_data.c; the same bits as libm 2.36's table).
constexpr uint64_t kTab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
constexpr uint64_t kInvLn2N = 0x40471547652b82fe;  // 0x1.71547652b82fep+0 * 32
constexpr uint64_t kC0 = 0x3ebc6af84b912394;       // 0x1.c6af84b912394p-5 / 32^3
constexpr uint64_t kC1 = 0x3f2ebfce50fac4f3;       // 0x1.ebfce50fac4f3p-3 / 32^2
constexpr uint64_t kC2 = 0x3f962e42ff0c52d6;       // 0x1.62e42ff0c52d6p-1 / 32
constexpr uint64_t kShift = 0x4338000000000000;    // 0x1.8p+52

// The only two floats on the fast path where the same algorithm evaluated without FMA
// contraction (glibc's __expf_sse2 form: separate multiplies and adds) rounds differently from
// the FMA form (found by running both over all 2^32 inputs); libm 2.36's __expf_fma gives the
// FMA form's value on both. They make the first-use check tell the two forms apart.
constexpr uint32_t kFmaWitnesses[] = {0x4202422f, 0xc27c65d9};  // 32.5646..., -63.0994...

void exp_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

#if HS_AVX2

HS_AVX2_FN inline __m256d bcast(uint64_t bits) {
  return _mm256_castsi256_pd(_mm256_set1_epi64x(static_cast<int64_t>(bits)));
}

// Four lanes of the fast path (|x| < 88).
HS_AVX2_FN inline __m128 exp4(__m128 xf) {
  const __m256d x = _mm256_cvtps_pd(xf);
  const __m256d inv = bcast(kInvLn2N), shift = bcast(kShift);
  __m256d kd = _mm256_fmadd_pd(inv, x, shift);
  const __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, shift);
  const __m256d r = _mm256_fmsub_pd(inv, x, kd);
  const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  const __m256i tab = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(kTab), idx, 8);
  const __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(tab, _mm256_slli_epi64(ki, 47)));
  const __m256d z = _mm256_fmadd_pd(bcast(kC0), r, bcast(kC1));
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(bcast(kC2), r, _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  y = _mm256_mul_pd(y, s);
  return _mm256_cvtpd_ps(y);
}

// Eight lanes; false (nothing written) when a lane is on glibc's slow path.
HS_AVX2_FN inline bool exp8(__m256 x, __m256* y) {
  // top12(x) & 0x7ff >= 0x42a  <=>  (bits(x) & 0x7fffffff) >= 0x42a00000 (|x| >= 80 + ..., inf, NaN)
  const __m256i abs = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fffffff));
  const __m256i slow = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x42a00000 - 1));
  if (!_mm256_testz_si256(slow, slow)) return false;
  const __m128 lo = exp4(_mm256_castps256_ps128(x));
  const __m128 hi = exp4(_mm256_extractf128_ps(x, 1));
  *y = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
  return true;
}

HS_AVX2_FN void exp_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v;
    if (exp8(_mm256_loadu_ps(x + i), &v)) {
      _mm256_storeu_ps(y + i, v);
    } else {
      exp_scalar(x + i, y + i, 8);
    }
  }
  exp_scalar(x + i, y + i, n - i);
}

// y = x / (1 + exp(-x)), ref::silu's float operations.
HS_AVX2_FN void silu_avx2(const float* x, float* y, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.f), one = _mm256_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    __m256 e;
    if (!exp8(_mm256_xor_ps(v, sign), &e)) {
      for (int64_t j = i; j < i + 8; ++j) y[j] = x[j] / (1.f + std::exp(-x[j]));
      continue;
    }
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
  }
  for (; i < n; ++i) y[i] = x[i] / (1.f + std::exp(-x[i]));
}

// The check at first use (see the top of the file).
bool vector_matches_libm() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return false;
  constexpr int64_t kBatch = 1024;
  float in[kBatch], got[kBatch];
  int64_t used = 0;
  bool same = true;
  auto flush = [&] {
    exp_avx2(in, got, used);
    for (int64_t j = 0; j < used; ++j) {
      const float want = std::exp(in[j]);
      same = same && std::memcmp(&want, &got[j], 4) == 0;
    }
    used = 0;
  };
  auto add = [&](float v) {
    in[used++] = v;
    if (used == kBatch) flush();
  };
  for (uint32_t sign : {0u, 0x80000000u}) {
    // |x| from 0 to 0x42b20000 (89.0), stride 2^10 patterns: every exponent, ~280k inputs.
    for (uint32_t b = 0; b <= 0x42b20000u; b += 1u << 10) {
      float v;
      const uint32_t bits = b | sign;
      std::memcpy(&v, &bits, 4);
      add(v);
    }
  }
  for (float v : {0.f, -0.f, 1.f, -1.f, 87.99f, -87.99f, 88.f, -88.f, 88.7f, 89.f, -103.9f,
                  -104.f, INFINITY, -INFINITY, NAN}) {
    add(v);
  }
  // The witnesses in a vector group of their own (a group with a slow-path lane, like the
  // specials above, goes through std::exp whole; a partial group is a scalar tail).
  flush();
  for (uint32_t bits : kFmaWitnesses) {
    float v;
    std::memcpy(&v, &bits, 4);
    add(v);
  }
  while (used % 8 != 0) add(1.f);
  flush();
  return same;
}

#endif  // HS_AVX2

bool use_vector() {
#if HS_AVX2
  static const bool ok = vector_matches_libm();
  return ok;
#else
  return false;
#endif
}

}  // namespace

bool exp_f32_vectorized() { return use_vector(); }

void exp_f32(const float* x, float* y, int64_t n) {
#if HS_AVX2
  if (use_vector()) {
    exp_avx2(x, y, n);
    return;
  }
#endif
  exp_scalar(x, y, n);
}

void silu_f32(const float* x, float* y, int64_t n) {
#if HS_AVX2
  if (use_vector()) {
    silu_avx2(x, y, n);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + std::exp(-x[i]));
}

}  // namespace hs::kernels
