# Session 33, device call 4: the stored-dS default in training -- `gsa bench train` (the Llama-3.2-1B shapes, head
# dim 64, GSA selective training) at 8K and 32K tokens with GSA_SM90_DQ=1 (the recomputing dq pass) and unset (the
# default: stored dS, 0.2 / 2.4 GiB of workspace a layer), alternated twice; then dense once as the peer.
set -uo pipefail
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out/build" gsa || exit 1
g=./build/launcher/gsa
for r in 1 2; do
  for dq in 1 unset; do
    echo "== GSA_SM90_DQ=$dq round $r"
    if [ $dq = unset ]; then
      timeout 100 $g bench train --device cuda --tokens 8192,32768 --modes gsa --steps 3 2>&1 | tail -4
    else
      GSA_SM90_DQ=$dq timeout 100 $g bench train --device cuda --tokens 8192,32768 --modes gsa --steps 3 2>&1 | tail -4
    fi
  done
done 2>&1 | tee "$OUT/bench_train_stored_ds.txt"
echo "== dense"
timeout 100 $g bench train --device cuda --tokens 8192,32768 --modes dense --steps 3 2>&1 | tail -4 | tee -a "$OUT/bench_train_stored_ds.txt"
