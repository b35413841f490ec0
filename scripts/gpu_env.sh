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
# kernels other GPUs run, the forward's other schedules, the one-consumer and per-tile key passes, the paired key
# pass (which the default picks only for plans larger than the oracle's), and the Hopper dq pass with the default,
# one-consumer and paired key passes (GSA_SM90_DQ=1). At the oracle's sizes the default takes dq from stored dS
# tiles, so the default and the key-pass variants before GSA_SM90_DQ=1 run the storing key pass and the stored-dS
# dq pass: GSA_SM90_DQ=2 (stored dS at any size) would run the same kernels again. A variant's settings are joined
# by commas.
gsa_kernel_variants="GSA_SM90_FORWARD=0 GSA_SM90_FORWARD=1 GSA_SM90_FORWARD=2 GSA_SM90_FORWARD=3 GSA_SM90_FORWARD=6
  GSA_SM90_BACKWARD=0 GSA_SM90_BACKWARD=1 GSA_SM90_BACKWARD=2 GSA_SM90_BACKWARD=3 GSA_SM90_DQ=0 GSA_SM90_DQ=1
  GSA_SM90_DQ=1,GSA_SM90_BACKWARD=1 GSA_SM90_DQ=1,GSA_SM90_BACKWARD=3"
# gsa_parallel_lines: reads lines "NAME<TAB>COMMAND" on stdin and runs the commands GSA_TEST_JOBS (default 6) at a
# time -- each test keeps one CPU thread (OMP_NUM_THREADS=1 above) and the tests share the GPU, so on the device's 16
# cores they need not wait for each other (one after the other, the kernels check's tests took 353 s of a 600 s
# call) -- then prints a line each, in the input's order: "NAME: " and the verdict (gtest's "[  PASSED  ] N tests." or
# "N FAILED TESTS", compute-sanitizer's error summary, else the last line), with the exit status unless 0. Each
# command's whole output goes to $out/test_logs_XXXX/N-NAME.log (a folder a call), so a failure's details come back.
gsa_parallel_lines() {
  local jobs=${GSA_TEST_JOBS:-6} logs n=0 running=0 name cmd verdict rc log
  local names=() files=()
  logs=$(mktemp -d "$out/test_logs_XXXX")
  while IFS=$'\t' read -r name cmd; do
    n=$((n + 1))
    names+=("$name")
    files+=("$logs/$n-${name//[^A-Za-z0-9_.=-]/_}")
    log=${files[-1]}
    { bash -c "$cmd" >"$log.log" 2>&1 </dev/null; echo $? >"$log.rc"; } &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
      wait -n
      running=$((running - 1))
    fi
  done
  wait
  for i in "${!names[@]}"; do
    log=${files[$i]}
    verdict=$(grep -E '^\[  PASSED  \] |[0-9]+ FAILED TESTS?$|ERROR SUMMARY' "$log.log" | tail -1)
    [ -n "$verdict" ] || verdict=$(tail -1 "$log.log")
    rc=$(cat "$log.rc")
    rm -f "$log.rc"
    echo "${names[$i]}: $verdict$([ "$rc" = 0 ] || echo " (exit $rc)")"
  done
}
# Lines for gsa_parallel_lines (one timeout for all: side by side they share the machine): gsa_oracle_specs, the
# float64 oracle (test_sparse_attention_gpu) under each of those settings; gsa_test_specs T..., test binaries of
# build/tests; gsa_memcheck_specs "T [GTEST_ARGS]"..., each under compute-sanitizer memcheck.
gsa_oracle_specs() {
  for e in $gsa_kernel_variants; do
    printf '%s\t%s\n' "test_sparse_attention_gpu $e" "env ${e//,/ } timeout 300 ./build/tests/test_sparse_attention_gpu"
  done
}
gsa_test_specs() {
  for t in "$@"; do printf '%s\t%s\n' "$t" "timeout 300 ./build/tests/$t"; done
}
gsa_memcheck_specs() {
  for t in "$@"; do
    printf '%s\t%s\n' "memcheck $t" "timeout 300 compute-sanitizer --tool memcheck ./build/tests/$t"
  done
}
# The same run side by side: a line each, "NAME: " and the verdict.
gsa_oracle_variants() { gsa_oracle_specs | gsa_parallel_lines; }
gsa_test_lines() { gsa_test_specs "$@" | gsa_parallel_lines; }
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
