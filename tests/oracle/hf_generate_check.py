"""Greedy continuation of a prompt by a transformers model folder, as the oracle of `gsa generate --attention
full` on the imported checkpoint: prints the text of the next N tokens (prompt ids from the folder's
tokenizer.json through `tokenizers`, no special tokens added, the model in float32).
usage: hf_generate_check.py HF_DIR PROMPT N"""
import sys

import torch
import transformers
from tokenizers import Tokenizer


def main():
    folder, prompt, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
    ids = tokenizer.encode(prompt, add_special_tokens=False).ids
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=count, do_sample=False, min_new_tokens=count,
                             pad_token_id=0)
    sys.stdout.write(tokenizer.decode(out[0, len(ids):].tolist(), skip_special_tokens=False))


if __name__ == "__main__":
    main()
