#!/usr/bin/env python3
"""check_tensorboard.py OUTPUT_DIR STEPS: the oracle for gsa's TensorBoard files is TensorBoard itself.

Its EventAccumulator reads OUTPUT_DIR/tensorboard (every event file, in order, honouring the SessionLog START a
resumed run writes); each scalar tag must hold exactly steps 0..STEPS-1 with the values of OUTPUT_DIR/metrics.jsonl
rounded to float32 (TensorBoard's simple_value). Exit 0 when they match, 1 when not, 77 (ctest: skipped) when the
tensorboard package is not installed (scripts/setup.sh --tests installs it).
"""
import json
import struct
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    print("the tensorboard package is not installed (scripts/setup.sh --tests)")
    sys.exit(77)


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def main():
    out, steps = sys.argv[1], int(sys.argv[2])
    with open(out + "/metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    acc = EventAccumulator(out + "/tensorboard", size_guidance={"scalars": 0})
    acc.Reload()
    failures = 0
    for tag in ("loss", "accuracy", "lr", "grad_norm", "tokens_per_s"):
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = [(r["step"], f32(r[tag])) for r in rows]
        if [s for s, _ in got] != list(range(steps)) or got != want:
            print(f"{tag}: TensorBoard read {got}, metrics.jsonl has {want}")
            failures += 1
    losses = [e.value for e in acc.Scalars("loss")]
    verdict = "all equal to metrics.jsonl" if failures == 0 else f"{failures} tags differ"
    print(f"TensorBoard read {len(losses)} steps of 5 tags, {verdict}; losses {losses}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
