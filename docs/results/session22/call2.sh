#!/usr/bin/env bash
# Session 22, call 2 (bash docs/results/session22/call2.sh): where the Hopper key pass waits (Nsight Compute, 32K
# and 128K): speed of light, memory workload, warp states; the dq pass and forward at 32K for comparison.
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa || exit 1
g=./build/launcher/gsa
for n in 32768 131072; do
  timeout 200 ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
    --section LaunchStats --section Occupancy -k 'regex:key_pass_sm90' --launch-count 1 \
    $g bench kernels --tokens $n --repeats 1 > "$out/ncu_key_pass_$n.txt" 2>&1
  grep -v -e "^==PROF==" "$out/ncu_key_pass_$n.txt" | grep -E "Throughput|Hit Rate|Duration|Busy|Stall|Warp Cycles|Registers|Achieved|Pipe|Bandwidth|Issued|Eligible|Active" | head -60
done
for k in dq_sm90 forward_sm90; do
  timeout 150 ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis -k "regex:$k" --launch-count 1 \
    $g bench kernels --tokens 32768 --repeats 1 > "$out/ncu_$k.txt" 2>&1
  grep -v -e "^==PROF==" "$out/ncu_$k.txt" | grep -E "Throughput|Hit Rate|Duration|Busy|Bandwidth" | head -30
done
