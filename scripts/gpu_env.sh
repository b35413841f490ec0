# Sourced by the GPU scripts after `cd` to the repository root: the environment every device call needs
# (NVLink multicast off in NCCL, PyTorch and NVSHMEM, see the device notes; one LibTorch thread per process),
# out = $OUT (or ./gpu-logs), created, and the GPU described in $out/${gpu_log:-gpu}.txt.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 OMP_NUM_THREADS=1
out=${OUT:-gpu-logs}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$out/${gpu_log:-gpu}.txt"
