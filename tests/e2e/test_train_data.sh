#!/usr/bin/env bash
# test_train_data.sh GSA PYTHON [MPIEXEC MPIEXEC_FLAGS...]: `gsa train` on each data source and tokenizer setup.
#  1. a tiny config whose vocabulary is large with the gist ids after the byte tokenizer's (model.gist_token_ids):
#     trains and answers its samples without an id the tokenizer cannot decode (issue 8: llama-1b-gsa crashed);
#  2. exact resume on a .bin corpus (uint16, document separator), a JSONL corpus and the multi-document task
#     (also its digits recipe with copy examples):
#     a run of 8 steps checkpointed at 4, then resumed from step 4: its losses equal the uninterrupted run's
#     bit for bit (the data position is in the checkpoint);
#  3. gradient accumulation: train.grad_accumulation=2 on the .bin corpus (micro-batches with different labelled
#     token counts) gives every step's loss and gradient norm of the whole batch at once (oracle: accumulation 1),
#     within 1e-4 relative over 4 steps (only the summation order differs); with MPIEXEC also dp 2 x accumulation 2;
#     Activation checkpointing (train.activation_checkpointing) gives the plain run's losses and gradient norms
#     exactly on one process, and within 1e-4 under `mpirun -np 2 --sp 2` (the recomputed layers' collectives);
#  4. with MPIEXEC: `mpirun -np 2 --dp 2` on the .bin corpus for 40 steps: the loss of the last 5 steps is below
#     0.8 x that of the first 5 (a small repeating corpus the model can learn); the two replicas read disjoint
#     rows (tests/unit/test_data_source.cpp checks that part exactly).
set -u
gsa=$1 python=$2
shift 2
tiny=$(cd "$(dirname "$0")/../../configs" && pwd)/tiny-retrieval.pbtxt  # the tests' small model (not the demo)
export OMP_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }
losses() { sed -E 's/.*"loss":([^,]*),.*/\1/' "$1"; }
common=(--set train.log_every=1 --set train.eval_batches=1 --set train.warmup_steps=2 --threads 1)

# The data files: a .bin of byte-tokenizer ids (a repeating text, EOS 258 after each sentence) and a JSONL file.
"$python" - "$dir" <<'PY'
import json, struct, sys
d = sys.argv[1]
sentences = ["the cat sat on the mat. ", "a dog ran in the park. ", "birds sing at dawn. "]
ids = []
for i in range(60):
    ids += list(sentences[i % 3].encode()) + [258]
open(f"{d}/corpus.bin", "wb").write(struct.pack(f"<{len(ids)}H", *ids))
with open(f"{d}/corpus.jsonl", "w") as f:
    for i in range(30):
        f.write(json.dumps({"text": sentences[i % 3] * 2, "id": i}) + "\n")
PY

# 1. Large vocabulary, gist ids after the text ids.
cat >"$dir/big-vocab.pbtxt" <<'CFG'
model { vocab_size: 1000 gist_token_ids: [990, 991] hidden_size: 32 intermediate_size: 64 num_layers: 2 num_heads: 2
        num_kv_heads: 1 head_dim: 16 }
gist { sink: 3 chunk: 4 levels: 2 fanout: 2 }
train { steps: 3 batch_size: 4 }
CFG
if out=$(timeout 300 "$gsa" train --config "$dir/big-vocab.pbtxt" "${common[@]}" --samples 3 2>&1) \
   && grep -q "samples right: [0-3]/3" <<<"$out"; then
  echo "large vocabulary, gists at 990..991: trained and sampled"
else
  echo "$out"; fail "the large-vocabulary config did not train and sample"
fi

