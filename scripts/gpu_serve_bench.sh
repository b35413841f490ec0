#!/usr/bin/env bash
# `gsa bench serve` on one GPU in one device call: builds the gsa binary against the image's LibTorch
# (scripts/gpu_build.sh; kept between calls while the machine is warm), runs the bench with the Llama-3.2-1B shapes (random weights) and
# the dense peer (scripts/peer_serve_dense.py) in the same call.
# Logs and CSVs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
# Extra arguments go to `gsa bench serve`.
set -uo pipefail
cd "$(dirname "$0")/.."
gpu_log=gpu_serve source scripts/gpu_env.sh
timeout 420 scripts/gpu_build.sh "$out" gsa || exit 1
PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True timeout ${GSA_SERVE_BENCH_TIMEOUT:-330} ./build/launcher/gsa bench serve --config configs/llama-1b-gsa.pbtxt \
  --device cuda --concurrency 1,16,64 --csv "$out/serve_gsa.csv" "$@" 2>&1 | tee "$out/bench_serve.txt"
timeout ${GSA_SERVE_PEER_TIMEOUT:-200} python3 scripts/peer_serve_dense.py --csv "$out/serve_dense.csv" 2>&1 \
  | tee "$out/peer_serve.txt"
