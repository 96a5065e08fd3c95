#!/usr/bin/env bash
# headsplit's runtime side by side with llama.cpp on the same weights, on this machine; writes
# bench/results/vs-llamacpp.json and bench/results/vs-llamacpp.md.
#
# Usage: scripts/bench-vs-llamacpp.sh [options]
#   --full          the full grid: SmolLM2-135M, Llama-3.2-1B and stories260K shapes (default:
#                   SmolLM2-135M only, a few minutes on an idle 2-core machine)
#   --shapes LIST   comma-separated mkgguf.py shapes instead (smollm2-135m, llama3.2-1b,
#                   stories260k-gpt2)
#   -r N            interleaved repetitions (default 3); the figure is the median of N
#   -t LIST         thread counts (default 1,2)
#   --ctx N         headsplit context length C (default 1024)
#   --quiet         say in the results that nothing else ran on the machine (the default
#                   records "quiet": false: figures from a shared machine are indicative only)
#   --unsplit       also export each quantized pair without the MHA -> SHA split (--no-split)
#                   and time its decode (tg64) in every repetition: split vs unsplit decode
#   --export        also time, in every repetition, a 16a8w export with the default calibration
#                   text (wall seconds, peak RSS, calibration tokens/s) against llama.cpp's F16
#                   prefill (pp128 at the highest thread count) on the same GGUF: the issue's
#                   "calibration >= F16 prefill" and export-time figures
#   --note TEXT     a remark recorded in the results (e.g. why a thread count was left out)
#   --build DIR     optimized build holding bin/headsplit (default: build; built if missing)
#   --work DIR      keep GGUFs and artifacts here and reuse them (default: a temp dir, removed)
#   --out PREFIX    results prefix (default: bench/results/vs-llamacpp)
#
# For each shape, ../shared/anchors/llama.cpp/mkgguf.py writes one random-weight F16 GGUF;
# llama-quantize makes Q8_0 and Q4_0 from it and `headsplit export` makes 16a8w and
# 16a4w-block32 artifacts from the same file (C = --ctx, prefill AR-32, calibrated on five
# lines of the TinyStories sample: the weights are random, so calibration text does not change
# speed). stories260k-gpt2 (F = 172, not a multiple of 32) is compared as float: headsplit
# --quant none against llama.cpp F32. Pairs: 16a8w vs Q8_0, 16a4w-block32 vs Q4_0. Tests:
# tg64 (decode 64 tokens) and pp128 (prefill 128 tokens), at each thread count.
#
# One repetition = for each pair, one `headsplit bench ... -r 1 --compare-gguf` run (headsplit
# then llama-bench, each with its own warm-up), so the programs alternate and share the
# machine's state; the reported t/s is the median over repetitions, the ratio is
# headsplit / llama.cpp of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

shapes="smollm2-135m"
reps=3
threads="1,2"
ctx=1024
unsplit=false
export_bench=false
quiet=false
note=""
build=build
work=""
out=bench/results/vs-llamacpp
while [[ $# -gt 0 ]]; do
  case "$1" in
    --full) shapes="smollm2-135m,llama3.2-1b,stories260k-gpt2" ;;
    --shapes) shapes="$2"; shift ;;
    -r) reps="$2"; shift ;;
    -t) threads="$2"; shift ;;
    --ctx) ctx="$2"; shift ;;
    --unsplit) unsplit=true ;;
    --export) export_bench=true ;;
    --quiet) quiet=true ;;
    --note) note="$2"; shift ;;
    --build) build="$2"; shift ;;
    --work) work="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "bench-vs-llamacpp: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

shared="${HEADSPLIT_SHARED_DIR:-$root/../shared}"
anchor="$shared/anchors/llama.cpp"
for f in "$anchor/mkgguf.py" "$anchor/bin/llama-bench" "$anchor/bin/llama-quantize"; do
  [[ -e "$f" ]] || { echo "bench-vs-llamacpp: $f not found (the llama.cpp anchor)" >&2; exit 1; }
done
/usr/bin/python3 -c 'import numpy' 2>/dev/null ||
  { echo "bench-vs-llamacpp: mkgguf.py needs numpy (apt-get install python3-numpy)" >&2; exit 1; }
