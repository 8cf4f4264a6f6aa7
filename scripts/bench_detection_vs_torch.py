#!/usr/bin/env python3
"""Side-by-side detection training-step benchmark: `lors-bench step --model adamixer-tiny[-lors]` vs PyTorch (CPU) on
the same small AdaMixer detector.

Model (`DetectorRunner.tiny` in Sources/lors-bench/DetectionStepBench.swift, = configs/fmnist_det_adamixer*.yaml's
model section): ResNet-18 at base width 32 with GroupNorm(8), all stages trainable; a 1x1 channel mapper per level
(C2-C5) to 64 channels with one GroupNorm(32); 30 queries; 6 decoder stages with content 64, FFN 256, 8 heads, 10
classes, P_out 64; vanilla: per-stage adaptive mixing with G 4 x P_in 16; --lors: G 2 x P_in 32 with the shared
factorised mixing (LORSA rank 4, groups 1,1,2,2,3,3; LORST rank 2). Batch 16 of 256x256 random images, 3 random boxes
per image with random labels.

One step, on both sides: forward of backbone, neck, query generator and the 6 stages; for every stage, Hungarian
matching per image on the detached predictions (FocalLossCost 2 + BBoxL1Cost 5 + GIoU cost 2; PyTorch side:
batched cost matrices, scipy's linear_sum_assignment per image); focal (2), L1 (5, boxes divided by the image size) and
GIoU (2) losses divided by the matched count, summed over stages; backward; AdamW (lr 1e-4, weight decay 1e-4);
zero_grad. The PyTorch detector is the fixture reference of scripts/make_detector_fixtures.py (backbone of
make_resnet_fixtures.py, decoder stage of make_adamixer_fixtures.py: the official stage computation with
F.multi_head_attention_forward, F.grid_sample for the 3-D sampling and batched matmuls for the mixing of all queries
at once), imported and run in float32 with its parameters as leaf tensors; the losses are those of
make_detection_loss_fixtures.py. Weights are random (speed does not depend on them); both sides report their parameter
counts, which must be equal.

Both sides use the same thread count (torch.set_num_threads; lors-bench --threads) and alternate: each round runs
lors-bench for N timed steps (after its 2 warm-up steps, in a fresh process), then N PyTorch steps (the PyTorch model
is built and warmed up once, before the first round). Reports the median of each side's per-round medians and the
ratio torch_ms / lors_ms (>= 1 means lors is at least as fast): a table on stderr, a JSON object on stdout. PyTorch and
scipy are used only here, never by the product.

Usage: python3 scripts/bench_detection_vs_torch.py [--lors] [--threads 2] [--steps 5] [--rounds 3] [--batch 16]
           [--size 256] [--binary .build/release/lors-bench]
Build the binary first: swift build -c release --product lors-bench
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# DetectorRunner.tiny
WIDTH, BACKBONE_GROUPS, NECK_GROUPS = 32, 8, 32
QUERIES, CONTENT, FFN, HEADS, CLASSES, P_OUT, STAGES = 30, 64, 256, 8, 10, 64, 6
VANILLA = dict(G=4, P_IN=16)
LORS = dict(G=2, P_IN=32, LORSA_RANK=4, LORSA_GROUPS=[1, 1, 2, 2, 3, 3], LORST_RANK=2, LORST_GROUPS=[1] * 6)
BOXES_PER_IMAGE = 3
FOCAL_ALPHA, FOCAL_GAMMA, FOCAL_EPS = 0.25, 2.0, 1e-12
CLS_W, L1_W, GIOU_W = 2.0, 5.0, 2.0
LR, WEIGHT_DECAY = 1e-4, 1e-4


class TorchDetector:
    """The fixture reference detector in float32, with a training step."""

    def __init__(self, batch, size, lors):
        import torch
        import make_adamixer_fixtures as dec
        import make_detector_fixtures as det
        import make_resnet_fixtures as res
        from make_detection_loss_fixtures import giou_loss, sigmoid_focal_loss
        from scipy.optimize import linear_sum_assignment

        self.torch, self.dec, self.det = torch, dec, det
        self.giou_loss, self.focal, self.lsa = giou_loss, sigmoid_focal_loss, linear_sum_assignment
        self.lors, self.batch, self.size = lors, batch, size
        f32 = torch.float32
        # The reference scripts read their sizes and dtype from module globals when called.
        dec.DT = det.DT = f32
        det.BATCH, det.QUERIES, det.C, det.NECK_GROUPS = batch, QUERIES, CONTENT, NECK_GROUPS
        det.VALID = [(size, size)] * batch
        sizes = LORS if lors else VANILLA
        dec.B, dec.N, dec.C, dec.HEADS, dec.FFN, dec.CLASSES, dec.P_OUT, dec.STAGES = \
            batch, QUERIES, CONTENT, HEADS, FFN, CLASSES, P_OUT, STAGES
        dec.G, dec.P_IN, dec.CG = sizes["G"], sizes["P_IN"], CONTENT // sizes["G"]
        if lors:
            dec.LORSA_RANK, dec.LORSA_GROUPS = LORS["LORSA_RANK"], LORS["LORSA_GROUPS"]
            dec.LORST_RANK, dec.LORST_GROUPS = LORS["LORST_RANK"], LORS["LORST_GROUPS"]

        torch.manual_seed(0)
        res.GN_GROUPS = BACKBONE_GROUPS
        self.backbone = res.ResNet([2, 2, 2, 2], WIDTH, "gn")
        res.randomize(self.backbone)
        self.backbone.train()
        p = {}
        for level, cin in enumerate(WIDTH << k for k in range(4)):
            p["neck.convs.%d.weight" % level] = dec.uniform((CONTENT, cin, 1, 1), (1.0 / cin) ** 0.5)
            p["neck.convs.%d.bias" % level] = dec.uniform((CONTENT,), 0.2)
        p["neck.norm.weight"] = 1 + dec.uniform((CONTENT,), 0.2)
        p["neck.norm.bias"] = dec.uniform((CONTENT,), 0.2)
        cxcy = 0.3 + 0.4 * torch.rand(QUERIES, 2)
        wh = 0.2 + 0.6 * torch.rand(QUERIES, 2)
        p["query.init_proposal_bboxes.weight"] = torch.cat([cxcy, wh], dim=-1)
        p["query.init_content_features.weight"] = torch.randn(QUERIES, CONTENT)
        self.shared = {k: v.to(f32).requires_grad_() for k, v in p.items()}
        q = {}
        for s in range(STAGES):
            self.stage_params(q, s, not lors)
        if lors:
            dec.lors_params(q)
        self.decoder = {k: v.to(f32).requires_grad_() for k, v in q.items()}
        self.parameters = list(self.backbone.parameters()) + list(self.shared.values()) + list(self.decoder.values())
        self.optimizer = torch.optim.AdamW(self.parameters, lr=LR, weight_decay=WEIGHT_DECAY)

        # Inputs as DetectorRunner draws them (uniform images in [-2, 2); boxes 10-40% of the side, random labels).
        self.images = torch.rand(batch, 3, size, size) * 4 - 2
        wh = size * (0.1 + 0.3 * torch.rand(batch, BOXES_PER_IMAGE, 2))
        xy = (size - wh) * torch.rand(batch, BOXES_PER_IMAGE, 2)
        self.gt_boxes = torch.cat([xy, xy + wh], dim=-1)  # [B, G, 4]
        self.gt_labels = torch.randint(0, CLASSES, (batch, BOXES_PER_IMAGE))
        self.whwh = torch.tensor([size, size, size, size], dtype=f32)
        self.normaliser = float(batch * min(BOXES_PER_IMAGE, QUERIES))

    def stage_params(self, p, s, vanilla):
        """make_adamixer_fixtures.stage_params for any P_in (its sampling-offset bias assumes a square P_in): the same
        parameters and shapes; the offset bias puts the points uniformly in the box (x, y in [-0.5, 0.5], z -1)."""
        torch, dec = self.torch, self.dec
        C, G, P_IN, CG = dec.C, dec.G, dec.P_IN, dec.CG
        pre = "stages.%d." % s
        dec.linear_params(p, pre + "attention.qkv", C, 3 * C)
        dec.linear_params(p, pre + "attention.proj", C, C)
        dec.norm_params(p, pre + "attention_norm", C)
        p[pre + "iof_tau"] = torch.rand(HEADS) * 4
        dec.linear_params(p, pre + "sampling_offset", C, G * P_IN * 3, scale=0.1)
        bias = torch.cat([torch.rand(G * P_IN, 2) - 0.5, -torch.ones(G * P_IN, 1)], dim=1)
        p[pre + "sampling_offset.bias"] = bias.flatten()
        if vanilla:
            dec.linear_params(p, pre + "mixing.parameter_generator", C, G * (CG * CG + P_IN * P_OUT))
            dec.linear_params(p, pre + "mixing.out_proj", G * P_OUT * CG, C)
            dec.norm_params(p, pre + "mixing.norm", C)
        dec.linear_params(p, pre + "ffn.fc1", C, FFN)
        dec.linear_params(p, pre + "ffn.fc2", FFN, C)
        dec.norm_params(p, pre + "ffn_norm", C)
        dec.linear_params(p, pre + "cls_fc", C, C)
        dec.norm_params(p, pre + "cls_norm", C)
        dec.linear_params(p, pre + "fc_cls", C, CLASSES)
        dec.linear_params(p, pre + "reg_fc", C, C)
        dec.norm_params(p, pre + "reg_norm", C)
        dec.linear_params(p, pre + "fc_reg", C, 4, scale=0.1)

    def parameter_count(self):
        return sum(t.numel() for t in self.parameters)

    def pairwise_giou(self, a, b, eps=1e-6):
        """mmdet bbox_overlaps(mode='giou') for every query and box of every image: a [B, Q, 4], b [B, G, 4] -> [B, Q, G]."""
        torch = self.torch
        area1 = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
        area2 = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        lt = torch.max(a[:, :, None, :2], b[:, None, :, :2])
        rb = torch.min(a[:, :, None, 2:], b[:, None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        overlap = wh[..., 0] * wh[..., 1]
        union = (area1[:, :, None] + area2[:, None, :] - overlap).clamp(min=eps)
        ewh = (torch.max(a[:, :, None, 2:], b[:, None, :, 2:]) - torch.min(a[:, :, None, :2], b[:, None, :, :2])).clamp(min=0)
        enclose = (ewh[..., 0] * ewh[..., 1]).clamp(min=eps)
        return overlap / union - (enclose - union) / enclose

    def match(self, logits, corners):
        """HungarianAssigner on detached predictions: (image, query, gt) index tensors of the matched pairs."""
        torch = self.torch
        with torch.no_grad():
            p = logits.sigmoid()
            labels = self.gt_labels[:, None, :].expand(-1, QUERIES, -1)
            pg = torch.gather(p, 2, labels)  # [B, Q, G]
            neg = -(1 - pg + FOCAL_EPS).log() * (1 - FOCAL_ALPHA) * pg.pow(FOCAL_GAMMA)
            pos = -(pg + FOCAL_EPS).log() * FOCAL_ALPHA * (1 - pg).pow(FOCAL_GAMMA)
            l1 = torch.cdist(corners / self.whwh, self.gt_boxes / self.whwh, p=1)
            cost = (pos - neg) * CLS_W + l1 * L1_W - self.pairwise_giou(corners, self.gt_boxes) * GIOU_W
            cost = cost.numpy()
        images, queries, gts = [], [], []
        for j in range(self.batch):
            rows, cols = self.lsa(cost[j])
            images += [j] * len(rows)
            queries += rows.tolist()
            gts += cols.tolist()
        return torch.tensor(images), torch.tensor(queries), torch.tensor(gts)

    def loss(self, outputs):
        torch = self.torch
        total = 0
        for logits, boxes in outputs:
            corners = self.dec.decode_box(boxes)
            j, q, g = self.match(logits, corners.detach())
            target = torch.zeros_like(logits)
            target[j, q, self.gt_labels[j, g]] = 1
            matched, gt = corners[j, q], self.gt_boxes[j, g]
            total = total + CLS_W * self.focal(logits, target).sum() / self.normaliser \
                + L1_W * (matched / self.whwh - gt / self.whwh).abs().sum() / self.normaliser \
                + GIOU_W * self.giou_loss(matched, gt).sum() / self.normaliser
        return total

    def forward(self):
        features = self.det.neck_forward(self.shared, self.backbone(self.images))
        xyzr, content = self.det.query_forward(self.shared)
        outputs = []
        for s in range(STAGES):
            logits, boxes, content = self.dec.stage_forward(self.decoder, s, features, xyzr, content, not self.lors)
            outputs.append((logits, boxes))
            xyzr = boxes.detach()
        return outputs

    def step(self):
        started = time.perf_counter()
        loss = self.loss(self.forward())
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return time.perf_counter() - started, loss.item()


def lors_round(binary, model, batch, size, threads, steps):
    out = subprocess.run([binary, "step", "--model", model, "--batch", str(batch), "--size", "%dx%d" % (size, size),
                          "--threads", str(threads), "--steps", str(steps), "--json"],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lors", action="store_true", help="the LORS detector (adamixer-tiny-lors)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=256, help="square input side (a multiple of 32)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round and side")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "lors-bench"))
    a = p.parse_args()
    if a.size % 32 or a.size < 32:
        p.error("--size %d must be a positive multiple of 32 (lors-bench pads to one)" % a.size)
    if not os.path.exists(a.binary):
        p.error("%s not found: build it with swift build -c release --product lors-bench" % a.binary)
    model = "adamixer-tiny-lors" if a.lors else "adamixer-tiny"

    import torch
    torch.set_num_threads(a.threads)
    reference = TorchDetector(a.batch, a.size, a.lors)
    for _ in range(2):
        reference.step()

    lors_runs, torch_rounds, losses = [], [], []
    for r in range(a.rounds):
        lors_runs.append(lors_round(a.binary, model, a.batch, a.size, a.threads, a.steps))
        times = []
        for _ in range(a.steps):
            seconds, loss = reference.step()
            times.append(seconds)
            losses.append(loss)
        torch_rounds.append(1000 * statistics.median(times))
        print("round %d: lors %.1f ms, torch %.1f ms" % (r + 1, lors_runs[-1]["median_ms"], torch_rounds[-1]), file=sys.stderr)

    lors_rounds = [run["median_ms"] for run in lors_runs]
    lors_ms, torch_ms = statistics.median(lors_rounds), statistics.median(torch_rounds)
    lors_params, torch_params = lors_runs[0]["parameters"], reference.parameter_count()
    print("%-22s %12s %12s" % (model, "lors", "torch"), file=sys.stderr)
    print("%-22s %12.1f %12.1f" % ("median ms / step", lors_ms, torch_ms), file=sys.stderr)
    print("%-22s %12d %12d" % ("parameters", lors_params, torch_params), file=sys.stderr)
    print("%-22s %12s %12.3f" % ("torch / lors", "", torch_ms / lors_ms), file=sys.stderr)
    if lors_params != torch_params:
        print("warning: parameter counts differ (lors %d, torch %d): the two models are not the same shape"
              % (lors_params, torch_params), file=sys.stderr)
    result = {
        "model": model, "batch": a.batch, "input": "%dx%d" % (a.size, a.size), "threads": a.threads,
        "steps_per_round": a.steps, "rounds": a.rounds,
        "lors_median_ms": lors_ms, "torch_median_ms": torch_ms, "torch_over_lors": torch_ms / lors_ms,
        "lors_round_medians_ms": [round(t, 1) for t in lors_rounds],
        "torch_round_medians_ms": [round(t, 1) for t in torch_rounds],
        "lors_parameters": lors_params, "torch_parameters": torch_params,
        "blas_core": lors_runs[0]["blas_core"], "lors_peak_rss_mb": lors_runs[0]["peak_rss_mb"],
        "torch_version": torch.__version__, "torch_last_loss": losses[-1] if losses else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
