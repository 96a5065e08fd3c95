#!/usr/bin/env bash
# Runs the lookahead benchmark and writes bench/results/lookahead.json.
# Usage: scripts/bench-lookahead.sh [build-dir] [lookahead_bench options...]
#   build-dir  an optimized build with benchmarks (default: build-runtime, configured here with
#              -DHS_BUILD_BENCH=ON if needed)
# lookahead_bench exports stories260K and a SmolLM2-135M-shaped model with random weights (16a8w,
# each with an AR-6 and an AR-16 lookahead graph) into a temp dir, then measures plain AR-1
# decoding and lookahead decoding (N,W,G = 2,3,3 on AR-6, 3,4,4 on AR-16, 3,8,8 on AR-32):
# tokens per step, decode tokens/s, the cost of a step against an AR-1 step. A few minutes on an
# idle 2-core machine; results are only meaningful when nothing else is running.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-runtime}"
shift || true
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHS_WERROR=ON \
    -DHS_BUILD_BENCH=ON >/dev/null
fi
ninja -C "$build" lookahead_bench >/dev/null
mkdir -p bench/results
out=bench/results/lookahead.json
"$build/bin/lookahead_bench" "$@" >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
