# Written in session 36 (which got no GPU: both starts were refused), for the next session's first device call:
# copy to peers/s37_call1.sh, prebuild the tree (scripts/prebuild.sh, the full target list of the session summary),
# carry ["peers", "prebuilt"]. Main's selection kernels with the switch the session added, off by default until
# this has run: GSA_SELECT_RANK=1 (rank_top_k: level_select_kernel's selects of up to 192 candidates a head by all
# 512 threads ranking each candidate, one barrier, instead of warp_top_k's ~7 dependent rounds in one warp) and
# GSA_SELECT_RANK=2 (that, and head_top_k four bits a round: ~4.2 rounds instead of ~7.8 over a 128K step's 1,024
# top-level scores), each its own kernel instantiation. (1) The whole GPU test part (Selection.* under both); (2) the
# 1B model's decode layer at 128K and 1M under the three states; (3) its serve bench at 128K, the three states
# alternated twice; (4) the dense peer; (5) the fixed budget's batch of 2 (unmeasured since its levels moved to
# level_select_kernel). Make a state the default where its tests pass and its rows are faster; say so in
# kernels/src/chunk_selection.cu's comment on kWarpSelectKeys.
set -uo pipefail
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.current.sm --format=csv > "$OUT/gpu_name.txt"
GSA_CHECK_PARTS=tests timeout 240 bash scripts/gpu_kernels_check.sh > "$OUT/tests.txt" 2>&1
for f in "$OUT"/*.tgz; do [ -e "$f" ] && mv "$f" "${f%.tgz}_tests.tgz"; done
echo "tests done at $(( $(date +%s) - t0 )) s"
source scripts/gpu_env.sh
g=./build/launcher/gsa
states=("GSA_SELECT_RANK=0" "GSA_SELECT_RANK=1" "GSA_SELECT_RANK=2")
{
  for vars in "${states[@]}"; do
    echo "== decode layer: $vars"
    env $vars timeout 40 $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 \
      --tokens 131072,1048576 2>&1
  done
} > "$OUT/decode_layer.txt" 2>&1
echo "decode layer done at $(( $(date +%s) - t0 )) s"
{
  for r in 1 2; do
    for vars in "${states[@]}"; do
      echo "== serve 128K round $r: $vars"
      env $vars timeout 50 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
        --concurrency '' --decode-steps 24 --tokens 131072 2>&1 | grep -E "^(latency|table)"
    done
  done
  echo "== batch of 2 at 128K (defaults)"
  timeout 50 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 \
    --concurrency 2 --concurrent-tokens 131072 --decode-steps 24 --tokens '' 2>&1 | grep -E "^(throughput|table)"
} > "$OUT/serve.txt" 2>&1
echo "serve done at $(( $(date +%s) - t0 )) s"
timeout 60 python3 scripts/peer_serve_dense.py --tokens 131072 --concurrency '' --decode-steps 24 > "$OUT/peer_serve.txt" 2>&1
echo "all done at $(( $(date +%s) - t0 )) s"
