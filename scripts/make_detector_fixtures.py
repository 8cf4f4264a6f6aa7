#!/usr/bin/env python3
"""PyTorch reference of the WHOLE AdaMixer detector (Tests/LorsNNTests/AdaMixerDetectorReferenceTests.swift).

backbone -> neck -> query generator -> 6-stage decoder, vanilla and LORS, on two images of different valid sizes padded
into one batch, with random weights (not the training init). The pieces come from the other fixture scripts, with their
module-level sizes set to this detector's:

  backbone  scripts/make_resnet_fixtures.py: torchvision's ResNet-18 layout at base width 4 (C2-C5: 4, 8, 16, 32
            channels) with GroupNorm(2) and random affines
  neck      AdaMixer's ChannelMapping: a 1x1 conv with bias per level to C channels, then ONE GroupNorm(4) shared by
            the levels (written here)
  query     AdaMixer's InitialQueryGenerator: proposal boxes (cx, cy, w, h relative to the image) scaled by each image's
            VALID size (img_shape, not the padded size) and turned into (x, y, z, r); content through a LayerNorm
            without affine (written here)
  decoder   scripts/make_adamixer_fixtures.py (the official stage computation), 6 stages: content C = 16, 2 heads,
            FFN 32, 3 classes, P_out 4; vanilla G = 4 groups x P_in = 4 points; LORS G = 2 x P_in = 16 (the doubled
            P_in of the paper's setting), LORSA r = 2 with K = [1, 1, 2, 2, 3, 3], LORST r = 2

The batch is padded to 64 x 96 (H x W); the valid sizes are 64 x 80 and 48 x 96, the padding is zero (mmdetection pads
the normalised image with 0), and the padded features are sampled as they are (AdaMixer does not mask them).
Computes in float64 from float32-rounded weights and images; writes as float32:

  images                                    [2, 3, 64, 96]
  param/<name>                              backbone, neck and query parameters (Swift names)
  {vanilla,lors}/param/decoder.<name>       decoder parameters
  {vanilla,lors}/stage<s>/logits, /boxes    per stage: class logits [2, N, 3], boxes (x, y, z, r) [2, N, 4]

Files: Tests/LorsNNTests/Fixtures/detector_reference.bin (little-endian float32) and detector_reference.json
(`tensors: {name: {offset, shape}}`, offsets in floats; `meta`). Deterministic.
Run: python3 scripts/make_detector_fixtures.py   (needs only torch)
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_adamixer_fixtures as dec  # noqa: E402
import make_resnet_fixtures as res  # noqa: E402
from fixture_io import pack_tensors  # noqa: E402

DT = torch.float64
BATCH, QUERIES, C, HEADS, FFN, CLASSES, P_OUT, STAGES = 2, 5, 16, 2, 32, 3, 4, 6
WIDTH, BACKBONE_GROUPS, NECK_GROUPS = 4, 2, 4
PADDED = (64, 96)
VALID = [(64, 80), (48, 96)]  # (height, width)
SETTINGS = {"vanilla": dict(G=4, P_IN=4), "lors": dict(G=2, P_IN=16)}
LORSA_RANK, LORSA_GROUPS, LORST_RANK, LORST_GROUPS = 2, [1, 1, 2, 2, 3, 3], 2, [1] * 6


def configure_decoder(groups, in_points):
    """Sets the decoder reference's module-level sizes (its functions read them when called)."""
    dec.B, dec.N, dec.C, dec.HEADS, dec.FFN, dec.CLASSES, dec.P_OUT, dec.STAGES = BATCH, QUERIES, C, HEADS, FFN, CLASSES, P_OUT, STAGES
    dec.G, dec.P_IN, dec.CG = groups, in_points, C // groups
    dec.LORSA_RANK, dec.LORSA_GROUPS, dec.LORST_RANK, dec.LORST_GROUPS = LORSA_RANK, LORSA_GROUPS, LORST_RANK, LORST_GROUPS


def f32(t):
    """Rounds to float32 (what the Swift side stores), computes on in float64."""
    return t.to(torch.float32).to(DT)


def neck_forward(p, features):
    outs = []
    for level, f in enumerate(features):
        x = F.conv2d(f, p["neck.convs.%d.weight" % level], p["neck.convs.%d.bias" % level])
        outs.append(F.group_norm(x, NECK_GROUPS, p["neck.norm.weight"], p["neck.norm.bias"], eps=1e-5))
    return outs


