#!/usr/bin/env python3
"""pycocotools reference for the COCO box evaluator tests (Tests/LorsDetectionTests/COCOEvalReferenceTests.swift).

Writes random COCO instances files and detection results under Tests/LorsDetectionTests/Fixtures/ (CASE_gt.json,
CASE_dt.json) and, in coco_eval_expected.json, pycocotools' COCOeval (iouType "bbox") summary for each case:

  standard     maxDets 1, 10, 100: COCOeval.stats and the 12 lines COCOeval.summarize() prints
  mmdetection  maxDets 100, 300, 1000, summarised as mmdetection's COCOevalMP.summarize does: AP lines at 1000,
               AR at 100, 300, 1000, ARs/ARm/ARl at 1000 (stock summarize() would read its first AP line at 100)

The cases cover crowd boxes (also "iscrowd": true), GT area different from width*height, areas exactly on the
32^2 and 96^2 boundaries, tiny/medium/large boxes, duplicate GT boxes (IoU ties), more than 100 (and 300)
detections in one image, tied scores, images without GT, images without detections, categories without GT (and with
detections), non-contiguous ids, a zero-width detection, numbers with 17 significant digits.

Only for generating the committed fixtures (pip install pycocotools numpy); nothing runs it at test time.
Run: python3 scripts/make_coco_eval_fixtures.py
"""
import contextlib
import importlib.metadata
import io
import json
import os
import random

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LorsDetectionTests", "Fixtures")
KEYS_STANDARD = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
KEYS_MMDET = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR@100", "AR@300", "AR@1000", "ARs", "ARm", "ARl"]
SIZES = {"tiny": (2, 12), "small": (12, 31), "medium": (33, 95), "large": (97, 300)}


def rough(rng, value):
    """Rounded to 2 decimals half of the time, else full precision (17 significant digits in the JSON)."""
    return round(value, 2) if rng.random() < 0.5 else value


def random_box(rng, size):
    lo, hi = SIZES[size]
    w, h = rng.uniform(lo, hi), rng.uniform(lo, hi)
    x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
    return [rough(rng, x), rough(rng, y), rough(rng, w), rough(rng, h)]


def jitter(rng, box, amount):
    x, y, w, h = box
    dx, dy = rng.gauss(0, amount * w), rng.gauss(0, amount * h)
    dw, dh = rng.gauss(0, amount * w), rng.gauss(0, amount * h)
    return [rough(rng, x + dx), rough(rng, y + dy), rough(rng, max(0.5, w + dw)), rough(rng, max(0.5, h + dh))]


def score(rng):
    """Scores from a small set half of the time, so that many are tied."""
    return rng.choice([0.9, 0.75, 0.5, 0.5, 0.25, 0.05]) if rng.random() < 0.5 else rng.random()


