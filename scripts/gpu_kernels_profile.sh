#!/usr/bin/env bash
# Where the attention kernels spend their time, in one device call (Nsight Compute; clocks locked, so durations
# are ~1.3x the bench's): per-kernel durations of `gsa bench kernels` forward + backward at 32K and 128K; the
# Hopper kernels' L2 hit rate and DRAM / L2 throughput at 32K and 128K (clocks left alone), their stall reasons,
# tensor-pipe activity and instruction counts at 32K; with GSA_PROFILE_SOURCE=1 also
# their stalls sampled by program counter (SourceCounters).
# Logs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa || exit 1
g=./build/launcher/gsa
timeout 150 ncu --metrics gpu__time_duration.sum -k 'regex:pass|forward|delta|convert|dq_sm90' --launch-count 40 \
  $g bench kernels --tokens 32768,131072 --repeats 1 > "$out/ncu_times.txt" 2>&1
grep -E "_kernel|duration" "$out/ncu_times.txt" | grep -v Profiling | sed 's/(SparseAttention.*//' | paste - - \
  | awk '{print $2, $(NF-1), $NF}' | tail -24
# Where each kernel's operands come from (L2 hit rate, DRAM and L2 throughput): the key pass read Q / dO from DRAM
# at 14% L2 hits before the twenty-second session's item order and paired key tiles.
memory_metrics='lts__t_sector_hit_rate.pct,dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__throughput.avg.pct_of_peak_sustained_elapsed,gpu__time_duration.sum'
for n in 32768 131072; do
  for kernel in forward_sm90 dq_sm90 key_pass_sm90; do
    timeout 200 ncu --clock-control none --metrics "$memory_metrics" -k "regex:$kernel" --launch-count 1 \
      $g bench kernels --tokens $n --repeats 1 > "$out/ncu_memory_${kernel}_$n.txt" 2>&1
    echo "$kernel at $n: $(grep -E "hit_rate|dram__|lts__throughput|duration" "$out/ncu_memory_${kernel}_$n.txt" \
      | awk '{printf "%s %s %s; ", $1, $(NF-1), $NF}')"
  done
done
stall_metrics='regex:smsp__warp_issue_stalled_.*_per_warp_active.pct,regex:sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active'
for kernel in forward_sm90 dq_sm90 key_pass_sm90; do
  timeout 200 ncu --metrics "$stall_metrics" -k "regex:$kernel" --launch-count 1 \
    $g bench kernels --tokens 32768 --repeats 1 > "$out/ncu_stalls_$kernel.txt" 2>&1
  grep -E "_kernel<|stalled|pipe_tensor|inst_executed|issue_active" "$out/ncu_stalls_$kernel.txt" | grep -v Profiling \
    | awk '$NF+0 > 2 || /kernel|inst/' | sed 's/(SparseAttention.*//'
  if [ "${GSA_PROFILE_SOURCE:-0}" = 1 ]; then
    timeout 200 ncu --section SourceCounters -k "regex:$kernel" --launch-count 1 \
      $g bench kernels --tokens 32768 --repeats 1 > "$out/ncu_source_$kernel.txt" 2>&1
    grep -A30 "Warp Stall Sampling" "$out/ncu_source_$kernel.txt" | head -40
  fi
done
