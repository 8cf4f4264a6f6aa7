#!/usr/bin/env python3
"""Compare the /model (and /optimizer) datasets of two lors checkpoints exactly.

    python3 scripts/compare_checkpoints.py A.h5 B.h5 [--model-only]

Exit 0 when every dataset has the same shape and values; 1 with the differing names otherwise."""
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


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    groups = ["model"] if "--model-only" in sys.argv else ["model", "optimizer"]
    a, b = datasets(args[0], groups), datasets(args[1], groups)
    problems = sorted(set(a) ^ set(b))
    for name in sorted(set(a) & set(b)):
        if a[name].shape != b[name].shape or not np.array_equal(a[name], b[name]):
            diff = np.max(np.abs(a[name].astype(np.float64) - b[name].astype(np.float64))) if a[name].shape == b[name].shape else "shape"
            problems.append(f"{name} (max |diff| {diff})")
    if not a:
        problems.append("no datasets under " + ", ".join(groups))
    if problems:
        print("compare_checkpoints: differ: " + "; ".join(problems[:10]), file=sys.stderr)
        return 1
    print(f"compare_checkpoints: {len(a)} datasets identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