# 2. Exact resume from step 4 of 8.
resume_case() {
  local name=$1
  shift
  local out="$dir/$name"
  timeout 300 "$gsa" train --config "$tiny" "${common[@]}" --samples 0 --set train.steps=8 --set train.batch_size=4 "$@" \
    --output-dir "$out" --checkpoint-every 4 --keep-checkpoints 0 >"$dir/$name.log" 2>&1 \
    || { cat "$dir/$name.log"; fail "$name: the uninterrupted run failed"; return; }
  losses "$out/metrics.jsonl" >"$dir/$name.expected"
  rm -rf "$out/checkpoints/step-000008"
  printf 'step-000004\n' >"$out/checkpoints/latest"
  timeout 300 "$gsa" train --config "$tiny" "${common[@]}" --samples 0 --set train.steps=8 --set train.batch_size=4 "$@" \
    --output-dir "$out" --checkpoint-every 4 --keep-checkpoints 0 --resume >"$dir/$name.resume.log" 2>&1 \
    || { cat "$dir/$name.resume.log"; fail "$name: the resumed run failed"; return; }
  grep -q "resumed at step 4" "$dir/$name.resume.log" || fail "$name: did not resume at step 4"
  if [ "$(wc -l <"$dir/$name.expected")" -eq 8 ] && diff -q "$dir/$name.expected" <(losses "$out/metrics.jsonl") >/dev/null
  then
    echo "$name: resumed losses equal the uninterrupted run's: $(tr '\n' ' ' <"$dir/$name.expected")"
  else
    fail "$name: resumed losses differ"; diff "$dir/$name.expected" <(losses "$out/metrics.jsonl")
  fi
}
resume_case bin --set data.source=TOKEN_BIN --set data.corpus.path="$dir/corpus.bin" \
  --set data.corpus.sequence_length=64 --set data.corpus.bin_document_separator=258
resume_case jsonl --set data.source=JSONL --set data.corpus.path="$dir/corpus.jsonl" --set data.corpus.sequence_length=48
resume_case multi_doc --set data.source=MULTI_DOC --set data.multi_doc.documents=4 --set data.examples_per_row=2
# The digits recipe with copy examples (configs/demo.pbtxt's data, 2 documents): copies resume too.
resume_case multi_doc_copy --set data.source=MULTI_DOC --set data.multi_doc.documents=2 \
  --set data.multi_doc.pairs_per_document=3 --set data.multi_doc.key_len=1 --set data.multi_doc.value_len=1 \
  --set data.multi_doc.alphabet=52 --set data.multi_doc.digit_values=true --set data.multi_doc.packed_pairs=true \
  --set data.multi_doc.compact=true --set data.multi_doc.pair_width=8 --set data.multi_doc.filler=48 \
  --set data.multi_doc.questions=3 --set data.multi_doc.copy_fraction=0.5 --set data.multi_doc.copy_digits=true

# 3. Gradient accumulation against the whole batch.
bin=(--set data.source=TOKEN_BIN --set data.corpus.path="$dir/corpus.bin" --set data.corpus.sequence_length=64
     --set data.corpus.bin_document_separator=258 --set train.steps=4 --set train.batch_size=8 --samples 0)
numbers() { sed -E 's/.*"loss":([^,]*),.*"grad_norm":([^,]*),.*/\1 \2/' "$1"; }
close() {  # two files of "loss grad_norm" lines, equal within 1e-4 relative
  awk 'NR == FNR { a[FNR] = $1; b[FNR] = $2; n = FNR; next }
       { m = FNR; if (($1 - a[FNR])^2 > (1e-4 * a[FNR])^2 || ($2 - b[FNR])^2 > (1e-4 * b[FNR])^2) bad = 1 }
       END { exit (bad || n != m || n == 0) }' "$1" "$2"
}
timeout 300 "$gsa" train --config "$tiny" "${common[@]}" "${bin[@]}" --output-dir "$dir/acc1" >"$dir/acc1.log" 2>&1 || fail "accumulation 1 failed"
timeout 300 "$gsa" train --config "$tiny" "${common[@]}" "${bin[@]}" --set train.grad_accumulation=2 --output-dir "$dir/acc2" \
  >"$dir/acc2.log" 2>&1 || fail "accumulation 2 failed"
if close <(numbers "$dir/acc1/metrics.jsonl") <(numbers "$dir/acc2/metrics.jsonl"); then
  echo "grad_accumulation 2 = the whole batch: $(numbers "$dir/acc2/metrics.jsonl" | tr '\n' ' ')"
