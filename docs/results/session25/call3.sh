# Session 25, device call 3: add_rms_norm_kernel and rope_append_kernel with every load in one round (the norm
# weight's loads issued with x and y instead of after the reduction's barrier; rope_append's position and
# cache-base loads issued with the row, cos and sin instead of after the rotation) against the tree without it: the
# decode-step tests and memcheck on the change, per-launch times of the two kernels under Nsight Compute (32K, PDL
# off), and the 1B model's token at 32K and 128K alternating. The change landed as 8710d81; this record ran with
# its diff as docs/experiments/s25-one-round-norm-rope.patch (to rerun: git show 8710d81 -- kernels > that file).
# (The launch summary was an inline python snippet when this ran; it is scripts/ncu_summary.py now, same output
# but for the grouping key, kernel and grid in both.)
set -uo pipefail
source scripts/gpu_env.sh
t0=$(date +%s)
patch=docs/experiments/s25-one-round-norm-rope.patch
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa test_decode_step_ops test_decode_plan test_serving_engine \
  test_model || exit 1
cp build/launcher/gsa /tmp/gsa_patched
{
  gsa_test_lines test_decode_step_ops test_decode_plan test_serving_engine test_model
  timeout 150 compute-sanitizer --tool memcheck ./build/tests/test_decode_step_ops 2>&1 | tail -1
} 2>&1 | tee "$out/tests.txt"
gsa_build_unpatched "$patch" || exit 1
echo "builds and tests done at $(( $(date +%s) - t0 )) s"
for v in unpatched patched; do
  GSA_PDL=0 timeout 100 ncu -k "regex:rms|rope" --launch-count 3000 --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,launch__grid_size --csv --page raw \
    /tmp/gsa_$v bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 --concurrency '' \
    --fixed-k 0 --decode-steps 1 --tokens 32768 > /tmp/ncu_$v.csv 2> /tmp/ncu_$v.err
  python3 scripts/ncu_table.py /tmp/ncu_$v.csv | tail -47 > "$out/ncu_$v.txt"
  python3 scripts/ncu_summary.py "$out/ncu_$v.txt" "$v:"
done
echo "ncu done at $(( $(date +%s) - t0 )) s"
for round in 1 2 3; do
  for v in unpatched patched; do
    [ $(( $(date +%s) - t0 )) -gt 540 ] && break
    echo "== $v (round $round)"
    timeout 45 /tmp/gsa_$v bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
      --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^latency"
  done
done 2>&1 | tee "$out/bench_serve_ab.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
