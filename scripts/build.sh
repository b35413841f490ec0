#!/usr/bin/env bash
# Configures and builds gsa in build/ (Release, ccache when present). Extra arguments go to the build step,
# e.g. scripts/build.sh --target gsa. Needs scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(cat build/python 2>/dev/null || command -v python3)
jobs=${GSA_JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$py" ${GSA_CMAKE_ARGS:-} >build/configure.log 2>&1 \
  || { cat build/configure.log; exit 1; }
cmake --build build -j "$jobs" "$@"
