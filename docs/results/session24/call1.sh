# Session 24, device call 1: validates 4486a15 (tree) + A/B of the two staged session-23 patches.
export NCCL_NVLS_ENABLE=0
bash scripts/gpu_decode_patch_ab.sh docs/experiments/s23-score-batched-chains.patch docs/experiments/s23-decode-q-early.patch
