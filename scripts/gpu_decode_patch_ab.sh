#!/usr/bin/env bash
# scripts/gpu_decode_patch_ab.sh VARIANT... [-- BENCH_ARG...]: changes to the decode step's kernels (sparse decode,
# chunk selection, skinny GEMM and step ops) checked and timed against the tree in one device call. A VARIANT is a
# PATCH (e.g. a file of docs/experiments/) or env:NAME=VALUE[,...] (the tree's build run with those variables, for
# a switch not yet on by default). Builds the tree, then the tree with each PATCH applied alone (an incremental
# build each) and on each build runs the selection tests (`test_attention --gtest_filter='Selection.*'`: the
# float64 reference selection), `test_sparse_decode` (the float64 oracle and the split merge's bits),
# `test_decode_plan`, `test_serving_engine`, `test_model`, `test_skinny_gemm`, `test_skinny_rope_linear` and
# `test_decode_step_ops` on CUDA (an env variant: the model's decode tests under its variables), compute-sanitizer
# memcheck on the fused GEMM's test (tree) and on the first two (patches); then
# `gsa bench decode` (two levels at 128K and 1M unless BENCH_ARG... says otherwise) with every build in turn,
# twice, and the 1B model's per-token latency (`gsa bench serve`, three levels, 32K and 128K) with every variant in
# turn while time is left.
# Logs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh
gsa_patch_args "$@" || exit $?
[ ${#bench_args[@]} -gt 0 ] || bench_args=(--levels 2 --tokens 131072,1048576)
t0=$(date +%s)
# The decode-side tests of the build in build/ (LABEL: its name) by KIND: tree (all, and compute-sanitizer memcheck
# on the fused GEMMs' tests, whose kernels no variable switches), patch (all, memcheck on the selection's and the
# sparse decode's), env (the model's decode tests, the ones the tree's variables can change).
decode_tests() {
  {
    echo "== $1"
    {
      if [ "$2" = env ]; then
        gsa_test_specs test_decode_plan test_serving_engine test_model
      else
        gsa_test_specs "test_attention --gtest_filter='Selection.*'" test_sparse_decode test_decode_plan \
          test_serving_engine test_model test_skinny_gemm test_skinny_rope_linear test_decode_step_ops
      fi
      if [ "$2" = tree ]; then
        gsa_memcheck_specs test_skinny_rope_linear
      elif [ "$2" = patch ]; then
        gsa_memcheck_specs "test_attention --gtest_filter='Selection.*'" test_sparse_decode
      fi
    } | gsa_parallel_lines  # side by side (gpu_env.sh)
  } 2>&1 | tee -a "$out/tests.txt"
}
targets=(gsa test_attention test_sparse_decode test_decode_plan test_serving_engine test_model test_skinny_gemm
  test_skinny_rope_linear test_decode_step_ops)
GSA_JOBS=16 scripts/gpu_build.sh "$out/build_tree" "${targets[@]}" || exit 1
cp build/launcher/gsa /tmp/gsa_tree
decode_tests tree tree
names=tree
builds=tree  # gsa bench decode (one layer's attention: no GEMM) runs the builds, not the env variants
for i in "${!env_variants[@]}"; do
  vars=${env_variants[$i]}
  gsa_env_binary "env$i" "$vars"
  names="$names env$i"
  (export ${vars//,/ }; decode_tests "env$i: $vars" env)
done
for i in "${!patches[@]}"; do
  f=${patches[$i]}
  git apply "$f" || exit 1
  GSA_JOBS=16 scripts/gpu_build.sh "$out/build_patch$i" "${targets[@]}" || exit 1
  cp build/launcher/gsa /tmp/gsa_patch$i
  names="$names patch$i"
  builds="$builds patch$i"
  decode_tests "patch$i: $f" patch
  git apply -R "$f" || exit 1
done
echo "builds and tests done at $(( $(date +%s) - t0 )) s"
gsa_rounds "$builds" bench decode "${bench_args[@]}" | tee "$out/bench_decode_ab.txt"
echo "bench done at $(( $(date +%s) - t0 )) s"
for v in $names $names; do
  [ $(( $(date +%s) - t0 )) -gt 520 ] && break
  echo "== $v"
  timeout 40 /tmp/gsa_$v bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
    --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^latency"
done 2>&1 | tee "$out/bench_serve_ab.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
