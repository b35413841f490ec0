#!/usr/bin/env bash
# Session 22, call 5: the paired key pass (GSA_SM90_BACKWARD=3) against the per-tile two-consumer pass
# (GSA_SM90_BACKWARD=2), same binary, same plan order: oracle, bench in turn twice, then the oracle under the other
# settings, memcheck, unit tests. Call 5 ran the paired kernel as an uncommitted patch whose default was 3; on
# d52ac7c or later the kernel is the same and this script sets 3 where the patch's default ran (from the repository
# root: bash docs/results/session22/call5.sh).
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_sparse_attention_gpu test_sparse_attention || exit 1
echo "default (paired): $(GSA_SM90_BACKWARD=3 timeout 60 ./build/tests/test_sparse_attention_gpu 2>&1 | tail -1)" | tee "$out/tests.txt"
for round in 1 2; do
  for s in 2 3; do
    echo "== GSA_SM90_BACKWARD=$s (round $round)"
    GSA_SM90_BACKWARD=$s timeout 60 ./build/launcher/gsa bench kernels 2>&1 | tail -4
  done
done 2>&1 | tee "$out/bench_ab.txt"
echo "bench done at $(( $(date +%s) - t0 )) s"
{
  for e in GSA_SM90_BACKWARD=2 GSA_SM90_BACKWARD=1 GSA_SM90_BACKWARD=0; do
    echo "$e: $(env $e timeout 60 ./build/tests/test_sparse_attention_gpu 2>&1 | tail -1)"
  done
  timeout 90 compute-sanitizer --tool memcheck ./build/tests/test_sparse_attention_gpu --gtest_filter='*/2:*/5' 2>&1 \
    | tail -3
  echo "test_sparse_attention: $(timeout 60 ./build/tests/test_sparse_attention 2>&1 | tail -1)"
} 2>&1 | tee -a "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
GSA_SM90_BACKWARD=3 timeout 40 ./build/launcher/gsa bench kernels --max-backward-tiles 256 --tokens 32768,131072 2>&1 \
  | tail -3 | tee "$out/sweep.txt"
