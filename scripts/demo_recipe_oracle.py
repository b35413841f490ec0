#!/usr/bin/env python3
"""A dense PyTorch twin of the demo's retrieval task, to search training recipes in minutes (issue 8 item 8).

Trains a small Llama-style model (RMSNorm, RoPE, SwiGLU, causal SDPA; no gists) on the one-document key-value
format of `data.multi_doc` (a `#0|` header, compact pairs `aV;` of 1-letter lower-case keys and upper-case
values, every key asked in the suffix `?aV;?bW;...`, the loss on the answers only) with AdamW, one CPU thread,
and prints the loss and the answer accuracy of the training batch every 50 steps. docs/demo-experiments.md has
what it showed. Variants:
  --width W      pad each pair and the header to W characters (0: unpadded)
  --fmt nosep    pairs `aV` without the `;`, the header padded to 8
  --fmt fused    one byte per pair (0x80 + 8 * key + value; 16 keys x 8 values)
  --copyfrac F   that fraction of each batch is a copy task: L random letters, `|`, the same letters (labelled);
                 --copyvary draws L per example

Example: python3 scripts/demo_recipe_oracle.py --steps 600 --batch 32 --width 0 --copyfrac 0.5
"""
import argparse
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 264  # the byte tokenizer's size in the demo configs
IGNORE = -100


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--hidden', type=int, default=128)
    p.add_argument('--heads', type=int, default=8)
    p.add_argument('--layers', type=int, default=2)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--wd', type=float, default=0.0)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=600)
    p.add_argument('--docs', type=int, default=1)
    p.add_argument('--mindocs', type=int, default=0, help='digits: each example draws mindocs..docs documents')
    p.add_argument('--pairs', type=int, default=7, help='pairs per document')
    p.add_argument('--questions', type=int, default=7)
    p.add_argument('--alphabet', type=int, default=16)
    p.add_argument('--width', type=int, default=8)
    p.add_argument('--fmt', choices=['compact', 'nosep', 'fused', 'valuefirst', 'digits'], default='compact')
    p.add_argument('--filler', type=int, default=0, help="digits: '.' characters after each document's pairs")
    p.add_argument('--keyrep', type=int, default=1, help='the key written this many times before its value')
    p.add_argument('--valuerep', type=int, default=1, help='valuefirst: the value written this many times')
    p.add_argument('--copyfrac', type=float, default=0.0)
    p.add_argument('--copylen', type=int, default=24)
    p.add_argument('--copyvary', action='store_true', help='copy strings of random length (copylen / 3 .. copylen)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--init-std', type=float, default=0.0,
                   help='re-draw every weight matrix N(0, std) (gsa model.init_std); 0: PyTorch defaults')
    p.add_argument('--embed-std', type=float, default=0.0, help='with --init-std: the embedding std (0: init-std)')
    return p.parse_args()


