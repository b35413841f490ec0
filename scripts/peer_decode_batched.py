# Dense decode peer for batched decode: SDPA with the FlashAttention backend (Flash-Decoding class), one query per
# sequence over the whole cache, GQA, bf16. Usage: python3 scripts/peer_decode_batched.py BATCH T[,T...]
import sys, torch, triton
from torch.nn.attention import sdpa_kernel, SDPBackend

H, HKV, D = 32, 8, 128
batch = int(sys.argv[1])
for n in [int(x) for x in sys.argv[2].split(",")]:
    q = torch.randn(batch, H, 1, D, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(batch, HKV, n, D, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(batch, HKV, n, D, device="cuda", dtype=torch.bfloat16)
    def f():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    ms = triton.testing.do_bench(f, warmup=25, rep=100, return_mode="median")
    print(f"| sdpa-flash-decode batch {batch} | {n} | {ms:.4f} ms | {batch / ms * 1e3:.0f} sequences/s |", flush=True)
    del q, k, v
    torch.cuda.empty_cache()
