#!/usr/bin/env python3
"""Results table over seeds: for each config (work dirs named <config>_seed<K>), the final evaluation's top-1 and
top-5 (last "eval" record of metrics.jsonl) and the wall time (the file wall_seconds written by seed_runs.sh, when
present), as mean ± sample standard deviation, min–max, and the per-seed values; Markdown.

    python3 scripts/seed_table.py WORK_DIR [WORK_DIR ...]
"""
import json
import os
import re
import statistics
import sys
from collections import OrderedDict


def final_eval(work_dir):
    path = os.path.join(work_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        sys.exit(f"seed_table.py: {path} not found")
    last = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("type") == "eval":
                last = record
    if last is None:
        sys.exit(f"seed_table.py: {path} has no eval record")
    return last


def summary(values, scale=1.0, digits=2):
    values = [v * scale for v in values]
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {sd:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 1
    groups = OrderedDict()
    for work_dir in argv:
        name = os.path.basename(os.path.normpath(work_dir))
        match = re.match(r"(.+)_seed(\d+)$", name)
        config, seed = (match.group(1), int(match.group(2))) if match else (name, None)
        record = final_eval(work_dir)
        wall_file = os.path.join(work_dir, "wall_seconds")
        wall = float(open(wall_file).read()) if os.path.isfile(wall_file) else None
        groups.setdefault(config, []).append((seed, record, wall))
    print("| config | seeds | test top-1 % (mean ± sd, min–max) | top-5 % | wall time s | per seed top-1 |")
    print("|---|---|---|---|---|---|")
    for config, runs in groups.items():
        top1 = [r["top1"] for _, r, _ in runs]
        top5 = [r["top5"] for _, r, _ in runs]
        walls = [w for _, _, w in runs if w is not None]
        per_seed = ", ".join(f"{s}: {100 * r['top1']:.2f}" for s, r, _ in runs)
        wall = summary(walls, digits=0) if walls else "—"
        print(f"| {config} | {len(runs)} | {summary(top1, 100)} | {summary(top5, 100)} | {wall} | {per_seed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