def digits_example(a):
    """--fmt digits: keys from 52 letters, values the 10 digits; per document a header padded to 8, its pairs
    `a7b3...` padded to a multiple of 8, then --filler dots; every key asked `?a7;` in random order."""
    docs = random.randint(a.mindocs, a.docs) if a.mindocs else a.docs
    n = docs * a.pairs
    keys = random.sample('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', n)
    values = [random.choice('0123456789') for _ in range(n)]
    context = ''
    for d in range(docs):
        pairs = ''.join(keys[d * a.pairs + j] + values[d * a.pairs + j] for j in range(a.pairs))
        context += ('#%d|' % d).ljust(8) + pairs.ljust(-(-len(pairs) // 8) * 8) + '.' * a.filler
    tokens = list(context.encode())
    labels = [IGNORE] * len(tokens)
    for q in random.sample(range(n), min(n, a.questions)):
        tokens += [ord('?'), ord(keys[q]), ord(values[q]), ord(';')]
        labels += [IGNORE, IGNORE, ord(values[q]), IGNORE]
    return tokens, labels


def retrieval_example(a):
    """Token ids and labels (label t = the token t itself where it is an answer, else IGNORE)."""
    if a.fmt == 'digits':
        return digits_example(a)
    n = a.docs * a.pairs
    keys = random.sample([chr(97 + i) for i in range(a.alphabet)], n)
    values = [chr(65 + random.randrange(8 if a.fmt == 'fused' else a.alphabet)) for _ in range(n)]
    header_width = 8 if a.fmt == 'nosep' else a.width
    context = ''
    for d in range(a.docs):
        context += ('#%d|' % d).ljust(header_width)
        for j in range(a.pairs):
            k, v = keys[d * a.pairs + j], values[d * a.pairs + j]
            pair = k * a.keyrep + v + ('' if a.fmt == 'nosep' else ';')
            if a.fmt == 'valuefirst':
                pair = v * a.valuerep + k + ';'
            if a.fmt == 'fused':
                pair = chr(0x80 + (ord(k) - 97) * 8 + (ord(v) - 65) % 8)
            context += pair.ljust(a.width) if a.width else pair
    tokens = list(context.encode('latin-1'))
    labels = [IGNORE] * len(tokens)
    for q in random.sample(range(n), a.questions):
        question = ('?' + keys[q]).encode()
        tokens += list(question) + [ord(values[q]), ord(';')]
        labels += [IGNORE] * len(question) + [ord(values[q]), IGNORE]
    return tokens, labels


def copy_example(a):
    # --copyvary: a length from copylen / 3 to copylen, so no fixed offset finds the copied token
    n = random.randint(max(2, a.copylen // 3), a.copylen) if a.copyvary else a.copylen
    letters = [random.choice(b'abcdefghijklmnopABCDEFGHIJKLMNOP') for _ in range(n)]
    return letters + [ord('|')] + letters, [IGNORE] * (n + 2) + letters[1:]


def batch(a):
    copies = int(a.copyfrac * a.batch)
    examples = [copy_example(a) if i < copies else retrieval_example(a) for i in range(a.batch)]
    length = max(len(t) for t, _ in examples)
    tokens = torch.zeros(a.batch, length, dtype=torch.long)
    labels = torch.full((a.batch, length), IGNORE)
    for i, (t, l) in enumerate(examples):
        tokens[i, :len(t)] = torch.tensor(t)
        labels[i, :len(l)] = torch.tensor(l)
    return tokens, labels, copies


def rope(x):  # x [B, H, T, D], rotate_half convention, theta 10000
    d, t = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    angles = torch.arange(t).float()[:, None] * inv_freq[None]
    emb = torch.cat([angles, angles], -1)
    return x * emb.cos() + torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1) * emb.sin()


class Block(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.out = nn.Linear(hidden, hidden, bias=False)
        self.norm1, self.norm2 = nn.RMSNorm(hidden), nn.RMSNorm(hidden)
        width = hidden * 8 // 3
        self.gate_up = nn.Linear(hidden, 2 * width, bias=False)
        self.down = nn.Linear(width, hidden, bias=False)

    def forward(self, x):
        b, t, h = x.shape
        q, k, v = (y.view(b, t, self.heads, h // self.heads).transpose(1, 2)
                   for y in self.qkv(self.norm1(x)).chunk(3, -1))
        o = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True)
        x = x + self.out(o.transpose(1, 2).reshape(b, t, h))
        gate, up = self.gate_up(self.norm2(x)).chunk(2, -1)
        return x + self.down(F.silu(gate) * up)


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, a.hidden)
        self.blocks = nn.ModuleList([Block(a.hidden, a.heads) for _ in range(a.layers)])
        self.norm = nn.RMSNorm(a.hidden)
        self.head = nn.Linear(a.hidden, VOCAB, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def main():
    a = parse_args()
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    torch.set_num_threads(1)
    model = Model(a)
    if a.init_std > 0:  # gsa's init: every matrix N(0, init_std), the embedding N(0, embed_std or init_std)
        with torch.no_grad():
            for name, w in model.named_parameters():
                if w.dim() == 2:
                    w.normal_(0.0, a.embed_std if name == 'embed.weight' and a.embed_std > 0 else a.init_std)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd, betas=(0.9, 0.95))
    start = time.time()
    for step in range(1, a.steps + 1):
        for group in opt.param_groups:
            group['lr'] = a.lr * min(1.0, step / 30)  # 30 warm-up steps
        tokens, labels, copies = batch(a)
        logits, target = model(tokens)[:, :-1], labels[:, 1:]  # logits at t - 1 predict token t
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), target.reshape(-1), ignore_index=IGNORE)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0:
            answers = target != IGNORE
            answers[:copies] = False  # accuracy on the retrieval answers only
            acc = (logits.argmax(-1)[answers] == target[answers]).float().mean().item()
            print(f'step {step} loss {loss.item():.3f} acc {acc:.3f} t {time.time() - start:.0f}s', flush=True)


if __name__ == '__main__':
    main()
