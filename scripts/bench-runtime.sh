#!/usr/bin/env bash
# Runs the runtime benchmark and writes bench/results/runtime.json.
# Usage: scripts/bench-runtime.sh [build-dir] [runtime_bench options...]
#   build-dir  an optimized build with benchmarks (default: build-runtime, configured here with
#              -DHS_BUILD_BENCH=ON if needed)
# runtime_bench exports stories260K and three SmolLM2-135M-shaped 16a8w artifacts (C = 1024:
# split, unsplit, SHA from source with per-head caches) into a temp dir, then measures decode
# and AR-32 prefill tokens/s at 1 and 2 threads (medians of >= 3 runs) against the measured
# read bandwidth. Takes about two minutes on an idle 2-core machine; results are only
# meaningful when nothing else is running.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-runtime}"
shift || true
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHS_WERROR=ON \
    -DHS_BUILD_BENCH=ON >/dev/null
fi
ninja -C "$build" runtime_bench >/dev/null
mkdir -p bench/results
out=bench/results/runtime.json
"$build/bin/runtime_bench" "$@" >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
