#!/usr/bin/env bash
# The layering check (a ctest): every `#include "headsplit/<lib>/..."` in src/ and include/
# must be an edge `<owner> -> <lib>` allowed by docs/layering.txt, the allowed edges must have
# no cycle, and every library dependency declared in src/CMakeLists.txt (hs_library DEPS) must
# be allowed too. Prints the include graph it found (lowest layer first).
#   scripts/check-layering.sh [--root DIR] [--allowed FILE]
# Exit status: 0 when every edge is allowed, 1 on a violation (each one named with its file,
# line and edge), 2 on a usage or input error.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
allowed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --allowed) allowed="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "check-layering: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
allowed="${allowed:-$root/docs/layering.txt}"
shown="${allowed#"$root"/}"  # for messages: relative to the root when inside it
[ -f "$allowed" ] || { echo "check-layering: $allowed: no such file" >&2; exit 2; }

declare -A known=()  # library -> 1
declare -A ok=()     # "lib dep" -> 1
pairs=""             # "dep lib" lines for tsort (dep below lib)
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line="${line%%#*}"
  [ -z "${line//[[:space:]]/}" ] && continue
  if [[ ! "$line" =~ ^[[:space:]]*([a-z_]+):(.*)$ ]]; then
    echo "check-layering: $shown:$lineno: expected 'lib: dep dep ...', found '$line'" >&2
    exit 2
  fi
  lib="${BASH_REMATCH[1]}"
  known[$lib]=1
  pairs+="$lib $lib"$'\n'
  for dep in ${BASH_REMATCH[2]}; do
    ok["$lib $dep"]=1
    pairs+="$dep $lib"$'\n'
  done
done < "$allowed"

status=0
for key in "${!ok[@]}"; do
  dep="${key#* }"
  if [ -z "${known[$dep]:-}" ]; then
    echo "check-layering: $shown: '${key% *}' may use '$dep', which has no line of its own" >&2
    status=1
  fi
done
if ! order="$(printf '%s' "$pairs" | tsort 2>&1)"; then
  echo "check-layering: $shown: the allowed edges have a cycle:" >&2
  printf '%s\n' "$order" | grep 'tsort' >&2
  exit 1
fi

# Include edges actually used: "lib dep" -> 1.
declare -A used=()
cd "$root"
while IFS= read -r hit; do
  file="${hit%%:*}"
  rest="${hit#*:}"
  line="${rest%%:*}"
  text="${rest#*:}"
  case "$file" in
    src/*) owner="${file#src/}"; owner="${owner%%/*}" ;;
    include/headsplit/*) owner="${file#include/headsplit/}"; owner="${owner%%/*}" ;;
    *) continue ;;
  esac
  [[ "$text" =~ \"headsplit/([a-z_]+)/ ]] || continue
  dep="${BASH_REMATCH[1]}"
  [ "$dep" = "$owner" ] && continue
  if [ -z "${known[$owner]:-}" ]; then
    echo "$file:$line: library '$owner' is not in $shown" >&2
    status=1
  elif [ -z "${ok["$owner $dep"]:-}" ]; then
    echo "$file:$line: includes headsplit/$dep/: edge $owner -> $dep is not allowed by $shown" >&2
    status=1
  fi
  used["$owner $dep"]=1
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"headsplit/' src include 2>/dev/null || true)

# Library dependencies declared to CMake.
if [ -f src/CMakeLists.txt ]; then
  while IFS= read -r hit; do
    line="${hit%%:*}"
    text="${hit#*:}"
    [[ "$text" =~ hs_library\(([a-z_]+)[[:space:]] ]] || continue
    lib="${BASH_REMATCH[1]}"
    for word in $text; do
      word="${word%)}"
      [[ "$word" =~ ^hs_([a-z_]+)$ ]] || continue
      dep="${BASH_REMATCH[1]}"
      if [ -z "${ok["$lib $dep"]:-}" ]; then
        echo "src/CMakeLists.txt:$line: hs_library($lib) depends on hs_$dep: edge $lib -> $dep is not allowed by $shown" >&2
        status=1
      fi
    done
  done < <(grep -n 'hs_library(' src/CMakeLists.txt || true)
fi

# The include graph, lowest layer first: "lib <- deps it includes".
edges=${#used[@]}
echo "layering: ${#known[@]} libraries, $edges include edges between them ($shown)"
for lib in $order; do
  deps=""
  for d in $order; do
    [ -n "${used["$lib $d"]:-}" ] && deps+=" $d"
  done
  printf '  %-10s <-%s\n' "$lib" "${deps:- (nothing)}"
done
if [ "$status" -ne 0 ]; then
  echo "layering: FAILED (see the lines above)" >&2
else
  echo "layering: every include edge is allowed"
fi
exit "$status"
