# Session 24, device call 2: where the 128K decode layer's launches (serving model's shapes: 32 / 8 heads, D 64,
# c0 8, fanout 4, three levels) spend their time now: per-launch durations with warm caches and free clocks (PDL
# off), then each selection kernel's warp-stall samples by SASS line (SourceCounters) for the analysis here.
export NCCL_NVLS_ENABLE=0
source scripts/gpu_env.sh
GSA_JOBS=16 scripts/gpu_build.sh "$out" gsa || exit 1
g=./build/launcher/gsa
args=(bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens 131072 --repeats 2)
chain='regex:kv_append|score_kernel|top_k|level_select|descent_kernel|union_kernel|unfold_kernel|sparse_decode|lse_merge'
GSA_PDL=0 timeout 200 ncu -k "$chain" --launch-count 48 --cache-control none --clock-control none \
  --metrics gpu__time_duration.sum,launch__grid_size,smsp__inst_executed.sum --csv --page raw \
  $g "${args[@]}" > "$out/ncu_chain.csv" 2>&1
echo "## the layer steps' launches in order (warm caches, free clocks, PDL off)"
python3 scripts/ncu_table.py "$out/ncu_chain.csv"
for kernel in score_kernel top_k_kernel level_select union_kernel unfold_kernel sparse_decode; do
  GSA_PDL=0 timeout 120 ncu --section SourceCounters --section WarpStateStats --import-source no \
    -k "regex:$kernel" --launch-count 1 -f -o "$out/src_$kernel" $g "${args[@]}" > /dev/null 2>&1
  ncu -i "$out/src_$kernel.ncu-rep" --page source --csv --print-source sass > "$out/src_$kernel.csv" 2>&1
  ncu -i "$out/src_$kernel.ncu-rep" --page details > "$out/details_$kernel.txt" 2>&1
  echo "## $kernel: $(wc -l < "$out/src_$kernel.csv") SASS lines"
done
