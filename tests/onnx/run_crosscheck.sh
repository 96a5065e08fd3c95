#!/usr/bin/env bash
# ctest Onnx.OrtCrosscheck: run_crosscheck.sh DATA_TOOL BUILD_DIR SOURCE_DIR
# Installs onnxruntime-node 1.30.0 into BUILD_DIR/ort when missing (npm; the package's install
# script would download GPU libraries: skipped, the CPU library is inside the package), writes
# the cross-check data with DATA_TOOL (onnx_crosscheck_data) and runs ort_crosscheck.mjs.
# Exit 77 (ctest: skipped) only when node or npm is not installed.
set -euo pipefail
tool="$1"
build="$2"
source="$3"
version=1.30.0

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "SKIP: npm/node not found: the ONNX Runtime cross-check needs Node.js and npm" \
       "(scripts/install-deps.sh installs them)"
  exit 77
fi
stories="${HEADSPLIT_SHARED_DIR:-$source/../shared}/models/stories260K/stories260K.bin"
if [ ! -f "$stories" ]; then
  echo "SKIP: $stories not found: the cross-check exports stories260K (set HEADSPLIT_SHARED_DIR)"
  exit 77
fi
prefix="$build/ort"
package="$prefix/node_modules/onnxruntime-node/package.json"
if [ ! -f "$package" ] || ! grep -q "\"version\": \"$version\"" "$package"; then
  echo "installing onnxruntime-node@$version into $prefix"
  mkdir -p "$prefix"
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --prefix "$prefix" --ignore-scripts \
    --no-audit --no-fund --loglevel=error "onnxruntime-node@$version"
fi

data="$build/onnx-crosscheck"
rm -rf "$data"
mkdir -p "$data"
"$tool" "$data"
node "$source/tests/onnx/ort_crosscheck.mjs" "$data" "$prefix"
