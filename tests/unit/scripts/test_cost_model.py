#!/usr/bin/env python3
"""scripts/cost_model.py against hand-computed cases: the collectives' alpha-beta times, a training step's
communication and a measured point's prediction (compute from the fitted line, the heaviest rank), the fits
recovering known parameters, the ring baseline's exposed communication, and the CLI end to end on a tiny
results.csv. Oracle: the arithmetic written out in each test; tolerance 1e-9 relative (float rounding)."""
import csv
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "..", "..", "scripts")
sys.path.insert(0, SCRIPTS)
import cost_model as cm  # noqa: E402

ALPHA, BETA = 0.01, 100.0  # ms per hop, bytes per ms


def rank_row(rank, work, halo_rows, step_ms, busy_ms, mode="train", ranks=2, local_tokens=500):
    return {"point": f"p{ranks}", "series": "s", "kind": "strong", "mode": mode, "ranks": str(ranks),
            "backend": "mpi", "placement": "sections", "tokens": "1000", "batch": "1", "rank": str(rank),
            "local_tokens": str(local_tokens), "owned_gists": "0", "tree_rows": "10", "halo_rows": str(halo_rows),
            "work": str(work), "step_ms": str(step_ms), "ttft_ms": "", "attention_ms": "0", "gist_tree_ms": "0",
            "halo_ms": "0", "routing_ms": "0", "grad_allreduce_ms": "0", "decode_merge_ms": "0", "comm_ms": "0",
            "busy_ms": str(busy_ms), "other_ms": "0", "idle_ms": "0", "imbalance": "1", "peak_mib": "1",
            "grad_bytes": "4000", "kv_row_bytes": "100", "merge_bytes": "50", "layers": "2", "repeats": "1"}


class Collectives(unittest.TestCase):
    def test_alpha_beta_by_hand(self):
        # all-gather of 1000 bytes over 2: 1 hop + half the bytes: 0.01 + 500 / 100
        self.assertAlmostEqual(cm.all_gather_ms(2, 1000, ALPHA, BETA), 5.01, places=12)
        # over 4: 3 hops + 3/4 of the bytes: 0.03 + 7.5
        self.assertAlmostEqual(cm.all_gather_ms(4, 1000, ALPHA, BETA), 7.53, places=12)
        # all-reduce of 4000 over 2: 2 hops + 2 * 1/2 * 4000 / 100
        self.assertAlmostEqual(cm.all_reduce_ms(2, 4000, ALPHA, BETA), 40.02, places=12)
        self.assertAlmostEqual(cm.p2p_ms(2, 100, ALPHA, BETA), 1.01, places=12)
        for f in (cm.all_gather_ms, cm.all_reduce_ms, cm.p2p_ms):
            self.assertEqual(f(1, 1000, ALPHA, BETA), 0.0)  # one rank: nothing to move

    def test_training_step_communication(self):
        # 2 layers x (2 x 5.01 gist tree + 2 x 1.01 halo) + 40.02 gradients = 24.08 + 40.02
        self.assertAlmostEqual(cm.train_comm_ms(2, 2, 1000, 100, 4000, ALPHA, BETA), 64.10, places=9)
        # decode: 2 layers x all-gather of 2 x 50 bytes = 2 x (0.01 + 0.5)
        self.assertAlmostEqual(cm.decode_comm_ms(2, 2, 50, ALPHA, BETA), 1.02, places=12)


class Fits(unittest.TestCase):
    def test_line_and_link_recover_known_parameters(self):
        a, b = cm.fit_line([1000, 3000, 5000], [2.0, 4.0, 6.0])
        self.assertAlmostEqual(a, 1.0, places=9)
        self.assertAlmostEqual(b, 0.001, places=12)
        # a negative intercept: through the origin instead, b = sum xy / sum xx = (1 x 1 + 3 x 5) / (1 + 9) = 1.6
        self.assertEqual(cm.fit_line([1, 3], [1, 5]), (0.0, 1.6))
        self.assertEqual(cm.fit_line([1, 3], [5, 1]), (3.0, 0.0))  # falling: flat at the mean
        rows = []
        for p in (2, 4):
            # an all-gather's row holds one rank's share, passed on p - 1 times; the halo's what it sends
            for name, hops, moved in (("gist tree all-gather", p - 1, p - 1), ("halo send/recv", 1, 1)):
                for size in (1e3, 1e5, 1e6):
                    rows.append({"ranks": p, "collective": name, "bytes_per_rank": size,
                                 "ms": 0.02 * hops + moved * size / 5e5})
        rows.append({"ranks": 2, "collective": "ring of full KV (baseline)", "bytes_per_rank": 1, "ms": 99})  # ignored
        alpha, beta = cm.fit_link(rows)
        self.assertAlmostEqual(alpha, 0.02, places=9)
        self.assertAlmostEqual(beta, 5e5, delta=5e5 * 1e-9)


