#!/usr/bin/env python3
"""Checks that scripts/compare_checkpoints.py can fail: exact mode rejects any difference, --rtol R accepts
differences up to R relative to a dataset's scale and rejects larger ones, NaN, missing datasets and other shapes.

    python3 scripts/test_compare_checkpoints.py        (exit 0: all cases behaved; cluster/test.sh runs it)"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_checkpoints.py")


def write(path, tensors):
    with h5py.File(path, "w") as f:
        for name, values in tensors.items():
            f.create_dataset(name, data=np.asarray(values, dtype=np.float32))


def run(a, b, *options):
    return subprocess.run([sys.executable, SCRIPT, a, b, *options], capture_output=True, text=True).returncode


def main():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((16, 8)).astype(np.float32)
    state = (rng.random(128).astype(np.float32) * 1e-3)
    state[:5] = 0  # exactly-zero entries, as AdamW state has
    base = {"model/w": weight, "optimizer/w/exp_avg_sq": state, "optimizer/step": np.float32(6)}
    scale = float(np.linalg.norm(weight))

    def variant(**changes):
        tensors = {k: np.array(v, copy=True) for k, v in base.items()}
        for key, fn in changes.items():
            name = key.replace("__", "/")
            tensors[name] = fn(tensors[name])
        return tensors

    def bump(relative):  # one entry of model/w off by `relative` x the tensor's L2 norm
        def apply(w):
            w = w.astype(np.float64)
            w.flat[3] += relative * scale
            return w.astype(np.float32)
        return apply

    cases = [
        # (description, tensors of B, options, expected exit code)
        ("identical, exact", base, [], 0),
        ("identical, --rtol 1e-5", base, ["--rtol", "1e-5"], 0),
        ("3e-6 relative, exact", variant(model__w=bump(3e-6)), [], 1),
        ("3e-6 relative, --rtol 1e-5", variant(model__w=bump(3e-6)), ["--rtol", "1e-5"], 0),
        ("3e-5 relative, --rtol 1e-5", variant(model__w=bump(3e-5)), ["--rtol=1e-5"], 1),
        ("near-zero state entry moved by 1e-9 (tiny vs the tensor's scale), --rtol 1e-5",
         variant(optimizer__w__exp_avg_sq=lambda s: s + np.where(np.arange(s.size) == 7, 1e-9, 0).astype(np.float32)),
         ["--rtol", "1e-5"], 0),
        ("zero entry of state made 1e-6 (~1e-4 of its norm), --rtol 1e-5",
         variant(optimizer__w__exp_avg_sq=lambda s: s + np.where(np.arange(s.size) == 0, 1e-6, 0).astype(np.float32)),
         ["--rtol", "1e-5"], 1),
        ("optimizer step differs, --rtol 1e-5", variant(optimizer__step=lambda s: np.float32(7)), ["--rtol", "1e-5"], 1),
        ("optimizer differs, --model-only", variant(optimizer__step=lambda s: np.float32(7)), ["--model-only"], 0),
        ("NaN in B, --rtol 1", variant(model__w=lambda w: np.where(np.arange(w.size).reshape(w.shape) == 0, np.nan, w)),
         ["--rtol", "1"], 1),
        ("dataset missing in B, --rtol 1", {k: v for k, v in base.items() if k != "optimizer/w/exp_avg_sq"}, ["--rtol", "1"], 1),
        ("other shape, --rtol 1", variant(model__w=lambda w: w.reshape(8, 16)), ["--rtol", "1"], 1),
        ("bad --rtol", base, ["--rtol", "x"], 2),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        a = os.path.join(tmp, "a.h5")
        write(a, base)
        for index, (description, tensors, options, expected) in enumerate(cases):
            b = os.path.join(tmp, f"b{index}.h5")
            write(b, tensors)
            got = run(a, b, *options)
            ok = got == expected
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {description}: exit {got} (expected {expected})")
    if failures:
        print(f"test_compare_checkpoints: {failures} case(s) FAILED", file=sys.stderr)
        return 1
    print(f"test_compare_checkpoints: all {len(cases)} cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
