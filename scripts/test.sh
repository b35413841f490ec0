#!/usr/bin/env bash
# The whole test suite: installs what is missing (test oracles included), builds everything, runs ctest
# (labels unit, e2e; gpu tests skip themselves without a device). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests --demo  # --demo: matplotlib, for the demo smoke test
scripts/build.sh
export OMP_NUM_THREADS=1
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900 "$@"
