#!/usr/bin/env bash
# Session 28, call 2 (from the repository root: bash docs/results/session28/call2.sh). Call 1 (gpu_kernels_check.sh)
# ran past 600 s and its test logs did not come back (a call returns at most 8 files), so this call writes every log
# into one folder and packs it into $OUT/logs.tgz at the end. Main's kernels on the GPU: the float64 oracle under
# every kernel setting, the attention, decode and serving unit tests on CUDA tensors, memcheck; then the RoPE fusion
# (GSA_SKINNY_ROPE=1) against main's default in the 1B model's token, alternated three times; then, with the time
# left, the selection's launches under Nsight Compute at 128K (scripts/gpu_selection_profile.sh's launches and stall
# tables) for the next cut.
set -uo pipefail
cd "$(dirname "$0")/../../.."
real_out=${OUT:-gpu-logs}
export OUT=/tmp/s28_logs
source scripts/gpu_env.sh
t0=$(date +%s)
pack() { tar czf "$real_out/logs.tgz" -C "$OUT" . ; }
trap pack EXIT
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_sparse_attention_gpu test_lse_merge_gpu test_sparse_attention \
  test_attention test_sparse_decode test_decode_plan test_model test_attention_mode test_selected_attention \
  test_key_gather test_skinny_gemm test_skinny_rope_linear test_decode_step_ops test_serving_engine test_tile_plan \
  || exit 1
echo "build done at $(( $(date +%s) - t0 )) s" | tee "$out/times.txt"
{
  echo "default: $(timeout 120 ./build/tests/test_sparse_attention_gpu 2>&1 | tail -1)"
  gsa_oracle_variants
  gsa_test_lines test_lse_merge_gpu test_sparse_attention test_attention test_sparse_decode test_decode_plan \
    test_model test_attention_mode test_selected_attention test_key_gather test_skinny_gemm test_skinny_rope_linear \
    test_decode_step_ops test_serving_engine test_tile_plan
  echo "test_decode_plan GSA_PDL=0: $(GSA_PDL=0 timeout 150 ./build/tests/test_decode_plan 2>&1 | tail -1)"
  echo "memcheck oracle: $(timeout 120 compute-sanitizer --tool memcheck ./build/tests/test_sparse_attention_gpu \
    --gtest_filter='*/2:*/5' 2>&1 | tail -1)"
  echo "memcheck sparse_decode: $(timeout 100 compute-sanitizer --tool memcheck ./build/tests/test_sparse_decode 2>&1 \
    | tail -1)"
  echo "memcheck selection: $(timeout 120 compute-sanitizer --tool memcheck ./build/tests/test_attention \
    --gtest_filter='Selection.*' 2>&1 | tail -1)"
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s" | tee -a "$out/times.txt"
for round in 1 2 3; do
  for v in tree rope; do
    [ $(( $(date +%s) - t0 )) -gt 430 ] && break 2
    echo "== $v (round $round)"
    if [ $v = rope ]; then export GSA_SKINNY_ROPE=1; else unset GSA_SKINNY_ROPE; fi
    timeout 40 ./build/launcher/gsa bench serve --config configs/llama-1b-gsa.pbtxt --device cuda \
      --set gist.levels=3 --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^latency"
  done
done 2>&1 | tee "$out/bench_serve_rope.txt"
unset GSA_SKINNY_ROPE
echo "serve done at $(( $(date +%s) - t0 )) s" | tee -a "$out/times.txt"
g=./build/launcher/gsa
kernels='regex:score_kernel|top_k|level_select|descent_kernel|union_kernel|unfold_kernel|sparse_decode'
if [ $(( $(date +%s) - t0 )) -lt 480 ]; then
  GSA_PDL=0 timeout 60 ncu --kernel-name "$kernels" --launch-count 14 --section WarpStateStats \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__grid_size --csv --page raw \
    $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens 131072 \
    --repeats 2 > "$out/ncu_stalls_131072.csv" 2>&1
  python3 scripts/ncu_table.py "$out/ncu_stalls_131072.csv" > "$out/ncu_stalls_131072.txt" 2>&1
fi
echo "all done at $(( $(date +%s) - t0 )) s" | tee -a "$out/times.txt"
