#!/usr/bin/env bash
# Session 23, call 3 (from the repository root: bash docs/results/session23/call3.sh; peers/attn_peers.py copied
# from shared/peers): main's prefill kernels timed as the peers are (CUDA events, L2 flushed) with the peers in the
# same call; then where the sparse decode kernel's ~15 us floor at 128K (two levels, ~2K rows a KV head) goes: its
# duration under Nsight Compute with the caches flushed before it (ncu's default) and not, its stalls by program
# counter, and the layer step under the existing switches (SIMT kernel, unstaged merge, no programmatic launch).
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
t0=$(date +%s)
left() { echo $(( ${1:-570} - ($(date +%s) - t0) )); }
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa || exit 1
g=./build/launcher/gsa
timeout 100 $g bench kernels 2>&1 | tee "$out/bench_kernels.txt"
echo "bench done at $(( $(date +%s) - t0 )) s"
timeout $(left 470) python3 peers/attn_peers.py sdpa-cudnn-causal,flex-gsa-permuted 8192,32768,131072 nodecode 2>&1 \
  | grep -v -e Warning -e "bm = create" | tee "$out/peers.txt"
echo "peers done at $(( $(date +%s) - t0 )) s"
decode=(bench decode --levels 2 --tokens 131072 --repeats 1)
for cache in all none; do
  timeout 40 ncu --clock-control none --cache-control $cache --metrics gpu__time_duration.sum -k regex:sparse_decode \
    --launch-count 6 $g "${decode[@]}" 2>&1 | grep -E "duration" | awk -v c=$cache '{printf "%s ", $NF} END {print "us: cache-control " c}'
done 2>&1 | tee "$out/ncu_decode_cache.txt"
timeout 60 ncu --clock-control none --section SourceCounters --section WarpStateStats --section LaunchStats \
  -k regex:sparse_decode --launch-count 1 $g "${decode[@]}" > "$out/ncu_decode_source.txt" 2>&1
grep -A40 "Warp Stall Sampling\|Section: Warp State" "$out/ncu_decode_source.txt" | head -70
for e in GSA_DECODE_KERNEL=simt GSA_DECODE_STAGED_MERGE=0 GSA_PDL=0 GSA_DECODE_KERNEL=mma; do
  echo "== $e"
  env $e timeout 30 $g bench decode --levels 2 --tokens 131072 2>&1 | tail -3
done 2>&1 | tee "$out/bench_decode_switches.txt"
echo "all done at $(( $(date +%s) - t0 )) s"
