#!/usr/bin/env bash
# Session 23, call 2 (from the repository root: bash docs/results/session23/call2.sh): the tensor-core sparse decode
# kernel with each stage's list rows read a tile ahead (GSA_DECODE_EARLY_ROWS=1, the new default) against the
# kernel as it was (=0), in one binary: the decode tests under both, memcheck; one decode layer step at 128K and 1M
# (two levels) under both and under 64 / 128 / 256 rows a split (GSA_DECODE_SPLIT_ROWS), twice in turn; Nsight
# Compute on the kernel at 128K; the 1B model's per-token latency (`gsa bench serve`, three levels) under both.
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_sparse_decode test_decode_plan test_serving_engine || exit 1
{
  for e in 1 0; do
    echo "GSA_DECODE_EARLY_ROWS=$e test_sparse_decode: $(GSA_DECODE_EARLY_ROWS=$e timeout 150 ./build/tests/test_sparse_decode 2>&1 | tail -1)"
  done
  for r in 64 256; do
    echo "GSA_DECODE_SPLIT_ROWS=$r test_sparse_decode: $(GSA_DECODE_SPLIT_ROWS=$r timeout 150 ./build/tests/test_sparse_decode 2>&1 | tail -1)"
  done
  gsa_test_lines test_decode_plan test_serving_engine
  timeout 120 compute-sanitizer --tool memcheck ./build/tests/test_sparse_decode 2>&1 | tail -1
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
g=./build/launcher/gsa
for round in 1 2; do
  for cfg in "0 128" "1 128" "1 64" "1 256"; do
    set -- $cfg
    echo "== GSA_DECODE_EARLY_ROWS=$1 GSA_DECODE_SPLIT_ROWS=$2 (round $round)"
    GSA_DECODE_EARLY_ROWS=$1 GSA_DECODE_SPLIT_ROWS=$2 timeout 60 $g bench decode --levels 2 --tokens 131072,1048576 \
      2>&1 | tail -6
  done
done 2>&1 | tee "$out/bench_decode_ab.txt"
for e in 0 1; do
  echo "== GSA_DECODE_EARLY_ROWS=$e, one level"
  GSA_DECODE_EARLY_ROWS=$e timeout 90 $g bench decode 2>&1 | tail -12
done 2>&1 | tee -a "$out/bench_decode_ab.txt"
echo "decode done at $(( $(date +%s) - t0 )) s"
timeout 90 ncu --clock-control none --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
  -k regex:sparse_decode --launch-count 12 $g bench decode --levels 2 --tokens 131072 --repeats 1 \
  > "$out/ncu_decode_kernel.txt" 2>&1
grep -E "sparse_decode|duration|dram__" "$out/ncu_decode_kernel.txt" | grep -v "==PROF" | sed 's/(SparseDecode.*//' | tail -36
serve=(bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 --concurrency '' \
  --decode-steps 24 --tokens 32768,131072)
for e in 0 1 0 1; do
  echo "== GSA_DECODE_EARLY_ROWS=$e"
  GSA_DECODE_EARLY_ROWS=$e timeout $(( 560 - ($(date +%s) - t0) )) $g "${serve[@]}" 2>&1 | grep -E "^latency|N "
  [ $(( $(date +%s) - t0 )) -gt 520 ] && break
done 2>&1 | tee "$out/bench_serve.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
