#!/usr/bin/env python3
"""Checks the JSON of `lors-bench checkpoint --json` (run by cluster/test.sh on a small model under mpirun -np 2).

Speeds are not judged (this VM's disk swings 0.6-3 GB/s from minute to minute); what is checked is that the benchmark
measured everything it reports: every rate positive and finite, every ratio equal to the quotient of its rates, the
file size that of the model plus two AdamW moments (12 bytes per parameter plus HDF5 metadata), and every phase of the
writer and of the raw baseline present. Exit 1 with a list of problems otherwise.

    python3 scripts/check_checkpoint_bench.py bench.json --np 2
"""
import argparse
import json
import math
import sys

# Reported as the best of the repetitions and again under "median"; the separate-files baselines as the best only.
RATES = ["write_mb_s", "commit_mb_s", "load_mb_s", "raw_write_mb_s", "raw_write_behind_mb_s", "raw_read_mb_s"]
BEST_ONLY_RATES = ["raw_separate_files_write_mb_s", "raw_separate_files_read_mb_s"]
RATIOS = {"write_vs_raw": ("write_mb_s", "raw_write_mb_s"), "write_vs_raw_write_behind": ("write_mb_s", "raw_write_behind_mb_s"),
          "commit_vs_raw": ("commit_mb_s", "raw_write_mb_s"),
          "load_vs_raw_read": ("load_mb_s", "raw_read_mb_s"), "load_vs_raw_write": ("load_mb_s", "raw_write_mb_s")}
PHASES = ["write.agree", "write.create", "write.data", "write.checksums", "write.metadata", "write.close", "write.fsync",
          "raw_write.write", "raw_write.fsync", "raw_write_behind.write", "raw_write_behind.fsync"]


def problems(result, np):
    found = []

    def positive(where, key, value):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            found.append(f"{where}{key} = {value!r}: expected a positive finite number")

    if result.get("np") != np:
        found.append(f"np = {result.get('np')!r}: expected {np}")
    for block, where in ((result, ""), (result.get("median", {}), "median.")):
        for key in RATES + (BEST_ONLY_RATES if block is result else []):
            if key not in block:
                found.append(f"{where}{key} missing")
            else:
                positive(where, key, block[key])
        for ratio, (top, bottom) in RATIOS.items():
            if ratio not in block:
                found.append(f"{where}{ratio} missing")
            elif all(isinstance(block.get(k), (int, float)) and block[k] > 0 for k in (top, bottom)):
                expected = block[top] / block[bottom]
                if not math.isclose(block[ratio], expected, rel_tol=1e-9):
                    found.append(f"{where}{ratio} = {block[ratio]} but {top} / {bottom} = {expected}")
    parameters, size = result.get("parameters", 0), result.get("bytes", 0)
    if not (isinstance(parameters, int) and parameters > 0 and 12 * parameters <= size <= 12 * parameters * 1.02 + (1 << 20)):
        found.append(f"bytes = {size} for {parameters} parameters: expected 12 bytes per parameter (model, exp_avg, "
                     "exp_avg_sq) plus at most 2% + 1 MiB of HDF5 metadata")
    phases = result.get("phases_s", {})
    for phase in PHASES:
        if phase not in phases:
            found.append(f"phases_s.{phase} missing")
        elif not isinstance(phases[phase], (int, float)) or not math.isfinite(phases[phase]) or phases[phase] < 0:
            found.append(f"phases_s.{phase} = {phases[phase]!r}: expected seconds >= 0")
    if isinstance(phases.get("write.data"), (int, float)) and phases["write.data"] <= 0:
        found.append("phases_s.write.data = 0: the writer wrote nothing")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="output of lors-bench checkpoint --json")
    parser.add_argument("--np", type=int, required=True, help="ranks the benchmark ran with")
    args = parser.parse_args()
    with open(args.json) as f:
        text = f.read()
    try:
        result = json.loads(text)
    except json.JSONDecodeError as error:
        print(f"check_checkpoint_bench: {args.json} is not JSON ({error}): {text[:200]!r}", file=sys.stderr)
        return 1
    found = problems(result, args.np)
    for problem in found:
        print(f"check_checkpoint_bench: {args.json}: {problem}", file=sys.stderr)
    if found:
        return 1
    print(f"check_checkpoint_bench: OK, np {args.np}: write {result['write_mb_s']:.0f} MB/s (raw {result['raw_write_mb_s']:.0f}), "
          f"load {result['load_mb_s']:.0f} MB/s (raw read {result['raw_read_mb_s']:.0f}); "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(result["phases_s"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
