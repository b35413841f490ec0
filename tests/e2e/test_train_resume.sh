#!/usr/bin/env bash
# test_train_resume.sh GSA [MPIEXEC MPIEXEC_FLAGS...]: exact resume and the metrics/checkpoint rules of
# `gsa train --output-dir`, on one process, or with MPIEXEC under `mpirun -np 2 ... --sp 2` (MPI backend).
#  1. an uninterrupted run of $steps steps (the oracle; 60: under mpirun a SIGTERM sent after 3 logged steps of 30
#     once arrived after the last one on a loaded 2-core machine, and then nothing is resumed);
#  2. the same run with a checkpoint every step, killed (SIGKILL; SIGTERM to mpirun) once a few steps are logged,
#     then the same command with --resume: metrics.jsonl must hold the $steps steps, each loss the oracle's exact text
#     (the resumed losses equal the uninterrupted ones bit for bit), and the killed run's lines after its last
#     checkpoint are gone;
#  3. a fresh run into a folder that holds a checkpoint is refused and names --resume;
#  4. a fresh run truncates an old metrics.jsonl (with a partial last line) instead of appending to it;
#  5. --keep-checkpoints 2 leaves the two newest step folders and `latest` naming the last;
#  6. --resume into a folder without a checkpoint (a requeued job's first launch) trains from step 0, says so, and
#     its losses are the oracle's.
set -u
gsa=$1
shift
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
launch=()
mesh=()
label="1 process"
if [ $# -gt 0 ]; then
  launch=("$1" -np 2 "${@:2}" -x OMP_NUM_THREADS)
  mesh=(--sp 2 --backend mpi --comm-timeout-s 60)
  label="mpirun -np 2 --sp 2"
fi
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
steps=60
args=(train --config "$tiny" --set train.steps=$steps --set train.log_every=1 --set train.eval_batches=1 --set train.warmup_steps=3
      --samples 0 --threads 1 "${mesh[@]}")
status=0
fail() { echo "FAIL ($label): $*"; status=1; }
losses() { sed -E 's/.*"loss":([^,]*),.*/\1/' "$1"; }
run() { timeout 300 "${launch[@]}" "$gsa" "${args[@]}" "$@"; }

# 1. The oracle.
run --output-dir "$dir/full" >"$dir/full.log" 2>&1 \
  || { cat "$dir/full.log"; fail "the uninterrupted run failed"; exit 1; }
[ "$(wc -l <"$dir/full/metrics.jsonl")" -eq $steps ] || fail "uninterrupted metrics.jsonl has not $steps lines"

# 2. Killed after a few steps, then resumed.
# exec: $! is gsa itself (or mpirun), so the signal reaches it and not a wrapper.
(exec "${launch[@]}" "$gsa" "${args[@]}" --output-dir "$dir/cut" --checkpoint-every 1 --keep-checkpoints 2 \
  >"$dir/cut.log" 2>&1) &
pid=$!
while kill -0 $pid 2>/dev/null && [ "$(cat "$dir/cut/metrics.jsonl" 2>/dev/null | wc -l)" -lt 3 ]; do sleep 0.05; done
if [ ${#launch[@]} -gt 0 ]; then kill -TERM $pid 2>/dev/null; else kill -KILL $pid 2>/dev/null; fi
wait $pid 2>/dev/null
killed_at=$(cat "$dir/cut/checkpoints/latest" 2>/dev/null)
run --output-dir "$dir/cut" --checkpoint-every 1 --keep-checkpoints 2 --resume >"$dir/resume.log" 2>&1 \
  || { cat "$dir/resume.log"; fail "the resumed run failed"; }
resumed=$(grep -o 'resumed at step [0-9]*' "$dir/resume.log")
echo "killed with latest = '${killed_at:-none}'; ${resumed:-resume found no checkpoint (started over)}"
[ -n "$resumed" ] || [ -z "$killed_at" ] || fail "a checkpoint ($killed_at) existed but the run did not resume"
[ -n "$resumed" ] && [ "${resumed##* }" -ge $steps ] && fail "the kill came after the last step: nothing was resumed"
if [ "$(losses "$dir/cut/metrics.jsonl")" == "$(losses "$dir/full/metrics.jsonl")" ]; then
  echo "resumed losses equal the uninterrupted run's exactly: $(losses "$dir/full/metrics.jsonl" | tr '\n' ' ')"
else
  fail "resumed losses differ from the uninterrupted run's"
  diff <(losses "$dir/full/metrics.jsonl") <(losses "$dir/cut/metrics.jsonl")
fi
[ "$(sed -E 's/.*"step":([0-9]+),.*/\1/' "$dir/cut/metrics.jsonl" | tr '\n' ' ')" == "$(seq -s " " 0 $((steps - 1))) " ] \
  || fail "metrics.jsonl steps after resume: $(tr '\n' ' ' <"$dir/cut/metrics.jsonl")"

# 3. A fresh run does not overwrite a folder holding checkpoints.
if run --output-dir "$dir/full" >"$dir/again.log" 2>&1; then
  fail "a fresh run into a folder with a checkpoint succeeded"
else
  grep -q -- "--resume" "$dir/again.log" || fail "refusal does not name --resume: $(cat "$dir/again.log")"
fi

# 4. A fresh run truncates an old metrics.jsonl.
mkdir -p "$dir/fresh"
printf '{"step":0,"loss":99}\n{"step":1,"lo' >"$dir/fresh/metrics.jsonl"
run --output-dir "$dir/fresh" >"$dir/fresh.log" 2>&1 || fail "fresh run over an old metrics.jsonl failed"
[ "$(losses "$dir/fresh/metrics.jsonl")" == "$(losses "$dir/full/metrics.jsonl")" ] \
  || fail "fresh run's metrics.jsonl is not exactly its own $steps steps: $(cat "$dir/fresh/metrics.jsonl")"

# 5. Keep the newest 2.
kept=$(cd "$dir/cut/checkpoints" && ls -d step-* | tr '\n' ' ')
last=$(printf 'step-%06d' $steps) before=$(printf 'step-%06d' $((steps - 1)))
[ "$kept" == "$before $last " ] || fail "kept checkpoints: '$kept', expected $before $last"
[ "$(cat "$dir/cut/checkpoints/latest")" == "$last" ] || fail "latest is not $last"
[ "$(ls -A "$dir/cut/checkpoints" | grep -c '^\.')" -eq 0 ] \
  || fail "temporary folders left: $(ls -A "$dir/cut/checkpoints")"
# 6. --resume with nothing to resume from.
run --output-dir "$dir/first" --resume >"$dir/first.log" 2>&1 || { cat "$dir/first.log"; fail "--resume into an empty folder failed"; }
grep -q -- "--resume found no checkpoint in $dir/first/checkpoints: from step 0" "$dir/first.log" \
  || fail "--resume into an empty folder did not say it starts at step 0: $(head -3 "$dir/first.log")"
[ "$(losses "$dir/first/metrics.jsonl")" == "$(losses "$dir/full/metrics.jsonl")" ] \
  || fail "--resume into an empty folder: losses differ from the uninterrupted run's"
[ $status -eq 0 ] && echo "PASS ($label)"
exit $status
