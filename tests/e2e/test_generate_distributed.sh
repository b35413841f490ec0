#!/usr/bin/env bash
# test_generate_distributed.sh GSA MPIEXEC [MPIEXEC_FLAGS...]: trains a demo checkpoint for a few steps, then
# `gsa generate` greedy on one process (the oracle) and under mpirun on 2 and 4 ranks (distributed decode: the
# prompt's KV cache cut over the ranks), and on 4 ranks as 2 sp groups. The completions must be identical, printed
# once; a prompt shorter than the ranks is refused with the reason. GSA_E2E_BACKEND=nccl (GPU machines):
# one GPU per rank, the oracle on CUDA; default mpi (CPU tensors).
set -u
gsa=$1 mpiexec=$2
shift 2
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
export OMP_NUM_THREADS=1
backend=${GSA_E2E_BACKEND:-mpi}
device=cpu
[ "$backend" = nccl ] && device=cuda
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$gsa" train --config "$tiny" --set train.steps=20 --set train.eval_batches=1 --samples 0 --threads 1 --output-dir "$dir" >/dev/null \
  || { echo "training the checkpoint failed"; exit 1; }
context="k3=v9 k7=v2 k1=v5 alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho"
args=(generate --checkpoint "$dir" --context "$context $context $context" --prompt "?k7=" --max-new-tokens 12)
expected=$("$gsa" "${args[@]}" --device $device 2>/dev/null)
[ -n "$expected" ] || { echo "single-process generate printed nothing"; exit 1; }
status=0
for np in ${GSA_E2E_RANKS:-2 4}; do
  got=$(timeout 300 "$mpiexec" -np "$np" "$@" -x OMP_NUM_THREADS "$gsa" "${args[@]}" --backend "$backend" 2>"$dir/err")
  if [ "$got" == "$expected" ]; then
    echo "np $np: identical completion ($(grep -o '[0-9]* ranks.*' "$dir/err"))"
  else
    echo "np $np: completion DIFFERS: '$got' vs one process '$expected'"; cat "$dir/err"; status=1
  fi
done
# Two sp groups of 2 (dp 2): still one copy of the completion (world rank 0 prints).
if [[ " ${GSA_E2E_RANKS:-2 4} " == *" 4 "* ]]; then
  got=$(timeout 300 "$mpiexec" -np 4 "$@" -x OMP_NUM_THREADS "$gsa" "${args[@]}" --sp 2 --backend "$backend" 2>"$dir/err")
  if [ "$got" == "$expected" ]; then
    echo "np 4 --sp 2: one identical completion"
  else
    echo "np 4 --sp 2: printed '$got', expected one copy of '$expected'"; cat "$dir/err"; status=1
  fi
fi
# A prompt of fewer positions than ranks: every rank stops with the reason (no hang, no LibTorch trace).
short=(generate --checkpoint "$dir" --prompt "x" --max-new-tokens 2 --backend "$backend")
if timeout 120 "$mpiexec" -np 2 "$@" -x OMP_NUM_THREADS "$gsa" "${short[@]}" >/dev/null 2>"$dir/err"; then
  echo "np 2, a 1-position prompt: succeeded, expected a refusal"; status=1
elif grep -q "the prompt has 1 positions (gists included), fewer than the 2 ranks it is cut over" "$dir/err"; then
  echo "np 2, a 1-position prompt: refused with the reason"
else
  echo "np 2, a 1-position prompt: refused without the reason:"; cat "$dir/err"; status=1
fi
echo "completion: '$expected'"
exit $status
