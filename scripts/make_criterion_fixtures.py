#!/usr/bin/env python3
"""PyTorch/scipy reference of the WHOLE 6-stage AdaMixer criterion (`AdaMixerCriterion`,
Tests/LorsTrainingTests/CriterionReferenceTests.swift): box decoding, per-stage per-image Hungarian matching on the
detached predictions, the per-stage loss and the sum over stages, with the gradients w.r.t. every stage's inputs.

The formulas are mmdetection's (AdaMixer's `QueryRoIHead` with `DIIHead.loss` and `HungarianAssigner`), reimplemented
here with plain torch and scipy:
  decode     (x, y, z, r) -> xyxy with w = 2^(z - r/2), h = 2^(z + r/2) (AdaMixer's `decode_box`)
  matching   per stage and image, on the DETACHED decoded boxes: cost[q, g] = FocalLossCost(weight 2, alpha 0.25,
             gamma 2, eps 1e-12) of gt g's class + BBoxL1Cost(weight 5, xyxy of both divided by the image's valid
             (w, h, w, h)) + IoUCost(giou, weight 2) = -2 * GIoU; solved by scipy.optimize.linear_sum_assignment
  stage loss 2 * focal(all queries x classes, one-hot targets of the matched queries).sum() / N
             + 5 * L1(matched boxes / valid whwh).sum() / N + 2 * GIoU loss(matched absolute boxes).sum() / N
             (the focal and GIoU losses are scripts/make_detection_loss_fixtures.py's)
  total      the stage losses summed with weight 1
N is a given normaliser, NOT this batch's own matched count (9 here, N = 12): on one rank of several it is the matched
count summed over the ranks.

Inputs, drawn once in float32 (the references are computed in float64 from those exact values, rounded once):
  3 images with valid sizes (h, w) 96 x 128, 80 x 64, 112 x 100; 3, 0 and 6 ground-truth boxes (the second image has
  none: focal negatives only; the third has G = Q, every query matched); Q = 6 queries, C = 4 classes, 6 stages.
  Each stage's predictions are the ground truth (or random boxes) jittered, with random logits, so the assignments
  differ between stages and from the identity.
The script checks that every optimal assignment is unique by a margin: the second-best assignment (the best one
that avoids at least one pair of the optimum) costs more than MARGIN above the optimum; it redraws otherwise.

Files: Tests/LorsTrainingTests/Fixtures/criterion_reference.bin (little-endian float32) and criterion_reference.json
(`tensors: {name: {offset, shape}}`, offsets in floats; `meta` with the sizes, the ground truth, the normaliser, the
float64 results and the matching). Tensors:
  stage<s>/logits [B, Q, C], stage<s>/boxes [B, Q, 4]            inputs
  stage<s>/grad_logits, stage<s>/grad_boxes                     d total / d input (float64 autograd, rounded)
meta: valid [[h, w]], gt_boxes [[x1, y1, x2, y2, ...]] and gt_labels per image, normaliser, total, classification,
l1, giou (summed over stages), matches[s][j][g] = the query matched to image j's box g at stage s, margins[s][j].

Usage: python3 scripts/make_criterion_fixtures.py   (torch and scipy; run from anywhere). Deterministic.
"""
import itertools
import json
import os
import sys

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_detection_loss_fixtures import giou_loss, sigmoid_focal_loss  # noqa: E402
from fixture_io import pack_tensors  # noqa: E402

DT = torch.float64
STAGES, QUERIES, CLASSES = 6, 6, 4
VALID = [(96, 128), (80, 64), (112, 100)]  # (height, width)
GT_COUNTS = [3, 0, 6]
NORMALISER = float(sum(min(g, QUERIES) for g in GT_COUNTS) + 3)
MARGIN = 1e-3
FOCAL_ALPHA, FOCAL_GAMMA, FOCAL_EPS = 0.25, 2.0, 1e-12
CLS_W, L1_W, GIOU_W = 2.0, 5.0, 2.0


def decode(xyzr):
    z, r = xyzr[..., 2:3], xyzr[..., 3:4]
    w, h = 2.0 ** (z - 0.5 * r), 2.0 ** (z + 0.5 * r)
    xy = xyzr[..., 0:2]
    return torch.cat([xy - 0.5 * torch.cat([w, h], -1), xy + 0.5 * torch.cat([w, h], -1)], -1)


