#!/usr/bin/env python3
"""Draws the README/PERFORMANCE plots from the raw benchmark outputs in docs/results (a development helper:
needs matplotlib; the product does not use Python). Usage: python3 scripts/plot_results.py

With --run DIR (a run directory of gsa experiment scale) it draws that run's plots into DIR instead:
  scaling.png     speedup and parallel efficiency vs ranks (strong: T1 / TP and T1 / (P TP); weak: T1 / TP)
  breakdown.png   per point and rank, the step time stacked: attention, other compute, gist tree, halo, routing,
                  gradient all-reduce (exposed), decode merge, with the idle time from imbalance marked
  latency.png     serving: time to first token and per-token decode latency vs context, per rank count
  model.png       (after scripts/cost_model.py) measured vs predicted, and the predicted step at 1-64 nodes and
                  4M-16M tokens next to a ring of the full KV"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "docs", "results")
PLOTS = os.path.join(ROOT, "docs", "plots")


def save(fig, folder, name):
    """Lays the figure out and writes it to folder/name at 120 dpi; returns the path."""
    fig.tight_layout()
    out = os.path.join(folder, name)
    fig.savefig(out, dpi=120)
    return out


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
    save(fig, PLOTS, "comm_bytes.png")


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
    save(fig, PLOTS, "sp_layer.png")


PHASES = (("attention_ms", "attention", "tab:blue"), ("other_ms", "other compute", "tab:cyan"),
          ("gist_tree_ms", "gist tree", "tab:orange"), ("halo_ms", "halo", "tab:olive"),
          ("routing_ms", "routing", "tab:purple"), ("grad_allreduce_ms", "grad all-reduce (exposed)", "tab:red"),
          ("decode_merge_ms", "decode merge", "tab:brown"))


def read_run(run):
    with open(os.path.join(run, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    points = {}
    for r in rows:
        points.setdefault(r["point"], []).append(r)
    return points


def point_ms(rows, column="step_ms"):
    return max(float(r[column]) for r in rows if r[column] != "")


def scaling_plot(run, points):
    """Speedup and efficiency per (series, tokens, placement) line, against the line's 1-rank point."""
    lines = {}
    for rows in points.values():
        r = rows[0]
        if r["kind"] == "serve":
            continue
        key = (r["series"], r["kind"], int(r["tokens"]) // (int(r["ranks"]) if r["kind"] == "weak" else 1),
               r["placement"])
        lines.setdefault(key, []).append((int(r["ranks"]), point_ms(rows)))
    if not lines:
        return None
    # One rank has one shard whatever the placement: every line of a (series, tokens) starts from its 1-rank point.
    baseline = {key[:3]: t for key, pts in lines.items() for p, t in pts if p == 1}
    fig, (s_ax, e_ax) = plt.subplots(1, 2, figsize=(10, 4))
    top = 1
    for (series, kind, tokens, placement), pts in sorted(lines.items()):
        if (series, kind, tokens) not in baseline:
            continue  # no 1-rank baseline
        t1 = baseline[(series, kind, tokens)]
        pts = sorted(set(pts) | {(1, t1)})
        ranks = [p for p, _ in pts]
        top = max(top, max(ranks))
        label = f"{series} ({kind}), {tokens} tok{'/rank' if kind == 'weak' else ''}, {placement}"
        speed = [t1 / t if kind == "strong" else t1 / t * p for p, t in pts]
        eff = [t1 / (p * t) if kind == "strong" else t1 / t for p, t in pts]
        s_ax.plot(ranks, speed, marker="o", label=label)
        e_ax.plot(ranks, eff, marker="o", label=label)
    s_ax.plot([1, top], [1, top], "k:", lw=0.8, label="ideal")
    e_ax.axhline(1.0, color="k", ls=":", lw=0.8)
    s_ax.set_xlabel("ranks")
    s_ax.set_ylabel("speedup (weak: scaled, T1 x P / TP)")
    e_ax.set_xlabel("ranks")
    e_ax.set_ylabel("parallel efficiency")
    for ax in (s_ax, e_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("Training step scaling (" + os.path.basename(os.path.normpath(run)) + ")", fontsize=10)
    return save(fig, run, "scaling.png")


def breakdown_plot(run, points):
    """Stacked per-rank bars on a linear scale, one panel per mode (training steps; serving decode tokens)."""
    panels = {}
    for point, rows in points.items():
        for r in rows:
            panels.setdefault(r["mode"], []).append(
                (f"{point} r{r['rank']}", [float(r[c]) for c, _, _ in PHASES], float(r["idle_ms"])))
    if not panels:
        return None
    modes = [m for m in ("train", "serve") if m in panels]
    width = max(6, 0.22 * max(len(v) for v in panels.values()) + 2)
    fig, axes = plt.subplots(len(modes), 1, figsize=(width, 4.2 * len(modes)), squeeze=False)
    for ax, mode in zip(axes[:, 0], modes):
        bars = panels[mode]
        bottom = [0.0] * len(bars)
        for i, (_, name, color) in enumerate(PHASES):
            values = [b[1][i] for b in bars]
            if any(values):
                ax.bar(range(len(bars)), values, bottom=bottom, color=color, label=name)
            bottom = [x + v for x, v in zip(bottom, values)]
        ax.scatter(range(len(bars)), [b[2] for b in bars], marker="_", color="k", s=80,
                   label="idle from imbalance (inside the comm)")
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([b[0] for b in bars], rotation=90, fontsize=5)
        ax.set_ylabel("ms per training step" if mode == "train" else "ms per decode token")
        ax.legend(fontsize=6)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 0].set_title("Per-rank time breakdown", fontsize=10)
    return save(fig, run, "breakdown.png")


