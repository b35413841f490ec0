#!/usr/bin/env bash
# Session 22, call 4: backward item orders, bench only (main; windows window-major; windows longest-first; main's
# cut longest-first by first query tile), each twice in turn. Ran on cf7ba32 (the patches apply there only); from
# the repository root: bash docs/results/session22/call4.sh. scripts/gpu_bench_patches.sh does the same in general.
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
for v in main s22-window-items s22-window-items-longest s22-longest-by-start; do
  patch=docs/experiments/$v.patch
  [ -f "$patch" ] || patch=docs/results/session22/$v.patch
  [ $v = main ] || git apply "$patch" || exit 1
  GSA_JOBS=16 scripts/gpu_build.sh "$out/$v" gsa || exit 1
  cp build/launcher/gsa /tmp/gsa_$v
  [ $v = main ] || git apply -R "$patch" || exit 1
done
for round in 1 2; do
  for v in main s22-window-items s22-window-items-longest s22-longest-by-start; do
    echo "== $v (round $round)"
    timeout 60 /tmp/gsa_$v bench kernels 2>&1 | tail -3
  done
done 2>&1 | tee "$out/bench_orders.txt"
