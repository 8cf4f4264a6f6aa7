#!/usr/bin/env python3
"""Checks scripts/plot_curves.py on fake runs: two metrics.jsonl files (train + eval records, one run resumed so some
steps repeat, one with a torn last line) give a PNG, also with --group over seeds and --x epoch; a missing work dir, a
work dir without metrics.jsonl and one without records fail with exit status 1 and a message naming the path.

    python3 scripts/test_plot_curves.py        (exit 0: all cases behaved; needs matplotlib; cluster/test.sh runs it)"""
import json
import math
import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot_curves.py")


def write_run(directory, seed, steps=40, steps_per_epoch=10, resumed_at=None, torn=False):
    os.makedirs(directory, exist_ok=True)
    lines = []

    def log(first, last):
        for step in range(first, last + 1):
            epoch = (step + steps_per_epoch - 1) // steps_per_epoch
            lines.append({"type": "train", "step": step, "epoch": epoch, "loss": 2.3 * math.exp(-step / (20 + seed)),
                          "lr": 1e-3 * min(1.0, step / 5), "grad_norm": 1.0 + 0.01 * seed, "samples_per_second": 100.0,
                          "rss_mb": 70.0, "time": 1.0e9 + step})
            if step % steps_per_epoch == 0:
                lines.append({"type": "eval", "step": step, "epoch": epoch, "top1": 0.1 + step / (100 + seed),
                              "top5": 0.5 + step / 200, "loss": 2.0 - step / 50, "images": 64, "time": 1.0e9 + step})

    if resumed_at:  # stopped after step resumed_at + 3, resumed from the checkpoint of step resumed_at
        log(1, resumed_at + 3)
        log(resumed_at + 1, steps)
    else:
        log(1, steps)
    with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        if torn:
            f.write('{"type":"train","step":')


def run(*arguments):
    return subprocess.run([sys.executable, SCRIPT, *arguments], capture_output=True, text=True)


def main():
    failures = []

    def check(description, condition, result):
        if condition:
            print(f"ok   {description}")
        else:
            failures.append(description)
            print(f"FAIL {description}\n  exit {result.returncode}\n  stdout: {result.stdout}\n  stderr: {result.stderr}",
                  file=sys.stderr)

    def is_png(path):
        if not os.path.isfile(path) or os.path.getsize(path) < 1000:
            return False
        with open(path, "rb") as f:
            return f.read(8) == b"\x89PNG\r\n\x1a\n"

    with tempfile.TemporaryDirectory() as work:
        a, b = os.path.join(work, "vit_seed1"), os.path.join(work, "vit_seed2")
        write_run(a, 1, resumed_at=20)
        write_run(b, 2, torn=True)
        c = os.path.join(work, "other")
        write_run(c, 3, steps=25)

        out = os.path.join(work, "curves.png")
        result = run(a, b, "--out", out)
        check("two runs -> PNG", result.returncode == 0 and is_png(out), result)
        check("a torn last line is a warning", "torn last line" in result.stderr, result)

        out = os.path.join(work, "plots", "grouped.png")
        result = run(a, b, c, "--group", "--x", "epoch", "--out", out, "--train-metrics", "loss,lr,grad_norm")
        check("--group --x epoch -> PNG (directory created)", result.returncode == 0 and is_png(out), result)
        check("--group draws 2 lines for 3 runs", "as 2 line(s)" in result.stdout, result)

        out = os.path.join(work, "labelled.png")
        result = run(a, c, "--labels", "first", "second", "--out", out)
        check("--labels -> PNG", result.returncode == 0 and is_png(out), result)

        missing = os.path.join(work, "no_such_run")
        out = os.path.join(work, "missing.png")
        result = run(a, missing, "--out", out)
        check("missing work dir -> exit 1 naming it, no PNG",
              result.returncode == 1 and missing in result.stderr and not os.path.exists(out), result)

        empty_dir = os.path.join(work, "no_metrics")
        os.makedirs(empty_dir)
        result = run(empty_dir, "--out", out)
        check("no metrics.jsonl -> exit 1 naming it", result.returncode == 1 and "metrics.jsonl" in result.stderr, result)

        no_records = os.path.join(work, "no_records")
        os.makedirs(no_records)
        with open(os.path.join(no_records, "metrics.jsonl"), "w") as f:
            f.write("\n")
        result = run(no_records, "--out", out)
        check("no records -> exit 1", result.returncode == 1 and "no train or eval records" in result.stderr, result)

        result = run(a, "--labels", "x", "y", "--out", out)
        check("--labels count mismatch -> exit 1", result.returncode == 1 and "--labels" in result.stderr, result)

    if failures:
        print(f"test_plot_curves: {len(failures)} case(s) FAILED: {'; '.join(failures)}", file=sys.stderr)
        return 1
    print("test_plot_curves: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
