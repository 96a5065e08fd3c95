#!/usr/bin/env bash
# Installs the Debian packages headsplit needs, if any are missing (apt-get update first).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libfmt-dev nlohmann-json3-dev libcli11-dev libxxhash-dev libpcre2-dev libicu-dev
  libhwy-dev libflatbuffers-dev flatbuffers-compiler libedit-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox
  libonnx-dev libprotobuf-dev protobuf-compiler
  clang libclang-rt-14-dev
  ccache time
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm for the ONNX Runtime cross-check (ctest Onnx.OrtCrosscheck), from Debian
# only when no npm is on the PATH (a NodeSource nodejs ships its own npm and conflicts with
# Debian's npm package).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "headsplit: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
