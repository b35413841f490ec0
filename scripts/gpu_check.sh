#!/usr/bin/env bash
# GPU validation in one call (device machines: nothing can be installed there). Builds against the image's
# LibTorch, runs every test (device-parametrised cases then run with CUDA tensors too, gpu-label tests run),
# then the attention bench on the GPU next to the peers.
# Logs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh
py=$(command -v python3)
echo "$py" >"$out/python.txt"
mkdir -p build
echo "$py" > build/python
start=$(date +%s)
GSA_JOBS=16 scripts/build.sh >"$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
OMP_NUM_THREADS=1 ctest --test-dir build -j 8 --timeout 600 --output-on-failure >"$out/ctest.log" 2>&1
echo "ctest rc $?"; tail -15 "$out/ctest.log"
grep -E "Skipped|\*\*\*" "$out/ctest.log" | head -20
if [ "${GSA_GPU_BENCH:-1}" = 1 ]; then
  ./build/launcher/gsa bench attention --device cuda ${GSA_BENCH_ARGS:-} 2>&1 | tee "$out/bench_cuda.txt"
  if [ -f peers/attn_peers.py ]; then
    timeout 300 python3 peers/attn_peers.py sdpa-causal,flex-gsa-interleaved,flex-gsa-permuted ${GSA_PEER_SIZES:-8192,32768} nodecode \
      2>&1 | tee "$out/peers.txt"
  fi
fi
