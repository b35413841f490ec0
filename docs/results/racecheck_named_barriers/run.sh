#!/usr/bin/env bash
# Run on the device: racecheck on the minimal named-barrier pattern, head-dependent vs equal rounds.
set -uo pipefail
out=${OUT:-gpu-logs}; mkdir -p "$out"
d=$(dirname "$0")
nvcc -std=c++17 -arch=sm_90a -O3 -lineinfo -o "$out/nbr" "$d/named_barrier_race.cu" || exit 1
for mode in differ same; do
  compute-sanitizer --tool racecheck --racecheck-report all "$out/nbr" $mode > "$out/racecheck_repro_$mode.txt" 2>&1
  echo "$mode: $(grep -E 'SUMMARY' "$out/racecheck_repro_$mode.txt") $(grep -E '^rounds' "$out/racecheck_repro_$mode.txt")"
done
rm -f "$out/nbr"
