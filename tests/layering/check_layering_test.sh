#!/usr/bin/env bash
# Tests of scripts/check-layering.sh on small temporary trees: a good tree passes and prints
# its graph; a bad include fails naming the file, the line and the edge; so do a bad include
# in a public header, a cycle among the allowed edges, a CMake dependency that is not allowed
# and an undeclared library.
#   tests/layering/check_layering_test.sh <path of check-layering.sh>
set -u
checker="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0

# low <- high: high may include low.
make_tree() {
  rm -rf "$tmp/t"
  mkdir -p "$tmp/t/src/low" "$tmp/t/src/high" "$tmp/t/include/headsplit/low" "$tmp/t/docs"
  printf '# allowed\nlow:\nhigh: low  # high uses low\n' > "$tmp/t/docs/layering.txt"
  printf '// a low header\n#pragma once\n' > "$tmp/t/include/headsplit/low/a.h"
  printf '#include "headsplit/low/a.h"\n#include "local.h"\n' > "$tmp/t/src/high/b.cpp"
  printf 'hs_library(low DEPS fmt::fmt)\nhs_library(high DEPS hs_low)\n' > "$tmp/t/src/CMakeLists.txt"
}

# expect <pass|fail> <case> <fragment the output must contain>: runs the checker on the tree.
expect() {
  local out status
  out="$(bash "$checker" --root "$tmp/t" 2>&1)"
  status=$?
  if { [ "$1" = pass ] && [ "$status" -ne 0 ]; } || { [ "$1" = fail ] && [ "$status" -ne 1 ]; }; then
    echo "FAIL: $2: expected to $1, exit status $status"
  elif ! grep -qF -- "$3" <<<"$out"; then
    echo "FAIL: $2: output lacks '$3'"
  else
    return 0
  fi
  echo "--- checker output:"
  echo "$out"
  failures=$((failures + 1))
}

make_tree
expect pass "good tree" "high       <- low"

make_tree
printf '// low must not see high\n#include "headsplit/high/b.h"\n' > "$tmp/t/src/low/c.cpp"
expect fail "bad include" \
  "src/low/c.cpp:2: includes headsplit/high/: edge low -> high is not allowed by docs/layering.txt"

make_tree
printf '#pragma once\n#include "headsplit/high/x.h"\n' > "$tmp/t/include/headsplit/low/bad.h"
expect fail "bad include in a public header" "include/headsplit/low/bad.h:2: includes headsplit/high/"

make_tree
printf 'low: high\nhigh: low\n' > "$tmp/t/docs/layering.txt"
expect fail "cycle among the allowed edges" "the allowed edges have a cycle"

make_tree
printf 'hs_library(low DEPS hs_high)\nhs_library(high DEPS hs_low)\n' > "$tmp/t/src/CMakeLists.txt"
expect fail "CMake dependency" "src/CMakeLists.txt:1: hs_library(low) depends on hs_high: edge low -> high"

make_tree
mkdir -p "$tmp/t/src/stray"
printf '#include "headsplit/low/a.h"\n' > "$tmp/t/src/stray/s.cpp"
expect fail "undeclared library" "src/stray/s.cpp:1: library 'stray' is not in docs/layering.txt"

if [ "$failures" -ne 0 ]; then
  echo "check_layering_test: $failures failure(s)"
  exit 1
fi
echo "check_layering_test: all cases passed"