def query_forward(p):
    """InitialQueryGenerator._decode_init_proposals: boxes relative to img_shape -> (x, y, z, r); content LayerNorm."""
    proposals = p["query.init_proposal_bboxes.weight"]
    cxcy, wh = proposals[:, 0:2], proposals[:, 2:4]
    corners = torch.cat([cxcy - 0.5 * wh, cxcy + 0.5 * wh], dim=-1)  # bbox_cxcywh_to_xyxy
    whwh = torch.tensor([[w, h, w, h] for h, w in VALID], dtype=DT)
    boxes = corners[None] * whwh[:, None, :]
    xy = 0.5 * (boxes[..., 0:2] + boxes[..., 2:4])
    size = boxes[..., 2:4] - boxes[..., 0:2]
    z = size.prod(-1, keepdim=True).sqrt().log2()
    r = (size[..., 1:2] / size[..., 0:1]).log2()
    xyzr = torch.cat([xy, z, r], dim=-1)
    content = p["query.init_content_features.weight"][None].expand(BATCH, QUERIES, C)
    return xyzr, F.layer_norm(content, [C])


def main():
    torch.manual_seed(1)
    store = {}
    images = torch.zeros(BATCH, 3, *PADDED, dtype=DT)
    for i, (h, w) in enumerate(VALID):
        images[i, :, :h, :w] = f32(torch.randn(3, h, w, dtype=DT))
    store["images"] = images

    # backbone (plain-torch torchvision layout, GroupNorm) with random weights
    res.GN_GROUPS = BACKBONE_GROUPS
    backbone = res.ResNet([2, 2, 2, 2], WIDTH, "gn")
    res.randomize(backbone)
    backbone = backbone.to(DT).eval()
    shared = {}
    with torch.no_grad():
        for name, t in backbone.named_parameters():
            t.copy_(f32(t))
            shared["backbone." + name] = t.detach().clone()
    channels = [WIDTH << k for k in range(4)]
    for level, cin in enumerate(channels):
        shared["neck.convs.%d.weight" % level] = f32(dec.uniform((C, cin, 1, 1), (1.0 / cin) ** 0.5))
        shared["neck.convs.%d.bias" % level] = f32(dec.uniform((C,), 0.2))
    shared["neck.norm.weight"] = f32(1 + dec.uniform((C,), 0.2))
    shared["neck.norm.bias"] = f32(dec.uniform((C,), 0.2))
    cxcy = 0.3 + 0.4 * torch.rand(QUERIES, 2, dtype=DT)
    wh = 0.2 + 0.6 * torch.rand(QUERIES, 2, dtype=DT)
    shared["query.init_proposal_bboxes.weight"] = f32(torch.cat([cxcy, wh], dim=-1))
    shared["query.init_content_features.weight"] = f32(torch.randn(QUERIES, C, dtype=DT))
    for name, t in shared.items():
        store["param/" + name] = t

    with torch.no_grad():
        features = neck_forward(shared, backbone(images))
        xyzr, content = query_forward(shared)
        for model, sizes in SETTINGS.items():
            configure_decoder(sizes["G"], sizes["P_IN"])
            p = {}
            for s in range(STAGES):
                dec.stage_params(p, s, model == "vanilla")
            if model == "lors":
                dec.lors_params(p)
            p = {name: f32(t) for name, t in p.items()}
            for name, t in p.items():
                store["%s/param/decoder.%s" % (model, name)] = t
            boxes, q = xyzr, content
            for s in range(STAGES):
                logits, boxes, q = dec.stage_forward(p, s, features, boxes, q, model == "vanilla")
                store["%s/stage%d/logits" % (model, s)] = logits
                store["%s/stage%d/boxes" % (model, s)] = boxes

    index, data = pack_tensors(store)
    target = os.path.join(HERE, "..", "Tests", "LorsNNTests", "Fixtures")
    with open(os.path.join(target, "detector_reference.bin"), "wb") as fh:
        fh.write(data)
    meta = {"batch": BATCH, "queries": QUERIES, "content_dim": C, "heads": HEADS, "ffn": FFN, "classes": CLASSES,
            "out_points": P_OUT, "stages": STAGES, "width": WIDTH, "backbone_groups": BACKBONE_GROUPS,
            "neck_groups": NECK_GROUPS, "padded": list(PADDED), "valid": [x for v in VALID for x in v],
            "vanilla_groups": SETTINGS["vanilla"]["G"], "vanilla_in_points": SETTINGS["vanilla"]["P_IN"],
            "lors_groups": SETTINGS["lors"]["G"], "lors_in_points": SETTINGS["lors"]["P_IN"], "lorsa_rank": LORSA_RANK,
            "lorsa_groups": LORSA_GROUPS, "lorst_rank": LORST_RANK, "lorst_groups": LORST_GROUPS}
    with open(os.path.join(target, "detector_reference.json"), "w") as fh:
        json.dump({"meta": meta, "tensors": index}, fh, indent=0)
    print("wrote %d tensors, %d floats (%d bytes)" % (len(store), offset, len(data)))


if __name__ == "__main__":
    main()
