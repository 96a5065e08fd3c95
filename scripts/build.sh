#!/usr/bin/env bash
# Configures and builds headsplit. Usage: scripts/build.sh [release|asan|fuzz]
#   release -> build/       (optimized, warnings as errors)
#   asan    -> build-asan/  (AddressSanitizer + UndefinedBehaviorSanitizer)
#   fuzz    -> build-fuzz/  (clang, libFuzzer + ASan + UBSan; only the fuzz targets; -O0, or
#                           HS_FUZZ_OPT)
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
jobs="$(nproc)"
launcher=()
# ccache (installed by install-deps.sh) makes rebuilds of unchanged files free, and lets the
# sanitizer build reuse the release build's test objects (tests/CMakeLists.txt).
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
case "$kind" in
  release)
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHS_WERROR=ON "${launcher[@]}" >/dev/null
    cmake --build build -j "$jobs"
    ;;
  asan)
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=ASan -DCMAKE_CXX_FLAGS_ASAN=-O1 -DHS_SANITIZE=ON \
      -DHS_WERROR=ON -DHS_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
    cmake --build build-asan -j "$jobs"
    ;;
  fuzz)
    # -O0 by default (half the compile time; CI runs each target for a fixed number of runs);
    # scripts/fuzz.sh builds with HS_FUZZ_OPT=-O1 for long runs.
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${HS_FUZZ_OPT:--O0} -gline-tables-only" -DHS_FUZZ=ON \
      -DHS_BUILD_BENCH=OFF \
      "${launcher[@]}" >/dev/null
    cmake --build build-fuzz -j "$jobs" --target hs_fuzz_targets
    ;;
  *)
    echo "usage: scripts/build.sh [release|asan|fuzz]" >&2
    exit 2
    ;;
esac
