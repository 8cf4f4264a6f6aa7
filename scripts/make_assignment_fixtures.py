#!/usr/bin/env python3
"""scipy and torch references for the detector's matching (Tests/LorsDetectionTests/HungarianMatchingTests.swift).

Writes to Tests/LorsDetectionTests/Fixtures/:

  assignment_solver.json   random cost matrices (float costs with 6 decimals, integer costs with many ties; square,
                           tall up to 300 x 60, a few wide ones, one without columns) with scipy's
                           `linear_sum_assignment` optimal cost and, where the optimum is unique (checked by forbidding
                           each matched pair in turn and solving again), its row for every column
  assignment_cost.json     per image: float32 query logits [Q, C], predicted boxes [Q, 4] xyxy, ground-truth boxes
                           [G, 4] and labels [G], the valid image size, and the cost matrix [Q, G] of mmdetection's
                           FocalLossCost(weight=2, alpha=0.25, gamma=2, eps=1e-12) + BBoxL1Cost(weight=5, xyxy boxes
                           over the image size) + IoUCost(giou, weight=2) (reimplemented below from mmdetection's
                           match_cost.py and bbox_overlaps), computed by torch in float64 from the float32 inputs
                           ("cost") and in float32 as mmdetection does ("cost_float32"), and scipy's assignment of the
                           float64 matrix

Float32 inputs are written as the shortest decimal that reads back to the same float32 through a double (checked).
Only for generating the committed fixtures (pip install numpy scipy torch); nothing runs it at test time.
Run: python3 scripts/make_assignment_fixtures.py
"""
import json
import os

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LorsDetectionTests", "Fixtures")
SEED = 20240611


def solve(cost):
    rows, cols = linear_sum_assignment(cost)
    return rows, cols, float(cost[rows, cols].sum())


def unique_optimum(cost, rows, cols, total):
    """True when no other assignment reaches the optimal total (each matched pair forbidden in turn)."""
    big = np.abs(cost).max() * (cost.size + 1) + 1.0
    for r, c in zip(rows, cols):
        other = cost.copy()
        other[r, c] = big
        _, _, t = solve(other)
        if abs(t - total) <= 1e-9 * max(1.0, abs(total)):
            return False
    return True


def solver_case(rng, name, nr, nc, integer):
    if integer:
        cost = rng.integers(0, 4, size=(nr, nc)).astype(np.float64)
    else:
        cost = np.round(rng.uniform(-50.0, 50.0, size=(nr, nc)), 6)
    rows, cols, total = solve(cost)
    case = {"name": name, "rows": nr, "columns": nc, "costs": [float(x) for x in cost.reshape(-1)], "total": total}
    if nr > 0 and nc > 0 and unique_optimum(cost, rows, cols, total):
        row_for_column = [None] * nc
        for r, c in zip(rows, cols):
            row_for_column[int(c)] = int(r)
        case["row_for_column"] = row_for_column
    return case


def f32_text(x):
    text = np.format_float_positional(np.float32(x), unique=True, trim="-")
    assert np.float32(float(text)) == np.float32(x), text
    return float(text)


# mmdetection's match costs (mmdet/core/bbox/match_costs/match_cost.py, bbox_overlaps with eps=1e-6), in torch.
def focal_loss_cost(cls_pred, gt_labels, weight=2.0, alpha=0.25, gamma=2, eps=1e-12):
    cls_pred = cls_pred.sigmoid()
    neg_cost = -(1 - cls_pred + eps).log() * (1 - alpha) * cls_pred.pow(gamma)
    pos_cost = -(cls_pred + eps).log() * alpha * (1 - cls_pred).pow(gamma)
    return (pos_cost[:, gt_labels] - neg_cost[:, gt_labels]) * weight


def bbox_l1_cost(bbox_pred, gt_bboxes, weight=5.0):
    return torch.cdist(bbox_pred, gt_bboxes, p=1) * weight


