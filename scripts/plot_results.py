#!/usr/bin/env python3
"""Draws the README/PERFORMANCE plots from the raw benchmark outputs in docs/results (a development helper:
needs matplotlib; the product does not use Python). Usage: python3 scripts/plot_results.py"""
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "docs", "results")
PLOTS = os.path.join(ROOT, "docs", "plots")


def comm_plot():
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for ranks, style in ((2, "-"), (4, "--")):
        rows = list(csv.DictReader(open(os.path.join(RESULTS, f"bench_comm_h200_np{ranks}.csv"))))
        for name, label, color in (("gist tree all-gather", "gist tree all-gather (ours)", "tab:blue"),
                                   ("ring of full KV (baseline)", "ring of the full KV", "tab:red"),
                                   ("unfold routing (prefill)", "unfold routing, 16 queries (ours)", "tab:green")):
            pts = [(int(r["tokens"]), int(r["bytes_per_rank"]) / 2**20) for r in rows if r["collective"] == name]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", color=color,
                    label=f"{label}, {ranks} GPUs")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("MiB sent per rank per layer")
    ax.set_title("Sequence-parallel GSA traffic vs a ring of the full KV\n(H200, NCCL, 8 KV heads x 64, bf16, c0 = 8)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(PLOTS, "comm_bytes.png"), dpi=120)


def read_sp(ranks):
    rows = {}
    for line in open(os.path.join(RESULTS, f"bench_sp_h200_np{ranks}.txt")):
        parts = line.split()
        if len(parts) == 6 and parts[0].isdigit() and parts[3] != "OOM":
            rows[int(parts[0])] = (float(parts[4]), float(parts[5]))
    return rows


def sp_plot():
    fig, (t_ax, m_ax) = plt.subplots(1, 2, figsize=(9, 3.8))
    for ranks, color in ((1, "tab:gray"), (2, "tab:blue"), (4, "tab:green")):
        rows = read_sp(ranks)
        n = sorted(rows)
        t_ax.plot(n, [rows[k][0] for k in n], marker="o", color=color, label=f"ours, {ranks} GPU{'s' * (ranks > 1)}")
        m_ax.plot(n, [rows[k][1] for k in n], marker="o", color=color, label=f"{ranks} GPU{'s' * (ranks > 1)}")
    cp = {}
    for line in open(os.path.join(RESULTS, "peer_cp_ring_h200.txt")):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        gpus, tokens, ms = int(cells[0].split(",")[1].split()[0]), int(cells[1]), float(cells[2].split()[1])
        cp.setdefault(gpus, []).append((tokens, ms))
    for gpus, style in ((2, "tab:blue"), (4, "tab:green")):
        pts = sorted(cp.get(gpus, []))
        t_ax.plot([p[0] for p in pts], [p[1] for p in pts], "x--", color=style,
                  label=f"PyTorch CP ring (dense), {gpus} GPUs")
    t_ax.set_xscale("log", base=2)
    t_ax.set_yscale("log")
    t_ax.set_xlabel("sequence length (tokens)")
    t_ax.set_ylabel("one attention layer fwd+bwd (ms)")
    t_ax.grid(True, which="both", alpha=0.3)
    t_ax.legend(fontsize=7)
    m_ax.axhline(141, color="tab:red", lw=0.8, ls=":", label="H200 memory")
    m_ax.set_xscale("log", base=2)
    m_ax.set_xlabel("sequence length (tokens)")
    m_ax.set_ylabel("peak GiB per GPU")
    m_ax.grid(True, which="both", alpha=0.3)
    m_ax.legend(fontsize=7)
    fig.suptitle("Sequence-parallel GSA attention layer on H200s (32/8 heads, d 128, bf16, 2 levels)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(PLOTS, "sp_layer.png"), dpi=120)


if __name__ == "__main__":
    os.makedirs(PLOTS, exist_ok=True)
    comm_plot()
    sp_plot()
    print("wrote", os.path.join(PLOTS, "comm_bytes.png"), "and", os.path.join(PLOTS, "sp_layer.png"))
