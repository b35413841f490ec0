#!/usr/bin/env python3
"""Cost model of a sequence-parallel GSA step, calibrated on a scaling run (gsa experiment scale) and a
communication benchmark (gsa bench comm), validated against every measured point, then used to predict 2-64
nodes and 4M-16M-token contexts next to a ring of the full KV (Ring Attention / context parallelism).

usage: python3 scripts/cost_model.py --run DIR [--comm-csv FILE ...] [link and prediction flags]

Model (one step, P ranks of one sp group, L layers; every term in ms):
  step       = max_r compute_r + comm               (the slowest rank sets the pace: imbalance is in the max)
  compute_r  measured: the rank's busy_ms (step - the collectives it waited in) at that very point
             fitted:   (a + b * work_r) * max(1, P / cores)   training step (work: the CSV's estimated work of
                       the shard, multiply-adds per layer: sequence_shard.h position_work; a, b from the 1-rank
                       points; cores: --cores, the CPUs the ranks share, unset = one device each)
                       (a + b * local_tokens_r) * ...          one decode token (the keys a rank holds)
  comm train = L * (2 * all_gather(tree) + 2 * p2p(halo)) + all_reduce(grad)
               (the gist tree: all-gather forward, reduce-scatter backward, same cost; the halo forward and its
               reverse; the gradient all-reduce counted whole, as if nothing of it hid under backward)
  comm decode= L * all_gather(P * merge)
  a collective of hops h moving s bytes from one rank:  t = alpha * h + s / beta, with
    all_gather / reduce_scatter of B bytes in all: h = P - 1, s = (P - 1) / P * B
    all_reduce of B bytes: h = 2 (P - 1), s = 2 (P - 1) / P * B;   p2p of B bytes: h = 1, s = B;   P = 1: 0
  alpha, beta: fitted by least squares on gsa bench comm rows (--comm-csv: its tree, halo and decode rows with
  the hops above), or given (--alpha-us, --beta-gbs).
Validation (DIR/model_validation.csv, every measured point): predicted_ms = measured compute + modelled comm
(checks the communication model and the max over ranks) and fit_predicted_ms = fitted compute + modelled comm
(what the predictions use), each with its error against the measured step (the slowest rank's step_ms); for
training points also the gradient all-reduce's modelled time next to its measured exposed part.
Unit routing (16 suffix queries' all-to-alls) is not modelled; the validation shows what that leaves out.

Predictions (--predict): configs/llama-1b-gsa.pbtxt's shapes by default (Llama-3.2-1B, c0 8, fanout 4, 1 level;
flags below), a gisted row of N tokens, P = nodes x
gpus_per_node ranks; ranks within a node talk over the intra-node link (NVLink), a group spanning nodes over the
inter-node link (per GPU); work of the last (heaviest) shard of the position-even cut and of the work cut
(closed form of position_work for a uniform row). Compute: --tflops effective TFLOP/s (2 x 3 flops per
multiply-add for forward + backward) or, without it, the run's fitted b per layer. Ring of the full KV: the same
compute on dense causal attention (every query sees the keys before it, zigzag-balanced), the KV shard passed
P - 1 times forward and twice that backward, overlapped with the attention (exposed: the part longer than it).
Outputs: DIR/model_validation.csv, DIR/model_predictions.csv (plots: scripts/plot_results.py --run DIR).
"""
import argparse
import csv
import math
import os
import sys

# --- collectives ---------------------------------------------------------------------------------------------


def all_gather_ms(p, total_bytes, alpha, beta):
    if p <= 1:
        return 0.0
    return alpha * (p - 1) + (p - 1) / p * total_bytes / beta


def all_reduce_ms(p, size_bytes, alpha, beta):
    if p <= 1:
        return 0.0
    return alpha * 2 * (p - 1) + 2 * (p - 1) / p * size_bytes / beta


def p2p_ms(p, size_bytes, alpha, beta):
    if p <= 1 or size_bytes <= 0:
        return 0.0
    return alpha + size_bytes / beta


