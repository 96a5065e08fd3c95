// The hand-written AVX2 kernels' target switch (qgemm_avx2*.cpp): HS_AVX2 is 1 on x86-64 with
// GCC or clang, where HS_AVX2_FN compiles a function for AVX2 + FMA + BMI2 (callers check the
// CPU at run time: avx2_supported()); 0 elsewhere, where those files build their fallbacks.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HS_AVX2 1
#define HS_AVX2_FN __attribute__((target("avx2,fma,bmi2")))
#else
#define HS_AVX2 0
#endif
