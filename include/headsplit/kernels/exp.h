// exp over float32 buffers, bit-identical to the C library's std::exp(float) (expf).
//
// On x86-64 with AVX2 + FMA the kernel evaluates glibc's expf algorithm (the ARM optimized-
// routines expf that glibc >= 2.27 ships; __expf_fma is the variant its ifunc picks on such
// CPUs) 4 lanes at a time in double:
//   kd = fma(32/ln2, x, 0x1.8p52) (x * 32/ln2 rounded to an integer k), r = fma(32/ln2, x, -(kd - 0x1.8p52))
//   (glibc writes z = (32/ln2) * x, z + 0x1.8p52 and z - kd; GCC fuses both into FMAs),
//   s = 2^(k/32) from a 32-entry table and the exponent bits of k,
//   y = fma(fma(C0, r, C1), r*r, fma(C2, r, 1)) * s,  result float(y).
// Lanes outside glibc's fast path (|x| >= 88, NaN) take std::exp one by one; x below
// -0x1.9fe368p6f (and -inf) give +0 as glibc's underflow branch does.
// Whether this matches is checked once per process against std::exp on a strided sample of all
// floats (and the CPU features); when it does not, every call is std::exp element by element.
#pragma once

#include <cstdint>

namespace hs::kernels {

// y[i] = std::exp(x[i]) for i < n, the same bits (x == y allowed; otherwise no overlap).
void exp_f32(const float* x, float* y, int64_t n);

// Whether exp_f32 runs the SIMD path in this process (the CPU has AVX2 + FMA and the startup
// check matched the C library).
bool exp_f32_is_vectorized();

// The SIMD path without the startup check (for the exhaustive test): false, and y untouched,
// where the CPU or build has no such path.
bool exp_f32_simd_unchecked(const float* x, float* y, int64_t n);

}  // namespace hs::kernels
