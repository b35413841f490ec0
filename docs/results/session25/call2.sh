# Session 25, device call 2: the skinny GEMM streaming its weights through a ring of cp.async stages in shared
# memory (docs/experiments/s25-skinny-ring.patch, GSA_SKINNY_RING=1: each warp keeps 8 steps in flight until its
# last ones, where the register version loads 6 steps, waits for all of them, multiplies, loads again) against the
# register version in the same binary: tests and memcheck with the ring, per-launch GEMM times under Nsight Compute
# (one 32K step, PDL off), and the 1B model's token at 32K and 128K alternating.
# (The launch summary was an inline python snippet when this ran; it is scripts/ncu_summary.py now, same output
# but for the grouping key, kernel and grid in both.)
set -uo pipefail
source scripts/gpu_env.sh
t0=$(date +%s)
git apply docs/experiments/s25-skinny-ring.patch || exit 1
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa test_skinny_gemm test_decode_step_ops test_decode_plan \
  test_serving_engine test_model || exit 1
{
  for r in 1 0; do
    echo "== GSA_SKINNY_RING=$r"
    GSA_SKINNY_RING=$r gsa_test_lines test_skinny_gemm test_decode_step_ops test_decode_plan test_serving_engine test_model
  done
  GSA_SKINNY_RING=1 timeout 150 compute-sanitizer --tool memcheck ./build/tests/test_skinny_gemm 2>&1 | tail -1
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
g=./build/launcher/gsa
for r in 0 1; do
  GSA_SKINNY_RING=$r GSA_PDL=0 timeout 120 ncu -k "regex:skinny" --launch-count 2000 --cache-control none \
    --clock-control none --metrics gpu__time_duration.sum,launch__grid_size --csv --page raw \
    $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 --concurrency '' \
    --fixed-k 0 --decode-steps 1 --tokens 32768 > /tmp/ncu_ring$r.csv 2> /tmp/ncu_ring$r.err
  python3 scripts/ncu_table.py /tmp/ncu_ring$r.csv | tail -65 > "$out/ncu_ring$r.txt"
  python3 scripts/ncu_summary.py "$out/ncu_ring$r.txt" "ring $r:"
done
echo "ncu done at $(( $(date +%s) - t0 )) s"
for round in 1 2; do
  for r in 0 1; do
    [ $(( $(date +%s) - t0 )) -gt 530 ] && break
    echo "== GSA_SKINNY_RING=$r (round $round)"
    GSA_SKINNY_RING=$r timeout 45 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
      --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^latency"
  done
done 2>&1 | tee "$out/bench_serve_ab.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
