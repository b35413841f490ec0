#!/usr/bin/env bash
# test_train_hf_tokenizer.sh GSA ORACLE_DIR: `gsa train` with a Hugging Face tokenizer.json (data.tokenizer; the
# Llama-3-style file that tests/oracle/hf_tokenizer_oracle.py trains with `tokenizers`). Oracle: the file's own
# ids as `gsa tokenize` reports them (test_cli_tokenize.sh checks those against `tokenizers`).
#  1. model.gist_token_ids = the file's <gist> id: a JSONL corpus and the multi-document task train, and the
#     samples decode through the file (no id outside it is generated);
#  2. a gist id one past it (a text token of the file) is refused at start, naming both ids.
# Exits 77 (skipped) when the oracle files are absent.
set -u
gsa=$1 oracle=$2
tok="$oracle/llama3/tokenizer.json"
[ -f "$tok" ] || { echo "oracle files absent: skipped"; exit 77; }
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
read -r gist _ mgist < <(printf '<gist><Gist><MGist>' | "$gsa" tokenize --tokenizer "$tok")
[ -n "$gist" ] && [ -n "$mgist" ] || { echo "gsa tokenize gave no gist ids"; exit 1; }
for i in $(seq 20); do echo "{\"text\": \"the cat sat on the mat number $i, and then it slept.\"}"; done >"$dir/c.jsonl"
config() { printf 'model { vocab_size: %d gist_token_ids: [%d] }\n' $((mgist + 8)) "$1" >"$dir/c$1.pbtxt"; }
config "$gist"
config $((gist + 1))
args=(train --samples 2 --threads 1 --set train.steps=3 --set train.batch_size=4 --set train.eval_batches=1
      --set data.tokenizer="$tok")
out=$(timeout 300 "$gsa" "${args[@]}" --config "$dir/c$gist.pbtxt" --set data.source=JSONL --set data.corpus.path="$dir/c.jsonl" \
      --set data.corpus.sequence_length=32 2>&1) || { echo "$out"; fail "JSONL through the tokenizer.json failed"; }
out=$(timeout 300 "$gsa" "${args[@]}" --config "$dir/c$gist.pbtxt" --set data.source=MULTI_DOC --set data.multi_doc.documents=3 2>&1) \
  && grep -q "samples right: [0-2]/2" <<<"$out" || { echo "$out"; fail "the multi-document task with the tokenizer.json failed"; }
echo "tokenizer.json with gists at $gist..: JSONL and multi-document training and samples ran"
bad=$(timeout 60 "$gsa" "${args[@]}" --config "$dir/c$((gist + 1)).pbtxt" 2>&1) && fail "a gist id of another token was accepted"
grep -q "the model's level-0 gist id $((gist + 1)) (model.gist_token_ids) is inside the tokenizer's vocabulary, where it is not its gist (the tokenizer's level-0 gist is $gist)" <<<"$bad" \
  || { echo "$bad"; fail "the wrong gist id was not named"; }
[ $status -eq 0 ] && echo PASS
exit $status
