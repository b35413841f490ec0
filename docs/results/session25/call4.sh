# Session 25, device call 4: the selection kernels' dependent round trips trimmed
# (docs/experiments/s25-selection-round-trips.patch: the query copied by cp.async into shared memory and read where
# the dots need it -- its register load's first use had been scheduled ahead of the candidate chains' first loads;
# the key rows' base (a per-sequence table load) issued beside the chains' last links instead of ahead of their
# first (score_round) or after the barrier (descend_level); keep_count's loads issued with the chains instead of after
# the scores (descend_level); bitwise_top_k's gist index of every candidate loaded during the search instead of
# after it) against the tree without it: the selection and decode tests and memcheck with the change, then
# `gsa bench decode` (serving shapes) and the 1B model's token, alternating. Stops starting runs at 360 s (the
# session's device time left was 511 s). Outcome: the machine stopped answering before any output came back, and
# the session's device time was spent; the patch stays staged (docs/experiments/README.md).
set -uo pipefail
source scripts/gpu_env.sh
t0=$(date +%s)
patch=docs/experiments/s25-selection-round-trips.patch
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa test_attention test_sparse_decode test_decode_plan || exit 1
cp build/launcher/gsa /tmp/gsa_patched
{
  echo "Selection.*: $(timeout 150 ./build/tests/test_attention --gtest_filter='Selection.*' 2>&1 | tail -1)"
  gsa_test_lines test_sparse_decode test_decode_plan
  timeout 100 compute-sanitizer --tool memcheck ./build/tests/test_attention --gtest_filter='Selection.*' 2>&1 | tail -1
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
gsa_build_unpatched "$patch" || exit 1
echo "unpatched built at $(( $(date +%s) - t0 )) s"
gsa_rounds "unpatched patched" bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 \
  --tokens 131072,1048576 2>&1 | tee "$out/bench_decode_ab.txt"
for round in 1 2 3; do
  for v in unpatched patched; do
    [ $(( $(date +%s) - t0 )) -gt 360 ] && break 2
    echo "== $v (round $round)"
    timeout 30 /tmp/gsa_$v bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
      --concurrency '' --decode-steps 24 --tokens 131072 2>&1 | grep -E "^latency"
  done
done 2>&1 | tee "$out/bench_serve_ab.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
