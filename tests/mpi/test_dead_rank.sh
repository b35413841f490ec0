#!/usr/bin/env bash
# test_dead_rank.sh MPIEXEC PROBE MODE NP [MPIEXEC_FLAGS...]: runs dead_rank_probe (MODE stall|die, 3 s timeout) on
# NP ranks and checks that the job fails (non-zero exit) within 60 s instead of hanging; for "stall" also that a
# surviving rank reported the timed-out all_reduce ("gsa: rank 0 (world (MPI)): all_reduce #2 timed out ...").
set -u
mpiexec=$1 probe=$2 mode=$3 np=$4
shift 4
limit_s=60
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
timeout -s KILL $((limit_s + 30)) "$mpiexec" -np "$np" "$@" "$probe" "$mode" 3000 >"$log" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
cat "$log"
echo "test_dead_rank: mode $mode, np $np: exit status $status after ${elapsed} s"
fail() { echo "test_dead_rank: FAILED: $*"; exit 1; }
[ "$status" -ne 0 ] || fail "the job exited 0 although rank 1 never joined the all_reduce"
[ "$status" -ne 137 ] || fail "the job hung and was killed after $((limit_s + 30)) s"
[ "$elapsed" -le "$limit_s" ] || fail "the job took ${elapsed} s (limit ${limit_s} s)"
if [ "$mode" = stall ]; then
  grep -Eq 'gsa: rank 0 \(.*\): all_reduce #[0-9]+ timed out' "$log" \
    || fail "no 'gsa: rank 0 (...): all_reduce #N timed out' report in the output"
fi
echo "test_dead_rank: passed"