class Points(unittest.TestCase):
    def test_prediction_of_a_measured_point(self):
        rows = [rank_row(0, 1000, 0, 70.0, 2.5), rank_row(1, 3000, 1, 70.0, 4.5)]
        fits = {"train": (1.0, 0.001)}
        measured, fitted, comm = cm.predict_point(rows, fits, ALPHA, BETA)
        self.assertEqual(measured, 4.5)  # the slowest rank's busy time
        self.assertAlmostEqual(fitted, 4.0, places=12)  # the heaviest rank: 1 + 0.001 x 3000
        # tree 10 rows x 100 bytes, halo 1 row x 100 bytes x batch 1, gradients 4000 bytes: the case above
        self.assertAlmostEqual(comm, 64.10, places=9)
        # 2 ranks on 1 core: each computes twice as slowly
        self.assertAlmostEqual(cm.predict_point(rows, fits, ALPHA, BETA, cores=1)[1], 8.0, places=12)
        self.assertEqual(cm.oversubscription(4, 2), 2.0)
        self.assertEqual(cm.oversubscription(1, 2), 1.0)

    def test_cli_end_to_end(self):
        with tempfile.TemporaryDirectory() as run:
            one = lambda name, work, busy: dict(rank_row(0, work, 0, busy, busy, ranks=1), point=name)
            rows = [rank_row(0, 1000, 0, 70.0, 2.5), rank_row(1, 3000, 1, 70.0, 4.5), one("a", 5000, 6.0),
                    one("b", 1000, 2.0)]
            with open(os.path.join(run, "results.csv"), "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
                w.writeheader()
                w.writerows(rows)
            subprocess.run([sys.executable, os.path.join(SCRIPTS, "cost_model.py"), "--run", run, "--alpha-us", "10",
                            "--beta-gbs", "1e-4", "--predict", "--nodes", "1,2", "--tokens", "65536"], check=True,
                           stdout=subprocess.DEVNULL)
            # the 1-rank points (1000, 2) and (5000, 6) give busy = 1 + 0.001 x work
            with open(os.path.join(run, "model_validation.csv")) as f:
                out = {r["point"]: r for r in csv.DictReader(f)}
            self.assertAlmostEqual(float(out["p2"]["predicted_ms"]), 4.5 + 64.10, places=6)
            self.assertAlmostEqual(float(out["p2"]["error_pct"]), 100 * (68.60 - 70.0) / 70.0, places=6)
            self.assertAlmostEqual(float(out["p2"]["fit_predicted_ms"]), 4.0 + 64.10, places=6)
            self.assertAlmostEqual(float(out["a"]["predicted_ms"]), 6.0, places=9)  # one rank: compute only
            self.assertAlmostEqual(float(out["a"]["fit_predicted_ms"]), 6.0, places=9)
            with open(os.path.join(run, "model_predictions.csv")) as f:
                pred = list(csv.DictReader(f))
            self.assertEqual(len(pred), 4)  # 2 node counts x 2 placements


class Ring(unittest.TestCase):
    def test_ring_communication_hides_under_attention(self):
        class A:  # a tiny shape: 1 layer, per_token and per_key chosen by the fields below
            layers, hidden, intermediate, heads, kv_heads, head_dim = 1, 1, 1, 1, 1, 1
            chunk, fanout, levels, sink, prev_chunks, bytes_per_element = 4, 2, 1, 0, 0, 1
        shape = cm.Shape(A())
        self.assertEqual(shape.per_token, 1 * (2 + 2) + 3)  # work_model_of: h (2 q + 2 kv) + 3 h i
        self.assertEqual(shape.per_key, 2)
        self.assertEqual(shape.kv_row, 2)
        n, p = 1000, 2
        # one rank: no communication at all
        _, gsa_comm, _, ring_comm = cm.predict(shape, n, 1, ALPHA, BETA, 1.0, "work")
        self.assertEqual((gsa_comm, ring_comm), (0.0, 0.0))
        # ring: 3 (p - 1) passes of n / p x 2 bytes: 3 x (0.01 + 1000 / 100) = 30.03 ms, hidden under the dense
        # attention of one rank (per_key x n^2 / 2 / p = 500000 work units x 1 ms): exposed = the gradients only
        gsa, _, ring, ring_exposed = cm.predict(shape, n, p, ALPHA, BETA, 1.0, "work")
        grad = cm.all_reduce_ms(p, shape.params, ALPHA, BETA)
        self.assertAlmostEqual(ring_exposed, grad, places=9)
        self.assertAlmostEqual(ring, shape.dense_work(n) / p + grad, places=6)
        # a slow link: the ring's passes exceed the attention and show
        _, _, _, slow = cm.predict(shape, n, p, ALPHA, 1e-4, 1.0, "work")
        passes = 3 * (ALPHA + (n / p) * 2 / 1e-4)
        attention = shape.dense_work(n) / p - n / p * shape.per_token
        self.assertAlmostEqual(slow, passes - attention + cm.all_reduce_ms(p, shape.params, ALPHA, 1e-4), places=3)


if __name__ == "__main__":
    unittest.main()
