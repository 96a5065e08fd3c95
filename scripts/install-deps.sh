#!/usr/bin/env bash
# Installs the Debian packages headsplit needs, if any are missing (apt-get update first).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libfmt-dev nlohmann-json3-dev libcli11-dev libxxhash-dev libpcre2-dev
  libhwy-dev libflatbuffers-dev flatbuffers-compiler libedit-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "headsplit: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
