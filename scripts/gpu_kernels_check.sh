#!/usr/bin/env bash
# The attention kernels on one GPU in one device call: builds the kernels' targets against the image's
# LibTorch, runs the gpu-label kernel tests, the attention and decode unit tests with CUDA tensors (and
# compute-sanitizer memcheck), `gsa bench kernels` for decode and prefill, and the peers (peers/attn_peers.py,
# copied from shared/peers, and scripts/peer_decode_batched.py) in the same call. GSA_SKIP_PREFILL=1 stops after
# the decode part (with the peers' decode sweep). GSA_CHECK_PARTS picks the parts (default "tests bench peers"): on
# a fresh H200 the build took ~220 s and the tests, one after the other, ~350 s (twenty-eighth session), so the whole
# script ran past one call's 600 s. Since the thirtieth session the build can be skipped (scripts/prebuild.sh) and the
# tests run side by side (gsa_parallel_lines); neither is measured on the device yet: run GSA_CHECK_PARTS=tests in
# one call and =bench, then =peers, after it until a call shows the whole fits. GSA_CHECK_PARTS=compare runs only the
# rows of PERFORMANCE.md's summary table with their peers (the default prefill bench, the decode layer benches, the
# batched decode peer and the prefill peers; ~5 min with `gsa` built). GSA_CHECK_PARTS=stored-ds: dq from stored dS
# tiles at every size (GSA_SM90_DQ=2; the default takes them for small plans only) -- the float64 oracle under it
# with each key-pass schedule, memcheck, test_memory_tracker (MemoryTracker::available_bytes, which decides whether its workspace is
# allocated), then the prefill bench with and without it in turn, twice. Without the tests or stored-ds part only
# `gsa` is built. Logs go to $OUT (packed, see gpu_env.sh) or ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh
parts=${GSA_CHECK_PARTS:-tests bench peers}
targets=(gsa)
[[ " $parts " == *" tests "* ]] && targets+=(test_sparse_attention_gpu test_lse_merge_gpu test_sparse_attention
  test_attention test_sparse_decode test_decode_plan test_model test_attention_mode test_gist_layout test_op_profile
  test_selected_attention test_key_gather test_chunked_loss test_skinny_gemm test_skinny_rope_linear
  test_decode_step_ops test_serving_engine)
[[ " $parts " == *" stored-ds "* ]] && targets+=(test_sparse_attention_gpu test_memory_tracker)
GSA_JOBS=16 scripts/gpu_build.sh "$out" "${targets[@]}" || exit 1
# The runs the parts share. One decode step of one layer as Generator runs it (selection + kernel): one sequence
# at 32K-1M (one and two levels), 64 at 32K.
decode_layer_benches() {
  timeout 240 ./build/launcher/gsa bench decode 2>&1 | tee "$out/bench_decode_layer.txt"
  timeout 120 ./build/launcher/gsa bench decode --batch 64 --tokens 32768 2>&1 | tee -a "$out/bench_decode_layer.txt"
  timeout 240 ./build/launcher/gsa bench decode --levels 2 --tokens 131072,1048576 2>&1 \
    | tee -a "$out/bench_decode_layer.txt"
}
# The dense Flash-Decoding peer on 64 sequences of 32K.
batched_decode_peer() {
  timeout 120 python3 scripts/peer_decode_batched.py 64 32768 2>&1 | tee "$out/peer_decode.txt"
}
# The prefill kernels, forward and forward+backward at 8K, 32K and 128K (GSA_KERNEL_BENCH_ARGS: other flags).
prefill_bench() {
  timeout 240 ./build/launcher/gsa bench kernels ${GSA_KERNEL_BENCH_ARGS:-} 2>&1 | tee "$out/bench_kernels.txt"
}
# The prefill peers (peers/attn_peers.py, copied from shared/peers; carried into the call) at the sizes $1.
prefill_peers() {
  if [ ! -f peers/attn_peers.py ]; then
    echo "peers/attn_peers.py missing: copy shared/peers into peers/ and carry it" | tee "$out/peers.txt"
    return
  fi
  timeout 400 python3 peers/attn_peers.py sdpa-cudnn-causal,sdpa-causal,flex-gsa-permuted "$1" 2>&1 \
    | tee "$out/peers.txt"
}
if [[ " $parts " == *" compare "* ]]; then
  prefill_bench
  prefill_peers 8192,32768,131072
  decode_layer_benches
  batched_decode_peer