else
  fail "grad_accumulation 2 differs from the whole batch"; paste <(numbers "$dir/acc1/metrics.jsonl") <(numbers "$dir/acc2/metrics.jsonl")
fi
if [ $# -gt 0 ]; then
  timeout 300 "$1" -np 2 "${@:2}" -x OMP_NUM_THREADS "$gsa" train --config "$tiny" "${common[@]}" "${bin[@]}" --dp 2 --backend mpi \
    --set train.grad_accumulation=2 --output-dir "$dir/acc2dp2" >"$dir/acc2dp2.log" 2>&1 || fail "dp 2 x accumulation 2 failed"
  if close <(numbers "$dir/acc1/metrics.jsonl") <(numbers "$dir/acc2dp2/metrics.jsonl"); then
    echo "dp 2 x grad_accumulation 2 = the whole batch on one process"
  else
    fail "dp 2 x grad_accumulation 2 differs"; paste <(numbers "$dir/acc1/metrics.jsonl") <(numbers "$dir/acc2dp2/metrics.jsonl")
  fi
fi

timeout 300 "$gsa" train --config "$tiny" "${common[@]}" "${bin[@]}" --set train.activation_checkpointing=true --output-dir "$dir/ckpt" \
  >"$dir/ckpt.log" 2>&1 || fail "activation checkpointing failed"
if [ "$(numbers "$dir/acc1/metrics.jsonl")" == "$(numbers "$dir/ckpt/metrics.jsonl")" ]; then
  echo "activation checkpointing = the plain run, bit for bit"
else
  fail "activation checkpointing differs"; paste <(numbers "$dir/acc1/metrics.jsonl") <(numbers "$dir/ckpt/metrics.jsonl")
fi
if [ $# -gt 0 ]; then
  timeout 300 "$1" -np 2 "${@:2}" -x OMP_NUM_THREADS "$gsa" train --config "$tiny" "${common[@]}" "${bin[@]}" --sp 2 --backend mpi \
    --set train.activation_checkpointing=true --output-dir "$dir/ckpt_sp2" >"$dir/ckpt_sp2.log" 2>&1 \
    || fail "sp 2 with activation checkpointing failed"
  if close <(numbers "$dir/acc1/metrics.jsonl") <(numbers "$dir/ckpt_sp2/metrics.jsonl"); then
    echo "sp 2 with activation checkpointing = the plain run on one process"
  else
    fail "sp 2 with activation checkpointing differs"
    paste <(numbers "$dir/acc1/metrics.jsonl") <(numbers "$dir/ckpt_sp2/metrics.jsonl")
  fi
fi

# 4. Two data-parallel ranks: the loss goes down.
if [ $# -gt 0 ]; then
  out=$(timeout 300 "$1" -np 2 "${@:2}" -x OMP_NUM_THREADS "$gsa" train --config "$tiny" "${common[@]}" --samples 0 --dp 2 \
        --backend mpi --set train.steps=40 --set train.batch_size=4 --set train.lr=1e-2 --set data.source=TOKEN_BIN \
        --set data.corpus.path="$dir/corpus.bin" --set data.corpus.sequence_length=64 \
        --set data.corpus.bin_document_separator=258 --output-dir "$dir/dp2" 2>&1) \
    || { echo "$out"; fail "the 2-rank run failed"; }
  read -r first last < <(losses "$dir/dp2/metrics.jsonl" | awk '{ l[NR] = $1 } END {
      for (i = 1; i <= 5; ++i) { f += l[i]; e += l[NR - 5 + i] } print f / 5, e / 5 }')
  if awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < 0.8 * f) }'; then
    echo "mpirun -np 2 --dp 2: loss $first (steps 1-5) -> $last (steps 36-40)"
  else
    fail "mpirun -np 2 --dp 2: loss did not decrease enough: $first -> $last"
  fi
fi
[ $status -eq 0 ] && echo PASS
exit $status
