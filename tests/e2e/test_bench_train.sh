#!/usr/bin/env bash
# test_bench_train.sh GSA PYTHON: `gsa bench train` on the CPU with tiny shapes (the smoke test of the H200
# training benchmark). Checks the report for self-consistency: both modes at every length in the table, the CSV and
# the JSON; tokens/s == tokens / step time; attention + communication + other == step time, attention inside the
# step; communication 0; the speedup == dense step / GSA step; MFU and peak memory n/a on the CPU; the first loss
# finite and at ln(vocab) within 0.05 (weights of std 0.02 give near-uniform predictions: an oracle independent of
# the code; the unit test test_train_bench checks it against a direct forward exactly). Then bad flags.
set -u
gsa=$1
python=$2
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
tiny=(--device cpu --layers 2 --hidden 32 --intermediate 64 --heads 4 --kv-heads 2 --head-dim 8 --vocab 300
      --chunk 4 --suffix 12 --warmup 1 --steps 2 --loss-chunk 16 --first-selective-layer 1)

timeout 300 "$gsa" bench train "${tiny[@]}" --tokens 96,160 --out "$dir/out" >"$dir/log" 2>&1 \
  || { cat "$dir/log"; fail "gsa bench train failed"; exit 1; }
cat "$dir/log"
for mode in gsa dense; do
  for n in 96 160; do
    grep -Eq "^ +$n $mode " "$dir/log" || fail "the table has no row for $mode at $n tokens"
  done
done
"$python" - "$dir/out" <<'PY' || fail "the report is not self-consistent"
import csv, json, math, sys
out = sys.argv[1]
report = json.load(open(out + "/train_bench.json"))
rows = report["rows"]
csv_rows = list(csv.DictReader(open(out + "/train_bench.csv")))
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)
check(report["failures"] == [], f'no failed run: {report["failures"]}')
check(len(rows) == 4 and len(csv_rows) == 4, f"4 rows expected, got {len(rows)} json / {len(csv_rows)} csv")
check(sorted((r["tokens"], r["mode"]) for r in rows) == [(96, "dense"), (96, "gsa"), (160, "dense"), (160, "gsa")],
      "both modes at both lengths")
for r, c in zip(rows, csv_rows):
    tag = f'{r["mode"]} {r["tokens"]}'
    check(r["batch_tokens"] == r["tokens"], f"{tag}: batch 1 trains tokens per step")
    check(math.isclose(r["tokens_per_s"], r["batch_tokens"] / r["step_s"], rel_tol=1e-9), f"{tag}: tokens/s")
    check(math.isclose(r["attention_s"] + r["communication_s"] + r["other_s"], r["step_s"], rel_tol=1e-9),
          f"{tag}: breakdown sums to the step")
    check(0 < r["attention_s"] < r["step_s"], f"{tag}: attention inside the step")
    check(r["communication_s"] == 0, f"{tag}: communication on one process")
    check(r["peak_bytes"] is None and r["mfu"] is None, f"{tag}: peak memory and MFU n/a on the CPU")
    check(math.isfinite(r["first_loss"]) and abs(r["first_loss"] - math.log(300)) < 0.05,
          f'{tag}: first loss {r["first_loss"]} vs ln(300) = {math.log(300):.4f}')
    check(math.isfinite(r["last_loss"]), f"{tag}: last loss finite")
    check((r["positions"] == r["tokens"]) == (r["mode"] == "dense"), f"{tag}: GSA adds gist positions")
    if r["mode"] == "dense":
        check(r["attention_pairs"] == r["tokens"] * (r["tokens"] + 1) // 2, f"{tag}: causal pairs")
    check(math.isclose(r["model_flops"], 6 * report["model"]["matmul_params"] * r["positions"] + r["attention_flops"],
                       rel_tol=1e-12), f"{tag}: model FLOPs formula")
    check(math.isclose(float(c["step_s"]), r["step_s"], rel_tol=1e-12) and c["mode"] == r["mode"], f"{tag}: csv row")
for n in (96, 160):
    gsa = next(r for r in rows if r["tokens"] == n and r["mode"] == "gsa")
    dense = next(r for r in rows if r["tokens"] == n and r["mode"] == "dense")
    check(math.isclose(gsa["speedup"], dense["step_s"] / gsa["step_s"], rel_tol=1e-12) and
          gsa["speedup"] == dense["speedup"], f"speedup at {n}")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY

# A run that fails is reported and the others go on: the kernels have no head dim 8, so GSA with --backend kernels
# fails while dense runs; exit code 1, the failure in the JSON, the dense row present.
if "$gsa" bench train "${tiny[@]}" --tokens 96 --backend kernels --out "$dir/fail" >"$dir/fail.log" 2>&1; then
  fail "a failed GSA run exited 0"
fi
grep -Eq "^ +96 gsa +failed: " "$dir/fail.log" || fail "no failure line for gsa: $(cat "$dir/fail.log")"
grep -Eq "^ +96 dense " "$dir/fail.log" || fail "the dense run did not go on after the GSA failure"
"$python" -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(not (len(r["failures"]) == 1 and r["failures"][0]["mode"] == "gsa" and [x["mode"] for x in r["rows"]] == ["dense"] and r["rows"][0]["speedup"] is None))' \
  "$dir/fail/train_bench.json" || fail "the JSON does not hold the GSA failure and the dense row"

# Bad flags: a clear error naming the flag, exit code not 0.
expect_error() {
  local want=$1
  shift
  if "$gsa" bench train "${tiny[@]}" "$@" >"$dir/err" 2>&1; then
    fail "gsa bench train $* succeeded"
  elif ! grep -q -- "$want" "$dir/err"; then
    fail "gsa bench train $*: no '$want' in: $(cat "$dir/err")"
  fi
}
expect_error "--modes names 'gsa' twice" --tokens 96 --modes gsa,gsa
expect_error "--modes: 'flash' is not gsa or dense" --tokens 96 --modes flash
expect_error "--tokens 14 must exceed --suffix plus --sink" --tokens 14
expect_error "--master-weights bf16 is narrower than --dtype fp32" --tokens 96 --dtype fp32 --master-weights bf16
expect_error "--first-selective-layer 2 must be in" --tokens 96 --first-selective-layer 2
[ $status -eq 0 ] && echo "gsa bench train: report self-consistent, bad flags refused"
exit $status
