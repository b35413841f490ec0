#!/usr/bin/env bash
# test_eval.sh GSA PYTHON [MPIEXEC MPIEXEC_FLAGS...]: `gsa eval` on a checkpoint trained here for 30 steps:
#  1. the table has the three modes side by side and a row per length; --json writes every number;
#  2. bad --modes / --lengths / --checkpoint fail naming the problem;
#  3. gsa generate --attention: full prefills the raw bytes only (no gists), gist and selective the gisted
#     context; a bad mode is named;
#  4. with MPIEXEC: under mpirun -np 2 (sp 2, MPI backend) the JSON equals the single process's (loss within
#     1e-5 relative, accuracy and positions exactly), and generate prints the single process's text in each mode.
set -u
gsa=$1
python=$2
shift 2
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

"$gsa" train --config "$tiny" --set train.steps=30 --set train.log_every=100 --set train.eval_batches=1 --samples 0 --threads 1 \
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

context="kv:ab=c;de=f;gh=i;jk=l;mn=o;pa=b;"  # 33 bytes; + the 4-byte prompt = 37 raw tokens
generate=(generate --checkpoint "$dir/run" --context "$context" --prompt "?de=" --max-new-tokens 4)
for mode in full gist selective; do
  "$gsa" "${generate[@]}" --attention $mode >"$dir/gen-$mode.log" 2>"$dir/gen-$mode.err" \
    || fail "generate --attention $mode failed: $(cat "$dir/gen-$mode.err")"
  tokens=$(grep -o 'prompt [0-9]* tokens' "$dir/gen-$mode.err" | grep -o '[0-9]*')
  if [ $mode == full ]; then
    [ "$tokens" == 37 ] || fail "generate --attention full prefilled '$tokens' positions, want the 37 raw tokens"
  else
    [ "${tokens:-0}" -gt 37 ] || fail "generate --attention $mode prefilled '$tokens' positions: no gists inserted"
  fi
done
expect_error "attention mode 'dense' is not one of full, gist, selective" "${generate[@]}" --attention dense

if [ $# -gt 0 ]; then
  for mode in full gist selective; do
    timeout 300 "$1" -np 2 "${@:2}" "$gsa" "${generate[@]}" --attention $mode --backend mpi >"$dir/gen2-$mode.log" \
      2>"$dir/gen2-$mode.err" || fail "generate --attention $mode under mpirun failed: $(cat "$dir/gen2-$mode.err")"
    [ "$(cat "$dir/gen2-$mode.log")" == "$(cat "$dir/gen-$mode.log")" ] \
      || fail "generate --attention $mode: mpirun -np 2 printed '$(cat "$dir/gen2-$mode.log")', one process '$(cat "$dir/gen-$mode.log")'"
  done
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
