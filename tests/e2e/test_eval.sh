#!/usr/bin/env bash
# test_eval.sh GSA PYTHON [MPIEXEC MPIEXEC_FLAGS...]: `gsa eval` on a checkpoint trained here for 30 steps:
#  1. the table has the three modes side by side and a row per length; --json writes every number;
#  2. bad --modes / --lengths / --checkpoint fail naming the problem;
#  3. with MPIEXEC: under mpirun -np 2 (sp 2, MPI backend) the JSON equals the single process's (loss within
#     1e-5 relative, accuracy and positions exactly).
set -u
gsa=$1
python=$2
shift 2
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

"$gsa" train --set train.steps=30 --set train.log_every=100 --set train.eval_batches=1 --samples 0 --threads 1 \
  --output-dir "$dir/run" >"$dir/train.log" 2>&1 || { cat "$dir/train.log"; fail "training failed"; exit 1; }

eval_args=(eval --checkpoint "$dir/run" --lengths 48,93 --samples 8 --batch 3 --seed 2)
"$gsa" "${eval_args[@]}" --threads 1 --json "$dir/one.json" >"$dir/one.log" 2>&1 \
  || { cat "$dir/one.log"; fail "gsa eval failed"; exit 1; }
cat "$dir/one.log"
header=$(grep -E '^ +length +task' "$dir/one.log")
[ "$(echo "$header" | grep -o -E 'full +gist +selective' | wc -l)" -eq 3 ] \
  || fail "the header does not show full, gist, selective side by side for positions, accuracy and loss: '$header'"
grep -qE '^ +48 +8 key-value pairs ' "$dir/one.log" || fail "no row for length 48 (8 pairs)"
grep -qE '^ +93 +17 key-value pairs ' "$dir/one.log" || fail "no row for length 93 (17 pairs)"
"$python" - "$dir/one.json" <<'PY' || fail "one.json"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["task"] == "retrieval" and r["samples"] == 8 and r["seed"] == 2 and r["ranks"] == 1, r
assert [x["length"] for x in r["results"]] == [48, 93], r
for x in r["results"]:
    m = x["modes"]
    assert sorted(m) == ["full", "gist", "selective"], m
    assert m["full"]["mean_positions"] == x["mean_raw_tokens"] < m["gist"]["mean_positions"], x
    for v in m.values():
        assert 0 <= v["accuracy"] <= 1 and v["loss"] > 0, v
PY

expect_error() {  # expect_error PATTERN ARGS...: gsa ARGS fails and says PATTERN
  local pattern=$1
  shift
  if "$gsa" "$@" >"$dir/err.log" 2>&1; then
    fail "gsa $* succeeded"
  else
    grep -q -- "$pattern" "$dir/err.log" || fail "gsa $*: no '$pattern' in: $(cat "$dir/err.log")"
  fi
}
expect_error "attention mode 'dense' is not one of full, gist, selective" "${eval_args[@]}" --modes full,dense
expect_error "longest length: 1288" "${eval_args[@]}" --lengths 48,5000
expect_error "unknown eval task 'passkey'" "${eval_args[@]}" --task passkey
expect_error "$dir/nothing" eval --checkpoint "$dir/nothing"

if [ $# -gt 0 ]; then
  timeout 300 "$1" -np 2 "${@:2}" "$gsa" "${eval_args[@]}" --backend mpi --json "$dir/two.json" \
    >"$dir/two.log" 2>&1 || { cat "$dir/two.log"; fail "gsa eval under mpirun -np 2 failed"; }
  grep -q "2 ranks (sp 2" "$dir/two.log" || fail "the mpirun run did not say it ran on 2 ranks: $(cat "$dir/two.log")"
  "$python" - "$dir/one.json" "$dir/two.json" <<'PY' || fail "mpirun -np 2 results differ from one process"
import json, sys
one, two = (json.load(open(p)) for p in sys.argv[1:3])
assert two["ranks"] == 2, two
for a, b in zip(one["results"], two["results"], strict=True):
    assert a["length"] == b["length"] and a["mean_raw_tokens"] == b["mean_raw_tokens"]
    for mode in ("full", "gist", "selective"):
        x, y = a["modes"][mode], b["modes"][mode]
        assert abs(x["loss"] - y["loss"]) <= 1e-5 * x["loss"], (a["length"], mode, x, y)
        assert x["accuracy"] == y["accuracy"] and x["mean_positions"] == y["mean_positions"], (mode, x, y)
print("mpirun -np 2 (sp 2) equals one process:", [(a["length"], {m: round(v["loss"], 6) for m, v in a["modes"].items()}) for a in one["results"]])
PY
fi
[ $status -eq 0 ] && echo PASS
exit $status