hs="$build/bin/headsplit"
if [[ ! -x "$hs" && "$build" == build ]]; then
  scripts/build.sh release >&2
fi
[[ -x "$hs" ]] || { echo "bench-vs-llamacpp: no $hs (give --build DIR)" >&2; exit 1; }

if [[ -z "$work" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work" "$(dirname "$out")"
calib="$work/calib.txt"
head -n 5 "$shared/data/tinystories/valid-sample.txt" >"$calib"
runs="$work/runs.jsonl"
: >"$runs"
exports="$work/exports.jsonl"
: >"$exports"
unsplit_runs="$work/unsplit.jsonl"
: >"$unsplit_runs"
calib_runs="$work/calibration.jsonl"
: >"$calib_runs"
load_start=$(cut -d' ' -f1 /proc/loadavg)

# pairs of a shape: "headsplit-quant llama.cpp-type"
# headsplit's C for a shape: --ctx, at most the model's trained context (stories260K: 512).
ctx_of() {
  case "$1" in
    stories260k*) echo $((ctx < 512 ? ctx : 512)) ;;
    *) echo "$ctx" ;;
  esac
}

pairs_of() {
  case "$1" in
    stories260k*) echo "none:F32" ;;
    *) echo "16a8w:Q8_0 16a4w-block32:Q4_0" ;;
  esac
}

# An artifact to (re-)export: missing, or one this build cannot load (e.g. an older format).
stale() { [[ ! -f "$1" ]] || ! "$hs" inspect --no-verify-checksum --no-plan "$1" >/dev/null 2>&1; }

