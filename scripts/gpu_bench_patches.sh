#!/usr/bin/env bash
# scripts/gpu_bench_patches.sh PATCH... [-- BENCH_ARG...]: `gsa bench kernels` (8K, 32K and 128K unless BENCH_ARG...
# says otherwise) for the tree as it is and for the tree with each PATCH applied (e.g. files of docs/experiments/),
# built in one device call and run in turn, twice (the call's spread). Timing only: a patch that changes what the
# kernels compute goes through scripts/gpu_patch_ab.sh (the float64 oracle) first. Logs go to $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh
gsa_patch_args "$@" || exit $?
[ ${#bench_args[@]} -gt 0 ] || bench_args=(--tokens 8192,32768,131072)
variants=(tree "${patches[@]}")
for i in "${!variants[@]}"; do
  v=${variants[$i]}
  [ "$v" = tree ] || git apply "$v" || exit 1
  GSA_JOBS=16 scripts/gpu_build.sh "$out/build_$i" gsa || exit 1
  cp build/launcher/gsa "/tmp/gsa_variant_$i"
  [ "$v" = tree ] || git apply -R "$v" || exit 1
done
for round in 1 2; do
  for i in "${!variants[@]}"; do
    echo "== ${variants[$i]} (round $round)"
    timeout 100 "/tmp/gsa_variant_$i" bench kernels "${bench_args[@]}" 2>&1 | tail -4
  done
done 2>&1 | tee "$out/bench_patches.txt"
