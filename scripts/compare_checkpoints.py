#!/usr/bin/env python3
"""Compare the /model (and /optimizer) datasets of two lors checkpoints.

    python3 scripts/compare_checkpoints.py A.h5 B.h5 [--model-only] [--rtol R]

Default: exact (same names, shapes and values). With --rtol R (e.g. 1e-5): the relative error of every dataset,
its Frobenius (L2) norm of the difference over the norm of B's values, must be at most R:

    ||a - b||_2  <=  R * ||b||_2          (per dataset; a dataset of zeros in B must match exactly)

so rounding noise in entries near zero (AdamW's exp_avg, exp_avg_sq) is measured against the tensor's magnitude
rather than against itself. NaN or Inf anywhere fails unless both files hold the same there. The same names and
shapes are required in both modes.

Exit 0 when every dataset matches; 1 with the differing names (and the worst relative difference) otherwise;
2 on bad usage."""
import sys

import h5py
import numpy as np


def datasets(path, groups):
    out = {}
    with h5py.File(path, "r") as f:
        for group in groups:
            if group in f:
                f[group].visititems(lambda name, obj: out.__setitem__(f"{group}/{name}", np.array(obj))
                                    if isinstance(obj, h5py.Dataset) else None)
    return out


def relative_difference(a, b):
    """||a - b||_2 / ||b||_2 over the finite entries (0 when equal, inf when non-finite entries differ)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(finite_a, finite_b) or not np.array_equal(a[~finite_a], b[~finite_b], equal_nan=True):
        return float("inf")
    a, b = a[finite_a], b[finite_b]
    if a.size == 0:
        return 0.0
    diff = float(np.linalg.norm(a - b))
    if diff == 0.0:
        return 0.0
    scale = float(np.linalg.norm(b))
    return float("inf") if scale == 0.0 else diff / scale


def parse(argv):
    paths, rtol, model_only = [], None, False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--model-only":
            model_only = True
        elif arg == "--rtol" or arg.startswith("--rtol="):
            value = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else None)
            if "=" not in arg:
                i += 1
            try:
                rtol = float(value)
            except (TypeError, ValueError):
                raise SystemExit(f"compare_checkpoints: --rtol needs a number, got {value!r}")
            if not rtol >= 0:
                raise SystemExit(f"compare_checkpoints: --rtol must be >= 0, got {value}")
        elif arg.startswith("--"):
            raise SystemExit(f"compare_checkpoints: unknown option {arg}\n{__doc__}")
        else:
            paths.append(arg)
        i += 1
    return paths, rtol, model_only


def main():
    try:
        paths, rtol, model_only = parse(sys.argv[1:])
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    if len(paths) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    groups = ["model"] if model_only else ["model", "optimizer"]
    a, b = datasets(paths[0], groups), datasets(paths[1], groups)
    problems = [f"{name} (only in {'A' if name in a else 'B'})" for name in sorted(set(a) ^ set(b))]
    worst = (0.0, None)
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.shape != y.shape:
            problems.append(f"{name} (shape {list(x.shape)} vs {list(y.shape)})")
            continue
        if rtol is None:
            if not np.array_equal(x, y):
                diff = np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))
                problems.append(f"{name} (max |diff| {diff})")
            continue
        rel = relative_difference(x, y)
        if rel > worst[0]:
            worst = (rel, name)
        if rel > rtol:
            problems.append(f"{name} (relative difference {rel:.3g} > {rtol:g})")
    if not a:
        problems.append("no datasets under " + ", ".join(groups))
    if problems:
        print(f"compare_checkpoints: {len(problems)} dataset(s) differ: " + "; ".join(problems[:10])
              + ("; ..." if len(problems) > 10 else ""), file=sys.stderr)
        return 1
    if rtol is None:
        print(f"compare_checkpoints: {len(a)} datasets identical")
    else:
        detail = f"; largest {worst[0]:.3g} in {worst[1]}" if worst[1] else "; all identical"
        print(f"compare_checkpoints: {len(a)} datasets within relative {rtol:g}{detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
