# Session 35, device call 2: three staged changes of the selection's launches against the tree (5770eff: main with the
# unfold-list comparison in Selection.KernelsOnLongLevelsEqualTheCpuTwin), each alone: the unfused descent CTA
# unfolding up to 4,096 slots (s35-unfold-in-descent.patch: the 1B model's 128K adaptive step without union_kernel
# and unfold_kernel), the fixed budget's top level alone in level_select_kernel's launch (s34-top-alone.patch), and
# the fixed budget's levels below the top in level_select_kernel with the top joined (s35-fixed-joins.patch).
set -uo pipefail
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu_name.txt"
timeout 560 bash scripts/gpu_decode_patch_ab.sh docs/experiments/s35-unfold-in-descent.patch \
  docs/experiments/s34-top-alone.patch docs/experiments/s35-fixed-joins.patch -- --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 \
  --tokens 131072,1048576 > "$OUT/ab.txt" 2>&1
echo "ab done at $(( $(date +%s) - t0 )) s"
source scripts/gpu_env.sh
timeout 30 python3 scripts/peer_serve_dense.py --tokens 131072 --concurrency '' --decode-steps 24 > "$OUT/peer_serve.txt" 2>&1
echo "all done at $(( $(date +%s) - t0 )) s"
