# The dense peer of `gsa bench serve`: the same model shapes (Llama-3.2-1B: hidden 2048, 16 layers, 32 query /
# 8 KV heads, head dim 64, SwiGLU 8192, vocabulary 128256, tied embeddings), random weights, bf16, served the way
# a dense engine serves it: prefill with SDPA causal attention (cuDNN backend, K/V expanded to the query heads:
# the dense kernel at its strongest) and decode with SDPA flash decoding (FlashAttention backend, GQA) over a
# preallocated KV cache, greedy argmax on the device. Each decode step is timed eager and replayed from a CUDA
# graph (what vLLM-class engines do to hide launch overhead); the table reports both.
#
# Time to first token is measured up to --prefill-max tokens (dense prefill is quadratic: about 130 s at 1M);
# above it the decode rows run on a cache of the same length filled with random values (a dense step reads the
# whole cache whatever it holds, so its time does not depend on the values). Rows go to stdout and --csv with
# the columns of `gsa bench serve`.
#
# Usage: python3 scripts/peer_serve_dense.py [--tokens 32768,...] [--prefill-max 131072] [--decode-steps 32]
#        [--concurrency 1,16,64] [--concurrent-tokens 32768] [--layers 16] [--csv FILE]
import argparse, time
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

p = argparse.ArgumentParser()
p.add_argument("--tokens", default="32768,131072,524288,1048576")
p.add_argument("--prefill-max", type=int, default=131072)
p.add_argument("--decode-steps", type=int, default=32)
p.add_argument("--concurrency", default="1,16,64")
p.add_argument("--concurrent-tokens", type=int, default=32768)
p.add_argument("--layers", type=int, default=16)
p.add_argument("--csv", default="")
a = p.parse_args()

HID, NH, NKV, D, FF, V = 2048, 32, 8, 64, 8192, 128256
dev, dt = "cuda", torch.bfloat16
torch.manual_seed(0)


def w(*shape):
    return (torch.randn(*shape, device=dev, dtype=torch.float32) * 0.02).to(dt)


embed = w(V, HID)
layers = [dict(qkv=w(HID, (NH + 2 * NKV) * D), o=w(NH * D, HID), gate_up=w(HID, 2 * FF), down=w(FF, HID),
               n1=torch.ones(HID, device=dev, dtype=dt), n2=torch.ones(HID, device=dev, dtype=dt))
          for _ in range(a.layers)]
norm = torch.ones(HID, device=dev, dtype=dt)
inv_freq = 1.0 / (500000.0 ** (torch.arange(0, D, 2, device=dev, dtype=torch.float32) / D))


def rms(x, g):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dt) * g


def rope(x, pos):  # x [B, H, T, D], pos [T]
    f = pos.float()[:, None] * inv_freq[None, :]
    cos, sin = torch.cat([f.cos(), f.cos()], -1).to(dt), torch.cat([f.sin(), f.sin()], -1).to(dt)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def mlp(x, l):
    gu = x @ l["gate_up"]
    g, u = gu.chunk(2, -1)
    return (F.silu(g) * u) @ l["down"]


def qkv(x, l, pos):  # x [B, T, HID] -> q [B, NH, T, D], k, v [B, NKV, T, D]
    B, T, _ = x.shape
    t = (x @ l["qkv"]).view(B, T, NH + 2 * NKV, D).transpose(1, 2)
    q, k, v = t[:, :NH], t[:, NH:NH + NKV], t[:, NH + NKV:]
    return rope(q, pos), rope(k, pos), v


def prefill(tokens, cache):  # tokens [1, T]; fills cache[l] = (K, V) [1, NKV, cap, D]; -> next token [1]
    T = tokens.shape[1]
    pos = torch.arange(T, device=dev)
    x = embed[tokens]
    for l, (K, V_) in zip(layers, cache):
        h = rms(x, l["n1"])
        q, k, v = qkv(h, l, pos)
        K[:, :, :T] = k
        V_[:, :, :T] = v
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            o = F.scaled_dot_product_attention(q, k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1),
                                               is_causal=True)
        x = x + o.transpose(1, 2).reshape(1, T, NH * D) @ l["o"]
        x = x + mlp(rms(x, l["n2"]), l)
    return (rms(x[:, -1], norm) @ embed.t()).argmax(-1)


