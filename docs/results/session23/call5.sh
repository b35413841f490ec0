#!/usr/bin/env bash
# Session 23, call 5 (from the repository root: bash docs/results/session23/call5.sh): the tensor-core sparse decode
# kernel reading a stage's list entries together (GSA_DECODE_BATCHED_ROWS=1, the new default) against one at a time
# (=0, main's order: call 4's SASS view showed each of a thread's eight list loads waiting for the one before), in
# one binary: the decode tests under both, memcheck; one decode layer step at 128K and 1M (two levels) and at
# 32K-1M (one level), alternating; the 1B model's per-token latency (`gsa bench serve`, three levels) alternating.
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_sparse_decode test_decode_plan test_serving_engine || exit 1
{
  for e in 1 0; do
    echo "GSA_DECODE_BATCHED_ROWS=$e test_sparse_decode: $(GSA_DECODE_BATCHED_ROWS=$e timeout 100 ./build/tests/test_sparse_decode 2>&1 | tail -1)"
  done
  gsa_test_lines test_decode_plan test_serving_engine
  timeout 100 compute-sanitizer --tool memcheck ./build/tests/test_sparse_decode 2>&1 | tail -1
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
g=./build/launcher/gsa
for round in 1 2; do
  for e in 0 1; do
    echo "== GSA_DECODE_BATCHED_ROWS=$e (round $round)"
    GSA_DECODE_BATCHED_ROWS=$e timeout 40 $g bench decode --levels 2 --tokens 131072,1048576 2>&1 | tail -6
  done
done 2>&1 | tee "$out/bench_decode_ab.txt"
for e in 0 1; do
  echo "== GSA_DECODE_BATCHED_ROWS=$e, one level"
  GSA_DECODE_BATCHED_ROWS=$e timeout 60 $g bench decode --tokens 32768,131072,1048576 2>&1 | tail -9
done 2>&1 | tee -a "$out/bench_decode_ab.txt"
echo "decode done at $(( $(date +%s) - t0 )) s"
serve=(bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 --concurrency '' \
  --decode-steps 24 --tokens 32768,131072)
for e in 0 1 0 1; do
  [ $(( $(date +%s) - t0 )) -gt 330 ] && break
  echo "== GSA_DECODE_BATCHED_ROWS=$e"
  GSA_DECODE_BATCHED_ROWS=$e timeout 40 $g "${serve[@]}" 2>&1 | grep -E "^latency"
done 2>&1 | tee "$out/bench_serve.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
