# Sourced by the GPU scripts after `cd` to the repository root: the environment every device call needs
# (NVLink multicast off in NCCL, PyTorch and NVSHMEM, see the device notes; one LibTorch thread per process),
# out (the logs' folder, created), the GPU described in $out/${gpu_log:-gpu}.txt, and gsa_kernel_variants (below).
# Without $OUT, out is ./gpu-logs. With it (a device call), out is a scratch folder packed into
# $OUT/<script name>_logs.tgz when the script exits (several scripts in one call each leave their own): a call
# brings back at most 8 files, and the twenty-eighth session's first call lost its test logs to that limit.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 OMP_NUM_THREADS=1
# Binaries of scripts/prebuild.sh (carried in prebuilt/) load the image's libraries through LD_LIBRARY_PATH.
[ -d prebuilt ] && source scripts/device_libs.sh
if [ -n "${OUT:-}" ]; then
  out=$(mktemp -d /tmp/gsa_logs.XXXXXX)
  trap 'mkdir -p "$OUT" && tar czf "$OUT/$(basename "$0" .sh)_logs.tgz" -C "$out" .' EXIT
else
  out=gpu-logs
fi
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$out/${gpu_log:-gpu}.txt"
# The settings the float64 oracle (test_sparse_attention_gpu) runs under besides the default: on Hopper the mma.sync
# kernels other GPUs run, the forward's other schedules, the one-consumer and per-tile key passes, and the paired key
# pass (which the default picks only for plans larger than the oracle's).
gsa_kernel_variants="GSA_SM90_FORWARD=0 GSA_SM90_FORWARD=1 GSA_SM90_FORWARD=2 GSA_SM90_FORWARD=3 GSA_SM90_FORWARD=6
  GSA_SM90_BACKWARD=0 GSA_SM90_BACKWARD=1 GSA_SM90_BACKWARD=2 GSA_SM90_BACKWARD=3 GSA_SM90_DQ=0"
# The float64 oracle under each of those settings, and test binaries of build/tests: a line each, "NAME: " and the
# test's last line.
gsa_oracle_variants() {
  for e in $gsa_kernel_variants; do
    echo "$e: $(env $e timeout 100 ./build/tests/test_sparse_attention_gpu 2>&1 | tail -1)"
  done
}
gsa_test_lines() {
  for t in "$@"; do echo "$t: $(timeout 150 ./build/tests/$t 2>&1 | tail -1)"; done
}
# A/B of patches in one call: with the patched tree built and its binary at /tmp/gsa_patched, gsa_build_unpatched
# PATCH reverts PATCH and builds the binary without it at /tmp/gsa_unpatched (gpu_patch_ab.sh); gsa_rounds "NAME..."
# ARG... runs `gsa ARG...` with each binary /tmp/gsa_NAME in turn, twice (the call's spread), each run's output but
# its first line (gpu_patch_ab.sh, gpu_decode_patch_ab.sh).
gsa_build_unpatched() {
  git apply -R "$1" || return 1
  GSA_JOBS=16 scripts/gpu_build.sh "$out/unpatched" gsa || return 1
  cp build/launcher/gsa /tmp/gsa_unpatched
}
gsa_rounds() {
  local names=$1
  shift
  for round in 1 2; do
    for v in $names; do
      echo "== $v (round $round)"
      timeout 100 /tmp/gsa_$v "$@" 2>&1 | tail -n +2
    done
  done
}
# gsa_patch_args VARIANT... [-- BENCH_ARG...] (gpu_bench_patches.sh, gpu_decode_patch_ab.sh): the arrays patches
# (VARIANTs that are patch files) and env_variants (VARIANTs env:NAME=VALUE[,NAME=VALUE...]: the tree's binary run
# with those variables, e.g. env:GSA_SKINNY_ROPE=1 for a switch not yet on by default) and bench_args; returns 2
# without a variant and 1 when a patch does not apply to the tree.
gsa_patch_args() {
  patches=()
  env_variants=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
      env:*) env_variants+=("${1#env:}") ;;
      *) patches+=("$1") ;;
    esac
    shift
  done
  [ $# -gt 0 ] && shift
  bench_args=("$@")
  [ $(( ${#patches[@]} + ${#env_variants[@]} )) -gt 0 ] || {
    echo "usage: $0 PATCH|env:NAME=VALUE... [-- BENCH_ARG...]" >&2
    return 2
  }
  for f in "${patches[@]}"; do git apply --check "$f" || { echo "$0: $f does not apply" >&2; return 1; }; done
}
# /tmp/gsa_NAME: a wrapper that runs /tmp/gsa_tree with the variables of env variant VARS (NAME=VALUE,...), so
# gsa_rounds treats it as one more binary.
gsa_env_binary() {
  local name=$1 vars=$2
  printf '#!/usr/bin/env bash\nexec env %s /tmp/gsa_tree "$@"\n' "${vars//,/ }" >"/tmp/gsa_$name"
  chmod +x "/tmp/gsa_$name"
}
