#!/usr/bin/env bash
# End-to-end checks of gsa tokenize with the tokenizers-trained files of tests/oracle/hf_tokenizer_oracle.py:
# the ids of a few oracle strings, decode round trips, and flag/input errors.
# usage: test_cli_tokenize.sh /path/to/gsa ORACLE_DIR     (exits 77, Skipped, when the oracle files are absent)
set -u
GSA=${1:?usage: test_cli_tokenize.sh /path/to/gsa ORACLE_DIR}
ORACLE=${2:?usage: test_cli_tokenize.sh /path/to/gsa ORACLE_DIR}
[[ -f "$ORACLE/llama3/cases.tsv" ]] || { echo "oracle files absent: skipped"; exit 77; }
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for case in llama3 qwen2; do
  tok="$ORACLE/$case/tokenizer.json"
  # The first 10 encode expectations (the edge cases): text (hex) -> ids, and the ids decode back to the oracle's text.
  grep -P '^E\t' "$ORACLE/$case/cases.tsv" | head -10 > "$tmp/cases"
  while IFS=$'\t' read -r _ hex ids; do
    printf '%b' "$(sed 's/../\\x&/g' <<< "$hex")" > "$tmp/text"
    got=$("$GSA" tokenize --tokenizer "$tok" < "$tmp/text" 2>"$tmp/err") || { fail "$case encode: $(cat "$tmp/err")"; continue; }
    [[ "$got" == "$ids" ]] || fail "$case encode of hex $hex: expected '$ids', got '$got'"
    printf '%s' "$ids" | "$GSA" tokenize --tokenizer "$tok" --decode > "$tmp/decoded" 2>"$tmp/err" \
      || { fail "$case decode: $(cat "$tmp/err")"; continue; }
    expected=$(grep -P "^D\t$ids\t" "$ORACLE/$case/cases.tsv" | head -1 | cut -f3)
    if [[ -n "$ids" && -n "$expected" && "$(od -An -v -tx1 "$tmp/decoded" | tr -d ' \n')" != "$expected" ]]; then
      fail "$case decode of '$ids'"
    fi
  done < "$tmp/cases"
done

# Gist names become the appended gist ids (llama3's file has none: 2006, 2007, 2008 follow its 2006 ids).
got=$(printf 'a<gist>b<Gist><MGist>' | "$GSA" tokenize --tokenizer "$ORACLE/llama3/tokenizer.json")
[[ " $got " == *" 2006 "*" 2007 2008 " ]] || fail "gist ids: got '$got'"
got=$(printf '2006 2009' | "$GSA" tokenize --tokenizer "$ORACLE/llama3/tokenizer.json" --gist-levels 4 --decode)
[[ "$got" == "<gist><gist3>" ]] || fail "gist decode: got '$got'"

expect_error() {
  local needle=$1; shift
  printf '%s' "${STDIN:-}" | "$GSA" tokenize "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -eq 0 ]]; then fail "gsa tokenize $* should fail but exited 0"; return; fi
  grep -qF -- "$needle" "$tmp/err" || fail "gsa tokenize $*: stderr lacks '$needle': $(cat "$tmp/err")"
}
expect_error "missing --tokenizer"
expect_error "cannot read '$tmp/none.json'" --tokenizer "$tmp/none.json"
echo '{"model": {}}' > "$tmp/bad.json"
expect_error "$tmp/bad.json: model.vocab: missing" --tokenizer "$tmp/bad.json"
STDIN="12 x3" expect_error "'x3' (word 2 on stdin) is not an integer id" --tokenizer "$ORACLE/llama3/tokenizer.json" --decode
STDIN="5 99999" expect_error "id 99999 at position 1" --tokenizer "$ORACLE/llama3/tokenizer.json" --decode
expect_error "unknown flag --bogus" --tokenizer "$ORACLE/llama3/tokenizer.json" --bogus
"$GSA" tokenize --help | grep -q "usage: gsa tokenize" || fail "--help"

if [[ $failures -ne 0 ]]; then echo "$failures failure(s)"; exit 1; fi
echo "gsa tokenize: all checks passed"