def encode(box):
    w, h = box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]
    return torch.stack([0.5 * (box[..., 0] + box[..., 2]), 0.5 * (box[..., 1] + box[..., 3]),
                        torch.log2((w * h).sqrt()), torch.log2(h / w)], -1)


def pairwise_giou(a, b, eps=1e-6):
    """mmdet bbox_overlaps(a, b, mode='giou'), [Q, G]."""
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area2 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = (area1[:, None] + area2[None, :] - overlap).clamp(min=eps)
    elt = torch.min(a[:, None, :2], b[None, :, :2])
    erb = torch.max(a[:, None, 2:], b[None, :, 2:])
    ewh = (erb - elt).clamp(min=0)
    enclose = (ewh[..., 0] * ewh[..., 1]).clamp(min=eps)
    return overlap / union - (enclose - union) / enclose


def matching_cost(logits, boxes, gt_boxes, gt_labels, h, w):
    """mmdet HungarianAssigner with FocalLossCost + BBoxL1Cost + IoUCost(giou), [Q, G]; inputs detached."""
    p = logits.sigmoid()
    neg = -(1 - p + FOCAL_EPS).log() * (1 - FOCAL_ALPHA) * p.pow(FOCAL_GAMMA)
    pos = -(p + FOCAL_EPS).log() * FOCAL_ALPHA * (1 - p).pow(FOCAL_GAMMA)
    cls_cost = (pos[:, gt_labels] - neg[:, gt_labels]) * CLS_W
    whwh = torch.tensor([w, h, w, h], dtype=DT)
    l1_cost = torch.cdist(boxes / whwh, gt_boxes / whwh, p=1) * L1_W
    iou_cost = -pairwise_giou(boxes, gt_boxes) * GIOU_W
    return cls_cost + l1_cost + iou_cost


def solve(cost):
    """Optimal query per gt and the margin to the second-best assignment (forbidding each optimal pair in turn)."""
    rows, cols = linear_sum_assignment(cost)
    best = cost[rows, cols].sum()
    second = np.inf
    if cost.shape[1] > 0 and cost.shape[0] > 1:
        for r, c in zip(rows, cols):
            forbidden = cost.copy()
            forbidden[r, c] = 1e9
            rr, cc = linear_sum_assignment(forbidden)
            second = min(second, forbidden[rr, cc].sum())
    query_for_gt = [0] * cost.shape[1]
    for r, c in zip(rows, cols):
        query_for_gt[c] = int(r)
    return query_for_gt, second - best


def draw(generator):
    gt_boxes, gt_labels = [], []
    for (h, w), count in zip(VALID, GT_COUNTS):
        bw = w * (0.15 + 0.45 * torch.rand(count, generator=generator, dtype=DT))
        bh = h * (0.15 + 0.45 * torch.rand(count, generator=generator, dtype=DT))
        x1 = (w - bw) * torch.rand(count, generator=generator, dtype=DT)
        y1 = (h - bh) * torch.rand(count, generator=generator, dtype=DT)
        gt_boxes.append(torch.stack([x1, y1, x1 + bw, y1 + bh], -1).float().to(DT))
        gt_labels.append(torch.randint(0, CLASSES, (count,), generator=generator))
    logits, boxes = [], []
    for _ in range(STAGES):
        stage_boxes = torch.zeros(len(VALID), QUERIES, 4, dtype=DT)
        for j, (h, w) in enumerate(VALID):
            # Queries around a random permutation of the gt boxes (the rest random), jittered.
            centre = torch.stack([w * (0.2 + 0.6 * torch.rand(QUERIES, generator=generator, dtype=DT)),
                                  h * (0.2 + 0.6 * torch.rand(QUERIES, generator=generator, dtype=DT))], -1)
            z = torch.log2(torch.tensor(float(min(h, w)), dtype=DT)) - 2 + torch.rand(QUERIES, generator=generator, dtype=DT)
            r = torch.rand(QUERIES, generator=generator, dtype=DT) - 0.5
            xyzr = torch.cat([centre, z[:, None], r[:, None]], -1)
            count = GT_COUNTS[j]
            if count:
                target = encode(gt_boxes[j])
                order = torch.randperm(QUERIES, generator=generator)[:count]
                jitter = torch.randn(count, 4, generator=generator, dtype=DT) * torch.tensor([6, 6, 0.25, 0.3], dtype=DT)
                xyzr[order] = target + jitter
            stage_boxes[j] = xyzr
        logits.append((torch.randn(len(VALID), QUERIES, CLASSES, generator=generator, dtype=DT) * 2).float().to(DT))
        boxes.append(stage_boxes.float().to(DT))
    return gt_boxes, gt_labels, logits, boxes


