#!/usr/bin/env bash
# gsa import / gsa export / gsa train --init-from end to end against transformers: the folders that
# tests/oracle/hf_import_oracle.py saved (Llama with llama3 RoPE, Qwen2 with biases and tied embeddings, both
# sharded) are imported with 2 gist levels, exported with small shards, and tests/oracle/hf_export_check.py loads
# the export with transformers (logits equal the oracle's, gist rows = mean, gist tokens special). A 2-step
# training run from the imported Llama at a vanishing learning rate, exported again, still gives the oracle's
# logits (so --init-from loaded the weights). Then the CLI's errors.
# usage: test_cli_hf.sh /path/to/gsa PYTHON ORACLE_DIR
set -u
GSA=${1:?usage: test_cli_hf.sh gsa python oracle_dir}
PY=${2:?python}
ORACLE=${3:?oracle dir}
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
CHECK="$(dirname "$0")/../oracle/hf_export_check.py"
if [[ ! -f $ORACLE/llama/oracle.safetensors ]]; then echo "skipped: no oracle files in $ORACLE"; exit 77; fi
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_error "text the message must contain" args... : non-zero exit and stderr naming the problem.
expect_error() {
  local needle=$1; shift
  "$GSA" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -eq 0 ]]; then fail "gsa $* should fail but exited 0"; return; fi
  if ! grep -qF -- "$needle" "$tmp/err"; then fail "gsa $*: stderr lacks '$needle': $(cat "$tmp/err")"; fi
}

checks=()
for case in llama qwen2; do
  "$GSA" import --hf "$ORACLE/$case/hf" --out "$tmp/$case-ckpt" --dtype float32 --levels 2 --chunk 4 --fanout 2 \
    || fail "gsa import $case"
  config="$tmp/$case-ckpt/step-000000/config.pbtxt"
  for want in "gist_token_ids: 302" "gist_token_ids: 304" "levels: 2" "chunk: 4"; do
    grep -qF "$want" "$config" || fail "$case: $config lacks '$want'"
  done
  cmp -s "$ORACLE/$case/hf/tokenizer.json" "$tmp/$case-ckpt/step-000000/tokenizer.json" \
    || fail "$case: tokenizer.json not copied unchanged"
  "$GSA" export --checkpoint "$tmp/$case-ckpt" --out "$tmp/$case-export" --max-shard-bytes 30000 \
    || fail "gsa export $case"
  shards=$(ls "$tmp/$case-export" | grep -c '^model-.*-of-.*\.safetensors$')
  [[ -f $tmp/$case-export/model.safetensors.index.json && $shards -ge 2 ]] || fail "$case: export is not sharded"
  checks+=("$tmp/$case-export" "$ORACLE/$case")
done

# Continued pretraining starts from the imported weights: at lr 1e-30 two steps leave them as they were.
"$GSA" train --config "$tiny" --init-from "$tmp/llama-ckpt" --set train.steps=2 --set train.batch_size=2 --set train.lr=1e-30 \
  --set train.warmup_steps=0 --samples 0 --output-dir "$tmp/train" >"$tmp/train.log" 2>&1 \
  || fail "gsa train --init-from: $(tail -5 "$tmp/train.log")"
expect_error "pass --tokenizer FILE" export --checkpoint "$tmp/train" --out "$tmp/trained-export"
"$GSA" export --checkpoint "$tmp/train" --out "$tmp/trained-export2" --tokenizer "$ORACLE/llama/hf/tokenizer.json" \
  || fail "gsa export of the trained checkpoint"
checks+=("$tmp/trained-export2" "$ORACLE/llama")
# transformers loads each export (one python start for all three).
"$PY" "$CHECK" "${checks[@]}" 2>"$tmp/check.err" \
  || fail "transformers check of the exports: $(tail -3 "$tmp/check.err")"

# The imported checkpoint generates with its own tokenizer.json: `gsa generate --attention full` (no gists) continues
# a prompt exactly as transformers' greedy generation with the original model does.
GEN_CHECK="$(dirname "$0")/../oracle/hf_generate_check.py"
for case in llama qwen2; do
  prompt="The quick brown fox 12"
  ours=$("$GSA" generate --checkpoint "$tmp/$case-ckpt" --attention full --prompt "$prompt" --max-new-tokens 6 \
         2>"$tmp/gen.err") || fail "gsa generate on the imported $case: $(tail -3 "$tmp/gen.err")"
  theirs=$("$PY" "$GEN_CHECK" "$ORACLE/$case/hf" "$prompt" 6 2>"$tmp/gen_oracle.err") \
    || fail "transformers generate $case: $(tail -3 "$tmp/gen_oracle.err")"
  [[ "$ours" == "$theirs" ]] || fail "$case: gsa generate gave '$ours', transformers '$theirs'"
done

# Errors.
expect_error "is not a folder" import --hf "$tmp/nowhere" --out "$tmp/x"
expect_error "exists and is not an empty folder" import --hf "$ORACLE/llama/hf" --out "$tmp/llama-ckpt"
expect_error "--levels must be 1..4" import --hf "$ORACLE/llama/hf" --out "$tmp/y" --levels 5
expect_error "--dtype must be float32 or bfloat16" import --hf "$ORACLE/llama/hf" --out "$tmp/y" --dtype fp8
expect_error "missing --hf" import --out "$tmp/y"
expect_error "no checkpoint at" export --checkpoint "$tmp/nowhere" --out "$tmp/z"
expect_error "exists and is not an empty folder" export --checkpoint "$tmp/llama-ckpt" --out "$tmp/llama-export"
expect_error "no checkpoint at '$tmp/nowhere'" train --init-from "$tmp/nowhere" --set train.steps=1 --samples 0
"$GSA" import --help | grep -q -- "--hf DIR" || fail "gsa import --help lacks --hf"
"$GSA" export --help | grep -q -- "--max-shard-bytes" || fail "gsa export --help lacks --max-shard-bytes"

if [[ $failures -ne 0 ]]; then echo "$failures failure(s)"; exit 1; fi
echo "all gsa import/export checks passed"
