#!/usr/bin/env bash
# test_experiment_scale.sh GSA PYTHON: gsa experiment scale on a tiny grid (the tiny two-level model, 512 tokens,
# 1 and 2 CPU ranks, training and serving points, no warm-up, one repeat: seconds per point).
#  1. the run finishes and DIR/results.csv has the schema written below (an independent copy of
#     launcher/scale_columns.h), one row per rank of every point, and rows that add up: comm = the sum of the
#     collective phases, busy = step - comm, idle = max busy - busy (so >= 0 and 0 on the slowest rank),
#     imbalance = max busy / mean busy, ttft only for serving, no collective time on one rank;
#  2. resumable: a rerun keeps every point (no job starts; ranks.csv untouched); a point whose ranks.csv is gone
#     (a job that died: only its log and a partial CSV left) is run again, alone;
#  3. a changed spec under the same DIR is refused, naming the point;
#  4. two "nodes": a hostfile naming two aliases of this machine (localhost and 127.0.0.1, one slot each; Open MPI
#     folds aliases of the local host into one node and refuses slots= on both) launches a 2-rank point;
#  5. scripts/cost_model.py validates the run's points (a row per point with its error).
set -u
gsa=$1
python=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
export OMP_NUM_THREADS=1
root=false
[ "$(id -u)" = 0 ] && root=true