def criterion(logits, boxes, gt_boxes, gt_labels):
    """Total and parts summed over stages (autograd through logits and boxes), the matching, the margins."""
    total = classification = l1 = giou = 0
    matches, margins = [], []
    for s in range(STAGES):
        corners = decode(boxes[s])
        stage_matches, stage_margins = [], []
        onehot = torch.zeros(len(VALID), QUERIES, CLASSES, dtype=DT)
        pos, target, whwh = [], [], []
        for j, (h, w) in enumerate(VALID):
            if GT_COUNTS[j] == 0:
                stage_matches.append([])
                stage_margins.append(None)
                continue
            cost = matching_cost(logits[s][j].detach(), corners[j].detach(), gt_boxes[j], gt_labels[j], h, w).numpy()
            query_for_gt, margin = solve(cost)
            stage_matches.append(query_for_gt)
            stage_margins.append(float(margin))
            for g, q in enumerate(query_for_gt):
                onehot[j, q, int(gt_labels[j][g])] = 1
                pos.append(corners[j, q])
                target.append(gt_boxes[j][g])
                whwh.append(torch.tensor([w, h, w, h], dtype=DT))
        pos, target, whwh = torch.stack(pos), torch.stack(target), torch.stack(whwh)
        c = CLS_W * (sigmoid_focal_loss(logits[s], onehot).sum() / NORMALISER)
        l = L1_W * ((pos / whwh - target / whwh).abs().sum() / NORMALISER)
        g = GIOU_W * (giou_loss(pos, target).sum() / NORMALISER)
        total = total + c + l + g
        classification, l1, giou = classification + c, l1 + l, giou + g
        matches.append(stage_matches)
        margins.append(stage_margins)
    return total, classification, l1, giou, matches, margins


def main():
    generator = torch.Generator().manual_seed(20241202)
    for attempt in itertools.count():
        gt_boxes, gt_labels, logits, boxes = draw(generator)
        logits = [t.clone().requires_grad_() for t in logits]
        boxes = [t.clone().requires_grad_() for t in boxes]
        total, classification, l1, giou, matches, margins = criterion(logits, boxes, gt_boxes, gt_labels)
        smallest = min(m for stage in margins for m in stage if m is not None)
        identity = all(m == list(range(len(m))) for stage in matches for m in stage)
        if smallest > MARGIN and not identity:
            break
        print("attempt %d: smallest margin %.2e, redrawing" % (attempt, smallest))
    total.backward()

    store = {}
    for s in range(STAGES):
        store["stage%d/logits" % s] = logits[s]
        store["stage%d/boxes" % s] = boxes[s]
        store["stage%d/grad_logits" % s] = logits[s].grad
        store["stage%d/grad_boxes" % s] = boxes[s].grad
    index, data = pack_tensors(store)
    meta = {"generator": "scripts/make_criterion_fixtures.py", "torch": torch.__version__,
            "stages": STAGES, "images": len(VALID), "queries": QUERIES, "classes": CLASSES,
            "valid": [list(v) for v in VALID], "normaliser": NORMALISER,
            "gt_boxes": [[float(v) for v in b.flatten().tolist()] for b in gt_boxes],
            "gt_labels": [[int(v) for v in l.tolist()] for l in gt_labels],
            "total": total.item(), "classification": classification.item(), "l1": l1.item(), "giou": giou.item(),
            "matches": matches, "margins": margins}
    target = os.path.join(HERE, "..", "Tests", "LorsTrainingTests", "Fixtures")
    with open(os.path.join(target, "criterion_reference.bin"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(target, "criterion_reference.json"), "w") as fh:
        json.dump({"meta": meta, "tensors": index}, fh, indent=0)
        fh.write("\n")
    print("wrote %d tensors, %d floats; total %.6f (cls %.6f, l1 %.6f, giou %.6f); smallest margin %.3e"
          % (len(store), offset, total.item(), classification.item(), l1.item(), giou.item(), smallest))


if __name__ == "__main__":
    main()
