#!/usr/bin/env python3
"""Hugging Face model folders from transformers' save_pretrained, for gsa import / export to match.

Usage: hf_import_oracle.py --out DIR      (CPU, deterministic, a few seconds)

For each CASE it writes:

  DIR/CASE/hf/                  model.save_pretrained(max_shard_size=SHARD) (config.json, shards
                                model-0000i-of-0000N.safetensors, model.safetensors.index.json) and tokenizer.json,
                                a byte-level BPE tokenizer trained here with `tokenizers` (Llama-3 pre-tokenizer
                                regex), special tokens <|begin_of_text|> <|end_of_text|>; no gist tokens.
  DIR/CASE/oracle.safetensors   input_ids I64 [2, 29] uniform over the tokenizer's ids (no gist ids);
                                logits    F64 [2, 29, vocab_size] of the saved folder loaded back with
                                          from_pretrained(dtype=float64) (bf16 weights are upcast exactly),
                                          no attention mask (causal), positions
                                          0..28, use_cache False; metadata "pretrained_tokens" = the tokenizer's
                                          size before gist tokens (the first gist id gsa import assigns).

  llama: LlamaForCausalLM, fp32 weights, GQA (4 heads, 2 kv heads, head_dim 16), rope_theta 50000 with llama3
         rope_scaling (factor 8, low 1, high 4, original_max_position_embeddings 64: with head_dim 16 one
         frequency is blended and six are scaled), untied, vocab_size = the tokenizer's size (gists appended).
  qwen2: Qwen2ForCausalLM, bf16 weights, q/k/v biases, tied embeddings, rope_theta 10000, vocab_size = the
         tokenizer's size + 13 padding rows (as Qwen2 ships: the gist ids land on existing rows).

Weights are redrawn after torch.manual_seed(0): projections, biases and embeddings from N(0, 0.1), RMSNorm
weights from 1 + N(0, 0.1) (logits of std ~1, so a RoPE, bias or layout bug cannot hide under the tolerance).
Exits 77 (ctest: Skipped) when torch, transformers, safetensors or tokenizers is missing.
"""
import argparse
import os
import sys
import time

try:
    import torch
    from safetensors.torch import save_file
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
except ImportError as error:  # ctest reports exit code 77 as Skipped (SKIP_RETURN_CODE)
    print(f"hf_import_oracle: skipped, {error}")
    sys.exit(77)

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BPE_VOCAB = 300
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"]
BATCH, SEQ_LEN = 2, 29
WEIGHT_STD = 0.1
SHARD = "40KB"

COMMON = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=256, hidden_act="silu")
CASES = {
    "llama": dict(cls=(LlamaConfig, LlamaForCausalLM), extra_vocab=0, dtype=torch.float32,
                  params=dict(COMMON, head_dim=16, rope_theta=50000.0, tie_word_embeddings=False,
                              attention_bias=False, mlp_bias=False,
                              rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                high_freq_factor=4.0, original_max_position_embeddings=64))),
    "qwen2": dict(cls=(Qwen2Config, Qwen2ForCausalLM), extra_vocab=13, dtype=torch.bfloat16,
                  params=dict(COMMON, rope_theta=10000.0, tie_word_embeddings=True, use_sliding_window=False)),
}


def train_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    words = ["the", "gist", "token", "summarises", "chunk", "of", "text", "sparse", "attention", "model", "42"]
    corpus = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(200)]
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    tok.add_special_tokens(SPECIALS)
    return tok


def run_case(out_dir, name, tok):
    start = time.time()
    case = CASES[name]
    config_cls, model_cls = case["cls"]
    pretrained_tokens = tok.get_vocab_size(with_added_tokens=True)
    vocab = pretrained_tokens + case["extra_vocab"]
    torch.manual_seed(0)
    model = model_cls(config_cls(vocab_size=vocab, **case["params"])).eval()
    with torch.no_grad():
        for pname, parameter in model.named_parameters():  # tied weights are one Parameter: drawn once
            parameter.normal_(1.0 if pname.endswith("norm.weight") else 0.0, WEIGHT_STD)
    model = model.to(case["dtype"])
    hf_dir = os.path.join(out_dir, name, "hf")
    model.save_pretrained(hf_dir, max_shard_size=SHARD)
    tok.save(os.path.join(hf_dir, "tokenizer.json"))
    shards = [f for f in os.listdir(hf_dir) if f.startswith("model-")]
    if len(shards) < 2 or not os.path.exists(os.path.join(hf_dir, "model.safetensors.index.json")):
        sys.exit(f"hf_import_oracle: {name}: expected a sharded save, got {sorted(os.listdir(hf_dir))}")

    # The saved folder itself, loaded in float64 (bf16 -> f64 is exact; converting the live bf16 model instead
    # would carry its bf16-rounded RoPE inv_freq buffer along).
    reference = model_cls.from_pretrained(hf_dir, dtype=torch.float64).eval()
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, pretrained_tokens, (BATCH, SEQ_LEN), generator=generator, dtype=torch.int64)
    with torch.no_grad():
        logits = reference(input_ids=input_ids, use_cache=False).logits
    assert logits.dtype == torch.float64 and logits.shape == (BATCH, SEQ_LEN, vocab)
    save_file({"input_ids": input_ids, "logits": logits.contiguous()},
              os.path.join(out_dir, name, "oracle.safetensors"),
              metadata={"case": name, "pretrained_tokens": str(pretrained_tokens)})
    print(f"hf_import_oracle: {name}: {len(shards)} shards, vocab {vocab} ({pretrained_tokens} tokens), logits std "
          f"{logits.std().item():.3f} -> {hf_dir} ({time.time() - start:.1f}s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder; one subfolder per case")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tok = train_tokenizer()
    for name in sorted(CASES):
        run_case(args.out, name, tok)


if __name__ == "__main__":
    main()
