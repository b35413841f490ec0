#!/usr/bin/env bash
# test_gsarun.sh GSARUN [MPIEXEC GSA]: launcher/gsarun.
#  1. --dry-run prints the expected mpirun command for a hostfile, a SLURM allocation and one node (exact
#     strings), and bad arguments or SLURM variables fail naming them;
#  2. gsarun-rank binds local rank r to GPUs[r % count] (CUDA_VISIBLE_DEVICES), or nothing with "none";
#  3. with MPIEXEC and GSA: a 2-rank training run (sp 2) whose rank is killed (SIGKILL) after its first
#     checkpoint is relaunched by --max-restarts 1 with --resume and ends with the final checkpoint (model and
#     optimizer files) byte-identical to an uninterrupted run's, and the same per-step losses.
set -u
gsarun=$1
bin=$(cd "$(dirname "$gsarun")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
# A clean environment: only PATH (and what each case sets), so the exported variables are known.
clean() { env -i PATH="$PATH" "$@"; }

expect_cmd() {  # expect_cmd EXPECTED COMMAND...: COMMAND prints exactly EXPECTED
  local expected=$1
  shift
  local got
  got=$("$@" 2>&1) || fail "exit $? from: $*: $got"
  [ "$got" == "$expected" ] || fail "dry run of: $*
   got: $got
  want: $expected"
}
expect_usage_error() {  # expect_usage_error PATTERN COMMAND...: exit 2 and PATTERN in the message
  local pattern=$1
  shift
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ $rc -eq 2 ] || fail "exit $rc (want 2) from: $*: $out"
  echo "$out" | grep -qF -- "$pattern" || fail "no '$pattern' in: $out"
}

# 1. Dry runs.
printf 'nodeA slots=4\nnodeB slots=4  # comment\n\n' >"$dir/hosts"
expect_cmd "mpirun --hostfile $dir/hosts -np 8 --bind-to none --allow-run-as-root -x NCCL_NVLS_ENABLE=0 -x PATH $bin/gsarun-rank $bin/gsa train --dp 2 --sp 4" \
  clean "$gsarun" --dry-run --hostfile "$dir/hosts" --allow-run-as-root train --dp 2 --sp 4
expect_cmd "mpirun -H gpu01:4,gpu02:4,big7:8 -np 16 --bind-to none -x NCCL_NVLS_ENABLE=0 -x NCCL_IB_HCA -x NCCL_SOCKET_IFNAME -x OMP_NUM_THREADS -x PATH -x GSARUN_GPUS=0,1,2,3 $bin/gsarun-rank $bin/gsa train --sp 8 --backend nccl" \
  clean SLURM_JOB_NODELIST='gpu[01-02],big7' SLURM_TASKS_PER_NODE='4(x2),8' SLURM_NTASKS=16 NCCL_NVLS_ENABLE=1 \
  NCCL_IB_HCA=mlx5 NCCL_SOCKET_IFNAME=ib0 OMP_NUM_THREADS=4 "$gsarun" --dry-run --gpus-per-node 4 train --sp 8 --backend nccl
expect_cmd "mpirun -H n001:2,n002:2,n003:2,n010:2 -np 6 --bind-to none -x NCCL_NVLS_ENABLE=0 -x PATH -x GSARUN_GPUS=2,3 $bin/gsarun-rank /opt/gsa eval --checkpoint D" \
  clean SLURM_JOB_NODELIST='n[001-003,010]' SLURM_NTASKS_PER_NODE=2 CUDA_VISIBLE_DEVICES=2,3 "$gsarun" --dry-run -np 6 \
  --gsa /opt/gsa eval --checkpoint D
expect_cmd "/usr/local/bin/mpirun -np 2 --bind-to none --oversubscribe -x NCCL_NVLS_ENABLE=0 -x PATH -x GSARUN_GPUS=none -x FOO=1 --mca btl self,tcp $bin/gsarun-rank $bin/gsa generate --checkpoint 'a b'" \
  clean "$gsarun" --dry-run -np 2 --oversubscribe --gpus-per-node 0 -x FOO=1 --mpirun-arg=--mca --mpirun-arg btl \
  --mpirun-arg self,tcp --mpirun /usr/local/bin/mpirun -- generate --checkpoint "a b"
expect_cmd "mpirun -np 1 --bind-to none -x NCCL_NVLS_ENABLE=0 -x PATH $bin/gsarun-rank $bin/gsa train --resume" \
  clean "$gsarun" --dry-run train --resume
expect_usage_error "--max-restarts resumes from the last checkpoint: only for gsa train, not 'eval'" \
  clean "$gsarun" --dry-run --max-restarts 1 eval --checkpoint D
expect_usage_error "SLURM_JOB_NODELIST 'gpu[01-': unbalanced '['" clean SLURM_JOB_NODELIST='gpu[01-' SLURM_NTASKS=2 \
  SLURM_TASKS_PER_NODE=2 "$gsarun" --dry-run train
