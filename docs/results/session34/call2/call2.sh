# Session 34, device call 2: level_select_kernel's dots on the tensor cores (mma_scores, GSA_SELECT_MMA=1, the new
# default) against the team dots (=0), one binary. (1) The GPU test part (the CPU-twin selection test now also at
# head dim 128 / fp16, and under GSA_SELECT_MMA=0); (2) the 1B model's serve token at 128K alternated 1/0 three
# times, 32K once each, and the dense peer; (3) the decode layer bench with the 1B shapes both ways; (4) the joined
# level select's executed instructions and duration under ncu both ways.
set -uo pipefail
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.current.sm --format=csv > /tmp/gpu_name.txt
GSA_CHECK_PARTS=tests timeout 230 bash scripts/gpu_kernels_check.sh > /tmp/tests.txt 2>&1
grep -E ": " /tmp/tests.txt | grep -vE "PASSED|0 errors" | head -20
echo "verdict lines: $(grep -cE "PASSED|0 errors" /tmp/tests.txt) passed"
echo "tests done at $(( $(date +%s) - t0 )) s"
source scripts/gpu_env.sh
g=./build/launcher/gsa
{
for r in 1 2 3; do
  for m in 1 0; do
    echo "== GSA_SELECT_MMA=$m round $r"
    GSA_SELECT_MMA=$m timeout 60 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
      --concurrency '' --decode-steps 24 --tokens 131072 2>&1 | grep -E "^latency"
  done
done
for m in 1 0; do
  echo "== GSA_SELECT_MMA=$m 32K"
  GSA_SELECT_MMA=$m timeout 60 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
    --concurrency '' --decode-steps 24 --tokens 32768 2>&1 | grep -E "^latency"
done
} > /tmp/serve_ab.txt 2>&1
cat /tmp/gpu_name.txt /tmp/serve_ab.txt > "$OUT/serve_ab.txt"
timeout 60 python3 scripts/peer_serve_dense.py --tokens 131072 --concurrency '' --decode-steps 24 > "$OUT/peer_serve.txt" 2>&1
echo "serve done at $(( $(date +%s) - t0 )) s"
for m in 1 0; do
  echo "== GSA_SELECT_MMA=$m"
  GSA_SELECT_MMA=$m timeout 90 $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 \
    --tokens 131072,1048576 2>&1 | grep -E "^ +[0-9]|N layer"
done > "$OUT/bench_decode_ab.txt" 2>&1
echo "decode bench done at $(( $(date +%s) - t0 )) s"
for m in 1 0; do
  echo "== GSA_SELECT_MMA=$m"
  GSA_SELECT_MMA=$m GSA_PDL=0 timeout 60 ncu -k "regex:level_select" --launch-count 6 --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,launch__grid_size,smsp__inst_executed.sum --csv --page raw \
    $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens 131072 \
    --repeats 2 > /tmp/ncu_$m.csv 2>&1
  python3 scripts/ncu_table.py /tmp/ncu_$m.csv || tail -5 /tmp/ncu_$m.csv
done > "$OUT/ncu_level_select_ab.txt" 2>&1
cp /tmp/tests.txt "$OUT/tests.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
