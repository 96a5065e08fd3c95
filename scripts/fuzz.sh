#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz) for as long as asked and keeps what they find.
#   scripts/fuzz.sh [-c CPU_SECONDS] [-t TIMEOUT_S] [target...]   (default: 60 s, every target)
# Builds build-fuzz/ (clang) when needed, generates the seed corpora, then runs each target in
# turn on one core until it has used CPU_SECONDS of CPU time, on its corpus (build-fuzz/fuzz-corpus/<t>,
# grown in place) and its saved crashers. A new crash, leak, timeout or OOM input is copied to
# tests/fuzz/regressions/<target>/ (commit it: the replay test runs it from then on) and the
# script exits 1. Prints per target: executions, coverage (cov), features (ft), corpus size and
# the CPU seconds the target used (user + system; libFuzzer's -max_total_time is wall-clock
# time, so the script runs rounds of it until the CPU time is spent).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
timeout=20
while getopts "c:t:" opt; do
  case "$opt" in
    c) seconds="$OPTARG" ;;
    t) timeout="$OPTARG" ;;
    *) echo "usage: scripts/fuzz.sh [-c CPU_SECONDS] [-t TIMEOUT_S] [target...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

if [ ! -x build-fuzz/bin/hs_fuzz_seeds ] || [ "${HS_FUZZ_REBUILD:-1}" = 1 ]; then
  HS_FUZZ_OPT="${HS_FUZZ_OPT:--O1}" scripts/build.sh fuzz
fi
corpus=build-fuzz/fuzz-corpus
# The file-reading targets write each input to a scratch file under $TMPDIR: keep that off the
# disk (a busy disk blocks the fuzzer in I/O and it uses a fraction of its core).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
build-fuzz/bin/hs_fuzz_seeds "$corpus" >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/targets/fuzz_*.cpp; do
    t="$(basename "$f" .cpp)"
    targets+=("${t#fuzz_}")
  done
fi

found=0
printf "%-18s %12s %8s %8s %8s %8s %s\n" target executions cov ft corpus cpu_s result
for t in "${targets[@]}"; do
  exe="build-fuzz/bin/fuzz_$t"
  regressions="tests/fuzz/regressions/$t"
  findings="$(mktemp -d)"
  log="build-fuzz/fuzz-$t.log"
  dict=()
  if [ -f "tests/fuzz/dicts/$t.dict" ]; then dict=(-dict="tests/fuzz/dicts/$t.dict"); fi
  mkdir -p "$corpus/$t" "$regressions"
  # Rounds of -max_total_time (wall-clock) until the target has used CPU_SECONDS of CPU time
  # (user + system): on a busy machine one round gets less than its wall time. Each round goes
  # on from the corpus the previous one grew; a finding ends the target.
  cpu=0 execs=0 rc=0 round=0
  : >"$log"
  while [ "$cpu" -lt "$seconds" ] && [ $rc -eq 0 ]; do
    round=$((round + 1))
    cpu_file="$findings/.cpu"
    set +e
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      /usr/bin/time -o "$cpu_file" -f "%U %S" "$exe" -max_total_time="$((seconds - cpu))" \
      -timeout="$timeout" -rss_limit_mb=2048 -max_len=1200000 -print_final_stats=1 \
      -artifact_prefix="$findings/" "${dict[@]}" "$corpus/$t" "$regressions" >>"$log" 2>&1
    rc=$?
    set -e
    used="$(awk 'END { if (NF == 2) printf "%.0f", $1 + $2 }' "$cpu_file" 2>/dev/null || true)"
    rm -f "$cpu_file"
    cpu=$((cpu + ${used:-0}))
    n="$(grep -E 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')"
    execs=$((execs + ${n:-0}))
    if [ "${used:-0}" -eq 0 ]; then break; fi  # nothing ran: do not spin
  done
  stats="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$stats")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$stats")"
  corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$stats")"
  result=ok
  shopt -s nullglob
  new=("$findings"/*)
  shopt -u nullglob
  if [ $rc -ne 0 ] || [ ${#new[@]} -gt 0 ]; then
    result="FOUND (exit $rc, log $log)"
    for f in "${new[@]}"; do cp "$f" "$regressions/"; echo "  saved $regressions/$(basename "$f")"; done
    found=1
  fi
  printf "%-18s %12s %8s %8s %8s %8s %s\n" "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
    "${cpu:-?}" "$result"
  rm -rf "$findings"
done
exit $found