def giou(b1, b2, eps=1e-6):
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = torch.max(b1[:, None, :2], b2[None, :, :2])
    rb = torch.min(b1[:, None, 2:], b2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - overlap
    enclosed_lt = torch.min(b1[:, None, :2], b2[None, :, :2])
    enclosed_rb = torch.max(b1[:, None, 2:], b2[None, :, 2:])
    eps = union.new_tensor([eps])
    union = torch.max(union, eps)
    ious = overlap / union
    enclose_wh = (enclosed_rb - enclosed_lt).clamp(min=0)
    enclose_area = torch.max(enclose_wh[..., 0] * enclose_wh[..., 1], eps)
    return ious - (enclose_area - union) / enclose_area


def iou_cost(bboxes, gt_bboxes, weight=2.0):
    return -giou(bboxes, gt_bboxes) * weight


def matching_cost(logits, boxes, gt_boxes, gt_labels, width, height, dtype):
    logits, boxes, gt_boxes = (torch.from_numpy(a).to(dtype) for a in (logits, boxes, gt_boxes))
    labels = torch.from_numpy(gt_labels.astype(np.int64))
    factor = torch.tensor([width, height, width, height], dtype=dtype)[None]
    cost = focal_loss_cost(logits, labels) + bbox_l1_cost(boxes / factor, gt_boxes / factor) + iou_cost(boxes, gt_boxes)
    return cost.numpy().astype(np.float64)


def random_boxes(rng, n, width, height):
    x1 = rng.uniform(0, width * 0.9, n)
    y1 = rng.uniform(0, height * 0.9, n)
    x2 = np.minimum(x1 + rng.uniform(1, width * 0.6, n), width)
    y2 = np.minimum(y1 + rng.uniform(1, height * 0.6, n), height)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)


def cost_case(rng, name, queries, classes, gts, width, height, logit_scale, extra):
    logits = (rng.normal(-2.0, logit_scale, size=(queries, classes))).astype(np.float32)
    boxes = random_boxes(rng, queries, width, height)
    gt_boxes = random_boxes(rng, gts, width, height)
    gt_labels = rng.integers(0, classes, size=gts).astype(np.int32)
    if extra and gts > 0:
        # Predictions on a ground-truth box, degenerate (zero-area) and outside boxes, saturated logits.
        boxes[0] = gt_boxes[0]
        boxes[1] = [10, 10, 10, 30]
        boxes[2] = [5, 5, 5, 5]
        boxes[3] = [width - 1, height - 1, width + 40, height + 40]
        logits[4, gt_labels[0]] = 20.0
        logits[5, gt_labels[0]] = -30.0
        logits[6, :] = 8.0
    cost = matching_cost(logits, boxes, gt_boxes, gt_labels, width, height, torch.float64)
    cost32 = matching_cost(logits, boxes, gt_boxes, gt_labels, width, height, torch.float32)
    rows, cols, total = solve(cost) if gts > 0 else ([], [], 0.0)
    row_for_column = [None] * gts
    for r, c in zip(rows, cols):
        row_for_column[int(c)] = int(r)
    return {
        "name": name, "queries": queries, "classes": classes, "width": width, "height": height,
        "logits": [f32_text(x) for x in logits.reshape(-1)],
        "boxes": [f32_text(x) for x in boxes.reshape(-1)],
        "gt_boxes": [f32_text(x) for x in gt_boxes.reshape(-1)],
        "gt_labels": [int(x) for x in gt_labels],
        "cost": [float(x) for x in cost.reshape(-1)],
        "cost_float32": [float(x) for x in cost32.reshape(-1)],
        "total": total,
        "row_for_column": row_for_column,
    }


def main():
    rng = np.random.default_rng(SEED)
    solver = []
    sizes = [(300, 60), (300, 20), (200, 60), (100, 100), (60, 60), (150, 7), (80, 40), (40, 30), (17, 17), (9, 7),
             (30, 1), (1, 1), (12, 0), (20, 60), (7, 9)]
    for i, (nr, nc) in enumerate(sizes):
        solver.append(solver_case(rng, f"float_{nr}x{nc}", nr, nc, integer=False))
    for nr, nc in [(100, 40), (50, 50), (30, 80), (25, 10), (8, 8)]:
        solver.append(solver_case(rng, f"integer_{nr}x{nc}", nr, nc, integer=True))

    costs = [
        cost_case(rng, "q100_c80_g7", 100, 80, 7, 1199, 800, 2.0, extra=True),
        cost_case(rng, "q100_c80_g30", 100, 80, 30, 800, 1066, 3.0, extra=True),
        cost_case(rng, "q300_c12_g25", 300, 12, 25, 1333, 750, 2.5, extra=True),
        cost_case(rng, "q100_c20_g1", 100, 20, 1, 640, 480, 1.0, extra=False),
        cost_case(rng, "q50_c10_g0", 50, 10, 0, 512, 512, 1.0, extra=False),
    ]
    versions = {"numpy": np.__version__, "torch": torch.__version__, "scipy": __import__("scipy").__version__}
    for name, payload in [("assignment_solver.json", {"seed": SEED, "versions": versions, "cases": solver}),
                          ("assignment_cost.json", {"seed": SEED, "versions": versions, "cases": costs})]:
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(payload, f, separators=(",", ":"))
            f.write("\n")
    print("unique optima:", sum("row_for_column" in c for c in solver), "of", len(solver))


if __name__ == "__main__":
    main()
