#!/usr/bin/env bash
# End-to-end checks of the gsa CLI's inspect and bench commands: exact layouts and masks from the method's
# worked examples, flag errors, and a tiny bench smoke run.
# usage: test_cli_inspect.sh /path/to/gsa
set -u
GSA=${1:?usage: test_cli_inspect.sh /path/to/gsa}
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_output "expected stdout" args... : exit code 0 and exact stdout.
expect_output() {
  local expected=$1; shift
  local actual
  actual=$("$GSA" "$@" 2>"$tmp/err"); local rc=$?
  if [[ $rc -ne 0 ]]; then fail "gsa $* exited $rc: $(cat "$tmp/err")"; return; fi
  if [[ "$actual" != "$expected" ]]; then
    fail "gsa $*"; echo "  expected:"; echo "$expected" | sed 's/^/    /'; echo "  actual:"; echo "$actual" | sed 's/^/    /'
  fi
}

# expect_error "text the message must contain" args... : non-zero exit and stderr naming the problem.
expect_error() {
  local needle=$1; shift
  "$GSA" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -eq 0 ]]; then fail "gsa $* should fail but exited 0"; return; fi
  if ! grep -qF -- "$needle" "$tmp/err"; then fail "gsa $*: stderr lacks '$needle': $(cat "$tmp/err")"; fi
}

# --- inspect layout ---
expect_output ".......0....0....0" inspect layout --raw-tokens 15 --sink 3 --chunk 4 --fanout 4 --levels 1
expect_output "...0..01..0..01" inspect layout --raw-tokens 9 --sink 1 --chunk 2 --fanout 2 --levels 2
expect_output "...0..01..0..01" inspect layout --raw-tokens=9 --sink=1 --chunk=2 --fanout=2 --levels=2
expect_output "...0...0..0" inspect layout --raw-tokens 8 --sink 0 --chunk 3 --fanout 2 --levels 1
# defaults: sink 3, fanout 4, levels 1
expect_output ".......0....0....0" inspect layout --raw-tokens 15 --chunk 4
# issue 9, the authors' reference: a context of 1..sink tokens still gets its final gists; an empty one none
expect_output ".0" inspect layout --raw-tokens 1 --sink 3 --chunk 4 --fanout 4 --levels 1
expect_output ".01" inspect layout --raw-tokens 1 --sink 3 --chunk 4 --fanout 4 --levels 2
expect_output "...0" inspect layout --raw-tokens 3 --sink 3 --chunk 4 --fanout 4 --levels 1
expect_output "...01" inspect layout --raw-tokens 3 --sink 3 --chunk 4 --fanout 4 --levels 2
expect_output "" inspect layout --raw-tokens 0 --sink 3 --chunk 4

# --- inspect mask: the method's worked example (sink 0, chunk 3, one level, no previous chunk) ---
expect_output "$(printf '%s\n' 1 11 111 1111 ...11 ...111 ...1111 ...11111 ...1...11 ...1...111 ...1...1111)" \
  inspect mask --raw-tokens 8 --sink 0 --chunk 3 --fanout 2 --levels 1 --prev-chunks 0
# issue 9, 3 levels: the level-2 gist (q = 3) does not see the level-0 gist of the previous level-1 section
expect_output "$(printf '%s\n' 1 11 .11 ..11)" \
  inspect mask --raw-tokens 1 --sink 0 --chunk 1 --fanout 2 --levels 3 --prev-chunks 1
# every row q has q+1 characters and a query always sees itself
rows=$("$GSA" inspect mask --raw-tokens 20 --sink 2 --chunk 3 --fanout 2 --levels 2 --prev-chunks 1)
q=0
while IFS= read -r line; do
  [[ ${#line} -eq $((q + 1)) ]] || fail "mask row $q has ${#line} characters"
  [[ ${line: -1} == 1 ]] || fail "mask row $q does not attend to itself"
  q=$((q + 1))
done <<<"$rows"
layout=$("$GSA" inspect layout --raw-tokens 20 --sink 2 --chunk 3 --fanout 2 --levels 2 --prev-chunks 1)
[[ $q -eq ${#layout} ]] || fail "mask has $q rows, layout has ${#layout} tokens"

# --- help and errors ---
"$GSA" inspect --help | grep -q -- "--raw-tokens" || fail "gsa inspect --help lacks --raw-tokens"
"$GSA" inspect layout --help | grep -q -- "--prev-chunks" || fail "gsa inspect layout --help lacks --prev-chunks"
expect_error "--levels" inspect layout --raw-tokens 9 --chunk 2 --levels 5
expect_error "--chunk" inspect layout --raw-tokens 9 --chunk 0
expect_error "--fanout" inspect mask --raw-tokens 9 --chunk 2 --fanout 1
expect_error "--sink" inspect layout --raw-tokens 9 --chunk 2 --sink -1
expect_error "--raw-tokens" inspect layout --raw-tokens many --chunk 2
expect_error "missing --raw-tokens" inspect layout --chunk 2
expect_error "missing --chunk" inspect mask --raw-tokens 9
expect_error "unknown flag --foo" inspect layout --raw-tokens 9 --chunk 2 --foo 3
expect_error "gsa inspect layout: error: --raw-tokens must be 0..16777216, got 100000000000" \
  inspect layout --raw-tokens 100000000000 --chunk 2
expect_error "gsa inspect mask: error: --raw-tokens must be 0..16384, got 16385" inspect mask --raw-tokens 16385 --chunk 2
expect_error "gsa inspect layout: error: --chunk must be >= 1, got 0" inspect layout --raw-tokens 9 --chunk 0
expect_error "layout" inspect
expect_error "layout" inspect tree --raw-tokens 9 --chunk 2
expect_error "unknown flag --token" bench attention --token 256
expect_error "--device" bench attention --tokens 256 --device tpu
expect_error "--tokens" bench attention --tokens 256,abc

# --- bench smoke run ---
if "$GSA" bench attention --tokens 256,512 --repeats 1 --backward --threads 1 --csv "$tmp/bench.csv" \
    >"$tmp/bench" 2>"$tmp/err"; then
  for word in "forward" "forward + backward" "eff ms" "dense ms" "speedup" "growth" "efficient" "selective"; do
    grep -qF -- "$word" "$tmp/bench" || fail "bench output lacks '$word'"
  done
  # two lengths, two passes: 4 data rows whose first column is N
  [[ $(grep -cE '^ +(256|512) ' "$tmp/bench") -eq 4 ]] || fail "bench table rows: $(cat "$tmp/bench")"
  [[ $(wc -l <"$tmp/bench.csv") -eq 17 ]] || fail "bench csv should have a header and 16 rows"
else
  fail "gsa bench attention smoke run exited non-zero: $(cat "$tmp/err")"
fi

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all CLI checks passed"
