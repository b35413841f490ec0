#!/usr/bin/env bash
# The demo: installs what is missing, builds, trains the embedded default config (configs/demo.pbtxt: a small GSA
# model on multi-document key-value retrieval, 1,024-token contexts of 16 documents, 8x compression) under
# `mpirun -np 2` with the sequences cut over both ranks (sp 2), then prints `gsa eval`'s table on held-out
# samples: full causal, gist-only and GSA selective attention side by side. Output in runs/demo (replaced on each
# run; GSA_DEMO_DIR to change). Extra arguments go to `gsa train`, e.g. --set train.steps=100.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --target gsa
out=${GSA_DEMO_DIR:-runs/demo}
rm -rf "$out"
export OMP_NUM_THREADS=1
mpi=(mpirun -np 2 --oversubscribe)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
start=$(date +%s)
"${mpi[@]}" ./build/launcher/gsa train --sp 2 --backend mpi --output-dir "$out" "$@"
echo "trained in $(( $(date +%s) - start )) s"
# Held-out samples (another seed than training's) at the trained length: 16 documents, 1,024 context tokens.
"${mpi[@]}" ./build/launcher/gsa eval --checkpoint "$out" --backend mpi --lengths 1029 --samples 200 \
  --json "$out/eval.json"
