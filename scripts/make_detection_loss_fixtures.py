#!/usr/bin/env python3
"""Writes Tests/LorsTensorTests/Fixtures/detection_loss.json, the PyTorch reference of `Tensor.giouLoss` and
`DetectionLoss` (Tests/LorsTensorTests/DetectionLossTests.swift).

The formulas are mmdetection's, reimplemented here with plain torch:
  giou       `giou_loss(pred, target, eps=1e-6)` = 1 - `bbox_overlaps(pred, target, mode='giou', is_aligned=True,
             eps=1e-6)`: unclamped areas, overlap clamped at 0, union and enclosing area clamped below at eps;
  focal      `py_sigmoid_focal_loss` (= torchvision `sigmoid_focal_loss`), alpha 0.25, gamma 2;
  stage loss (AdaMixer / Sparse R-CNN `DIIHead.loss`) 2 * focal(all queries x classes, one-hot targets for matched
             queries, zero for the others).sum() / N + 5 * L1(matched boxes / imgs_whwh).sum() / N
             + 2 * giou(matched absolute boxes).sum() / N, with N the number of matched queries over all ranks
             (here larger than this case's own matches, as on one rank of several).

Inputs are drawn in float32; the references are computed in float64 from those exact values (autograd for the
gradients, so the kinks take PyTorch's subgradients) and rounded once.

Cases:
  giou   pairs that overlap, are disjoint, nested both ways, touch, coincide in one coordinate, and predicted boxes
         of zero width, with x2 < x1, and with x2 < x1 and y2 < y1; the per-box loss and the gradients of
         sum(weights * loss) w.r.t. both boxes
  stage  B=2 images, Q=10 queries, C=5 classes, 3 and 4 matches (one matched predicted box with x2 < x1),
         normaliser 11; the weighted parts, their sum and its gradients w.r.t. logits and boxes

Usage: python3 scripts/make_detection_loss_fixtures.py   (PyTorch CPU; run from the repository root)
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LorsTensorTests", "Fixtures",
                   "detection_loss.json")
EPS = 1e-6
torch.manual_seed(20240611)


def giou_loss(pred, target, eps=EPS):
    """mmdet giou_loss with bbox_overlaps(..., mode='giou', is_aligned=True)."""
    area1 = (pred[..., 2] - pred[..., 0]) * (pred[..., 3] - pred[..., 1])
    area2 = (target[..., 2] - target[..., 0]) * (target[..., 3] - target[..., 1])
    lt = torch.max(pred[..., :2], target[..., :2])
    rb = torch.min(pred[..., 2:], target[..., 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1 + area2 - overlap
    enclosed_lt = torch.min(pred[..., :2], target[..., :2])
    enclosed_rb = torch.max(pred[..., 2:], target[..., 2:])
    eps_t = union.new_tensor([eps])
    union = torch.max(union, eps_t)
    ious = overlap / union
    enclose_wh = (enclosed_rb - enclosed_lt).clamp(min=0)
    enclose_area = enclose_wh[..., 0] * enclose_wh[..., 1]
    enclose_area = torch.max(enclose_area, eps_t)
    gious = ious - (enclose_area - union) / enclose_area
    return 1 - gious


def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    """mmdet py_sigmoid_focal_loss / torchvision sigmoid_focal_loss, unreduced."""
    p = logits.sigmoid()
    pt = (1 - p) * targets + p * (1 - targets)
    focal_weight = (alpha * targets + (1 - alpha) * (1 - targets)) * pt.pow(gamma)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none") * focal_weight


def floats(t):
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def giou_case():
    pred = [
        [10, 20, 50, 60], [0, 0, 10, 10], [5, 5, 15, 15], [0, 0, 40, 40], [30, 10, 60, 50],
        [12, 14, 12, 40], [40, 10, 20, 50], [60, 70, 20, 30], [0, 0, 10, 10], [100.5, 3.25, 180.75, 90.5], [0, 0, 10, 10],
    ]
    target = [
        [20, 30, 70, 65],    # overlapping
        [20, 15, 35, 40],    # disjoint
        [0, 0, 30, 30],      # predicted inside target
        [10, 5, 20, 25],     # target inside predicted
        [60, 20, 90, 40],    # touching at x = 60
        [5, 10, 30, 35],     # zero-width prediction inside the target's x range
        [10, 15, 50, 45],    # prediction with x2 < x1
        [15, 20, 55, 60],    # prediction with x2 < x1 and y2 < y1
        [0, 0, 10, 10],      # identical boxes
        [90.25, 10.5, 170.5, 95.75],
        [0, 2, 5, 15],       # one shared coordinate (x1): the min and the max split their gradient
    ]
    pred = torch.tensor(pred, dtype=torch.float32)
    target = torch.tensor(target, dtype=torch.float32)
    weights = torch.rand(len(pred), dtype=torch.float32) * 2 - 1
    p = pred.double().requires_grad_()
    t = target.double().requires_grad_()
    loss = giou_loss(p, t)
    (loss * weights.double()).sum().backward()
    return {"predicted": floats(pred), "target": floats(target), "weights": floats(weights), "loss": floats(loss),
            "gradPredicted": floats(p.grad), "gradTarget": floats(t.grad)}


def random_boxes(n, w, h):
    x1 = torch.rand(n) * w * 0.7
    y1 = torch.rand(n) * h * 0.7
    bw = 8 + torch.rand(n) * w * 0.3
    bh = 8 + torch.rand(n) * h * 0.3
    return torch.stack([x1, y1, torch.clamp(x1 + bw, max=w), torch.clamp(y1 + bh, max=h)], dim=1)


def stage_case():
    images, queries, classes = 2, 10, 5
    sizes = [(640.0, 480.0), (512.0, 600.0)]
    normaliser = 11.0
    logits = (torch.randn(images * queries, classes) * 2).to(torch.float32)
    boxes = torch.cat([random_boxes(queries, w, h) for w, h in sizes]).to(torch.float32)
    # A matched predicted box with x2 < x1 (mmdetection does not clamp predictions).
    boxes[3] = torch.tensor([300.0, 100.0, 260.0, 220.0])
    matches = [
        [(3, 0), (7, 4), (1, 2)],
        [(0, 1), (9, 1), (4, 3), (5, 0)],
    ]
    gt = {}
    match_json = []
    for b, (w, h) in enumerate(sizes):
        gboxes = random_boxes(len(matches[b]), w, h).to(torch.float32)
        entries = []
        for k, (q, label) in enumerate(matches[b]):
            gt[(b, q)] = (gboxes[k], label)
            entries.append({"query": q, "label": label, "box": floats(gboxes[k])})
        match_json.append(entries)

    x = logits.double().requires_grad_()
    bx = boxes.double().requires_grad_()
    onehot = torch.zeros(images * queries, classes, dtype=torch.float64)
    rows, tboxes, whwh = [], [], []
    for b, (w, h) in enumerate(sizes):
        for q, label in matches[b]:
            onehot[b * queries + q, label] = 1
            rows.append(b * queries + q)
            tboxes.append(gt[(b, q)][0].double())
            whwh.append(torch.tensor([w, h, w, h], dtype=torch.float64))
    rows = torch.tensor(rows)
    tboxes = torch.stack(tboxes)
    whwh = torch.stack(whwh)
    pos = bx[rows]
    cls = 2.0 * (sigmoid_focal_loss(x, onehot).sum() / normaliser)
    l1 = 5.0 * ((pos / whwh - tboxes / whwh).abs().sum() / normaliser)
    giou = 2.0 * (giou_loss(pos, tboxes).sum() / normaliser)
    total = cls + l1 + giou
    total.backward()
    return {"images": images, "queries": queries, "classes": classes, "normaliser": normaliser,
            "imageSizes": [[w, h] for w, h in sizes], "logits": floats(logits), "boxes": floats(boxes),
            "matches": match_json, "classification": float(cls.detach().float()), "l1": float(l1.detach().float()), "giou": float(giou.detach().float()),
            "total": float(total.detach().float()), "gradLogits": floats(x.grad), "gradBoxes": floats(bx.grad)}


def main():
    fixture = {"generator": "scripts/make_detection_loss_fixtures.py", "torch": torch.__version__,
               "giou": giou_case(), "stage": stage_case()}
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