def train_comm_ms(p, layers, tree_bytes, halo_bytes, grad_bytes, alpha, beta):
    """One training step's communication (ms): gist tree both ways, halo both ways per layer, gradients."""
    per_layer = 2 * all_gather_ms(p, tree_bytes, alpha, beta) + 2 * p2p_ms(p, halo_bytes, alpha, beta)
    return layers * per_layer + all_reduce_ms(p, grad_bytes, alpha, beta)


def decode_comm_ms(p, layers, merge_bytes, alpha, beta):
    return layers * all_gather_ms(p, p * merge_bytes, alpha, beta)


# --- fits ------------------------------------------------------------------------------------------------------


def least_squares_2(xs, ys, zs=None):
    """Fits y = u * x (+ v * z when zs is given) with u, v >= 0 (ordinary least squares, clamped)."""
    if zs is None:
        sxx = sum(x * x for x in xs)
        return (sum(x * y for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0), 0.0
    sxx = sum(x * x for x in xs)
    szz = sum(z * z for z in zs)
    sxz = sum(x * z for x, z in zip(xs, zs))
    sxy = sum(x * y for x, y in zip(xs, ys))
    szy = sum(z * y for z, y in zip(zs, ys))
    det = sxx * szz - sxz * sxz
    if abs(det) < 1e-30:
        return least_squares_2(xs, ys)
    u = (sxy * szz - szy * sxz) / det
    v = (sxx * szy - sxz * sxy) / det
    if u < 0:
        return 0.0, (szy / szz if szz > 0 else 0.0)
    if v < 0:
        return least_squares_2(xs, ys)
    return u, v


def fit_line(xs, ys):
    """y = a + b x, least squares with a, b >= 0: a flat line when the data say b < 0, a line through the origin
    when they say a < 0 (noisy points must not predict negative times)."""
    n = len(xs)
    if n == 0:
        raise ValueError("no points to fit")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    if b < 0:
        return my, 0.0
    if my - b * mx < 0:
        return 0.0, sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)
    return my - b * mx, b


# gsa bench comm collective -> (hops, bytes moved per byte of its bytes_per_rank column) as functions of P: an
# all-gather's column is one rank's share, which a ring passes on P - 1 times; the halo's is what it sends.
COMM_SHAPES = {
    "gist tree all-gather": (lambda p: p - 1, lambda p: p - 1),
    "halo send/recv": (lambda p: 1, lambda p: 1),
    "decode merge all-gather": (lambda p: p - 1, lambda p: p - 1),
}


def fit_link(comm_rows):
    """alpha (ms per hop), beta (bytes per ms) from gsa bench comm rows: ms = alpha * hops + moved bytes / beta."""
    hops, sizes, ms = [], [], []
    for r in comm_rows:
        if r["collective"] not in COMM_SHAPES:
            continue
        p = int(r["ranks"])
        if p < 2:
            continue
        hop, factor = COMM_SHAPES[r["collective"]]
        hops.append(hop(p))
        sizes.append(float(r["bytes_per_rank"]) * factor(p))
        ms.append(float(r["ms"]))
    if not ms:
        raise ValueError("the comm CSV has no gist tree, halo or decode merge rows with 2 or more ranks")
    alpha, inv_beta = least_squares_2(hops, ms, sizes)
    return alpha, (1.0 / inv_beta if inv_beta > 0 else math.inf)


# --- the run's points ------------------------------------------------------------------------------------------


def read_points(path):
    """results.csv -> {point: [rank rows (dicts)]} in file order."""
    points = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            points.setdefault(row["point"], []).append(row)
    if not points:
        raise ValueError(f"{path}: no rows")
    return points


def compute_x(row):
    return float(row["work"]) if row["mode"] == "train" else float(row["local_tokens"])


