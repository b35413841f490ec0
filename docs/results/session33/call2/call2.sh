# Session 33, device call 2. (1) The GPU tests on the stored-dS size rule (GSA_SM90_DQ unset: dq from stored dS
# tiles while the workspace is at most 96 MiB; the oracle's cases all take it, GSA_SM90_DQ=1 variants the dq pass).
# (2) Stored dS (=2) against the recomputing dq pass (=1) and the rule (unset) at 4K-32K, head dim 128 and 64,
# alternated -- to check the rule's threshold. (3) The 1B model's shapes in the decode layer bench. (4) One 128K
# adaptive token of the 1B model per launch under Nsight Compute (warm caches, free clocks, programmatic launch off).
set -uo pipefail
t0=$(date +%s)
GSA_CHECK_PARTS=tests timeout 200 bash scripts/gpu_kernels_check.sh > "$OUT/tests.txt" 2>&1
grep -E "PASSED|FAILED|ERROR SUMMARY|rc=" "$OUT/tests.txt" | grep -vc "PASSED\|0 errors" | sed 's/^/not passed: /'
echo "tests done at $(( $(date +%s) - t0 )) s"
source scripts/gpu_env.sh
g=./build/launcher/gsa
for r in 1 2; do
  for dq in 1 2 unset; do
    for d in 128 64; do
      echo "== GSA_SM90_DQ=$dq round $r, head dim $d"
      if [ $dq = unset ]; then
        [ $r = 1 ] || continue
        timeout 60 $g bench kernels --head-dim $d --tokens 4096,8192,16384,32768 2>&1 | grep -E "^ +[0-9]"
      else
        GSA_SM90_DQ=$dq timeout 60 $g bench kernels --head-dim $d --tokens 4096,8192,16384,32768 2>&1 | grep -E "^ +[0-9]"
      fi
    done
  done
done 2>&1 | tee "$OUT/bench_stored_ds_short.txt"
echo "stored-ds bench done at $(( $(date +%s) - t0 )) s"
timeout 90 $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 \
  --tokens 131072,1048576 2>&1 | tee "$OUT/bench_decode_1b_shapes.txt"
echo "decode bench done at $(( $(date +%s) - t0 )) s"
[ $(( $(date +%s) - t0 )) -lt 260 ] || { echo "no time left for the ncu map"; exit 0; }
GSA_PDL=0 timeout 170 ncu -k "regex:skinny|select|score|top_k|union|unfold|sparse_decode|rope|rms|greedy|append|descent|silu|merge" \
  --launch-count 4000 --cache-control none --clock-control none \
  --metrics gpu__time_duration.sum,launch__grid_size,smsp__inst_executed.sum --csv --page raw \
  $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 --concurrency '' \
  --fixed-k 0 --decode-steps 2 --tokens 131072 > "$out/ncu_step.csv" 2> "$out/ncu_step.err"
python3 scripts/ncu_table.py "$out/ncu_step.csv" > "$OUT/ncu_step.txt"
tail -3 "$out/ncu_step.err"
echo "all done at $(( $(date +%s) - t0 )) s"
