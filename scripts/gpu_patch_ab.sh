#!/usr/bin/env bash
# scripts/gpu_patch_ab.sh PATCH [BENCH_ARG...]: a change to the attention kernels or their plan, checked and timed
# against the tree without it in one device call. Applies PATCH (e.g. a file of docs/experiments/), builds, runs the
# float64 oracle (test_sparse_attention_gpu) under every forward and backward schedule, the attention unit tests on
# CUDA tensors and a compute-sanitizer memcheck; then builds the tree without PATCH and runs `gsa bench kernels`
# (8K, 32K and 128K unless BENCH_ARG... says otherwise) for the two binaries in turn, twice (the call's spread);
# then the peers (peers/attn_peers.py, copied from shared/peers) at 32K and 128K.
# Logs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
patch_file=${1:?usage: $0 PATCH [BENCH_ARG...]}
shift
bench_args=("$@")
[ ${#bench_args[@]} -gt 0 ] || bench_args=(--tokens 8192,32768,131072)
git apply "$patch_file" || { echo "gpu_patch_ab: $patch_file does not apply to this tree" >&2; exit 1; }
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_sparse_attention_gpu test_sparse_attention test_attention test_model \
  test_selected_attention test_attention_mode || exit 1
cp build/launcher/gsa /tmp/gsa_patched
{
  echo "default: $(timeout 120 ./build/tests/test_sparse_attention_gpu 2>&1 | tail -1)"
  gsa_oracle_variants
  gsa_test_lines test_sparse_attention test_attention test_model test_selected_attention test_attention_mode
  timeout 120 compute-sanitizer --tool memcheck ./build/tests/test_sparse_attention_gpu --gtest_filter='*/2:*/5' 2>&1 \
    | tail -3
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
gsa_build_unpatched "$patch_file" || exit 1
gsa_rounds "unpatched patched" bench kernels "${bench_args[@]}" | tee "$out/bench_ab.txt"
echo "bench done at $(( $(date +%s) - t0 )) s"
if [ -f peers/attn_peers.py ]; then
  timeout $(( 560 - ($(date +%s) - t0) )) python3 peers/attn_peers.py sdpa-cudnn-causal,flex-gsa-permuted 32768,131072 \
    2>&1 | grep -v -e DeprecationWarning -e "bm = create_block_mask" | tee "$out/peers.txt"
fi
