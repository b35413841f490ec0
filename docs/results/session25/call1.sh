# Session 25, device call 1: main's selection kernels (182e243 gist_key_rows, b3f11e0 split into
# selection_union.cuh: not yet run on a GPU) through the decode tests and memcheck; the 1B model's token at 32K and
# 128K with the dense peer at 128K in the same call; then one 128K decode step per launch under Nsight Compute
# (warm caches, free clocks, programmatic launch off) to price every kernel of the token.
set -uo pipefail
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa test_attention test_sparse_decode test_decode_plan \
  test_serving_engine test_skinny_gemm test_decode_step_ops || exit 1
{
  echo "Selection.*: $(timeout 150 ./build/tests/test_attention --gtest_filter='Selection.*' 2>&1 | tail -1)"
  gsa_test_lines test_sparse_decode test_decode_plan test_serving_engine test_skinny_gemm test_decode_step_ops
  timeout 150 compute-sanitizer --tool memcheck ./build/tests/test_attention --gtest_filter='Selection.*' 2>&1 | tail -1
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
g=./build/launcher/gsa
for r in 1; do
  timeout 60 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
    --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^latency"
done 2>&1 | tee "$out/bench_serve.txt"
timeout 150 python3 scripts/peer_serve_dense.py --tokens 131072 --prefill-max 0 --concurrency '' \
  --decode-steps 24 2>&1 | tee "$out/peer_serve.txt"
echo "serve done at $(( $(date +%s) - t0 )) s"
# One 128K step, every kernel: the last ~230 launches (the adaptive budget alone) of the decode kernels' families.
GSA_PDL=0 timeout 180 ncu -k "regex:skinny|select|score|top_k|union|unfold|sparse_decode|rope|rms|greedy|append|descent|silu" \
  --launch-count 4000 --cache-control none --clock-control none \
  --metrics gpu__time_duration.sum,launch__grid_size,smsp__inst_executed.sum --csv --page raw \
  $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 --concurrency '' \
  --fixed-k 0 --decode-steps 2 --tokens 131072 > "$out/ncu_step.csv" 2> "$out/ncu_step.err"
python3 scripts/ncu_table.py "$out/ncu_step.csv" > "$out/ncu_step.txt"
tail -250 "$out/ncu_step.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
