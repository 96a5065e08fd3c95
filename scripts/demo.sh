#!/usr/bin/env bash
# The main job: installs missing packages, builds, then exports the default model to an
# artifact and generates text with it (`headsplit demo`). Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release >/dev/null
exec build/bin/headsplit demo "$@"
