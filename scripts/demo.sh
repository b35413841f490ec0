#!/usr/bin/env bash
# The demo (README command 1): installs what is missing, builds, then trains the embedded demo config
# (configs/demo.pbtxt: multi-document key-value retrieval, 8x compressed, a 2-layer model from scratch) under
# `mpirun -np 2` with sequence parallelism (sp 2: each rank holds half of every sequence, the gist tree is
# exchanged and unfolding is routed between the ranks), in two phases:
#   1. 1-4 documents per example (64-256 context tokens), 1,200 steps, the last 200 decaying the learning rate;
#   2. from phase 1's weights, 8-16 documents (up to 1,024 context tokens, 15 distractors), 350 steps (a cosine);
# then prints the three-mode eval table (full causal attention / gist-only / GSA selective unfolding) at 4 and 16
# documents and draws the loss curve of both phases. About 8 minutes on 2 CPU cores.
# Output: $GSA_DEMO_DIR (default runs/demo; a previous demo run there is replaced, any other folder refused): phase1/, phase2/ (metrics,
# TensorBoard, checkpoints), eval.txt, eval.json, loss.png. Extra arguments go to both `gsa train` runs (e.g.
# --set train.seed=3). GSA_DEMO_PHASE2_STEPS (350) and GSA_DEMO_EVAL_SAMPLES (200) shrink the run for the smoke
# test (tests/e2e/test_demo.sh, which also passes --set train.steps=N for phase 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --demo
scripts/build.sh --target gsa
py=$(cat build/python)
gsa=$PWD/build/launcher/gsa
out=${GSA_DEMO_DIR:-runs/demo}
phase2_steps=${GSA_DEMO_PHASE2_STEPS:-350}
eval_samples=${GSA_DEMO_EVAL_SAMPLES:-200}
if [ -e "$out" ]; then
  # Only a previous demo run is replaced; anything else there is left alone.
  if [ -d "$out/phase1" ] || [ -z "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "demo: replacing the previous demo run in $out"
    rm -rf "$out"
  else
    echo "demo: $out exists and is not a demo run (no phase1/); set GSA_DEMO_DIR to another folder" >&2
    exit 1
  fi
fi
mkdir -p "$out"

export OMP_NUM_THREADS=1  # one LibTorch thread per rank
mpi=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
train=(train --sp 2 --backend mpi)
start=$(date +%s)

echo "demo: phase 1 of 2: 1-4 documents per example, 1,200 steps (mpirun -np 2, sp 2)"
"${mpi[@]}" "$gsa" "${train[@]}" --output-dir "$out/phase1" "$@"

echo "demo: phase 2 of 2: 8-16 documents (up to 1,024 context tokens), $phase2_steps steps from phase 1's weights"
"${mpi[@]}" "$gsa" "${train[@]}" --init-from "$out/phase1" --output-dir "$out/phase2" "$@" \
  --set data.multi_doc.documents=16 --set data.multi_doc.min_documents=8 --set data.multi_doc.copy_fraction=0.25 \
  --set train.batch_size=8 --set train.steps="$phase2_steps" --set train.warmup_steps=0 --set train.min_lr_ratio=0.05 \
  --set train.decay_fraction=1

echo "demo: eval on held-out samples, 4 and 16 documents (15 distractors), three attention modes"
"$gsa" eval --checkpoint "$out/phase2" --lengths 260,1028 --samples "$eval_samples" --threads 2 --json "$out/eval.json" \
  | tee "$out/eval.txt"

"$py" scripts/plot_loss.py "$out/phase1/metrics.jsonl" "$out/phase2/metrics.jsonl" "$out/loss.png" \
  --phases "phase 1: 1-4 documents,phase 2: 8-16 documents" --chance "$(awk 'BEGIN { print log(10) }')" \
  --chance-label "a retrieval answer by chance" \
  --title "gsa demo: multi-document retrieval, sp 2 (loss on answers and copies)"
echo "demo: done in $(( $(date +%s) - start )) s; results in $out (eval.txt, loss.png)"
