#!/usr/bin/env python3
"""Draws a training run's loss curve from its metrics.jsonl (gsa train --output-dir D writes D/metrics.jsonl,
one JSON object per step). Usage: python3 scripts/plot_loss.py D/metrics.jsonl [D2/metrics.jsonl ...] OUT.png
[--title T] [--chance C] [--chance-label L] [--phases NAME,NAME...]: the per-step answer loss (thin) and its
moving average over 25 steps (thick), with the loss of guessing uniformly (C nats, e.g. ln 16 for 16 values) as
a dashed line. Several files are consecutive phases of one run (e.g. a run and the one started from it with
--init-from): their steps follow each other, a dotted line marks where each phase begins. Needs matplotlib."""
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
    parser.add_argument("metrics", nargs="+", help="metrics.jsonl files (consecutive phases), then OUT.png")
    parser.add_argument("--title", default="gsa train: answer loss")
    parser.add_argument("--chance", type=float, default=math.log(16))
    parser.add_argument("--chance-label", default="chance", help="the legend's name for the --chance line")
    parser.add_argument("--phases", default="", help="comma-separated names of the phases, one per file")
    args = parser.parse_args()
    if len(args.metrics) < 2:
        parser.error("need at least one metrics.jsonl and the output file")
    *files, out = args.metrics
    names = args.phases.split(",") if args.phases else []
    if names and len(names) != len(files):
        parser.error(f"--phases names {len(names)} phases for {len(files)} metrics files")
    steps, losses, starts = [], [], []
    for path in files:
        phase_steps, phase_losses = read_metrics(path)
        offset = steps[-1] if steps else 0
        starts.append(offset)
        steps += [offset + s for s in phase_steps]
        losses += phase_losses
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, start in enumerate(starts):
        if i > 0:
            ax.axvline(start, color="black", linestyle=":", linewidth=1)
        if names:
            ax.text(start, 0.02, f" {names[i]}", transform=ax.get_xaxis_transform(), fontsize=8, va="bottom")
    ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="loss per step")
    ax.plot(steps, moving_average(losses, 25), color="tab:blue", linewidth=2, label="moving average (25 steps)")
    ax.axhline(args.chance, color="gray", linestyle="--", linewidth=1,
               label=f"{args.chance_label} ({args.chance:.2f} nats)")
    ax.set_xlabel("step")
    ax.set_ylabel("answer cross-entropy (nats)")
    ax.set_ylim(0, max(args.chance * 1.3, min(max(losses), 6)))
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out} ({len(steps)} steps in {len(files)} phase(s), last loss {losses[-1]:.4f})")


if __name__ == "__main__":
    main()
