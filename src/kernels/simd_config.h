// Highway configuration shared by every SIMD translation unit of the kernels library; include it
// before any hwy header so all of them compile (and dispatch over) the same set of targets.
// SSSE3 is left out: SSE4 covers 128-bit x86 and every x86-64 CPU since 2008 has it.
#pragma once

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
