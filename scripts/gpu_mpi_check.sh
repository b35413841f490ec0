#!/usr/bin/env bash
# Multi-GPU validation in one device call (nvidia-h200-x2/x4): builds the gsa CLI and the mpi tests against the
# image's LibTorch, runs every mpi test on NCCL (GSA_COMM_BACKEND=nccl, one rank per GPU) at 2 ranks and, with
# 4 GPUs, at 4 ranks, the NCCL dead-rank probes, distributed `gsa train` / `gsa generate` end to end on NCCL, then
# gsa bench comm at 128K..1M tokens on 2 and 4 GPUs, gsa bench sp on 1, 2, 4 GPUs, and the peers.
# GSA_GPU_{MPI_TESTS,E2E,COMM_BENCH,SP_BENCH,PEERS}=0 skip a part.
# Logs and CSVs go to $OUT, packed (gpu_env.sh), or to ./gpu-logs.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh
gpus=$(nvidia-smi -L | wc -l)
py=$(command -v python3)
mkdir -p build
echo "$py" > build/python
start=$(date +%s)
targets="gsa dead_rank_probe $(ls tests/mpi/test_*.cpp | xargs -n1 basename | sed 's/\.cpp$//; s/^/mpi_/')"
GSA_JOBS=$(nproc) scripts/build.sh --target $targets >"$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
run() {  # run NP CMD...: mpirun with the NCCL backend
  local np=$1; shift
  mpirun -np "$np" --allow-run-as-root --bind-to none -x NCCL_NVLS_ENABLE -x OMP_NUM_THREADS \
    -x GSA_COMM_BACKEND=nccl -x GSA_TEST_COMM_TIMEOUT_S=120 "$@"
}
if [ "${GSA_GPU_MPI_TESTS:-1}" = 1 ]; then {
  for np in 2 4; do
    [ "$np" -le "$gpus" ] || continue
    for t in build/tests/mpi_test_*; do
      s=$(date +%s)
      run "$np" "$t" >"$out/tmp.log" 2>&1
      rc=$?
      echo "$(basename "$t") np$np (NCCL): rc $rc, $(( $(date +%s) - s )) s, $(grep -c '\[       OK \]' "$out/tmp.log") ok"
      [ $rc -eq 0 ] || grep -E "Failure|FAILED|error|timed out" "$out/tmp.log" | head -20
    done
  done
  for mode in stall die; do
    GSA_COMM_BACKEND=nccl bash tests/mpi/test_dead_rank.sh mpirun build/tests/dead_rank_probe $mode 2 \
      --allow-run-as-root -x GSA_COMM_BACKEND -x NCCL_NVLS_ENABLE 2>&1 | tail -3
  done
} 2>&1 | tee "$out/mpi_nccl.txt"; fi
# The CLI end to end on NCCL: distributed training and distributed decode against one GPU.
if [ "${GSA_GPU_E2E:-1}" = 1 ]; then
  flags=(--allow-run-as-root --bind-to none -x NCCL_NVLS_ENABLE)
  ranks="2"; [ "$gpus" -ge 4 ] && ranks="2 4"
  { GSA_E2E_BACKEND=nccl bash tests/e2e/test_train_distributed.sh build/launcher/gsa mpirun "${flags[@]}"
    echo "train e2e rc $?"
    GSA_E2E_BACKEND=nccl GSA_E2E_RANKS="$ranks" bash tests/e2e/test_generate_distributed.sh build/launcher/gsa mpirun \
      "${flags[@]}"
    echo "generate e2e rc $?"; } 2>&1 | tee "$out/e2e_nccl.txt"
fi
for np in 2 4; do
  [ "${GSA_GPU_COMM_BENCH:-1}" = 1 ] || break
  [ "$np" -le "$gpus" ] || continue
  run "$np" build/launcher/gsa bench comm --backend nccl --tokens ${GSA_COMM_TOKENS:-131072,262144,524288,1048576} \
    --csv "$out/bench_comm_np$np.csv" 2>&1 | tee "$out/bench_comm_np$np.txt"
done
# One sequence-parallel attention layer at growing N on 1, 2 and 4 GPUs (stops at the first length that does not
# fit; a hang after an uneven out-of-memory ends at the 120 s deadline).
if [ "${GSA_GPU_SP_BENCH:-1}" = 1 ]; then
  for np in 1 2 4; do
    [ "$np" -le "$gpus" ] || continue
    run "$np" build/launcher/gsa bench sp --backend nccl --tokens ${GSA_SP_TOKENS:-32768,65536,131072,262144} \
      --timeout-s 120 2>&1 | grep -v '^frame' | tail -8 | tee "$out/bench_sp_np$np.txt"
  done
fi
# Peers in the same run (carried peers/ folder): NCCL all-gather bandwidth and PyTorch context parallelism.
if [ -f peers/nccl_allgather.py ] && [ "${GSA_GPU_PEERS:-1}" = 1 ]; then
  for devs in 0,1 0,1,2,3; do
    [ "$(echo "$devs" | tr ',' '\n' | wc -l)" -le "$gpus" ] || continue
    echo "peer nccl_allgather.py on GPUs $devs"
    CUDA_VISIBLE_DEVICES=$devs timeout 180 python3 peers/nccl_allgather.py 2>&1 | grep '^|'
  done | tee "$out/peer_nccl.txt"
fi
if [ -f peers/cp_ring.py ] && [ "${GSA_GPU_PEERS:-1}" = 1 ]; then
  for devs in 0,1 0,1,2,3; do
    [ "$(echo "$devs" | tr ',' '\n' | wc -l)" -le "$gpus" ] || continue
    CUDA_VISIBLE_DEVICES=$devs timeout 240 python3 peers/cp_ring.py ${GSA_CP_SIZES:-131072} 2>&1 | grep '^|'
  done | tee "$out/peer_cp_ring.txt"
fi
