#!/usr/bin/env python3
"""Checks a folder written by gsa export with transformers and tokenizers (the oracle no one here wrote).

Usage: hf_export_check.py EXPORT_DIR CASE_DIR [EXPORT_DIR CASE_DIR ...]   (CASE_DIR: hf_import_oracle.py's DIR/CASE)

For each pair (one python start for all: importing transformers is the slow part):

- AutoModelForCausalLM.from_pretrained(EXPORT_DIR) loads (float64): its logits on the oracle's input_ids,
  on the original vocab_size columns other than the gist ids (whose rows import re-initialised), equal the
  oracle's logits within 1e-6 absolute + 1e-6 relative (the weights are the original ones, exported in float32);
- every embedding (and untied lm_head) row of a non-gist id equals the original model's row exactly (float32),
  and the row of each gist id equals the mean of the original rows [0, pretrained_tokens) within 1e-6;
- tokenizers.Tokenizer.from_file(EXPORT_DIR/tokenizer.json) gives <gist> <Gist> <MGist> the ids
  pretrained_tokens + 0, 1, 2 as special tokens, encodes "a<gist>b<Gist>" with them, and encodes sample texts
  exactly as the original tokenizer.json; AutoTokenizer loads the folder with the same gist ids.
Prints one line; exits 1 with the first mismatch named, 77 when a package is missing.
"""
import json
import os
import sys

try:
    import torch
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer
except ImportError as error:
    print(f"hf_export_check: skipped, {error}")
    sys.exit(77)

GISTS = ["<gist>", "<Gist>", "<MGist>"]
TEXTS = ["the gist token summarises a chunk of text", "  sparse\nattention 4242 model!", "héllo wörld 😀"]


def fail(message):
    print(f"hf_export_check: FAIL: {message}")
    sys.exit(1)


def check(export_dir, case_dir):
    with safe_open(os.path.join(case_dir, "oracle.safetensors"), "pt") as f:
        input_ids, expected = f.get_tensor("input_ids"), f.get_tensor("logits")
        pretrained = int(f.metadata()["pretrained_tokens"])
    original = AutoModelForCausalLM.from_pretrained(os.path.join(case_dir, "hf"), dtype=torch.float32)
    exported = AutoModelForCausalLM.from_pretrained(export_dir, dtype=torch.float64).eval()
    gist_ids = list(range(pretrained, pretrained + len(GISTS)))
    # The original vocabulary's columns except the gist ids (Qwen2-like padding rows hold them).
    columns = [c for c in range(expected.shape[-1]) if c not in gist_ids]
    with torch.no_grad():
        logits = exported(input_ids=input_ids, use_cache=False).logits[..., columns]
    expected = expected[..., columns]
    error = (logits - expected).abs().max().item()
    if not torch.allclose(logits, expected, atol=1e-6, rtol=1e-6):
        fail(f"logits differ from the oracle by up to {error:.3g}")

    pairs = [(original.get_input_embeddings().weight, exported.get_input_embeddings().weight, "embed_tokens")]
    if not exported.config.tie_word_embeddings:
        pairs.append((original.get_output_embeddings().weight, exported.get_output_embeddings().weight, "lm_head"))
    for before, after, what in pairs:
        before = before.detach().to(torch.float64)
        after = after.detach()
        mean = before[:pretrained].mean(0)
        for row in range(after.shape[0]):
            if row in gist_ids:
                if not torch.allclose(after[row], mean, atol=1e-6, rtol=1e-6):
                    fail(f"{what} row {row} (a gist) is not the mean of rows 0..{pretrained - 1}")
            elif row < before.shape[0] and not torch.equal(after[row], before[row]):
                fail(f"{what} row {row} changed")

    ours = Tokenizer.from_file(os.path.join(export_dir, "tokenizer.json"))
    theirs = Tokenizer.from_file(os.path.join(case_dir, "hf", "tokenizer.json"))
    for name, gid in zip(GISTS, gist_ids):
        if ours.token_to_id(name) != gid:
            fail(f"{name} has id {ours.token_to_id(name)} in the exported tokenizer.json, expected {gid}")
    added = {t.content: t for t in ours.get_added_tokens_decoder().values()}
    if not all(added.get(name) is not None and added[name].special for name in GISTS):
        fail("the gist tokens are not special added tokens")
    ids = ours.encode("a<gist>b<Gist>", add_special_tokens=False).ids
    if ids[1] != gist_ids[0] or ids[3] != gist_ids[1] or len(ids) != 4:
        fail(f"'a<gist>b<Gist>' encodes as {ids}")
    for text in TEXTS:
        if ours.encode(text, add_special_tokens=False).ids != theirs.encode(text, add_special_tokens=False).ids:
            fail(f"{text!r} encodes differently after export")
    auto = AutoTokenizer.from_pretrained(export_dir)
    if auto.convert_tokens_to_ids(GISTS) != gist_ids:
        fail(f"AutoTokenizer gives the gists {auto.convert_tokens_to_ids(GISTS)}")
    with open(os.path.join(export_dir, "config.json")) as f:
        architecture = json.load(f)["architectures"][0]
    print(f"hf_export_check: {architecture} from {export_dir}: logits max error {error:.2g}, gist rows = mean, "
          f"gist ids {gist_ids}")


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit("usage: hf_export_check.py EXPORT_DIR CASE_DIR [EXPORT_DIR CASE_DIR ...]")
    for i in range(0, len(args), 2):
        check(args[i], args[i + 1])


if __name__ == "__main__":
    main()