def fit_compute(points):
    """{mode: (a, b)}: busy_ms = a + b * x over the rank rows of the 1-rank points of that mode (compute with no
    peer: no contention between ranks and no wait hidden in it)."""
    fits = {}
    for mode in ("train", "serve"):
        rows = [r for rows in points.values() for r in rows if r["mode"] == mode and int(r["ranks"]) == 1]
        if rows:
            fits[mode] = fit_line([compute_x(r) for r in rows], [float(r["busy_ms"]) for r in rows])
    return fits


def oversubscription(p, cores):
    """How much slower each rank computes when p single-threaded ranks share `cores` cores (None: no limit)."""
    return 1.0 if cores is None else max(1.0, p / cores)


def comm_of_point(rows, alpha, beta):
    r0 = rows[0]
    p, layers = int(r0["ranks"]), int(r0["layers"])
    if r0["mode"] == "train":
        tree = float(r0["tree_rows"]) * float(r0["kv_row_bytes"])
        halo = max(float(r["halo_rows"]) for r in rows) * float(r0["kv_row_bytes"]) * int(r0["batch"])
        return train_comm_ms(p, layers, tree, halo, float(r0["grad_bytes"]), alpha, beta)
    return decode_comm_ms(p, layers, float(r0["merge_bytes"]), alpha, beta)


def predict_point(rows, fits, alpha, beta, cores=None):
    """(measured compute, fitted compute, comm) of one measured point, ms: the slowest rank's measured busy time;
    the slowest rank's compute from the 1-rank fit, slowed by oversubscription; the modelled communication."""
    r0 = rows[0]
    measured = max(float(r["busy_ms"]) for r in rows)
    fitted = None
    if r0["mode"] in fits:
        a, b = fits[r0["mode"]]
        fitted = max(a + b * compute_x(r) for r in rows) * oversubscription(int(r0["ranks"]), cores)
    return measured, fitted, comm_of_point(rows, alpha, beta)


def validate(points, fits, alpha, beta, cores=None):
    out = []
    for point, rows in points.items():
        r0 = rows[0]
        measured = max(float(r["step_ms"]) for r in rows)
        compute, fitted, comm = predict_point(rows, fits, alpha, beta, cores)
        row = {"point": point, "kind": r0["kind"], "mode": r0["mode"], "ranks": r0["ranks"], "tokens": r0["tokens"],
               "placement": r0["placement"], "measured_ms": measured, "predicted_ms": compute + comm,
               "error_pct": 100.0 * (compute + comm - measured) / measured, "compute_ms": compute, "comm_ms": comm,
               "fit_predicted_ms": "", "fit_error_pct": "", "grad_model_ms": "", "grad_exposed_ms": ""}
        if r0["mode"] == "train":
            # The gradient all-reduce: the model's whole time next to what the ranks waited for after backward
            # (the difference is the part hidden under backward).
            row["grad_model_ms"] = all_reduce_ms(int(r0["ranks"]), float(r0["grad_bytes"]), alpha, beta)
            row["grad_exposed_ms"] = max(float(r["grad_allreduce_ms"]) for r in rows)
        if fitted is not None:
            row["fit_predicted_ms"] = fitted + comm
            row["fit_error_pct"] = 100.0 * (fitted + comm - measured) / measured
        out.append(row)
    return out


# --- predictions past the machines we have ---------------------------------------------------------------------


class Shape:
    def __init__(self, a):
        self.layers, self.hidden, self.inter = a.layers, a.hidden, a.intermediate
        self.heads, self.kv_heads, self.head_dim = a.heads, a.kv_heads, a.head_dim
        self.chunk, self.fanout, self.levels, self.sink, self.prev = a.chunk, a.fanout, a.levels, a.sink, a.prev_chunks
        self.elem = a.bytes_per_element
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        self.per_token = self.hidden * (2 * q + 2 * kv) + 3 * self.hidden * self.inter  # work_model_of
        self.per_key = 2 * q
        self.kv_row = 2 * kv * self.elem
        self.params = self.layers * (self.hidden * (2 * q + 2 * kv) + 3 * self.hidden * self.inter)

    def top_span(self):
        return self.chunk * self.fanout ** (self.levels - 1)  # raw tokens per top-level gist

    def positions(self, n):
        return n * (1 + sum(1.0 / (self.chunk * self.fanout ** l) for l in range(self.levels)))

    def gsa_work(self, t):
        """Cumulative work of raw positions [0, t) of a uniform gisted row (closed form of position_work)."""
        k0 = self.sink + (self.prev + 0.5) * self.chunk + (self.levels - 1) * (self.fanout - 1) / 2.0
        g = self.positions(1)
        return g * (t * (self.per_token + self.per_key * k0) + self.per_key * t * t / (2.0 * self.top_span()))

    def dense_work(self, t):
        """The same for dense causal attention (every key before the query)."""
        return t * self.per_token + self.per_key * t * t / 2.0


