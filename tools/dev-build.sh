#!/usr/bin/env bash
# Incremental rebuild for developers (after editing the probe or CMakeLists.txt).
# Serialized with a lock, so parallel rebuilds of the one build dir never collide.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD"
exec flock /tmp/pyggml-build.lock pip install -e ".[test]" --no-build-isolation -q "$@"
