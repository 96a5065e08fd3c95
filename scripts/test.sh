#!/usr/bin/env bash
# The whole test suite: installs missing packages, builds, runs every test in the optimized
# build and again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs="$(nproc)"

echo "== build (release)"
scripts/build.sh release
echo "== tests (release)"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600

echo "== build (asan+ubsan)"
scripts/build.sh asan
echo "== tests (asan+ubsan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900 -LE no-sanitizer

echo "== build (fuzz: clang + libFuzzer + asan+ubsan)"
scripts/build.sh fuzz
echo "== fuzz (each target a fixed number of runs from its seeds, plus the saved crashers)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-fuzz --output-on-failure -j "$jobs" -L fuzz
echo "== all tests passed"
