#!/usr/bin/env bash
# scripts/gpu_decode_patch_ab.sh PATCH [BENCH_ARG...]: a change to the decode-side kernels (sparse decode, chunk
# selection) checked and timed against the tree without it in one device call. Applies PATCH (e.g. a file of
# docs/experiments/), builds, runs the selection tests (`test_attention --gtest_filter='Selection.*'`: the float64
# reference selection), `test_sparse_decode` (the float64 oracle and the split merge's bits), `test_decode_plan`
# and `test_serving_engine` on CUDA, and compute-sanitizer memcheck on the first two; then builds the tree without
# PATCH and runs `gsa bench decode` (two levels at 128K and 1M unless BENCH_ARG... says otherwise) for the two
# binaries in turn, twice, then the 1B model's per-token latency (`gsa bench serve`, three levels, 32K and 128K)
# for both in turn while time is left. Logs go to $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
patch_file=${1:?usage: $0 PATCH [BENCH_ARG...]}
shift
bench_args=("$@")
[ ${#bench_args[@]} -gt 0 ] || bench_args=(--levels 2 --tokens 131072,1048576)
git apply "$patch_file" || { echo "gpu_decode_patch_ab: $patch_file does not apply to this tree" >&2; exit 1; }
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_attention test_sparse_decode test_decode_plan test_serving_engine \
  || exit 1
cp build/launcher/gsa /tmp/gsa_patched
{
  echo "Selection.*: $(timeout 150 ./build/tests/test_attention --gtest_filter='Selection.*' 2>&1 | tail -1)"
  gsa_test_lines test_sparse_decode test_decode_plan test_serving_engine
  timeout 150 compute-sanitizer --tool memcheck ./build/tests/test_attention --gtest_filter='Selection.*' 2>&1 | tail -1
  timeout 100 compute-sanitizer --tool memcheck ./build/tests/test_sparse_decode 2>&1 | tail -1
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
gsa_build_unpatched "$patch_file" || exit 1
gsa_ab_rounds bench decode "${bench_args[@]}" | tee "$out/bench_decode_ab.txt"
echo "bench done at $(( $(date +%s) - t0 )) s"
for v in unpatched patched unpatched patched; do
  [ $(( $(date +%s) - t0 )) -gt 500 ] && break
  echo "== $v"
  timeout 40 /tmp/gsa_$v bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
    --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^latency"
done 2>&1 | tee "$out/bench_serve_ab.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
