#!/usr/bin/env python3
"""Training curves of one or more `lors train` runs, overlaid in one PNG.

    python3 scripts/plot_curves.py WORK_DIR [WORK_DIR ...] [--out curves.png] [--labels A B ...] [--group]
                                   [--x step|epoch] [--train-metrics loss,lr] [--title TEXT]

Reads each run's WORK_DIR/metrics.jsonl (one JSON object per line, written by rank 0):
  {"type":"train","step":..,"epoch":..,"loss":..,"lr":..,"grad_norm":..,"samples_per_second":..,"rss_mb":..,"time":..}
  {"type":"eval","step":..,"epoch":..,"top1":..,"top5":..,"loss":..,"images":..,"time":..}
and draws one panel per curve: the train metrics (--train-metrics, default loss and lr) and every numeric eval field
(top1, top5, loss, ...; not step, epoch, time or images), against the global step (default) or the epoch
(--x epoch: step / steps per epoch, the latter found from the records' step and epoch). One line per run, labelled
by the work dir's name or by --labels; a run resumed after a stop repeats some steps, and the last record of a step
wins. A non-finite value (written as null) leaves a gap.

--group: runs whose labels are equal once a trailing seed/run number is dropped ("vit_seed1", "vit-seed2", "vit_s3",
"vit_run4" -> "vit"; the regular expression is --group-suffix, default GROUP_SUFFIX below) are drawn as one line,
the mean over the runs at each step, with the min-max range shaded; the legend gives the number of runs. Several
seeds of one config are compared that way (or give them one label with --labels).

Needs matplotlib (python3 -m pip install matplotlib). Exit status 0 when the image is written, 1 with a message
on stderr when a work dir or its metrics.jsonl is missing, a file has no train or eval records, a line is not JSON
(a torn last line is only warned about), or the options do not fit.
"""
import argparse
import json
import math
import os
import re
import sys

EVAL_NON_METRICS = {"type", "step", "epoch", "time", "images"}
GROUP_SUFFIX = r"([-_.](seed|run|rep|s)|seed|run|rep)[-_=]?\d+$"


class CurveError(Exception):
    """A problem with the inputs, reported as `plot_curves: <message>` and exit status 1."""


def number(value):
    """The value as a float (NaN for null / non-numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def read_run(work_dir):
    """{'train': {step: record}, 'eval': {step: record}} of WORK_DIR/metrics.jsonl (the last record of a step wins)."""
    if not os.path.isdir(work_dir):
        raise CurveError(f"{work_dir}: no such work directory")
    path = os.path.join(work_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise CurveError(f"{path}: no such file (is {work_dir} the --work-dir of a lors train run?)")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    records = {"train": {}, "eval": {}}
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if i == last:  # a run killed while writing leaves a torn last line
                print(f"plot_curves: warning: {path}:{i + 1}: ignoring a torn last line ({error})", file=sys.stderr)
                continue
            raise CurveError(f"{path}:{i + 1}: not a JSON object ({error})") from None
        if not isinstance(record, dict) or record.get("type") not in records:
            continue
        step = record.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            raise CurveError(f"{path}:{i + 1}: a {record['type']} record without an integer step")
        records[record["type"]][step] = record
    if not records["train"] and not records["eval"]:
        raise CurveError(f"{path}: no train or eval records (a run that has not logged a step yet?)")
    return records


def steps_per_epoch(run):
    """Steps per epoch of a run, from its records: epoch = ceil(step / N), so N >= step / epoch, with equality at the
    last step of an epoch (where every evaluation at an epoch's end is). None when no record has an epoch."""
    bounds = [step / record["epoch"] for kind in run.values() for step, record in kind.items()
              if isinstance(record.get("epoch"), int) and record["epoch"] > 0 and step > 0]
    return max(bounds) if bounds else None


def series(run, kind, key, x_axis):
    """(xs, ys) of `key` in the run's `kind` records, by step."""
    records = run[kind]
    steps = sorted(records)
    if x_axis == "epoch":
        per_epoch = steps_per_epoch(run)
        if per_epoch is None:
            raise CurveError("--x epoch needs records with an epoch field")
        xs = [step / per_epoch for step in steps]
    else:
        xs = list(steps)
    return xs, [number(records[step].get(key)) for step in steps]


def panels_of(runs, train_metrics):
    """[(kind, key)]: the train metrics any run has, then every numeric eval field any run has (first-seen order)."""
    panels = [("train", key) for key in train_metrics
              if any(key in record for run in runs for record in run["train"].values())]
    eval_keys = []
    for run in runs:
        for record in run["eval"].values():
            for key, value in record.items():
                if key not in EVAL_NON_METRICS and key not in eval_keys and (
                        value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))):
                    eval_keys.append(key)
    return panels + [("eval", key) for key in eval_keys]


def group_key(label, suffix=GROUP_SUFFIX):
    stripped = re.sub(suffix, "", label, flags=re.IGNORECASE)
    return stripped or label


