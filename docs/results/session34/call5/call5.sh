# Session 34, device call 5: the warp select in level_select_kernel alone (the descent kernel back on head_top_k,
# as under GSA_SELECT_WARP=0 in call 4): the 1B model's serve token at 32K and 128K, default / GSA_SELECT_WARP=0
# alternated twice, and the dense peer; test_attention's selection tests (default and GSA_SELECT_WARP=0).
set -uo pipefail
t0=$(date +%s)
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa test_attention || exit 1
g=./build/launcher/gsa
nvidia-smi --query-gpu=name,memory.total,clocks.current.sm --format=csv
for v in GSA_SELECT_WARP=1 GSA_SELECT_WARP=0; do
  env $v timeout 120 ./build/tests/test_attention --gtest_filter='Selection.*' > /tmp/sel_$v.log 2>&1 &
done
{
for r in 1 2; do
  for v in GSA_SELECT_WARP=1 GSA_SELECT_WARP=0; do
    echo "== $v round $r"
    env $v timeout 60 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
      --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^latency"
  done
done
} 2>&1 | tee "$OUT/serve_ab.txt"
wait
for v in GSA_SELECT_WARP=1 GSA_SELECT_WARP=0; do echo "test_attention Selection.* $v: $(tail -1 /tmp/sel_$v.log)"; done | tee "$OUT/tests.txt"
timeout 60 python3 scripts/peer_serve_dense.py --tokens 131072 --concurrency '' --decode-steps 24 > "$OUT/peer_serve.txt" 2>&1
echo "all done at $(( $(date +%s) - t0 )) s"
