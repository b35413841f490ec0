#!/usr/bin/env bash
# Session 23, call 4 (from the repository root: bash docs/results/session23/call4.sh): where the sparse decode
# kernel's ~16 us at 128K (two levels, ~2K rows a KV head, 16 splits of 8 KV heads) go, by SASS instruction:
# Nsight Compute's warp-stall samples per program counter (SourceCounters), exported as SASS lines, for the
# tensor-core kernel at head dim 128 (the issue's decode shape) and head dim 64 (the 1B model's), with the
# instruction counts and stall reasons (WarpStateStats) beside them.
set -uo pipefail
cd "$(dirname "$0")/../../.."
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa || exit 1
g=./build/launcher/gsa
for d in 128 64; do
  timeout 90 ncu --clock-control none --section SourceCounters --section WarpStateStats --section LaunchStats \
    --section InstructionStats --import-source no -k regex:sparse_decode --launch-count 1 -f -o "$out/decode_d$d" \
    $g bench decode --levels 2 --tokens 131072 --head-dim $d --repeats 1 > "$out/ncu_decode_d$d.log" 2>&1
  ncu -i "$out/decode_d$d.ncu-rep" --page source --csv --print-source sass > "$out/decode_d${d}_sass.csv" 2>&1
  ncu -i "$out/decode_d$d.ncu-rep" --page details > "$out/decode_d${d}_details.txt" 2>&1
  grep -E "Executed Instructions|Warp Cycles Per Issued|Duration|Registers" "$out/decode_d${d}_details.txt"
  wc -l "$out/decode_d${d}_sass.csv"
done
echo "all done at $(( $(date +%s) - t0 )) s"