IFS=, read -r -a shape_list <<<"$shapes"
for shape in "${shape_list[@]}"; do
  gguf="$work/$shape-f16.gguf"
  if [[ ! -f "$gguf" ]]; then
    echo "== $shape: writing $gguf" >&2
    /usr/bin/python3 "$anchor/mkgguf.py" "$shape" "$gguf" >&2
  fi
  for pair in $(pairs_of "$shape"); do
    quant=${pair%%:*} ltype=${pair##*:}
    lg="$work/$shape-${ltype,,}.gguf"
    if [[ ! -f "$lg" ]]; then
      "$anchor/bin/llama-quantize" "$gguf" "$lg" "$ltype" >"$work/quantize.log" 2>&1 ||
        { cat "$work/quantize.log" >&2; exit 1; }
    fi
    c=$(ctx_of "$shape")
    art="$work/$shape-$quant-c$c.hsa"
    if stale "$art"; then
      echo "== $shape: headsplit export --quant $quant --ctx-len $c" >&2
      /usr/bin/time -f '%e %M' -o "$work/time.txt" \
        "$hs" export -m "$gguf" --quant "$quant" --ctx-len "$c" --calib "$calib" -o "$art" \
        >"$work/export.log" 2>&1 || { cat "$work/export.log" >&2; exit 1; }
      read -r secs kib <"$work/time.txt"
      printf '{"shape":"%s","quant":"%s","seconds":%s,"max_rss_kib":%s,"bytes":%s}\n' \
        "$shape" "$quant" "$secs" "$kib" "$(stat -c %s "$art")" >>"$exports"
    fi
    mha="$work/$shape-$quant-mha-c$c.hsa"
    if [[ $unsplit == true && $quant != none ]] && stale "$mha"; then
      echo "== $shape: headsplit export --quant $quant --ctx-len $c --no-split" >&2
      "$hs" export -m "$gguf" --quant "$quant" --ctx-len "$c" --calib "$calib" --no-split \
        -o "$mha" >"$work/export.log" 2>&1 || { cat "$work/export.log" >&2; exit 1; }
    fi
  done
done

for ((r = 1; r <= reps; r++)); do
  for shape in "${shape_list[@]}"; do
    for pair in $(pairs_of "$shape"); do
      quant=${pair%%:*} ltype=${pair##*:}
      echo "== repetition $r/$reps: $shape headsplit $quant vs llama.cpp $ltype" >&2
      "$hs" bench -m "$work/$shape-$quant-c$(ctx_of "$shape").hsa" -p 128 -n 64 -t "$threads" -r 1 -o json \
        --compare-gguf "$work/$shape-${ltype,,}.gguf" >"$work/bench.json" 2>"$work/bench.err" ||
        { cat "$work/bench.err" >&2; exit 1; }
      variant=$(grep -o 'libggml-cpu-[a-z0-9_]*\.so' "$work/bench.err" | head -n 1 || true)
      /usr/bin/python3 - "$work/bench.json" "$shape" "$quant" "$ltype" "$r" "$variant" \
        >>"$runs" <<'EOF'
import json, sys
path, shape, quant, ltype, rep, variant = sys.argv[1:]
j = json.load(open(path))
print(json.dumps({"shape": shape, "quant": quant, "llama_type": ltype, "rep": int(rep),
                  "variant": variant, "headsplit": j["headsplit"], "llama.cpp": j["llama.cpp"]}))
EOF
      mha="$work/$shape-$quant-mha-c$(ctx_of "$shape").hsa"
      if [[ $unsplit == true && -f "$mha" ]]; then
        echo "== repetition $r/$reps: $shape headsplit $quant unsplit" >&2
        "$hs" bench -m "$mha" -p 0 -n 64 -t "$threads" -r 1 -o json >"$work/bench.json" \
          2>"$work/bench.err" || { cat "$work/bench.err" >&2; exit 1; }
        /usr/bin/python3 - "$work/bench.json" "$shape" "$quant" "$r" >>"$unsplit_runs" <<'EOF'
import json, sys
path, shape, quant, rep = sys.argv[1:]
j = json.load(open(path))
rows = j if isinstance(j, list) else j.get("headsplit", j)
print(json.dumps({"shape": shape, "quant": quant, "rep": int(rep), "unsplit": rows}))
EOF
      fi
    done
    # The default-calibration export against llama.cpp's F16 prefill (float shapes have no
    # calibration).
    if [[ $export_bench == true && $(pairs_of "$shape") != none:* ]]; then
      c=$(ctx_of "$shape") tmax=${threads##*,}
      echo "== repetition $r/$reps: $shape default-calibration export vs llama.cpp F16 pp128" >&2
      /usr/bin/time -f '%e %M' -o "$work/time.txt" "$hs" export -m "$work/$shape-f16.gguf" \
        --quant 16a8w --ctx-len "$c" -o "$work/calib-export.hsa" >"$work/export.log" 2>&1 ||
        { cat "$work/export.log" >&2; exit 1; }
      rm -f "$work/calib-export.hsa"
      read -r secs kib <"$work/time.txt"
      "$anchor/bin/llama-bench" -m "$work/$shape-f16.gguf" -p 128 -n 0 -t "$tmax" -r 1 -o json \
        >"$work/f16.json" 2>"$work/bench.err" || { cat "$work/bench.err" >&2; exit 1; }
      /usr/bin/python3 - "$work/export.log" "$work/f16.json" "$shape" "$r" "$secs" "$kib" "$tmax" \
        >>"$calib_runs" <<'EOF'
import json, re, sys
log, f16, shape, rep, secs, kib, th = sys.argv[1:]
m = re.search(r"calibrate +([0-9]+)/[0-9]+ tokens +done in ([0-9.]+)s \(([0-9.]+) tokens/s\)",
              open(log).read())
if not m:
    sys.exit(f"bench-vs-llamacpp: no calibration summary in {log}")
rows = json.load(open(f16))
print(json.dumps({"shape": shape, "rep": int(rep), "export_seconds": float(secs),
                  "max_rss_kib": int(kib), "calibration_tokens": int(m.group(1)),
                  "calibration_seconds": float(m.group(2)), "calibration_ts": float(m.group(3)),
                  "llama_cpp_f16_pp128_ts": rows[0]["avg_ts"], "threads": int(th)}))
EOF
    fi
  done
done

/usr/bin/python3 - "$runs" "$exports" "$out" "$quiet" "$ctx" "$reps" "$load_start" "$note" \
  "$unsplit_runs" "$calib_runs" <<'EOF'
import json, statistics, subprocess, sys, datetime
(runs_path, exports_path, out, quiet, ctx, reps, load_start, remark, unsplit_path,
 calib_path) = sys.argv[1:]
runs = [json.loads(l) for l in open(runs_path)]
calib_runs = [json.loads(l) for l in open(calib_path)]
unsplit_runs = [json.loads(l) for l in open(unsplit_path)]
exports = [json.loads(l) for l in open(exports_path)]
cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(
    ["lscpu"], capture_output=True, text=True).stdout.splitlines()
    if l.startswith("Model name")), "unknown")
flags = open("/proc/cpuinfo").read().split("flags", 1)[1].split("\n", 1)[0]
isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "avx_vnni")
       if f" {f}" in flags]