spec() {  # spec REPEATS [HOSTFILE]: the tiny grid
  cat <<EOF
name: "ci"
config: "$src/configs/tiny-2level.pbtxt"
set: "attention.selection.first_selective_layer=1"
ranks: [1, 2]
warmup: 0
repeats: $1
launch { oversubscribe: true allow_run_as_root: $root timeout_s: 120 ${2:+hostfile: \"$2\"} }
series { name: "strong" kind: STRONG tokens: [512] }
series { name: "serve" kind: SERVE tokens: [512] ranks: [2] decode_tokens: 2 }
EOF
}

spec 1 >"$dir/spec.pbtxt"
out=$dir/run
"$gsa" experiment scale --spec "$dir/spec.pbtxt" --out "$out" >"$dir/first.log" 2>&1 || fail "first run: $(cat "$dir/first.log")"

check_csv() {  # check_csv RESULTS ROWS
  "$python" - "$1" "$2" <<'EOF'
import csv, sys
path, rows_expected = sys.argv[1], int(sys.argv[2])
columns = ("point,series,kind,mode,ranks,backend,placement,tokens,batch,rank,local_tokens,owned_gists,tree_rows,"
           "halo_rows,work,step_ms,ttft_ms,attention_ms,gist_tree_ms,halo_ms,routing_ms,grad_allreduce_ms,"
           "decode_merge_ms,comm_ms,busy_ms,other_ms,idle_ms,imbalance,peak_mib,grad_bytes,kv_row_bytes,"
           "merge_bytes,layers,repeats").split(",")
with open(path) as f:
    reader = csv.DictReader(f)
    assert reader.fieldnames == columns, f"header {reader.fieldnames}"
    rows = list(reader)
assert len(rows) == rows_expected, f"{len(rows)} rows, expected {rows_expected}"
points = {}
for r in rows:
    points.setdefault(r["point"], []).append(r)
close = lambda a, b: abs(a - b) <= 1e-6 * max(1.0, abs(b))
for point, rs in points.items():
    assert len(rs) == int(rs[0]["ranks"]), f"{point}: {len(rs)} rows for {rs[0]['ranks']} ranks"
    assert [int(r["rank"]) for r in rs] == list(range(len(rs))), f"{point}: ranks out of order"
    busy = [float(r["busy_ms"]) for r in rs]
    for r in rs:
        f = {k: float(v) for k, v in r.items() if k not in ("point", "series", "kind", "mode", "backend",
                                                            "placement", "ttft_ms")}
        phases = sum(f[k] for k in ("gist_tree_ms", "halo_ms", "routing_ms", "grad_allreduce_ms", "decode_merge_ms"))
        assert f["step_ms"] > 0 and f["attention_ms"] > 0 and f["peak_mib"] > 0, f"{point}: {r}"
        assert all(f[k] >= 0 for k in f if k.endswith("_ms") and k != "other_ms"), f"{point}: negative time {r}"
        assert close(f["comm_ms"], phases), f"{point}: comm {f['comm_ms']} != phases {phases}"
        assert close(f["busy_ms"], f["step_ms"] - f["comm_ms"]), f"{point}: busy"
        assert close(f["other_ms"], f["busy_ms"] - f["attention_ms"]), f"{point}: other"
        assert close(f["idle_ms"], max(busy) - f["busy_ms"]), f"{point}: idle"
        assert close(f["imbalance"], max(busy) / (sum(busy) / len(busy))), f"{point}: imbalance"
        assert (r["ttft_ms"] != "") == (r["mode"] == "serve"), f"{point}: ttft_ms '{r['ttft_ms']}'"
        if r["mode"] == "serve":
            assert float(r["ttft_ms"]) > 0 and f["decode_merge_ms"] > 0 and f["grad_bytes"] == 0, f"{point}: {r}"
        else:
            assert f["grad_bytes"] > 0 and f["decode_merge_ms"] == 0, f"{point}: {r}"
        if f["ranks"] == 1:
            assert f["gist_tree_ms"] == f["halo_ms"] == f["routing_ms"] == 0, f"{point}: collectives on 1 rank"
        elif r["mode"] == "train":
            assert f["gist_tree_ms"] > 0, f"{point}: no gist tree time on {f['ranks']} ranks"
    assert min(float(r["idle_ms"]) for r in rs) == 0.0, f"{point}: no rank has zero idle time"
print("csv ok:", len(points), "points")
EOF
}
check_csv "$out/results.csv" 5 || fail "results.csv of the first run"

# 2. Resume: everything kept.
before=$(stat -c %Y.%s "$out"/points/*/ranks.csv | tr '\n' ' ')
"$gsa" experiment scale --spec "$dir/spec.pbtxt" --out "$out" >"$dir/second.log" 2>&1 || fail "rerun: $(cat "$dir/second.log")"
[ "$(grep -c 'kept (finished earlier)' "$dir/second.log")" = 3 ] || fail "rerun did not keep 3 points: $(cat "$dir/second.log")"
grep -q running "$dir/second.log" && fail "rerun started a job: $(cat "$dir/second.log")"
[ "$(stat -c %Y.%s "$out"/points/*/ranks.csv | tr '\n' ' ')" = "$before" ] || fail "rerun touched a kept ranks.csv"
cp "$out/results.csv" "$dir/results.before"

# A point that died half-way: no ranks.csv, a partial CSV and a log left.
mv "$out/points/strong-r2-t512/ranks.csv" "$out/points/strong-r2-t512/ranks.csv.partial"
"$gsa" experiment scale --spec "$dir/spec.pbtxt" --out "$out" >"$dir/third.log" 2>&1 || fail "resume: $(cat "$dir/third.log")"
[ "$(grep -c 'running' "$dir/third.log")" = 1 ] && grep -q 'strong-r2-t512: running' "$dir/third.log" \
  || fail "resume did not rerun exactly the partial point: $(cat "$dir/third.log")"
[ "$(grep -c 'kept (finished earlier)' "$dir/third.log")" = 2 ] || fail "resume did not keep the other 2 points"
[ -f "$out/points/strong-r2-t512/ranks.csv.partial" ] && fail "the partial CSV was left behind"
check_csv "$out/results.csv" 5 || fail "results.csv after the resume"
diff <(grep -v '^strong-r2-t512,' "$dir/results.before") <(grep -v '^strong-r2-t512,' "$out/results.csv") >/dev/null \
  || fail "the kept points' rows changed on resume"

# 3. The spec changed under the same DIR.
spec 2 >"$dir/spec2.pbtxt"
if "$gsa" experiment scale --spec "$dir/spec2.pbtxt" --out "$out" >"$dir/changed.log" 2>&1; then
  fail "a changed spec was accepted"
fi
grep -q "point strong-r1-t512 .* was measured with a different command" "$dir/changed.log" \
  || fail "no clear error for a changed spec: $(cat "$dir/changed.log")"

# 4. Two "nodes" through a hostfile (both aliases resolve to this machine).
printf 'localhost\n127.0.0.1\n' >"$dir/hosts"
cat >"$dir/two-nodes.pbtxt" <<EOF
name: "two-nodes"
config: "$src/configs/tiny-2level.pbtxt"
set: "attention.selection.first_selective_layer=1"
ranks: [2]
warmup: 0
repeats: 1
launch { oversubscribe: true allow_run_as_root: $root timeout_s: 120 hostfile: "$dir/hosts" }
series { name: "strong" kind: STRONG tokens: [512] }
EOF
"$gsa" experiment scale --spec "$dir/two-nodes.pbtxt" --out "$dir/two" >"$dir/two.log" 2>&1 \
  || fail "two-node launch: $(cat "$dir/two.log") $(cat "$dir"/two/points/*/log.txt)"
grep -qx -- "--hostfile" "$dir/two/points/strong-r2-t512/command.txt" || fail "the hostfile did not reach gsarun"
check_csv "$dir/two/results.csv" 2 || fail "results.csv of the two-node launch"

# 5. The cost model validates every point of the run.
"$python" "$src/scripts/cost_model.py" --run "$out" --alpha-us 50 --beta-gbs 1 >"$dir/model.log" 2>&1 \
  || fail "cost_model.py: $(cat "$dir/model.log")"
[ "$(tail -n +2 "$out/model_validation.csv" | wc -l)" = 3 ] || fail "model_validation.csv lacks a row per point"

[ $status = 0 ] && echo "PASS"
exit $status
