#!/usr/bin/env python3
"""pycocotools reference for `lors eval-coco` on a val split of `lors make-detection`
(Tests/LorsDetectionTests/COCOEvalSynthesisTests.swift).

Runs `lors make-detection` for a small val split (MAKE_DETECTION below) into a temporary directory, reads its
annotations/instances_val.json and writes to Tests/LorsDetectionTests/Fixtures/:

  synth_val_dt.json        detections made from the ground truth with deterministic perturbations (numpy RNG, fixed
                           seed): boxes jittered to IoU > 0.9, 0.5-0.75 or < 0.5 with their object, wrong categories,
                           missed objects, duplicates, false positives (some in categories absent from an image), two
                           images without detections, detections on and inside crowd boxes, random scores with ties
  synth_val_expected.json  the make-detection arguments, the SHA-256 of the instances_val.json used, and pycocotools'
                           COCOeval (iouType "bbox") 12 numbers and summary lines with maxDets 1, 10, 100 and with
                           100, 300, 1000 summarised as mmdetection does (see make_coco_eval_fixtures.py)

The images and the GT are not committed: the test regenerates them with the same arguments (make-detection is
deterministic for a seed) and checks the SHA-256 of the GT before comparing.

Only for generating the committed fixtures (pip install pycocotools numpy); nothing runs it at test time.
Run: swift build && python3 scripts/make_coco_eval_synth_fixtures.py [--lors .build/debug/lors]
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_coco_eval_fixtures import KEYS_MMDET, KEYS_STANDARD, OUT, evaluate  # noqa: E402

MAKE_DETECTION = ["--train", "0", "--val", "60", "--size", "128", "--seed", "7", "--format", "jpeg"]
SEED = 20240607
TIED_SCORES = [0.9, 0.7, 0.5, 0.5, 0.3, 0.1]


def iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def rough(rng, value):
    """Rounded to 2 decimals half of the time, else full precision (17 significant digits in the JSON)."""
    return round(float(value), 2) if rng.random() < 0.5 else float(value)


def jittered(rng, box, band):
    """A box whose IoU with `box` lies in band (lo, hi): random shifts and scalings, drawn until one fits."""
    lo, hi = band
    x, y, w, h = box
    amount = {(0.9, 1.0): 0.03, (0.5, 0.75): 0.2, (0.05, 0.5): 0.5}[band]
    for _ in range(10_000):
        dx, dy = rng.normal(0, amount) * w, rng.normal(0, amount) * h
        sw, sh = np.exp(rng.normal(0, amount)), np.exp(rng.normal(0, amount))
        candidate = [rough(rng, x + dx), rough(rng, y + dy), rough(rng, max(0.5, w * sw)), rough(rng, max(0.5, h * sh))]
        if lo < iou(candidate, box) < hi:
            return candidate
    raise RuntimeError(f"no box with IoU in {band} for {box}")


def score(rng):
    """From a small set 30 % of the time (ties), else uniform, sometimes rounded to 2 decimals (more ties)."""
    if rng.random() < 0.3:
        return float(rng.choice(TIED_SCORES))
    return rough(rng, rng.random())


def random_box(rng, size):
    w, h = rng.uniform(3, size * 0.6), rng.uniform(3, size * 0.6)
    return [rough(rng, rng.uniform(0, size - w)), rough(rng, rng.uniform(0, size - h)), rough(rng, w), rough(rng, h)]


def make_detections(gt):
    rng = np.random.default_rng(SEED)
    categories = [c["id"] for c in gt["categories"]]
    sizes = {i["id"]: (i["width"], i["height"]) for i in gt["images"]}
    by_image = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    image_ids = [i["id"] for i in gt["images"]]
    without = set(int(i) for i in rng.choice([i for i in image_ids if i in by_image], 2, replace=False))
    detections, kinds = [], {}

    def add(image, category, box, kind):
        detections.append({"image_id": image, "category_id": int(category), "bbox": box, "score": score(rng)})
        kinds[kind] = kinds.get(kind, 0) + 1

    for image in image_ids:
        if image in without:
            continue
        width, height = sizes[image]
        for a in by_image.get(image, []):
            box = a["bbox"]
            if a["iscrowd"]:
                # On the crowd box, and inside it: matched to the crowd object, so ignored.
                add(image, a["category_id"], jittered(rng, box, (0.9, 1.0)), "crowd")
                for _ in range(int(rng.integers(0, 3))):
                    inner = [box[0] + box[2] * rng.uniform(0, 0.5), box[1] + box[3] * rng.uniform(0, 0.5),
                             box[2] * rng.uniform(0.2, 0.5), box[3] * rng.uniform(0.2, 0.5)]
                    add(image, a["category_id"], [rough(rng, v) for v in inner], "inside crowd")
                continue
            if rng.random() < 0.12:
                kinds["missed"] = kinds.get("missed", 0) + 1
                continue
            category = a["category_id"]
            band = [(0.9, 1.0), (0.5, 0.75), (0.05, 0.5)][int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
            kind = {0.9: "IoU > 0.9", 0.5: "IoU 0.5-0.75", 0.05: "IoU < 0.5"}[band[0]]
            if rng.random() < 0.08:
                category = int(rng.choice([c for c in categories if c != category]))
                kind = "wrong category"
            add(image, category, jittered(rng, box, band), kind)
            if rng.random() < 0.15:
                add(image, category, jittered(rng, box, [(0.9, 1.0), (0.5, 0.75)][int(rng.integers(0, 2))]), "duplicate")
        for _ in range(int(rng.integers(0, 4))):
            add(image, rng.choice(categories), random_box(rng, min(width, height)), "false positive")
    order = rng.permutation(len(detections))  # file order decides ties
    return [detections[i] for i in order], kinds, sorted(without)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lors", default=".build/debug/lors", help="the lors executable (default .build/debug/lors)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run([args.lors, "make-detection", "--out", directory] + MAKE_DETECTION, check=True,
                       stdout=subprocess.DEVNULL)
        gt_path = os.path.join(directory, "annotations", "instances_val.json")
        with open(gt_path, "rb") as f:
            gt_bytes = f.read()
        gt = json.loads(gt_bytes)
        dt, kinds, without = make_detections(gt)
        dt_file = "synth_val_dt.json"
        with open(os.path.join(OUT, dt_file), "w") as f:
            json.dump(dt, f, separators=(",", ":"))
        dt_path = os.path.join(OUT, dt_file)
        standard, standard_lines = evaluate(gt_path, dt_path, [1, 10, 100])
        mmdet, mmdet_lines = evaluate(gt_path, dt_path, [100, 300, 1000])
    expected = {"generator": "scripts/make_coco_eval_synth_fixtures.py",
                "pycocotools": importlib.metadata.version("pycocotools"), "numpy": np.__version__,
                "make_detection": MAKE_DETECTION, "gt": "annotations/instances_val.json",
                "gt_sha256": hashlib.sha256(gt_bytes).hexdigest(), "dt": dt_file,
                "images": len(gt["images"]), "annotations": len(gt["annotations"]),
                "crowd": sum(1 for a in gt["annotations"] if a["iscrowd"]), "detections": len(dt),
                "detection_kinds": dict(sorted(kinds.items())), "images_without_detections": without,
                "standard": {"maxDets": [1, 10, 100], "values": dict(zip(KEYS_STANDARD, standard)), "lines": standard_lines},
                "mmdetection": {"maxDets": [100, 300, 1000], "values": dict(zip(KEYS_MMDET, mmdet)), "lines": mmdet_lines}}
    with open(os.path.join(OUT, "synth_val_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(len(gt["annotations"]), "annotations,", len(dt), "detections:", expected["detection_kinds"])
    print("\n".join(standard_lines))
    print("\n".join(mmdet_lines))


if __name__ == "__main__":
    main()
