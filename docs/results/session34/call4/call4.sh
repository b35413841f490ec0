# Session 34, device call 4: each head's select of up to 192 candidates in one warp (warp_top_k, GSA_SELECT_WARP=1,
# the new default) against head_top_k over the head's 16 warps (=0), on top of call 2's tensor-core dots. (1) The
# GPU test part (the CPU-twin selection test now with fixed budgets of 40 and 24: the warp select in
# level_select_kernel and in the descent kernel; also under GSA_SELECT_WARP=0 and with both switches off);
# (2) the 1B model's serve token at 128K, default / GSA_SELECT_WARP=0 alternated twice, then both switches off
# once, 32K once each, and the dense peer; (3) the decode layer bench with the 1B shapes, each variant; (4) the
# joined level select under ncu, each variant.
set -uo pipefail
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.current.sm --format=csv > /tmp/gpu_name.txt
GSA_CHECK_PARTS=tests timeout 230 bash scripts/gpu_kernels_check.sh > /tmp/tests.txt 2>&1
grep -E ": " /tmp/tests.txt | grep -vE "PASSED|0 errors" | head -20
echo "verdict lines: $(grep -cE "PASSED|0 errors" /tmp/tests.txt) passed"
echo "tests done at $(( $(date +%s) - t0 )) s"
source scripts/gpu_env.sh
g=./build/launcher/gsa
serve() {  # tokens, then env assignments
  local tokens=$1
  shift
  env "$@" timeout 60 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
    --concurrency '' --decode-steps 24 --tokens "$tokens" 2>&1 | grep -E "^latency"
}
{
for r in 1 2; do
  echo "== default round $r"; serve 131072 GSA_SELECT_WARP=1
  echo "== GSA_SELECT_WARP=0 round $r"; serve 131072 GSA_SELECT_WARP=0
done
echo "== GSA_SELECT_WARP=0 GSA_SELECT_MMA=0"; serve 131072 GSA_SELECT_WARP=0 GSA_SELECT_MMA=0
echo "== default 32K"; serve 32768 GSA_SELECT_WARP=1
echo "== GSA_SELECT_WARP=0 32K"; serve 32768 GSA_SELECT_WARP=0
} > /tmp/serve_ab.txt 2>&1
cat /tmp/gpu_name.txt /tmp/serve_ab.txt > "$OUT/serve_ab.txt"
timeout 60 python3 scripts/peer_serve_dense.py --tokens 131072 --concurrency '' --decode-steps 24 > "$OUT/peer_serve.txt" 2>&1
echo "serve done at $(( $(date +%s) - t0 )) s"
variants=("GSA_SELECT_WARP=1" "GSA_SELECT_WARP=0" "GSA_SELECT_WARP=0 GSA_SELECT_MMA=0")
for v in "${variants[@]}"; do
  echo "== $v"
  env $v timeout 90 $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 \
    --tokens 131072,1048576 2>&1 | grep -E "^ +[0-9]|N layer"
done > "$OUT/bench_decode_ab.txt" 2>&1
echo "decode bench done at $(( $(date +%s) - t0 )) s"
for v in "${variants[@]}"; do
  echo "== $v"
  env $v GSA_PDL=0 timeout 60 ncu -k "regex:level_select|descent" --launch-count 6 --cache-control none \
    --clock-control none --metrics gpu__time_duration.sum,launch__grid_size,smsp__inst_executed.sum --csv --page raw \
    $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens 131072 \
    --repeats 2 > /tmp/ncu.csv 2>&1
  python3 scripts/ncu_table.py /tmp/ncu.csv || tail -5 /tmp/ncu.csv
done > "$OUT/ncu_level_select_ab.txt" 2>&1
cp /tmp/tests.txt "$OUT/tests.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