def make_case(seed, images, categories, per_image, dense_image=None, dense_count=0):
    rng = random.Random(seed)
    image_ids = rng.sample(range(1, 10_000), images)  # non-contiguous, listed unsorted
    category_ids = sorted(rng.sample(range(1, 91), categories))
    no_gt_category = category_ids[-1]  # has detections but no ground truth
    no_gt_images = set(image_ids[:2])
    no_dt_images = set(image_ids[2:4])
    annotations, detections = [], []
    next_id = rng.randint(1, 500)
    for image in image_ids:
        if image in no_gt_images:
            count = 0
        else:
            count = rng.randint(1, per_image)
        for _ in range(count):
            category = rng.choice(category_ids[:-1])
            size = rng.choice(list(SIZES))
            box = random_box(rng, size)
            crowd = rng.random() < 0.08
            area = box[2] * box[3] * (rng.uniform(0.4, 1.0) if rng.random() < 0.7 else 1.0)
            if rng.random() < 0.05:
                area = rng.choice([32.0 ** 2, 96.0 ** 2, 1024, 9216])  # on a range boundary
            annotation = {"id": next_id, "image_id": image, "category_id": category, "bbox": box,
                          "area": rough(rng, area), "iscrowd": (True if rng.random() < 0.5 else 1) if crowd else 0,
                          "segmentation": [[box[0], box[1], box[0] + box[2], box[1], box[0] + box[2], box[1] + box[3]]]}
            next_id += rng.randint(1, 3)
            annotations.append(annotation)
            if rng.random() < 0.1:  # the same box twice: equal IoUs
                twin = dict(annotation, id=next_id)
                next_id += 1
                annotations.append(twin)
            if image in no_dt_images:
                continue
            for _ in range(rng.choice([0, 1, 1, 1, 2, 3] if not crowd else [1, 2, 4])):
                shown = crowd and rng.random() < 0.6
                inner = box
                if shown:  # a detection inside the crowd region
                    inner = [box[0] + box[2] * 0.2, box[1] + box[3] * 0.2, box[2] * 0.4, box[3] * 0.5]
                detections.append({"image_id": image, "category_id": category,
                                   "bbox": jitter(rng, inner, rng.choice([0.02, 0.08, 0.2, 0.4])), "score": score(rng)})
        if image in no_dt_images:
            continue
        for _ in range(rng.randint(0, 4)):  # false positives, some in the category without ground truth
            detections.append({"image_id": image, "category_id": rng.choice(category_ids),
                               "bbox": random_box(rng, rng.choice(list(SIZES))), "score": score(rng)})
    if dense_image is not None:
        # One image with dense_count detections of one category: 40 % scored 0.60-0.99, the rest 0.10-0.30 (2
        # decimals, so many ties), and four extra objects of that category, found by detections scored 0.45 (ranked
        # after the first 40 %) and 0.001 (ranked last): their recall depends on maxDets 100 / 300 / 1000.
        image, category = image_ids[dense_image], category_ids[0]
        for n in range(4):
            box = random_box(rng, rng.choice(["medium", "large"]))
            annotations.append({"id": next_id, "image_id": image, "category_id": category, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
            next_id += 1
            detections.append({"image_id": image, "category_id": category, "bbox": jitter(rng, box, 0.02),
                               "score": 0.45 if n % 2 == 0 else 0.001})
        for n in range(dense_count):
            high = n < dense_count * 0.4
            detections.append({"image_id": image, "category_id": category, "bbox": random_box(rng, rng.choice(list(SIZES))),
                               "score": round(rng.uniform(0.6, 0.99) if high else rng.uniform(0.1, 0.3), 2)})
    if detections:
        detections.append({"image_id": detections[0]["image_id"], "category_id": detections[0]["category_id"],
                           "bbox": [10.0, 10.0, 0.0, 25.0], "score": 0.5})  # zero width: IoU 0, area 0
    rng.shuffle(detections)  # file order decides ties
    rng.shuffle(annotations)
    gt = {"info": {"description": f"random COCO fixture, seed {seed}"},
          "images": [{"id": i, "width": 640, "height": 480, "file_name": f"{i:012d}.jpg"} for i in image_ids],
          "annotations": annotations,
          "categories": [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in category_ids]}
    assert no_gt_category not in {a["category_id"] for a in annotations}
    return gt, detections


def summarize(E, maxdets_for_ap, lines):
    """COCOeval.summarize's _summarize over E.eval, with the AP lines (and ARs/ARm/ARl) at maxdets_for_ap."""
    p = E.params
    i_str = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}"

    def one(ap, iou_thr=None, area="all", max_dets=100):
        a = [i for i, label in enumerate(p.areaRngLbl) if label == area]
        m = [i for i, d in enumerate(p.maxDets) if d == max_dets]
        s = E.eval["precision"] if ap else E.eval["recall"]
        if iou_thr is not None:
            s = s[np.where(iou_thr == p.iouThrs)[0]]
        s = s[:, :, :, a, m] if ap else s[:, :, a, m]
        mean = -1 if len(s[s > -1]) == 0 else np.mean(s[s > -1])
        iou_text = "{:0.2f}:{:0.2f}".format(p.iouThrs[0], p.iouThrs[-1]) if iou_thr is None else "{:0.2f}".format(iou_thr)
        lines.append(i_str.format("Average Precision" if ap else "Average Recall", "(AP)" if ap else "(AR)", iou_text,
                                  area, max_dets, mean))
        return float(mean)

    last = maxdets_for_ap
    return [one(1, max_dets=last), one(1, .5, max_dets=last), one(1, .75, max_dets=last),
            one(1, area="small", max_dets=last), one(1, area="medium", max_dets=last), one(1, area="large", max_dets=last),
            one(0, max_dets=p.maxDets[0]), one(0, max_dets=p.maxDets[1]), one(0, max_dets=p.maxDets[2]),
            one(0, area="small", max_dets=last), one(0, area="medium", max_dets=last), one(0, area="large", max_dets=last)]


def evaluate(gt_path, dt_path, max_dets):
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        coco = COCO(gt_path)
        E = COCOeval(coco, coco.loadRes(dt_path), "bbox")
        E.params.maxDets = list(max_dets)
        E.evaluate()
        E.accumulate()
        if list(max_dets) == [1, 10, 100]:
            E.summarize()
    if list(max_dets) == [1, 10, 100]:
        lines = [line for line in printed.getvalue().splitlines() if line.startswith(" Average")]
        check = []
        values = summarize(E, 100, check)
        assert lines == check and [float(v) for v in E.stats] == values
        return values, lines
    lines = []
    return summarize(E, max_dets[-1], lines), lines


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = [
        ("basic", make_case(seed=1, images=8, categories=4, per_image=4)),
        ("crowded", make_case(seed=2, images=12, categories=3, per_image=9)),
        ("dense", make_case(seed=3, images=10, categories=5, per_image=6, dense_image=5, dense_count=480)),
        ("mixed", make_case(seed=4, images=40, categories=6, per_image=7, dense_image=9, dense_count=160)),
    ]
    expected = {"generator": "scripts/make_coco_eval_fixtures.py",
                "pycocotools": importlib.metadata.version("pycocotools"),
                "numpy": np.__version__, "cases": []}
    for name, (gt, dt) in cases:
        gt_file, dt_file = f"{name}_gt.json", f"{name}_dt.json"
        with open(os.path.join(OUT, gt_file), "w") as f:
            json.dump(gt, f, separators=(",", ":"), indent=None if name != "basic" else 1)
        with open(os.path.join(OUT, dt_file), "w") as f:
            json.dump(dt, f, separators=(",", ":"))
        standard, standard_lines = evaluate(os.path.join(OUT, gt_file), os.path.join(OUT, dt_file), [1, 10, 100])
        mmdet, mmdet_lines = evaluate(os.path.join(OUT, gt_file), os.path.join(OUT, dt_file), [100, 300, 1000])
        expected["cases"].append({
            "name": name, "gt": gt_file, "dt": dt_file,
            "images": len(gt["images"]), "annotations": len(gt["annotations"]), "detections": len(dt),
            "standard": {"maxDets": [1, 10, 100], "values": dict(zip(KEYS_STANDARD, standard)), "lines": standard_lines},
            "mmdetection": {"maxDets": [100, 300, 1000], "values": dict(zip(KEYS_MMDET, mmdet)), "lines": mmdet_lines},
        })
        print(name, len(gt["annotations"]), "annotations,", len(dt), "detections")
        print("\n".join(standard_lines))
        print("\n".join(mmdet_lines))
    with open(os.path.join(OUT, "coco_eval_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
