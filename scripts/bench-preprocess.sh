#!/usr/bin/env bash
# Preprocess benchmark: the pass pipeline (split included) on a Llama-3.2-1B-shaped graph with
# random weights, AR-1 and AR-32. Writes bench/results/preprocess.json (one JSON object per line).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >/dev/null
out=bench/results/preprocess.json
tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
for ar in 1 32; do
  echo "preprocess_bench: llama3.2-1b shape, AR-$ar" >&2
  build/bin/preprocess_bench --shape llama3.2-1b --reps 5 --ar-len "$ar" >>"$tmp"
done
mv "$tmp" "$out"
trap - EXIT
cat "$out"
