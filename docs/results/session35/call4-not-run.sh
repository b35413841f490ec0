# Session 35, device call 4: main with s35-split-tail.patch landed (efc5c97, comments since): the decode-side CUDA
# tests side by side (the selection's CPU twin with its unfold lists, the sparse decode oracle, the decode plan, the
# serving engine, the model), the selection tests under GSA_UNION_SPLIT=0 (the descent CTA's own union and unfold)
# and memcheck on the selection tests.
set -uo pipefail
t0=$(date +%s)
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa test_attention test_sparse_decode test_decode_plan \
  test_serving_engine test_model || exit 1
cd build/tests
for t in "test_attention --gtest_filter=Selection.*" test_sparse_decode test_decode_plan test_serving_engine test_model; do
  (timeout 90 ./$t > "/tmp/$(echo $t | cut -d' ' -f1).log" 2>&1; echo "$t: $(tail -1 /tmp/$(echo $t | cut -d' ' -f1).log)") &
done
(GSA_UNION_SPLIT=0 timeout 90 ./test_attention --gtest_filter='Selection.*' 2>&1 | tail -1 | sed 's/^/Selection GSA_UNION_SPLIT=0: /') &
(timeout 95 compute-sanitizer --tool memcheck ./test_attention --gtest_filter='Selection.*' 2>&1 | grep "ERROR SUMMARY" | sed 's/^/memcheck Selection: /') &
wait
echo "all done at $(( $(date +%s) - t0 )) s"
