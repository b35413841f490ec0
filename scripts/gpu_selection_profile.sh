#!/usr/bin/env bash
# Where one decode layer's chunk selection spends its time, in one device call (Nsight Compute with programmatic
# launch off; ncu locks the clocks at base and flushes the caches, so durations run ~1.3x the serving step's). Per
# context length (GSA_PROFILE_TOKENS, default 131072,1048576): the selection launches of `gsa bench decode`'s
# steps with the serving model's attention shapes (configs/llama-1b-gsa.pbtxt: 32 / 8 heads, head dim 64; c0 8,
# fanout 4, three levels), each with its grid, duration, cycles and executed warp instructions; then the same
# launches' stall reasons per issued instruction (WarpStateStats) and their durations with warm caches and free
# clocks (what a launch costs without ncu's flush and clock lock). The first rows are the adaptive budget's layer
# (the bench's first selective layer), the fixed budget's follow. With GSA_PROFILE_SOURCE=1 also the warp-stall
# sampling per SASS instruction of each selection kernel (SourceCounters, src_KERNEL_TOKENS.csv). The sixteenth
# session's reading of these (docs/kernels-notes.md, d10): count executed instructions before blaming latency.
# Logs go to $OUT (packed, see gpu_env.sh) or ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
gpu_log=gpu_selection source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa || exit 1
g=./build/launcher/gsa
kernels='regex:score_kernel|top_k|level_select|descent_kernel|union_kernel|unfold_kernel'
count=${GSA_PROFILE_LAUNCHES:-14}
profile() {  # tokens, name, ncu flags...
  local tokens=$1 name=$2
  shift 2
  GSA_PDL=0 timeout 200 ncu --kernel-name "$kernels" --launch-count "$count" "$@" --csv --page raw \
    $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens "$tokens" \
    --repeats 2 > "$out/ncu_${name}_$tokens.csv" 2>&1
  echo "## $name, $tokens tokens"
  python3 scripts/ncu_table.py "$out/ncu_${name}_$tokens.csv"
}
IFS=, read -r -a lengths <<< "${GSA_PROFILE_TOKENS:-131072,1048576}"
for tokens in "${lengths[@]}"; do
  profile "$tokens" launches \
    --metrics gpu__time_duration.sum,launch__grid_size,sm__cycles_elapsed.max,smsp__inst_executed.sum
  profile "$tokens" stalls --section WarpStateStats --metrics gpu__time_duration.sum,smsp__inst_executed.sum
  profile "$tokens" warm_free_clocks --cache-control none --clock-control none \
    --metrics gpu__time_duration.sum,launch__grid_size
  if [ "${GSA_PROFILE_SOURCE:-0}" = 1 ]; then
    # ncu's text output of SourceCounters is a summary only: the stall samples per SASS instruction come from the
    # saved report's source page (as the twenty-fourth session's call 2 read them).
    for kernel in score_kernel top_k_kernel level_select descent_kernel union_kernel unfold_kernel; do
      GSA_PDL=0 timeout 120 ncu --section SourceCounters --section WarpStateStats --import-source no \
        -k "regex:$kernel" --launch-count 1 -f -o "$out/src_${kernel}_$tokens" \
        $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens "$tokens" \
        --repeats 2 > /dev/null 2>&1
      ncu -i "$out/src_${kernel}_$tokens.ncu-rep" --page source --csv --print-source sass \
        > "$out/src_${kernel}_$tokens.csv" 2>&1
      echo "## $kernel, $tokens tokens: $(wc -l < "$out/src_${kernel}_$tokens.csv") SASS lines with their stall samples"
    done
  fi
done 2>&1 | tee "$out/selection_profile.txt"
