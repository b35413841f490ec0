#!/usr/bin/env bash
# test_train_resume_mesh.sh GSA MPIEXEC MPIEXEC_FLAGS...: resume across a change of the mesh. A run of 6 steps under
# `mpirun -np 2 ... --sp 2` checkpoints at step 3; one process (dp 1 x sp 1) resumes from that checkpoint. Oracle:
# an uninterrupted one-process run. The resumed steps 3-5 must match it within 1e-5 relative (the first three
# steps ran with the sequence split over two ranks: the same sums in another order, so not bit for bit), and the
# resumed run must say it resumed at step 3.
set -u
gsa=$1
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
launch=("$2" -np 2 "${@:3}" -x OMP_NUM_THREADS)
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
common=(train --config "$tiny" --set train.steps=6 --samples 0)

"$gsa" "${common[@]}" --output-dir "$dir/oracle" >"$dir/oracle.log" 2>&1 || { cat "$dir/oracle.log"; fail "oracle"; }
"${launch[@]}" "$gsa" "${common[@]}" --sp 2 --backend mpi --comm-timeout-s 60 --output-dir "$dir/sp2" \
  --checkpoint-every 3 >"$dir/sp2.log" 2>&1 || { cat "$dir/sp2.log"; fail "the sp 2 run"; }
[ -d "$dir/sp2/checkpoints/step-000003" ] || fail "no step-000003 checkpoint from the sp 2 run"
rm -rf "$dir/sp2/checkpoints/step-000006"
echo step-000003 >"$dir/sp2/checkpoints/latest"
"$gsa" "${common[@]}" --output-dir "$dir/sp2" --resume >"$dir/resume.log" 2>&1 \
  || { cat "$dir/resume.log"; fail "the one-process resume"; }
grep -q "resumed at step 3" "$dir/resume.log" || fail "the resume did not start at step 3: $(cat "$dir/resume.log")"

loss() { grep "\"step\":$2," "$1" | sed 's/.*"loss":\([^,]*\),.*/\1/'; }
for step in 3 4 5; do
  want=$(loss "$dir/oracle/metrics.jsonl" $step)
  got=$(loss "$dir/sp2/metrics.jsonl" $step)
  [ -n "$want" ] && [ -n "$got" ] || fail "step $step missing (oracle '$want', resumed '$got')"
  awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * (b < 0 ? -b : b)) }' \
    || fail "step $step: resumed loss $got, uninterrupted one-process loss $want"
done
echo "resume across sp 2 -> sp 1: steps 3-5 match the uninterrupted run"
