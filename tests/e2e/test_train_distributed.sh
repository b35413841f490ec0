#!/usr/bin/env bash
# test_train_distributed.sh GSA MPIEXEC [MPIEXEC_FLAGS...]: `gsa train` on the embedded demo for 4 steps on one
# process, then under mpirun as sp 2, dp 2 and dp 2 x sp 2 (MPI backend, CPU). Oracle: the single process. Every
# step's printed loss (4 decimals), accuracy and gradient norm must be identical, and the final answer accuracy
# too: the distributed loop trains the same model on the same global batches.
set -u
gsa=$1 mpiexec=$2
shift 2
export OMP_NUM_THREADS=1
args=(train --set train.steps=4 --set train.log_every=1 --set train.eval_batches=1 --samples 0 --threads 1)
summary() { grep -E '^  (step|answer accuracy after)' | sed -E 's/ +[0-9]+ tok\/s//; s/, [0-9.]+ s$//'; }
expected=$("$gsa" "${args[@]}" 2>&1 | summary)
[ "$(echo "$expected" | grep -c step)" -eq 4 ] || { echo "single-process run failed:"; echo "$expected"; exit 1; }
status=0
for run in "2 --sp 2" "2 --dp 2" "4 --dp 2 --sp 2"; do
  read -r np mesh <<<"$run"
  got=$(timeout 300 "$mpiexec" -np "$np" "$@" -x OMP_NUM_THREADS "$gsa" "${args[@]}" $mesh --backend mpi 2>&1 | summary)
  if [ "$got" == "$expected" ]; then
    echo "np $np $mesh: identical to one process"
  else
    echo "np $np $mesh: DIFFERS from one process"; diff <(echo "$expected") <(echo "$got"); status=1
  fi
done
echo "$expected"
exit $status