def link_for(p, gpus_per_node, a):
    """(alpha ms, beta bytes/ms) of the slowest link a group of p ranks uses."""
    if p <= gpus_per_node:
        return a.intra_us * 1e-3, a.intra_gbs * 1e6
    return a.inter_us * 1e-3, a.inter_gbs * 1e6


def predict(shape, n, p, alpha, beta, ms_per_work, placement):
    """(gsa_ms, gsa_comm_ms, ring_ms, ring_comm_ms) of one training step at n raw tokens on p ranks."""
    total = shape.gsa_work(n)
    if placement == "work" or p == 1:
        heaviest = total / p
    else:
        heaviest = total - shape.gsa_work(n * (p - 1) / p)  # the last shard of the even cut
    compute = ms_per_work * heaviest * shape.layers
    tree = (shape.positions(n) - n + shape.sink) * shape.kv_row  # the gists (+ sink) of the row
    halo = (shape.prev + 1) * shape.chunk * shape.kv_row
    comm = train_comm_ms(p, shape.layers, tree, halo, shape.params * shape.elem, alpha, beta)
    # Ring of the full KV: dense causal attention, zigzag-balanced; the KV shard passed P - 1 times forward and
    # (K, V and their gradients) twice that backward, overlapped with the attention part of the compute.
    dense = shape.dense_work(n) / p
    ring_compute = ms_per_work * dense * shape.layers
    attention_ms = ms_per_work * (dense - n / p * shape.per_token) * shape.layers
    ring_comm = 3 * shape.layers * (p - 1) * p2p_ms(p, n / p * shape.kv_row, alpha, beta)
    grad = all_reduce_ms(p, shape.params * shape.elem, alpha, beta)
    ring_exposed = max(0.0, ring_comm - attention_ms) + grad
    return compute + comm, comm, ring_compute + ring_exposed, ring_exposed