def decode_step(token, cache, length):  # token [B] at position `length` (a Python int: fixed per graph)
    B = token.shape[0]
    pos = torch.full((1,), length, device=dev)
    x = embed[token][:, None]  # [B, 1, HID]
    for l, (K, V_) in zip(layers, cache):
        q, k, v = qkv(rms(x, l["n1"]), l, pos)
        K[:, :, length:length + 1] = k
        V_[:, :, length:length + 1] = v
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            o = F.scaled_dot_product_attention(q, K[:, :, :length + 1], V_[:, :, :length + 1], enable_gqa=True)
        x = x + o.transpose(1, 2).reshape(B, 1, NH * D) @ l["o"]
        x = x + mlp(rms(x, l["n2"]), l)
    return (rms(x[:, 0], norm) @ embed.t()).argmax(-1)


def new_cache(B, cap, fill_random):
    make = (lambda: torch.randn(B, NKV, cap, D, device=dev, dtype=dt)) if fill_random else \
        (lambda: torch.zeros(B, NKV, cap, D, device=dev, dtype=dt))
    return [(make(), make()) for _ in range(a.layers)]


def timed_steps(token, cache, length):  # -> (eager median ms, eager p90, graph median ms)
    times = []
    for s in range(a.decode_steps + 2):
        torch.cuda.synchronize()
        t = time.perf_counter()
        token = decode_step(token, cache, length + s)
        token.cpu()
        if s >= 2:
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    # The graph replays one step at a fixed length (the cache has room after the eager steps).
    at = length + a.decode_steps + 2
    static_token = token.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        decode_step(static_token, cache, at)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = decode_step(static_token, cache, at)
    gtimes = []
    for r in range(a.decode_steps + 2):
        torch.cuda.synchronize()
        t = time.perf_counter()
        g.replay()
        out.cpu()
        if r >= 2:
            gtimes.append((time.perf_counter() - t) * 1e3)
    gtimes.sort()
    return times[len(times) // 2], times[int(0.9 * (len(times) - 1) + 0.5)], gtimes[len(gtimes) // 2]


csv = open(a.csv, "w") if a.csv else None
if csv:
    csv.write("table,budget,tokens,concurrency,ttft_ms,step_ms,step_p90_ms,tokens_per_s,peak_gib\n")


def report(table, budget, n, c, ttft, step, p90):
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"{table:10s} {budget:13s} {n:9d} {c:5d} {ttft:11.1f} {step:9.3f} {p90:9.3f} {c * 1e3 / step:10.1f} "
          f"{peak:8.1f}", flush=True)
    if csv:
        csv.write(f"{table},{budget},{n},{c},{ttft},{step},{p90},{c * 1e3 / step},{peak}\n")
        csv.flush()


print(f"dense peer: torch {torch.__version__}, {torch.cuda.get_device_name()}, {a.layers} layers, bf16, "
      f"prefill SDPA cuDNN causal up to {a.prefill_max} tokens, decode SDPA flash", flush=True)
print(f"{'table':10s} {'budget':13s} {'tokens':>9s} {'conc':>5s} {'ttft_ms':>11s} {'step_ms':>9s} {'p90_ms':>9s} "
      f"{'tokens/s':>10s} {'peak_GiB':>8s}", flush=True)
with torch.no_grad():
    for n in [int(x) for x in a.tokens.split(",")]:
        torch.cuda.reset_peak_memory_stats()
        cap = n + 2 * a.decode_steps + 8
        gen = torch.Generator(device="cpu").manual_seed(n)
        if n <= a.prefill_max:
            cache = new_cache(1, cap, False)
            tokens = torch.randint(0, V, (1, n), generator=gen).to(dev)
            prefill(tokens, cache)  # warm-up (cuDNN plans), then timed
            torch.cuda.synchronize()
            t = time.perf_counter()
            token = prefill(tokens, cache)
            token.cpu()
            ttft = (time.perf_counter() - t) * 1e3
        else:
            cache = new_cache(1, cap, True)
            token, ttft = torch.randint(0, V, (1,), generator=gen).to(dev), float("nan")
        step, p90, graph = timed_steps(token, cache, n)
        report("latency", "dense-eager", n, 1, ttft, step, p90)
        report("latency", "dense-graph", n, 1, ttft, graph, graph)
        del cache
        torch.cuda.empty_cache()
    for c in [int(x) for x in a.concurrency.split(",")] if a.concurrency else []:
        torch.cuda.reset_peak_memory_stats()
        n = a.concurrent_tokens
        cache = new_cache(c, n + 2 * a.decode_steps + 8, True)
        token = torch.randint(0, V, (c,), device=dev)
        step, p90, graph = timed_steps(token, cache, n)
        report("throughput", "dense-eager", n, c, float("nan"), step, p90)
        report("throughput", "dense-graph", n, c, float("nan"), graph, graph)
        del cache
        torch.cuda.empty_cache()
