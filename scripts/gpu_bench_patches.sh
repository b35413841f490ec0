#!/usr/bin/env bash
# scripts/gpu_bench_patches.sh VARIANT... [-- BENCH_ARG...]: `gsa bench kernels` (8K, 32K and 128K unless
# BENCH_ARG... says otherwise) for the tree as it is and for each VARIANT: the tree with a PATCH applied (e.g. a file
# of docs/experiments/) or env:NAME=VALUE[,...] (the tree's build under those variables), built in one device call
# and run in turn, twice (the call's spread). Timing only: a patch that changes what the
# kernels compute goes through scripts/gpu_patch_ab.sh (the float64 oracle) first.
# Logs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
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
cp /tmp/gsa_variant_0 /tmp/gsa_tree
for e in "${env_variants[@]}"; do
  i=${#variants[@]}
  gsa_env_binary "variant_$i" "$e"
  variants+=("env:$e")
done
for round in 1 2; do
  for i in "${!variants[@]}"; do
    echo "== ${variants[$i]} (round $round)"
    timeout 100 "/tmp/gsa_variant_$i" bench kernels "${bench_args[@]}" 2>&1 | tail -4
  done
done 2>&1 | tee "$out/bench_patches.txt"
