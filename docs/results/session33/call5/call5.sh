# Session 33, device call 5: (1) the stored-dS crossover on this card -- GSA_SM90_DQ=1|2 forward+backward at head dim
# 128 around the 1 GiB limit (16K-32K) twice, head dim 64 around the 4 GiB limit (32K, 64K) once; (2) with the time
# left, the joined level select read by instruction (scripts/gpu_selection_profile.sh at 128K, GSA_PROFILE_SOURCE=1).
set -uo pipefail
source scripts/gpu_env.sh
t0=$(date +%s)
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa || exit 1
g=./build/launcher/gsa
for r in 1 2; do
  for dq in 1 2; do
    echo "== GSA_SM90_DQ=$dq round $r, head dim 128"
    GSA_SM90_DQ=$dq timeout 60 $g bench kernels --tokens 16384,24576,32768 --repeats 5 2>&1 | grep -E "^ +[0-9]"
    if [ $r = 1 ]; then
      echo "== GSA_SM90_DQ=$dq round $r, head dim 64"
      GSA_SM90_DQ=$dq timeout 60 $g bench kernels --head-dim 64 --tokens 32768,65536 --repeats 5 2>&1 | grep -E "^ +[0-9]"
    fi
  done
done 2>&1 | tee "$OUT/bench_stored_ds_crossover.txt"
echo "crossover done at $(( $(date +%s) - t0 )) s"
GSA_PROFILE_TOKENS=131072 GSA_PROFILE_SOURCE=1 timeout $(( 230 - ($(date +%s) - t0) )) \
  bash scripts/gpu_selection_profile.sh > "$OUT/selection_profile.txt" 2>&1
echo "all done at $(( $(date +%s) - t0 )) s"