def aggregate(curves):
    """Mean, min and max over several (xs, ys) curves at each x any of them has (NaNs ignored)."""
    by_x = {}
    for xs, ys in curves:
        for x, y in zip(xs, ys):
            by_x.setdefault(x, []).append(y)
    xs = sorted(by_x)
    means, lows, highs = [], [], []
    for x in xs:
        finite = [y for y in by_x[x] if not math.isnan(y)]
        means.append(sum(finite) / len(finite) if finite else math.nan)
        lows.append(min(finite) if finite else math.nan)
        highs.append(max(finite) if finite else math.nan)
    return xs, means, lows, highs


def plot(runs, labels, args):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CurveError("needs matplotlib: python3 -m pip install matplotlib") from None

    train_metrics = [key for key in args.train_metrics.split(",") if key]
    panels = panels_of(runs, train_metrics)
    if not panels:
        raise CurveError(f"none of the runs has any of the train metrics {train_metrics} or an eval metric")

    # Lines: (label, [run indices]); with --group, one per group key in first-seen order.
    if args.group:
        lines = {}
        for index, label in enumerate(labels):
            lines.setdefault(group_key(label, args.group_suffix), []).append(index)
        lines = list(lines.items())
    else:
        lines = [(label, [index]) for index, label in enumerate(labels)]

    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    x_label = "epoch" if args.x == "epoch" else "step"
    for panel_index, (kind, key) in enumerate(panels):
        ax = axes[panel_index // columns][panel_index % columns]
        for line_index, (label, members) in enumerate(lines):
            color = colors[line_index % len(colors)]
            curves = [series(runs[i], kind, key, args.x) for i in members if runs[i][kind]]
            curves = [(xs, ys) for xs, ys in curves if any(not math.isnan(y) for y in ys)]
            if not curves:
                continue
            marker = "o" if max(len(xs) for xs, _ in curves) <= 20 else None
            if len(members) > 1:
                xs, means, lows, highs = aggregate(curves)
                ax.plot(xs, means, color=color, marker=marker, markersize=3, label=f"{label} (mean of {len(curves)})")
                ax.fill_between(xs, lows, highs, color=color, alpha=0.2, linewidth=0)
            else:
                xs, ys = curves[0]
                ax.plot(xs, ys, color=color, marker=marker, markersize=3, label=label)
        ax.set_title(f"{kind} {key}")
        ax.set_xlabel(x_label)
        ax.grid(True, alpha=0.3)
        if kind == "train" and key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for panel_index in range(len(panels), rows * columns):
        axes[panel_index // columns][panel_index % columns].axis("off")
    handles, names = [], []
    for row in axes:
        for ax in row:
            for handle, name in zip(*ax.get_legend_handles_labels()):
                if name not in names:
                    handles.append(handle)
                    names.append(name)
    figure.legend(handles, names, loc="lower center", ncol=min(4, max(1, len(names))), frameon=False)
    if args.title:
        figure.suptitle(args.title)
    legend_rows = (len(names) + 3) // 4
    figure.tight_layout(rect=(0, min(0.4, 0.045 * legend_rows / rows + 0.02), 1, 1))
    directory = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(directory, exist_ok=True)
    figure.savefig(args.out, dpi=args.dpi)
    plt.close(figure)
    return len(lines), len(panels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dirs", nargs="+", metavar="WORK_DIR", help="lors train --work-dir of a run")
    parser.add_argument("--out", default="curves.png", help="image to write (PNG; .pdf/.svg work too); default curves.png")
    parser.add_argument("--labels", nargs="+", metavar="LABEL", help="one label per WORK_DIR (default: the dir names)")
    parser.add_argument("--group", action="store_true",
                        help="one mean line (min-max shaded) per label with its trailing seed/run number dropped")
    parser.add_argument("--group-suffix", default=GROUP_SUFFIX, metavar="REGEX",
                        help=f"what --group drops from the end of a label (default {GROUP_SUFFIX!r}, case-insensitive)")
    parser.add_argument("--x", choices=("step", "epoch"), default="step", help="x axis (default step)")
    parser.add_argument("--train-metrics", default="loss,lr",
                        help="comma-separated train record fields to draw (default loss,lr; e.g. loss,lr,grad_norm)")
    parser.add_argument("--title", help="figure title")
    parser.add_argument("--dpi", type=int, default=120)
    args = parser.parse_args(argv)
    try:
        try:
            re.compile(args.group_suffix)
        except re.error as error:
            raise CurveError(f"--group-suffix {args.group_suffix!r} is not a regular expression ({error})") from None
        if args.labels is not None and len(args.labels) != len(args.work_dirs):
            raise CurveError(f"--labels gives {len(args.labels)} label(s) for {len(args.work_dirs)} work dir(s)")
        labels = args.labels or [os.path.basename(os.path.normpath(d)) or d for d in args.work_dirs]
        runs = [read_run(d) for d in args.work_dirs]
        lines, panels = plot(runs, labels, args)
    except CurveError as error:
        print(f"plot_curves: {error}", file=sys.stderr)
        return 1
    print(f"plot_curves: wrote {args.out} ({len(runs)} run(s) as {lines} line(s), {panels} panel(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