variants = sorted({r["variant"] for r in runs if r["variant"]})
test = lambda row: f"pp{row['n_prompt']}" if row["n_prompt"] > 0 else f"tg{row['n_gen']}"
cells = {}
for r in runs:
    for side in ("headsplit", "llama.cpp"):
        for row in r[side]:
            key = (r["shape"], r["quant"], r["llama_type"], test(row), row["n_threads"])
            c = cells.setdefault(key, {"headsplit": [], "llama.cpp": [], "ctx": {}})
            c[side].append(row["avg_ts"])
            c["ctx"][side] = row.get("n_ctx")  # llama-bench rows have none
results = []
for (shape, quant, ltype, t, th), c in sorted(cells.items()):
    h = statistics.median(c["headsplit"]) if c["headsplit"] else None
    l = statistics.median(c["llama.cpp"]) if c["llama.cpp"] else None
    results.append({
        "shape": shape, "headsplit_quant": quant, "llama_cpp_type": ltype, "test": t,
        "threads": th, "headsplit_ts": h, "llama_cpp_ts": l,
        "ratio": h / l if h and l else None,
        "headsplit_samples_ts": c["headsplit"], "llama_cpp_samples_ts": c["llama.cpp"],
        "headsplit_ctx": c["ctx"].get("headsplit"), "llama_cpp_ctx": c["ctx"].get("llama.cpp")})
# Split vs unsplit decode: the split artifact's tg rows (above) against the --no-split one's.
split_vs_unsplit = []
ucells = {}
for u in unsplit_runs:
    for row in u["unsplit"]:
        if row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
            ucells.setdefault((u["shape"], u["quant"], f"tg{row['n_gen']}", row["n_threads"]),
                              []).append(row["avg_ts"])
for (shape, quant, t, th), samples in sorted(ucells.items()):
    split = next((r for r in results if (r["shape"], r["headsplit_quant"], r["test"],
                                          r["threads"]) == (shape, quant, t, th)), None)
    us = statistics.median(samples)
    ss = split["headsplit_ts"] if split else None
    split_vs_unsplit.append({"shape": shape, "quant": quant, "test": t, "threads": th,
                             "split_ts": ss, "unsplit_ts": us,
                             "ratio": ss / us if ss and us else None, "unsplit_samples_ts": samples})
# Default-calibration exports: medians per shape; ratio = calibration t/s / llama.cpp F16 pp128.
calibration = []
for shape in sorted({c["shape"] for c in calib_runs}):
    rows = [c for c in calib_runs if c["shape"] == shape]
    med = lambda k: statistics.median(c[k] for c in rows)
    calibration.append({
        "shape": shape, "quant": "16a8w", "threads": rows[0]["threads"],
        "calibration_tokens": rows[0]["calibration_tokens"],
        "export_seconds": med("export_seconds"), "max_rss_mib": med("max_rss_kib") / 1024,
        "calibration_ts": med("calibration_ts"), "llama_cpp_f16_pp128_ts": med("llama_cpp_f16_pp128_ts"),
        "ratio": med("calibration_ts") / med("llama_cpp_f16_pp128_ts"), "samples": rows})
