"""Prints an Nsight Compute `--csv --page raw` report as one line per launch: kernel, grid, duration (ns), cycles,
executed warp instructions and occupancy where collected, and under it the stall reasons per issued instruction
(WarpStateStats; largest first) where collected. Used by scripts/gpu_selection_profile.sh.

usage: python3 scripts/ncu_table.py REPORT.csv
"""
import csv
import re
import sys

COLUMNS = (('launch__grid_size', 'grid'), ('gpu__time_duration.sum', 'ns'), ('sm__cycles_elapsed.max', 'cyc'),
           ('smsp__inst_executed.sum', 'inst'), ('sm__warps_active.avg.pct_of_peak_sustained_active', 'occ%'))


def number(text):
    try:
        return float(text.replace(',', ''))
    except ValueError:
        return None


def main(path):
    rows = [r for r in csv.reader(open(path)) if len(r) > 10]
    if not rows:  # ncu failed: show why
        sys.stdout.write(open(path).read()[-2000:])
        return 1
    header = rows[0]
    col = {name: i for i, name in enumerate(header)}
    for r in rows[2:]:  # rows[1] holds the units
        name = re.sub(r'^void |[^ <]*unnamed>::|gsa::kernels::|\(.*', '', r[col['Kernel Name']])[:48]
        fields = [f"{label} {r[col[m]]}" for m, label in COLUMNS if m in col]
        print(f"{name:48s}  " + '  '.join(fields))
        stalls = []
        for metric, i in col.items():
            if 'issue_stalled_' in metric and 'not_issued' not in metric and metric.endswith('.ratio'):
                v = number(r[i])
                if v:
                    stalls.append((v, metric.split('issue_stalled_')[1].replace('_per_issue_active.ratio', '')))
        if stalls:
            stalls.sort(reverse=True)
            print('    stalls per issue: ' + ', '.join(f"{n} {v:.2f}" for v, n in stalls[:8]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
