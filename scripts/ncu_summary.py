"""Sums a per-launch table of scripts/ncu_table.py by kernel and grid: one line, LABEL then "kernel grid N: count x
mean us" for each, in first-seen order. Used by the device-call scripts under docs/results/ to compare two builds'
launches.

usage: python3 scripts/ncu_summary.py TABLE.txt LABEL
"""
import collections
import re
import sys


def main(path, label):
    launches = collections.OrderedDict()
    for line in open(path):
        m = re.search(r"^(.*?)\s+grid ([\d,]+)\s+ns ([\d,]+)", line)
        if m:
            launches.setdefault(f"{m.group(1)} grid {m.group(2)}", []).append(int(m.group(3).replace(",", "")))
    print(label, "; ".join(f"{k}: {len(v)} x {sum(v) / len(v) / 1000:.2f} us" for k, v in launches.items()))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
