# Session 35, device call 3: main at c3ddafa (the fixed budget's levels in level_select_kernel, its top level joined)
# on the GPU: (1) the whole GPU test part; (2) s35-split-tail.patch (union_kernel and unfold_kernel for a short list
# when the CTAs fill few SMs): its selection and sparse decode tests, then the 1B model's serve token with the tree
# and the patch alternated twice; (3) the dense peer.
set -uo pipefail
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu_name.txt"
GSA_CHECK_PARTS=tests timeout 240 bash scripts/gpu_kernels_check.sh > "$OUT/tests.txt" 2>&1
for f in "$OUT"/*.tgz; do [ -e "$f" ] && mv "$f" "${f%.tgz}_tests.tgz"; done
echo "tests done at $(( $(date +%s) - t0 )) s"
source scripts/gpu_env.sh
cp build/launcher/gsa /tmp/gsa_tree
p=docs/experiments/s35-split-tail.patch
git apply "$p" || exit 1
GSA_JOBS=16 scripts/gpu_build.sh "$out/build_patch" gsa test_attention test_sparse_decode || exit 1
cp build/launcher/gsa /tmp/gsa_patch
{
  echo "== patch tests: $p"
  timeout 120 ./build/tests/test_attention --gtest_filter='Selection.*' 2>&1 | tail -1
  timeout 60 ./build/tests/test_sparse_decode 2>&1 | tail -1
} 2>&1 | tee "$OUT/patch_tests.txt"
git apply -R "$p"
echo "patch built and tested at $(( $(date +%s) - t0 )) s"
for r in 1 2; do
  for v in tree patch; do
    [ $(( $(date +%s) - t0 )) -gt 500 ] && break
    echo "== $v round $r"
    timeout 40 /tmp/gsa_$v bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
      --concurrency '' --decode-steps 24 --tokens 32768,131072 2>&1 | grep -E "^(table|latency)"
  done
done 2>&1 | tee "$OUT/serve_ab.txt"
timeout 30 python3 scripts/peer_serve_dense.py --tokens 131072 --concurrency '' --decode-steps 24 > "$OUT/peer_serve.txt" 2>&1
echo "all done at $(( $(date +%s) - t0 )) s"
