# Per-token decode latency against context length from `gsa bench serve` and its dense peer
# (scripts/peer_serve_dense.py) CSVs: one line per budget / peer mode, log-scaled context axis.
# Usage: python3 scripts/plot_serve.py GSA.csv DENSE.csv OUT.png
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def latency_rows(path):
    series = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["table"] != "latency":
                continue
            series.setdefault(row["budget"], []).append((int(row["tokens"]), float(row["step_ms"])))
    return series


def main():
    gsa, dense, out = sys.argv[1:4]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, path, style in (("GSA", gsa, "o-"), ("dense", dense, "s--")):
        for budget, points in sorted(latency_rows(path).items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], style,
                    label=budget if label == "dense" else f"GSA {budget}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context tokens")
    ax.set_ylabel("per-token decode latency, ms (median)")
    ax.set_title("Llama-3.2-1B shapes, one request, NVIDIA H200")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main()
