# Attention kernels against their peers from one device call's log: `gsa bench kernels` (its N / fwd_ms /
# fwdbwd_ms table) and peers/attn_peers.py (its "| kind | tokens | fwd ms | fwd+bwd ms |" rows), both in LOG as
# docs/results/kernels_h200_session9_call3.txt holds them. Two panels (forward, forward+backward), ms against N on
# log-log axes, one line per system.
# Usage: python3 scripts/plot_kernels.py LOG OUT.png
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PEER_NAMES = {"flex-gsa-permuted": "FlexAttention, GSA mask", "sdpa-cudnn-causal": "dense causal (SDPA cuDNN)"}


def read_log(path):
    """{system: {tokens: (fwd_ms, fwdbwd_ms)}} from the first bench table and the peer rows of LOG."""
    series = {}
    in_bench = False
    with open(path) as f:
        for line in f:
            if line.lstrip().startswith("N ") and "fwd_ms" in line:
                in_bench = "gsa" not in series
                continue
            bench = re.match(r"\s+(\d+)\s+\d+\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+([\d.]+)", line)
            if in_bench and bench:
                series.setdefault("gsa", {})[int(bench.group(1))] = (float(bench.group(2)), float(bench.group(3)))
                continue
            in_bench = in_bench and bool(bench)
            peer = re.match(r"\|\s*([\w-]+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", line)
            if peer and peer.group(1) in PEER_NAMES:
                series.setdefault(peer.group(1), {})[int(peer.group(2))] = (float(peer.group(3)),
                                                                            float(peer.group(4)))
    if "gsa" not in series or not any(k in series for k in PEER_NAMES):
        sys.exit(f"{path}: no `gsa bench kernels` table or no peer rows")
    return series


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_kernels.py LOG OUT.png")
    series = read_log(sys.argv[1])
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.0))
    for panel, (ax, title) in enumerate(zip(axes, ("forward", "forward + backward"))):
        for name, style in (("gsa", "o-"), ("flex-gsa-permuted", "s--"), ("sdpa-cudnn-causal", "^:")):
            points = sorted(series.get(name, {}).items())
            if not points:
                continue
            ax.plot([n for n, _ in points], [t[panel] for _, t in points], style,
                    label="gsa (ours)" if name == "gsa" else PEER_NAMES[name])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tokens N")
        ax.set_ylabel("ms")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("one attention layer, NVIDIA H200, 32/8 heads, head dim 128, bf16, c0 16")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