# --- main -------------------------------------------------------------------------------------------------------


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def parse_ints(text):
    return [int(x) for x in text.split(",") if x]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="the run directory of gsa experiment scale (results.csv)")
    ap.add_argument("--comm-csv", action="append", default=[], help="gsa bench comm --csv output(s) to fit the link")
    ap.add_argument("--alpha-us", type=float, help="link latency per hop (instead of --comm-csv)")
    ap.add_argument("--beta-gbs", type=float, help="link bandwidth GB/s (instead of --comm-csv)")
    ap.add_argument("--cores", type=float, help="cores the run's ranks shared (a CPU run: each rank computes "
                    "max(1, P / cores) times slower in the fitted compute); unset: one device per rank")
    ap.add_argument("--predict", action="store_true", help="also predict 2-64 nodes and 4M-16M tokens")
    ap.add_argument("--nodes", default="1,2,4,8,16,32,64")
    ap.add_argument("--tokens", default="4194304,8388608,16777216")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--intra-gbs", type=float, default=150.0, help="NVLink per GPU per direction (H200 NVLink 4: "
                    "~450 GB/s peak; NCCL all-gather bus bandwidth ~150-350 GB/s)")
    ap.add_argument("--intra-us", type=float, default=10.0)
    ap.add_argument("--inter-gbs", type=float, default=50.0, help="inter-node per GPU (400 Gb/s NIC per GPU)")
    ap.add_argument("--inter-us", type=float, default=20.0)
    ap.add_argument("--tflops", type=float, help="effective TFLOP/s per GPU for the predictions (else the run's b)")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--intermediate", type=int, default=8192)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--fanout", type=int, default=4)
    ap.add_argument("--levels", type=int, default=1)
    ap.add_argument("--sink", type=int, default=3)
    ap.add_argument("--prev-chunks", type=int, default=1)
    ap.add_argument("--bytes-per-element", type=int, default=2)
    a = ap.parse_args(argv)

    results = os.path.join(a.run, "results.csv")
    if not os.path.isfile(results):
        ap.error(f"--run {a.run}: no results.csv (run gsa experiment scale first)")
    points = read_points(results)
    if a.comm_csv:
        rows = []
        for path in a.comm_csv:
            with open(path) as f:
                rows += list(csv.DictReader(f))
        alpha, beta = fit_link(rows)
    elif a.alpha_us is not None and a.beta_gbs is not None:
        alpha, beta = a.alpha_us * 1e-3, a.beta_gbs * 1e6
    else:
        ap.error("give --comm-csv (gsa bench comm --csv) or both --alpha-us and --beta-gbs")
    fits = fit_compute(points)
    checked = validate(points, fits, alpha, beta, a.cores)
    write_csv(os.path.join(a.run, "model_validation.csv"), checked)
    print(f"link: alpha {alpha * 1e3:.2f} us/hop, beta {beta / 1e6:.3f} GB/s")
    for mode, (fa, fb) in fits.items():
        unit = "work unit" if mode == "train" else "held position"
        print(f"compute ({mode}): {fa:.3f} ms + {fb:.3e} ms per {unit}")
    print(f"{'point':28s} {'measured ms':>12s} {'predicted':>10s} {'error':>8s} {'from fit':>10s} {'error':>8s}")
    for c in checked:
        fit = (f"{c['fit_predicted_ms']:10.2f} {c['fit_error_pct']:7.1f}%" if c["fit_predicted_ms"] != ""
               else f"{'-':>10s} {'-':>8s}")
        print(f"{c['point']:28s} {c['measured_ms']:12.2f} {c['predicted_ms']:10.2f} {c['error_pct']:7.1f}% {fit}")
    for key, name in (("error_pct", "measured compute + modelled comm"), ("fit_error_pct", "fitted compute + comm")):
        errors = [abs(c[key]) for c in checked if c[key] != ""]
        if errors:
            print(f"{name}: mean |error| {sum(errors) / len(errors):.1f}%, max {max(errors):.1f}% over "
                  f"{len(errors)} points")

    if a.predict:
        shape = Shape(a)
        if a.tflops:
            ms_per_work = 6.0 / (a.tflops * 1e12) * 1e3  # 2 flops per multiply-add, forward + backward = 3x
        else:
            if "train" not in fits:
                ap.error("--predict without --tflops needs training points in the run (their b)")
            layers_run = int(next(r for rows in points.values() for r in rows if r["mode"] == "train")["layers"])
            ms_per_work = fits["train"][1] / layers_run
        out = []
        for n in parse_ints(a.tokens):
            for nodes in parse_ints(a.nodes):
                p = nodes * a.gpus_per_node
                alpha_p, beta_p = link_for(p, a.gpus_per_node, a)
                for placement in ("sections", "work"):
                    gsa, gsa_comm, ring, ring_comm = predict(shape, n, p, alpha_p, beta_p, ms_per_work, placement)
                    out.append({"tokens": n, "nodes": nodes, "gpus": p, "placement": placement, "gsa_ms": gsa,
                                "gsa_comm_ms": gsa_comm, "ring_ms": ring, "ring_comm_ms": ring_comm})
        write_csv(os.path.join(a.run, "model_predictions.csv"), out)
        print(f"predictions: {os.path.join(a.run, 'model_predictions.csv')} ({len(out)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
