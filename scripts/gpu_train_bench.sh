#!/usr/bin/env bash
# Training on one H200 in one device call (docs/PERFORMANCE.md, "Training on one H200"): builds the gsa binary
# against the image's LibTorch (scripts/gpu_build.sh), then `gsa bench train` at 32K, 64K and 128K tokens per
# sequence: the Llama-3.2-1B shapes with random weights, bf16 with fp32 master weights, activation checkpointing
# per layer, GSA selective training against dense causal attention (SDPA) in the same process. Logs, the table and
# train_bench.{csv,json} go to $OUT, packed (gpu_env.sh), or to ./gpu-logs. Extra bench flags:
# GSA_TRAIN_BENCH_ARGS (e.g. "--layers 8").
# Budget: the build (a few minutes from scratch), then about 2 minutes of steps; every stage has a timeout.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh
timeout 420 scripts/gpu_build.sh "$out" gsa || exit 1
timeout 360 ./build/launcher/gsa bench train --device cuda --tokens ${GSA_TRAIN_BENCH_TOKENS:-32768,65536,131072} \
  --out "$out" ${GSA_TRAIN_BENCH_ARGS:-} 2>&1 | tee "$out/bench_train.txt"
exit "${PIPESTATUS[0]}"
