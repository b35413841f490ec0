#!/usr/bin/env bash
# `gsa bench serve` on one GPU in one device call: builds the gsa binary against the image's LibTorch (kept
# between calls while the machine is warm), runs the bench with the Llama-3.2-1B shapes (random weights) and
# the dense peer (scripts/peer_serve_dense.py) in the same call. Logs and CSVs go to $OUT (or ./gpu-logs).
# Extra arguments go to `gsa bench serve`.
set -uo pipefail
cd "$(dirname "$0")/.."
export NCCL_NVLS_ENABLE=0 OMP_NUM_THREADS=1
out=${OUT:-gpu-logs}
mkdir -p "$out" build
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu_serve.txt"
start=$(date +%s)
GSA_JOBS=16 scripts/build.sh --target gsa >"$out/build_serve.log" 2>&1 || { tail -60 "$out/build_serve.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
timeout ${GSA_SERVE_BENCH_TIMEOUT:-330} ./build/launcher/gsa bench serve --config configs/llama-1b-gsa.pbtxt \
  --device cuda --concurrency 1,16,64 --csv "$out/serve_gsa.csv" "$@" 2>&1 | tee "$out/bench_serve.txt"
timeout ${GSA_SERVE_PEER_TIMEOUT:-200} python3 scripts/peer_serve_dense.py --csv "$out/serve_dense.csv" 2>&1 \
  | tee "$out/peer_serve.txt"
