#!/usr/bin/env bash
# Session 23, call 1 (from the repository root: bash docs/results/session23/call1.sh; peers/attn_peers.py copied
# from shared/peers): main's kernels with the benches timed on the GPU as the peers are (device_timing.h's
# median_device_ms: CUDA events, L2 flushed before each call, like triton.testing.do_bench). The float64 oracle
# under every kernel setting (session 22's paired key pass size rule, BackwardListView and the review mend had not
# run on a GPU), the attention unit tests, memcheck; one decode layer step (1-3 levels, batch 64) with a per-kernel
# breakdown under Nsight Compute at 128K, the decode peers; the prefill bench with both key passes at 64K, and the
# prefill peers with what time is left.
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
t0=$(date +%s)
left() { echo $(( ${1:-570} - ($(date +%s) - t0) )); }
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
g=./build/launcher/gsa
{
  timeout 120 $g bench decode
  timeout 60 $g bench decode --levels 2 --tokens 131072,1048576
  timeout 60 $g bench decode --levels 3 --tokens 131072,1048576
  timeout 60 $g bench decode --batch 64 --tokens 32768
  timeout 60 $g bench kernels --decode
  timeout 60 $g bench kernels --decode --decode-batch 64 --decode-tokens 32768
} 2>&1 | tee "$out/bench_decode.txt"
timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum $g bench decode --levels 2 --tokens 131072 \
  --repeats 1 > "$out/ncu_decode_128k.txt" 2>&1
grep -E "^  [a-zA-Z_].*\(|duration" "$out/ncu_decode_128k.txt" | paste - - | awk '{print $1, $(NF-1), $NF}' \
  | sed 's/(.*//' > "$out/ncu_decode_128k_short.txt"; wc -l "$out/ncu_decode_128k_short.txt"
echo "decode done at $(( $(date +%s) - t0 )) s"
{
  timeout 120 python3 scripts/peer_decode_batched.py 64 32768
  timeout 200 python3 peers/attn_peers.py sdpa-causal 8192
} 2>&1 | grep -v -e Warning -e "bm = create" | tee "$out/peer_decode.txt"
echo "decode peers done at $(( $(date +%s) - t0 )) s"
timeout 150 $g bench kernels --tokens 8192,32768,65536,131072 2>&1 | tee "$out/bench_kernels.txt"
for s in 2 3; do
  GSA_SM90_BACKWARD=$s timeout 60 $g bench kernels --tokens 65536 2>&1 | tail -1 | sed "s/^/key pass $s: /" \
    | tee -a "$out/bench_kernels.txt"
done
echo "bench done at $(( $(date +%s) - t0 )) s"
timeout $(left) python3 peers/attn_peers.py sdpa-cudnn-causal,flex-gsa-permuted 8192,32768,131072 nodecode 2>&1 \
  | grep -v -e Warning -e "bm = create" | tee "$out/peers.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