load_end = open("/proc/loadavg").read().split()[0]
doc = {
    "what": "headsplit runtime vs llama.cpp (llama-bench) on one random-weight F16 GGUF per "
            "shape (mkgguf.py); headsplit exports from the same GGUF; ratio = median headsplit "
            "t/s / median llama.cpp t/s over interleaved repetitions",
    "date_utc": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
    "quiet": quiet == "true",
    "note": ("measured with nothing else running" if quiet == "true" else
             "NOT a quiet run: the machine was shared with other jobs; figures are indicative "
             "only, re-run with --quiet on an idle machine"),
    "remark": remark,
    "cpu_model": cpu, "cpu_isa": isa, "nproc": len(open("/proc/cpuinfo").read().split("processor")) - 1,
    "llama_cpp": {"commit": "c392e50", "cpu_variant": variants,
                  "context": "llama-bench's per test: n_prompt + n_gen tokens"},
    "headsplit": {"context": int(ctx), "prefill": "AR-32 chunks", "decode": "AR-1 graph"},
    "repetitions": int(reps),
    "load_average_at_start": float(load_start), "load_average_at_end": float(load_end),
    "exports": exports, "results": results, "split_vs_unsplit": split_vs_unsplit,
    "calibration": calibration}
json.dump(doc, open(out + ".json", "w"), indent=2)
md = [f"# headsplit vs llama.cpp ({doc['date_utc']})", "",
      f"CPU: {cpu} ({doc['nproc']} cores; {', '.join(isa)}); llama.cpp c392e50 loaded "
      f"{', '.join(variants) or '?'}. {doc['note']} (load average {load_start} at start, "
      f"{load_end} at end).", "",
      f"headsplit: C = {ctx} (stories260K: at most 512, its trained context), prefill in AR-32 chunks, decode on AR-1. llama.cpp: llama-bench, "
      f"context n_prompt + n_gen. Medians of {reps} interleaved repetitions."
      + (f" {remark}" if remark else ""), "",
      "| shape | headsplit | llama.cpp | test | threads | headsplit t/s | llama.cpp t/s | ratio |",
      "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
fmt = lambda x: f"{x:.2f}" if x is not None else "-"
for r in results:
    md.append(f"| {r['shape']} | {r['headsplit_quant']} | {r['llama_cpp_type']} | {r['test']} | "
              f"{r['threads']} | {fmt(r['headsplit_ts'])} | {fmt(r['llama_cpp_ts'])} | "
              f"{fmt(r['ratio'])} |")
if split_vs_unsplit:
    md += ["", "Split (the artifact above) vs unsplit (`--no-split`) decode, same medians: ", "",
           "| shape | quant | test | threads | split t/s | unsplit t/s | split / unsplit |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in split_vs_unsplit:
        md.append(f"| {r['shape']} | {r['quant']} | {r['test']} | {r['threads']} | "
                  f"{fmt(r['split_ts'])} | {fmt(r['unsplit_ts'])} | {fmt(r['ratio'])} |")
if calibration:
    md += ["", "Default-calibration export (16a8w, the built-in calibration text; calibration runs "
           "one window per core) against llama.cpp F16 prefill, medians: ", "",
           "| shape | export s | peak RSS MiB | calibration tokens | calibration t/s | "
           "llama.cpp F16 pp128 t/s (threads) | ratio |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in calibration:
        md.append(f"| {c['shape']} | {c['export_seconds']:.1f} | {c['max_rss_mib']:.0f} | "
                  f"{c['calibration_tokens']} | {c['calibration_ts']:.1f} | "
                  f"{c['llama_cpp_f16_pp128_ts']:.1f} ({c['threads']}) | {c['ratio']:.2f} |")
if exports:
    md += ["", "Exports (this run): ", "",
           "| shape | quant | seconds | peak RSS MiB | artifact MiB |", "| --- | --- | ---: | ---: | ---: |"]
    for e in exports:
        md.append(f"| {e['shape']} | {e['quant']} | {e['seconds']} | "
                  f"{e['max_rss_kib'] / 1024:.0f} | {e['bytes'] / 2**20:.1f} |")
open(out + ".md", "w").write("\n".join(md) + "\n")
print(f"wrote {out}.json and {out}.md", file=sys.stderr)
EOF
