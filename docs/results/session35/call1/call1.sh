# Session 35, device call 1: main (b454abe; kernels as of 5ff11a0: the tensor-core dots and the warp select in the joined
# level select) on the GPU: (1) the whole GPU test part; (2) the prefill/decode compare with the peers; (3) the 1B
# model's serve bench and its dense peer; (4) the joined level select's SASS-line stall samples, while time is left.
set -uo pipefail
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.current.sm --format=csv > "$OUT/gpu_name.txt"
GSA_CHECK_PARTS=tests timeout 220 bash scripts/gpu_kernels_check.sh > "$OUT/tests.txt" 2>&1
for f in "$OUT"/*.tgz; do [ -e "$f" ] && mv "$f" "${f%.tgz}_tests.tgz"; done
echo "tests done at $(( $(date +%s) - t0 )) s"
GSA_CHECK_PARTS=compare timeout 200 bash scripts/gpu_kernels_check.sh > "$OUT/compare.txt" 2>&1
echo "compare done at $(( $(date +%s) - t0 )) s"
source scripts/gpu_env.sh
g=./build/launcher/gsa
timeout 60 $g bench serve --config configs/llama-1b-gsa.pbtxt --device cuda --set gist.levels=3 --concurrency '' \
  --decode-steps 24 --tokens 32768,131072 > "$OUT/serve.txt" 2>&1
timeout 60 python3 scripts/peer_serve_dense.py --tokens 131072 --concurrency '' --decode-steps 24 > "$OUT/peer_serve.txt" 2>&1
echo "serve done at $(( $(date +%s) - t0 )) s"
[ $(( $(date +%s) - t0 )) -lt 480 ] || { echo "no time left for the source profile"; exit 0; }
GSA_PDL=0 timeout 100 ncu --section SourceCounters --section WarpStateStats --import-source no \
  -k "regex:level_select" --launch-count 1 -f -o /tmp/src_ls \
  $g bench decode --chunk 8 --fanout 4 --levels 3 --heads 32 --kv-heads 8 --head-dim 64 --tokens 131072 \
  --repeats 2 > /tmp/src_ls.log 2>&1
ncu -i /tmp/src_ls.ncu-rep --page source --csv --print-source sass > /tmp/src_level_select.csv 2>&1
wc -l /tmp/src_level_select.csv
xz -9 -c /tmp/src_level_select.csv > "$OUT/src_level_select.csv.xz"
tail -2 /tmp/src_ls.log
echo "all done at $(( $(date +%s) - t0 )) s"