fi
if [[ " $parts " == *" tests "* ]]; then
  # Every run side by side (gsa_parallel_lines, gpu_env.sh): a line each, "NAME: " and its verdict; whole logs in
  # $out/test_logs_*. On Hopper the forward runs the wgmma kernel (schedule 7 by default), the backward the Hopper dq
  # pass and the two-consumer Hopper key pass (over paired key tiles for large plans); gsa_oracle_specs run the
  # mma.sync kernels other GPUs run, and the other schedules, against the same float64 oracle. The decode step's
  # kernels overlap their predecessors by default (kernels/src/pdl.cuh): test_decode_plan also runs serialised, and
  # overlapped three times over (an overlap race shows as a flaky failure). compute-sanitizer memcheck last.
  {
    gsa_test_specs test_sparse_attention_gpu
    gsa_oracle_specs
    gsa_test_specs test_lse_merge_gpu test_sparse_attention test_sparse_decode test_decode_plan test_attention \
      test_model test_attention_mode test_gist_layout test_op_profile test_selected_attention test_key_gather \
      test_chunked_loss test_skinny_gemm test_skinny_rope_linear test_decode_step_ops test_serving_engine
    printf '%s\t%s\n' "test_decode_plan GSA_PDL=0" "GSA_PDL=0 timeout 300 ./build/tests/test_decode_plan"
    printf '%s\t%s\n' "test_decode_plan x3" "timeout 400 ./build/tests/test_decode_plan --gtest_repeat=3"
    # The selection kernels' other paths: the rank select alone and with the four-bit rounds (GSA_SELECT_RANK=1 and 2,
    # off by default until they have run on a GPU: Selection.KernelsOnLongLevelsEqualTheCpuTwin's fixed_k 40 and 16
    # take the rank select, its level_select_kernel levels of over 192 candidates the four-bit rounds), the 16-warp
    # select, the team dots, and the unfused descent CTA's own union and unfold list (which a one-sequence step leaves
    # to union_kernel and unfold_kernel since the thirty-fifth session, split_tail in chunk_selection.cu, and a large
    # batch still runs).
    for vars in "GSA_SELECT_RANK=1" "GSA_SELECT_RANK=2" "GSA_SELECT_WARP=0" "GSA_SELECT_MMA=0 GSA_SELECT_WARP=0" \
      "GSA_UNION_SPLIT=0"; do
      printf '%s\t%s\n' "test_attention Selection $vars" \
        "$vars timeout 300 ./build/tests/test_attention --gtest_filter='Selection.*'"
    done
    gsa_memcheck_specs test_sparse_decode test_decode_plan "test_attention --gtest_filter='Selection.*'" \
      test_selected_attention "test_sparse_attention_gpu --gtest_filter='*/2:*/5'"
  } | gsa_parallel_lines | tee "$out/tests.txt"
fi
if [[ " $parts " == *" bench "* ]]; then
  # Decode: one sequence at 32K-1M, 64 sequences at 32K; the dense Flash-Decoding peer in the same call.
  timeout 120 ./build/launcher/gsa bench kernels --decode 2>&1 | tee "$out/bench_decode.txt"
  timeout 120 ./build/launcher/gsa bench kernels --decode --decode-batch 64 --decode-tokens 32768 2>&1 \
    | tee -a "$out/bench_decode.txt"
  batched_decode_peer
  decode_layer_benches
  [ "${GSA_SKIP_PREFILL:-0}" = 1 ] && { timeout 200 python3 peers/attn_peers.py sdpa-causal 8192 2>&1 | tee -a "$out/peer_decode.txt"; exit 0; }
  prefill_bench
  GSA_SM90_BACKWARD=0 GSA_SM90_DQ=0 timeout 240 ./build/launcher/gsa bench kernels ${GSA_KERNEL_BENCH_ARGS:-} 2>&1 \
    | tee "$out/bench_kernels_mma_sync_backward.txt"
  # The key pass over per-tile items and over paired key tiles, each at every length (the default picks by plan size,
  # kPairedKeyPassEntries: paired from 64K on, where the twenty-third session measured it faster).
  for s in 2 3; do
    GSA_SM90_BACKWARD=$s timeout 120 ./build/launcher/gsa bench kernels --tokens 8192,32768,65536,131072 2>&1 \
      | tee "$out/bench_kernels_key_pass_$s.txt"
  done
  # Forward schedule 6 (chained reductions) against the default schedule 7.
  GSA_SM90_FORWARD=6 timeout 120 ./build/launcher/gsa bench kernels --no-backward 2>&1 | tee "$out/bench_kernels_schedule6.txt"
  # A 1M-token prefill layer with the Llama-3.2-1B attention shapes (32 / 8 heads, head dim 64), forward.
  timeout 240 ./build/launcher/gsa bench kernels --tokens 131072,1048576 --head-dim 64 --no-backward --repeats 3 2>&1 \
    | tee "$out/bench_kernels_1m.txt"
fi
if [[ " $parts " == *" stored-ds "* ]]; then
  {
    for b in 1 2 3; do  # the oracle's sizes take stored dS by default; =2 as the bench below runs it
      printf '%s\t%s\n' "test_sparse_attention_gpu GSA_SM90_DQ=2,GSA_SM90_BACKWARD=$b" \
        "GSA_SM90_DQ=2 GSA_SM90_BACKWARD=$b timeout 300 ./build/tests/test_sparse_attention_gpu"
    done
    gsa_test_specs test_memory_tracker  # available_bytes decides whether the workspace is allocated
    printf '%s\t%s\n' "memcheck test_sparse_attention_gpu GSA_SM90_DQ=2" \
      "GSA_SM90_DQ=2 timeout 300 compute-sanitizer --tool memcheck ./build/tests/test_sparse_attention_gpu --gtest_filter='*/2:*/5'"
  } | gsa_parallel_lines | tee "$out/tests_stored_ds.txt"
  for round in 1 2; do
    for dq in 1 2; do
      echo "== GSA_SM90_DQ=$dq (round $round)" | tee -a "$out/bench_kernels_stored_ds.txt"
      GSA_SM90_DQ=$dq timeout 120 ./build/launcher/gsa bench kernels --tokens 8192,32768,65536,131072 2>&1 \
        | tee -a "$out/bench_kernels_stored_ds.txt"
    done
  done
fi
if [[ " $parts " == *" peers "* ]]; then
  prefill_peers "${GSA_PEER_SIZES:-8192,32768,131072}"
fi
