#!/usr/bin/env python3
"""Checks the TensorBoard event files of a lors work dir with TensorBoard's own reader.

Usage: python3 scripts/check_tensorboard.py WORK_DIR [--expect-steps N]

Reads WORK_DIR/tb/ with tensorboard's EventAccumulator (which verifies the TFRecord framing and
the masked CRC-32Cs as it parses) and checks against WORK_DIR/metrics.jsonl:
  * the scalar tags train/loss, train/lr, eval/top1, eval/top5 exist;
  * train/loss and train/lr have exactly the steps of the "train" lines of metrics.jsonl, and the
    same values (float32 precision); eval/top1 and eval/top5 those of the "eval" lines;
  * with --expect-steps N, the last training step is N.
Exits 0 when everything holds, 1 with a message naming the first difference otherwise.
"""
import argparse
import glob
import json
import math
import os
import sys


def fail(message):
    print(f"check_tensorboard: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dir")
    parser.add_argument("--expect-steps", type=int, default=None)
    args = parser.parse_args()

    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        fail("the tensorboard package is not installed (pip install tensorboard)")

    tb_dir = os.path.join(args.work_dir, "tb")
    files = sorted(glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")))
    if not files:
        fail(f"no event files in {tb_dir}")
    metrics_path = os.path.join(args.work_dir, "metrics.jsonl")
    if not os.path.exists(metrics_path):
        fail(f"{metrics_path} does not exist")
    with open(metrics_path) as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    train = [line for line in lines if line["type"] == "train"]
    evals = [line for line in lines if line["type"] == "eval"]
    if not train:
        fail(f"{metrics_path} has no train lines")

    accumulator = event_accumulator.EventAccumulator(tb_dir, size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    for tag in ["train/loss", "train/lr"] + (["eval/top1", "eval/top5"] if evals else []):
        if tag not in tags:
            fail(f"scalar tag {tag} missing from {tb_dir} (found {sorted(tags)})")

    def compare(tag, rows, key):
        events = accumulator.Scalars(tag)
        steps = [event.step for event in events]
        expected_steps = [row["step"] for row in rows]
        if steps != expected_steps:
            fail(f"{tag}: steps {steps} differ from metrics.jsonl {expected_steps}")
        for event, row in zip(events, rows):
            if not math.isclose(event.value, row[key], rel_tol=1e-6, abs_tol=1e-7):
                fail(f"{tag} at step {event.step}: {event.value} in tb, {row[key]} in metrics.jsonl")
            if not (event.wall_time > 1e9):
                fail(f"{tag} at step {event.step}: implausible wall_time {event.wall_time}")

    compare("train/loss", train, "loss")
    compare("train/lr", train, "lr")
    if evals:
        compare("eval/top1", evals, "top1")
        compare("eval/top5", evals, "top5")
    if args.expect_steps is not None and train[-1]["step"] != args.expect_steps:
        fail(f"last train step is {train[-1]['step']}, expected {args.expect_steps}")
    print(f"check_tensorboard: OK: {len(files)} event file(s), tags {sorted(tags)}, "
          f"{len(train)} train and {len(evals)} eval point(s), last step {train[-1]['step']}")


if __name__ == "__main__":
    main()
