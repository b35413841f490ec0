# Session 34, device call 3 (H200): call 2 (H100) again without the tests -- GSA_SELECT_MMA=1 against 0 in the 1B
# model's serve token (128K three alternations, 32K once), the dense peer, the decode layer bench with the 1B shapes
# and the joined level select under ncu, both ways; the same binaries as call 2.
set -uo pipefail
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.current.sm --format=csv > /tmp/gpu_name.txt
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa || exit 1
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
echo "all done at $(( $(date +%s) - t0 )) s"