expect_usage_error "SLURM_TASKS_PER_NODE '4(x2': '4(x2' is not N or N(xM)" clean SLURM_JOB_NODELIST='a,b' \
  SLURM_TASKS_PER_NODE='4(x2' "$gsarun" --dry-run train
expect_usage_error "SLURM_TASKS_PER_NODE gives 3 nodes, SLURM_JOB_NODELIST 2" clean SLURM_JOB_NODELIST='a,b' \
  SLURM_TASKS_PER_NODE='1(x3)' "$gsarun" --dry-run train
expect_usage_error "--hostfile: cannot read '$dir/none'" clean "$gsarun" --dry-run --hostfile "$dir/none" train
expect_usage_error "-np must be >= 1, got 0" clean "$gsarun" --dry-run -np 0 train
expect_usage_error "unknown gsarun flag --sp" clean "$gsarun" --dry-run --sp 2 train
expect_usage_error "no gsa command given" clean "$gsarun" --dry-run -np 2

# 2. The per-rank GPU binding.
binding() { clean OMPI_COMM_WORLD_LOCAL_RANK=$1 GSARUN_GPUS=$2 "$bin/gsarun-rank" sh -c 'echo "${CUDA_VISIBLE_DEVICES-unset}"'; }
[ "$(binding 5 0,1,2,3)" == 1 ] || fail "local rank 5 of GPUs 0,1,2,3 got '$(binding 5 0,1,2,3)', want 1"
[ "$(binding 0 4,6)" == 4 ] || fail "local rank 0 of GPUs 4,6 got '$(binding 0 4,6)', want 4"
[ "$(binding 3 none)" == unset ] || fail "GSARUN_GPUS=none bound '$(binding 3 none)'"
clean "$bin/gsarun-rank" true 2>"$dir/rank.err" && fail "gsarun-rank ran outside mpirun"
grep -q "no local rank" "$dir/rank.err" || fail "gsarun-rank outside mpirun: $(cat "$dir/rank.err")"

# 3. A killed job restarted from its last checkpoint equals an uninterrupted one.
if [ $# -ge 3 ]; then
  mpiexec=$2
  gsa=$3
  flags=(--mpirun "$mpiexec" -np 2 --oversubscribe --gsa "$gsa" -x OMP_NUM_THREADS=1 --restart-delay-s 0)
  [ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
  tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model
  train=(train --config "$tiny" --sp 2 --backend mpi --comm-timeout-s 60 --set train.steps=40 --set train.log_every=1
         --set train.eval_batches=1 --set train.warmup_steps=3 --samples 0 --checkpoint-every 4)
  timeout 300 "$gsarun" "${flags[@]}" "${train[@]}" --output-dir "$dir/full" >"$dir/full.log" 2>&1 \
    || { cat "$dir/full.log"; fail "the uninterrupted run failed"; exit 1; }
  timeout 300 "$gsarun" "${flags[@]}" --max-restarts 1 "${train[@]}" --output-dir "$dir/cut" >"$dir/cut.log" 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null && [ ! -f "$dir/cut/checkpoints/latest" ]; do sleep 0.05; done
  # One rank of the job: a process named gsa below this gsarun (timeout -> gsarun -> mpirun -> rank).
  descendants() { local p; for p in $(ps -o pid= --ppid "$1"); do echo "$p"; descendants "$p"; done; }
  rank=$(for p in $(descendants $pid); do [ "$(ps -o comm= -p "$p")" == gsa ] && echo "$p"; done | head -1)
  [ -n "$rank" ] && kill -KILL "$rank"
  wait $pid
  rc=$?
  [ -n "$rank" ] || fail "the job ended before a rank could be killed (latest: $(cat "$dir/cut/checkpoints/latest"))"
  [ $rc -eq 0 ] || { cat "$dir/cut.log"; fail "gsarun --max-restarts 1 exited $rc"; }
  grep -q "restart 1/1 from the last checkpoint" "$dir/cut.log" || fail "gsarun did not say it restarted"
  resumed=$(grep -o 'resumed at step [0-9]*' "$dir/cut.log")
  grep "^gsarun:" "$dir/cut.log"
  echo "killed rank $rank; ${resumed:-not resumed}"
  [ -n "$resumed" ] || fail "the restarted job did not resume from a checkpoint"
  for f in model.safetensors optimizer.safetensors; do
    cmp -s "$dir/full/checkpoints/step-000040/$f" "$dir/cut/checkpoints/step-000040/$f" \
      || fail "final $f differs from the uninterrupted run's"
  done
  losses() { sed -E 's/.*"loss":([^,]*),.*/\1/' "$1"; }
  [ "$(losses "$dir/cut/metrics.jsonl")" == "$(losses "$dir/full/metrics.jsonl")" ] \
    || fail "per-step losses differ from the uninterrupted run's"
fi
[ $status -eq 0 ] && echo PASS
exit $status
