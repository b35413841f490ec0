#!/usr/bin/env bash
# test_train_distributed.sh GSA MPIEXEC [MPIEXEC_FLAGS...]: `gsa train` on the embedded demo for 4 steps on one
# process, then under mpirun as sp 2, dp 2 and dp 2 x sp 2. Oracle: the single process. Every step's printed loss
# and gradient norm must agree within 2e-3 (they print 4 and 2 decimals; only the summation order differs) and
# the accuracies exactly: the distributed loop trains the same model on the same global batches.
# GSA_E2E_BACKEND=nccl (GPU machines): the ranks use NCCL on one GPU each and the oracle runs on CUDA; default mpi
# (CPU tensors).
set -u
gsa=$1 mpiexec=$2
shift 2
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
export OMP_NUM_THREADS=1
backend=${GSA_E2E_BACKEND:-mpi}
args=(train --config "$tiny" --set train.steps=4 --set train.log_every=1 --set train.eval_batches=1 --samples 0 --threads 1)
oracle_device=cpu
[ "$backend" = nccl ] && oracle_device=cuda
summary() { grep -E '^  (step|answer accuracy after)' | sed -E 's/ +[0-9]+ tok\/s.*//; s/, [0-9.]+ s$//'; }
# Same lines, numbers equal within 2e-3 (losses, lr, gradient norms) and words equal.
same() {
  awk 'NR == FNR { a[FNR] = $0; n = FNR; next }
       { m = FNR; nx = split(a[FNR], x, " "); k = split($0, y, " ");
         if (nx != k) bad = 1;
         for (i = 1; i <= k; ++i) {
           if (x[i] == y[i]) continue;
           if (x[i] ~ /^[-0-9.e+]+$/ && y[i] ~ /^[-0-9.e+]+$/ && (x[i] - y[i] <= 2e-3 && y[i] - x[i] <= 2e-3)) continue;
           bad = 1 } }
       END { exit (bad || n != m) }' <(echo "$1") <(echo "$2")
}
expected=$("$gsa" "${args[@]}" --device $oracle_device 2>&1 | summary)
[ "$(echo "$expected" | grep -c step)" -eq 4 ] || { echo "single-process run failed:"; echo "$expected"; exit 1; }
status=0
for run in "2 --sp 2" "2 --dp 2" "4 --dp 2 --sp 2"; do
  read -r np mesh <<<"$run"
  got=$(timeout 300 "$mpiexec" -np "$np" "$@" -x OMP_NUM_THREADS "$gsa" "${args[@]}" $mesh --backend "$backend" 2>&1 \
        | summary)
  if same "$expected" "$got"; then
    echo "np $np $mesh ($backend): the same steps as one process"
  else
    echo "np $np $mesh: DIFFERS from one process"; diff <(echo "$expected") <(echo "$got"); status=1
  fi
done
echo "$expected"
exit $status