def latency_plot(run, points):
    series = {}
    for rows in points.values():
        r = rows[0]
        if r["kind"] != "serve":
            continue
        series.setdefault((int(r["ranks"]), r["placement"]), []).append(
            (int(r["tokens"]), point_ms(rows, "ttft_ms"), point_ms(rows)))
    if not series:
        return None
    fig, (f_ax, d_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for (ranks, placement), pts in sorted(series.items()):
        pts = sorted(pts)
        n = [p[0] for p in pts]
        f_ax.plot(n, [p[1] for p in pts], marker="o", label=f"{ranks} rank(s), {placement}")
        d_ax.plot(n, [p[2] for p in pts], marker="o", label=f"{ranks} rank(s), {placement}")
    f_ax.set_ylabel("time to first token (ms)")
    f_ax.set_yscale("log")
    d_ax.set_ylabel("per-token decode latency (ms)")
    for ax in (f_ax, d_ax):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context (raw tokens)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Serving over sp ranks", fontsize=10)
    return save(fig, run, "latency.png")


def model_plot(run):
    validation = os.path.join(run, "model_validation.csv")
    predictions = os.path.join(run, "model_predictions.csv")
    if not os.path.isfile(validation):
        return None
    fig, (v_ax, p_ax) = plt.subplots(1, 2, figsize=(10, 4))
    rows = list(csv.DictReader(open(validation)))
    for mode, marker in (("train", "o"), ("serve", "s")):
        pts = [(float(r["measured_ms"]), float(r["predicted_ms"])) for r in rows if r["mode"] == mode]
        if pts:
            v_ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=f"{mode}, measured compute")
    for mode, marker in (("train", "o"), ("serve", "s")):
        pts = [(float(r["measured_ms"]), float(r["fit_predicted_ms"])) for r in rows
               if r["mode"] == mode and r["fit_predicted_ms"] != ""]
        if pts:
            v_ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, facecolors="none",
                         edgecolors="tab:blue" if mode == "train" else "tab:orange",
                         label=f"{mode}, fitted compute")
    hi = max(max(float(r["measured_ms"]), float(r["predicted_ms"])) for r in rows)
    lo = min(min(float(r["measured_ms"]), float(r["predicted_ms"])) for r in rows)
    v_ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
    v_ax.set_xscale("log")
    v_ax.set_yscale("log")
    v_ax.set_xlabel("measured ms")
    v_ax.set_ylabel("predicted ms")
    v_ax.set_title("cost model on the measured points", fontsize=9)
    v_ax.legend(fontsize=7)
    v_ax.grid(True, which="both", alpha=0.3)
    if os.path.isfile(predictions):
        pred = list(csv.DictReader(open(predictions)))
        for tokens in sorted({int(r["tokens"]) for r in pred}):
            pts = sorted((int(r["nodes"]), float(r["gsa_ms"]), float(r["ring_ms"])) for r in pred
                         if int(r["tokens"]) == tokens and r["placement"] == "work")
            line = p_ax.plot([p[0] for p in pts], [p[1] / 1e3 for p in pts], marker="o",
                             label=f"GSA, {tokens // 2**20}M tokens")
            p_ax.plot([p[0] for p in pts], [p[2] / 1e3 for p in pts], "x--", color=line[0].get_color(),
                      label=f"ring of full KV, {tokens // 2**20}M")
        p_ax.set_xscale("log", base=2)
        p_ax.set_yscale("log")
        p_ax.set_xlabel("nodes (8 GPUs each)")
        p_ax.set_ylabel("predicted training step (s)")
        p_ax.set_title("predicted (cost model; see model_predictions.csv)", fontsize=9)
        p_ax.legend(fontsize=6)
        p_ax.grid(True, which="both", alpha=0.3)
    return save(fig, run, "model.png")


def plot_run(run):
    if not os.path.isfile(os.path.join(run, "results.csv")):
        sys.exit(f"plot_results.py: --run {run}: no results.csv (run gsa experiment scale first)")
    points = read_run(run)
    made = [p for p in (scaling_plot(run, points), breakdown_plot(run, points), latency_plot(run, points),
                        model_plot(run)) if p]
    print("wrote", ", ".join(made))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a gsa experiment scale run directory: draw its plots into it")
    args = parser.parse_args()
    if args.run:
        plot_run(args.run)
        sys.exit(0)
    os.makedirs(PLOTS, exist_ok=True)
    comm_plot()
    sp_plot()
    print("wrote", os.path.join(PLOTS, "comm_bytes.png"), "and", os.path.join(PLOTS, "sp_layer.png"))
