#!/usr/bin/env python3
"""Draws a training run's loss curve from its metrics.jsonl (gsa train --output-dir D writes D/metrics.jsonl,
one JSON object per step). Usage: python3 scripts/plot_loss.py D/metrics.jsonl OUT.png [--title T]
[--chance C]: the per-step answer loss (thin) and its moving average over 25 steps (thick), with the loss of
guessing uniformly (C nats, e.g. ln 16 for 16 values) as a dashed line. Needs matplotlib."""
import argparse
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(path):
    steps, losses = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            row = json.loads(line)
            if row.get("loss") is None:
                raise SystemExit(f"{path}:{number}: step {row.get('step')} has no finite loss")
            steps.append(row["step"] + 1)  # steps done
            losses.append(row["loss"])
    if not steps:
        raise SystemExit(f"{path}: no steps")
    return steps, losses


def moving_average(values, window):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics")
    parser.add_argument("out")
    parser.add_argument("--title", default="gsa train: answer loss")
    parser.add_argument("--chance", type=float, default=math.log(16))
    args = parser.parse_args()
    steps, losses = read_metrics(args.metrics)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="loss per step")
    ax.plot(steps, moving_average(losses, 25), color="tab:blue", linewidth=2, label="moving average (25 steps)")
    ax.axhline(args.chance, color="gray", linestyle="--", linewidth=1, label=f"chance ({args.chance:.2f} nats)")
    ax.set_xlabel("step")
    ax.set_ylabel("answer cross-entropy (nats)")
    ax.set_ylim(0, max(args.chance * 1.3, min(max(losses), 6)))
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({len(steps)} steps, last loss {losses[-1]:.4f})")


if __name__ == "__main__":
    main()
