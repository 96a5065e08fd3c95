#!/usr/bin/env bash
# Tests of scripts/check-layering.sh on small temporary trees: a good tree passes and prints
# its graph; a bad include fails naming the file, the line and the edge; so do a cycle among
# the allowed edges, a CMake dependency that is not allowed and an undeclared library.
#   tests/layering/check_layering_test.sh <path of check-layering.sh>
set -u
checker="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $1"
  echo "--- checker output:"
  echo "$2"
  failures=$((failures + 1))
}

# low <- high: high may include low.
make_tree() {
  rm -rf "$tmp/t"
  mkdir -p "$tmp/t/src/low" "$tmp/t/src/high" "$tmp/t/include/headsplit/low" "$tmp/t/docs"
  printf '# allowed\nlow:\nhigh: low  # high uses low\n' > "$tmp/t/docs/layering.txt"
  printf '// a low header\n#pragma once\n' > "$tmp/t/include/headsplit/low/a.h"
  printf '#include "headsplit/low/a.h"\n#include "local.h"\n' > "$tmp/t/src/high/b.cpp"
  printf 'hs_library(low DEPS fmt::fmt)\nhs_library(high DEPS hs_low)\n' > "$tmp/t/src/CMakeLists.txt"
}

run() { bash "$checker" --root "$tmp/t" 2>&1; }

make_tree
if out="$(run)"; then
  grep -qF "high       <- low" <<<"$out" || fail "good tree: no graph line 'high <- low'" "$out"
else
  fail "good tree was rejected" "$out"
fi

make_tree
printf '// low must not see high\n#include "headsplit/high/b.h"\n' > "$tmp/t/src/low/c.cpp"
if out="$(run)"; then
  fail "a bad include (low -> high) passed" "$out"
else
  grep -qF "src/low/c.cpp:2: includes headsplit/high/: edge low -> high is not allowed by docs/layering.txt" <<<"$out" ||
    fail "bad include: message does not name file, line and edge" "$out"
fi

make_tree
printf '#pragma once\n#include "headsplit/high/x.h"\n' > "$tmp/t/include/headsplit/low/bad.h"
if out="$(run)"; then
  fail "a bad include in a public header passed" "$out"
else
  grep -qF "include/headsplit/low/bad.h:2: includes headsplit/high/" <<<"$out" ||
    fail "bad header include: message does not name the file" "$out"
fi

make_tree
printf 'low: high\nhigh: low\n' > "$tmp/t/docs/layering.txt"
if out="$(run)"; then
  fail "a cycle among the allowed edges passed" "$out"
else
  grep -qF "the allowed edges have a cycle" <<<"$out" || fail "cycle: no message" "$out"
fi

make_tree
printf 'hs_library(low DEPS hs_high)\nhs_library(high DEPS hs_low)\n' > "$tmp/t/src/CMakeLists.txt"
if out="$(run)"; then
  fail "a CMake dependency low -> high passed" "$out"
else
  grep -qF "src/CMakeLists.txt:1: hs_library(low) depends on hs_high: edge low -> high" <<<"$out" ||
    fail "CMake dependency: message does not name the line and edge" "$out"
fi

make_tree
mkdir -p "$tmp/t/src/stray"
printf '#include "headsplit/low/a.h"\n' > "$tmp/t/src/stray/s.cpp"
if out="$(run)"; then
  fail "a library missing from layering.txt passed" "$out"
else
  grep -qF "src/stray/s.cpp:1: library 'stray' is not in docs/layering.txt" <<<"$out" ||
    fail "undeclared library: no message" "$out"
fi

if [ "$failures" -ne 0 ]; then
  echo "check_layering_test: $failures failure(s)"
  exit 1
fi
echo "check_layering_test: all cases passed"
