#!/usr/bin/env bash
# scripts/gpu_forward_ab.sh [--patch FILE] SCHEDULE...: an A/B of the Hopper forward's schedules in one device call.
# Applies FILE (a patch of docs/experiments/, optional) to this copy of the tree, builds, runs
# test_sparse_attention_gpu (the float64 oracle) under GSA_SM90_FORWARD=SCHEDULE for each schedule, then
# `gsa bench kernels --no-backward` at 8K, 32K and 128K for each schedule, twice in turn (the call's spread).
# e.g. bash scripts/gpu_forward_ab.sh --patch docs/experiments/s20-persistent-flat.patch 7 8
# Logs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
patch_file=
if [ "${1:-}" = --patch ]; then
  patch_file=${2:?--patch needs a file}
  shift 2
fi
[ $# -ge 1 ] || { echo "usage: $0 [--patch FILE] SCHEDULE..." >&2; exit 2; }
if [ -n "$patch_file" ]; then
  git apply "$patch_file" || { echo "gpu_forward_ab: $patch_file does not apply to this tree" >&2; exit 1; }
fi
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_sparse_attention_gpu || exit 1
for schedule in "$@"; do
  echo "GSA_SM90_FORWARD=$schedule: $(GSA_SM90_FORWARD=$schedule timeout 150 ./build/tests/test_sparse_attention_gpu 2>&1 \
    | tail -1)" | tee -a "$out/tests.txt"
done
for round in 1 2; do
  for schedule in "$@"; do
    echo "GSA_SM90_FORWARD=$schedule (round $round)"
    GSA_SM90_FORWARD=$schedule timeout 120 ./build/launcher/gsa bench kernels --tokens 8192,32768,131072 --no-backward \
      2>&1 | tail -3
  done
done | tee "$out/bench_forward_ab.txt"
