#!/usr/bin/env bash
# The lowering study (issue 6): MHA + split versus SHA from source on random-weight models in
# the stories260K, SmolLM2-135M and Llama-3.2-1B shapes. Builds bench/lowering_bench (release),
# runs it and writes bench/results/lowering.json, lowering.md (Markdown table) and lowering.png
# (gnuplot). Extra arguments go to the benchmark, e.g. --shapes smollm2-135m --reps 5.
# Defaults: 8 x 128 calibration tokens (the 1B shape: 2 x 128), 3 runs per path (the 1B shape:
# 1), AR-32 prefill + AR-1 decode, C = 1024, 16a8w.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${HS_BENCH_BUILD_DIR:-build}"
results=bench/results

if ! command -v gnuplot >/dev/null 2>&1; then
  echo "bench-lowering: installing gnuplot-nox"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends gnuplot-nox
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHS_WERROR=ON >/dev/null
cmake --build "$build" --target lowering_bench

mkdir -p "$results"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$build/bin/lowering_bench" --out "$results/lowering.json" --markdown "$tmp/table.md" \
  --plot-data "$tmp/plot.dat" "$@"

{
  echo "# Lowering benchmark"
  echo
  echo "Produced by \`scripts/bench-lowering.sh${*:+ $*}\` on $(nproc) cores ($(date -u +%Y-%m-%d))."
  echo
  cat "$tmp/table.md"
} >"$results/lowering.md"

gnuplot <<EOF
set terminal pngcairo size 1100,450 noenhanced font ",10"
set output "$results/lowering.png"
set multiplot layout 1,2 title "MHA + split vs SHA from source: export wall time and peak RSS (16a8w, AR-32 + AR-1, C 1024)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set grid ytics
set logscale y
set ylabel "seconds (log)"
set title "end-to-end export (median)"
plot "$tmp/plot.dat" using 2:xtic(1) title "MHA + split", "" using 3 title "SHA from source", \
     "" using 4 title "MHA calibrate", "" using 5 title "SHA calibrate"
unset logscale y
set ylabel "GiB"
set title "peak RSS of any phase"
set yrange [0:*]
plot "$tmp/plot.dat" using 6:xtic(1) title "MHA + split", "" using 7 title "SHA from source"
unset multiplot
EOF
echo "bench-lowering: wrote $results/lowering.json, lowering.md, lowering.png"
