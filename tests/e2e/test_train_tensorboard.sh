#!/usr/bin/env bash
# test_train_tensorboard.sh GSA PYTHON: `gsa train` writes TensorBoard event files that TensorBoard's own reader
# (check_tensorboard.py) reads back equal to metrics.jsonl, also across a resume: a 6-step run checkpointing
# every 3 steps, then `latest` set back to step 3 (as if killed there) and the run resumed, which writes a second
# event file whose SessionLog START makes TensorBoard drop the first file's steps 3-5. Exit 77: tensorboard
# not installed. The run holds its learning rate until its last steps (train.decay_fraction 0.6 of the 5 steps after
# the warmup: a cosine of 3 steps): metrics.jsonl's lr must follow the schedule's closed form across the resume too.
set -u
gsa=$1 python=$2
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
args=(train --config "$tiny" --set train.steps=6 --set train.eval_batches=1 --samples 0 --threads 1 --output-dir "$dir/run"
      --checkpoint-every 3 --keep-checkpoints 0 --set train.lr=0.01 --set train.min_lr_ratio=0.1
      --set train.warmup_steps=1 --set train.decay_fraction=0.6)
"$gsa" "${args[@]}" >"$dir/first.log" 2>&1 || { cat "$dir/first.log"; echo "FAIL: training failed"; exit 1; }
echo step-000003 >"$dir/run/checkpoints/latest"
"$gsa" "${args[@]}" --resume >"$dir/resume.log" 2>&1 || { cat "$dir/resume.log"; echo "FAIL: resume failed"; exit 1; }
grep -q 'resumed at step 3' "$dir/resume.log" \
  || { cat "$dir/resume.log"; echo "FAIL: did not resume at step 3"; exit 1; }
[ "$(ls "$dir/run/tensorboard" | wc -l)" -eq 2 ] \
  || { ls "$dir/run/tensorboard"; echo "FAIL: expected 2 event files"; exit 1; }
# Warmup 1 step, the peak held to step 3 (the cosine's first), then progress 1/2 and 1: 0.01 x (1, 1, 1, 1, 0.55, 0.1).
"$python" - "$dir/run/metrics.jsonl" <<'PY' || exit 1
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
want = [0.01, 0.01, 0.01, 0.01, 0.0055, 0.001]
got = [r["lr"] for r in rows]
if len(got) != 6 or any(abs(g - w) > 1e-12 for g, w in zip(got, want)):
    sys.exit(f"FAIL: lr {got}, want {want} (train.decay_fraction=0.6)")
print("lr follows warmup-stable-decay:", got)
PY
"$python" "$(dirname "$0")/check_tensorboard.py" "$dir/run" 6
