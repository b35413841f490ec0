#!/usr/bin/env bash
# scripts/gpu_build.sh OUT TARGET...: the build step of the GPU scripts (gpu_kernels_check.sh,
# gpu_train_bench.sh): configures against the image's Python LibTorch (build/python names its python3) and builds
# the targets with every core; the log goes to OUT/build.log, the build time to stdout. On failure: the log's last
# 60 lines and exit 1.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$1
shift
mkdir -p "$out" build
command -v python3 > build/python
start=$(date +%s)
GSA_JOBS=${GSA_JOBS:-$(nproc)} scripts/build.sh --target "$@" >"$out/build.log" 2>&1 \
  || { tail -60 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
