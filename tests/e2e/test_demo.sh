#!/usr/bin/env bash
# test_demo.sh: README command 1 (scripts/demo.sh) end to end, shrunk: 6 phase-1 steps, 4 phase-2 steps, 6
# eval samples, under the script's own mpirun -np 2 (sp 2). Checks what the demo promises to leave behind: both
# phases' checkpoints and metrics (one line a step), the eval table with a row per length and the three modes,
# eval.json, and the loss plot (a PNG). Learning itself takes the full 8 minutes: README "The demo" has that run.
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

GSA_DEMO_DIR="$dir/demo" GSA_DEMO_PHASE2_STEPS=4 GSA_DEMO_EVAL_SAMPLES=6 \
  timeout 600 bash "$repo/scripts/demo.sh" --set train.steps=6 --set train.log_every=1 >"$dir/log" 2>&1 \
  || { tail -40 "$dir/log"; fail "scripts/demo.sh failed"; exit 1; }
out="$dir/demo"
grep -q "2 ranks: dp 1 x sp 2" "$dir/log" || fail "the training did not run as sp 2 over 2 ranks"
[ -d "$out/phase1/checkpoints/step-000006" ] || fail "no phase 1 checkpoint at step 6"
[ -d "$out/phase2/checkpoints/step-000004" ] || fail "no phase 2 checkpoint at step 4"
[ "$(wc -l <"$out/phase1/metrics.jsonl")" -eq 6 ] || fail "phase 1 metrics: $(wc -l <"$out/phase1/metrics.jsonl") lines"
[ "$(wc -l <"$out/phase2/metrics.jsonl")" -eq 4 ] || fail "phase 2 metrics: $(wc -l <"$out/phase2/metrics.jsonl") lines"
grep -qE '^ +documents: 16$' "$out/phase2/checkpoints/step-000004/config.pbtxt" \
  || fail "phase 2 did not train on up to 16 documents"
grep -qE '^ +260 +4 docs x 3 pairs ' "$out/eval.txt" || fail "no 260-token row (4 documents) in eval.txt"
grep -qE '^ +1028 +16 docs x 3 pairs ' "$out/eval.txt" || fail "no 1,028-token row (16 documents) in eval.txt"
[ "$(grep -cE 'full +gist +selective' "$out/eval.txt")" -ge 1 ] || fail "eval.txt lacks the three modes"
[ -s "$out/eval.json" ] || fail "no eval.json"
[ "$(head -c 4 "$out/loss.png" | od -An -c | tr -d ' ')" = '211PNG' ] || fail "loss.png is not a PNG"
grep -q "wrote .*loss.png (10 steps in 2 phase(s)" "$dir/log" || fail "the plot did not draw both phases' 10 steps"
# A folder that is not a demo run is refused, untouched.
mkdir -p "$dir/mine" && echo keep >"$dir/mine/notes.txt"
if GSA_DEMO_DIR="$dir/mine" bash "$repo/scripts/demo.sh" >"$dir/refused.log" 2>&1; then
  fail "demo.sh ran into a folder that is not a demo run"
fi
grep -q "is not a demo run" "$dir/refused.log" || fail "no clear refusal: $(tail -2 "$dir/refused.log")"
[ "$(cat "$dir/mine/notes.txt")" = keep ] || fail "demo.sh touched a folder that is not a demo run"
[ $status -eq 0 ] && echo PASS
exit $status
