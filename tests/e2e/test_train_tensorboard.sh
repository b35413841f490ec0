#!/usr/bin/env bash
# test_train_tensorboard.sh GSA PYTHON: `gsa train` writes TensorBoard event files that TensorBoard's own reader
# (check_tensorboard.py) reads back equal to metrics.jsonl, also across a resume: a 6-step run checkpointing
# every 3 steps, then `latest` set back to step 3 (as if killed there) and the run resumed, which writes a second
# event file whose SessionLog START makes TensorBoard drop the first file's steps 3-5. Exit 77: tensorboard
# not installed.
set -u
gsa=$1 python=$2
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
args=(train --config "$tiny" --set train.steps=6 --set train.eval_batches=1 --samples 0 --threads 1 --output-dir "$dir/run"
      --checkpoint-every 3 --keep-checkpoints 0)
"$gsa" "${args[@]}" >"$dir/first.log" 2>&1 || { cat "$dir/first.log"; echo "FAIL: training failed"; exit 1; }
echo step-000003 >"$dir/run/checkpoints/latest"
"$gsa" "${args[@]}" --resume >"$dir/resume.log" 2>&1 || { cat "$dir/resume.log"; echo "FAIL: resume failed"; exit 1; }
grep -q 'resumed at step 3' "$dir/resume.log" \
  || { cat "$dir/resume.log"; echo "FAIL: did not resume at step 3"; exit 1; }
[ "$(ls "$dir/run/tensorboard" | wc -l)" -eq 2 ] \
  || { ls "$dir/run/tensorboard"; echo "FAIL: expected 2 event files"; exit 1; }
"$python" "$(dirname "$0")/check_tensorboard.py" "$dir/run" 6
