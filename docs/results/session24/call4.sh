# Session 24, device call 4: level_select_kernel finishing the selection (the union and the unfold list) in
# clusters of a KV head's head CTAs (docs/experiments/s24-select-clusters.patch) against the tree, the serving
# model's attention shapes (32 / 8 heads, D 64, c0 8, fanout 4, three levels).
export NCCL_NVLS_ENABLE=0
bash scripts/gpu_decode_patch_ab.sh docs/experiments/s24-select-clusters.patch -- --chunk 8 --fanout 4 \
  --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens 131072,1048576
