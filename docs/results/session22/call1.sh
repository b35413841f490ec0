#!/usr/bin/env bash
# Session 22, call 1 (from the repository root: bash docs/results/session22/call1.sh; peers/attn_peers.py copied
# from shared/peers): the dq atomics probe, then the oracle under every setting, the attention unit tests on CUDA,
# memcheck, the kernel bench and the peers on main's final kernels. (As run, its loops were written out; they are
# gpu_env.sh's gsa_oracle_variants and gsa_test_lines now, with gsa_kernel_variants as it was then: without
# GSA_SM90_BACKWARD=2 and 3.)
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
t0=$(date +%s)
$(command -v nvcc || echo /usr/local/cuda/bin/nvcc) -O3 -std=c++17 -arch=sm_90a -o /tmp/dq_probe \
  docs/experiments/s21-dq-atomics-probe.cu 2>&1 | tail -5
timeout 60 /tmp/dq_probe 2>&1 | tee "$out/dq_probe.txt"
timeout 60 /tmp/dq_probe 400000 8704 2>&1 | tee -a "$out/dq_probe.txt"
echo "probe done at $(( $(date +%s) - t0 )) s"
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa test_sparse_attention_gpu test_lse_merge_gpu test_sparse_attention \
  test_attention test_model test_selected_attention test_attention_mode test_tile_plan || exit 1
{
  echo "default: $(timeout 120 ./build/tests/test_sparse_attention_gpu 2>&1 | tail -1)"
  gsa_oracle_variants
  gsa_test_lines test_lse_merge_gpu test_sparse_attention test_attention test_model test_selected_attention \
    test_attention_mode test_tile_plan
  timeout 120 compute-sanitizer --tool memcheck ./build/tests/test_sparse_attention_gpu --gtest_filter='*/2:*/5' 2>&1 \
    | tail -3
} 2>&1 | tee "$out/tests.txt"
echo "tests done at $(( $(date +%s) - t0 )) s"
timeout 100 ./build/launcher/gsa bench kernels 2>&1 | tee "$out/bench_kernels.txt"
timeout 100 ./build/launcher/gsa bench kernels 2>&1 | tail -4 | tee -a "$out/bench_kernels.txt"
echo "bench done at $(( $(date +%s) - t0 )) s"
timeout $(( 570 - ($(date +%s) - t0) )) python3 peers/attn_peers.py sdpa-cudnn-causal,flex-gsa-permuted 32768,131072 \
  2>&1 | grep -v -e DeprecationWarning -e "bm = create_block_mask" | tee "$out/peers.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
