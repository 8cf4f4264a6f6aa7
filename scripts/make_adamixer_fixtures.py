#!/usr/bin/env python3
"""PyTorch reference for the AdaMixer decoder tests (Tests/LorsNNTests/AdaMixerReferenceTests.swift).

Builds a reduced-size 2-stage AdaMixer decoder twice -- vanilla (per-stage AdaptiveMixing) and LORS (one shared
FactorizedAdaptiveMixing) -- following the official code (MCG-NJU/AdaMixer a50e33d, li-jl16/LORS e070edf),
with parameters named exactly as the Swift modules name them. Weights are random (not the training init, whose
zeros would hide most of the computation). Computes in float64 and writes, as float32:

  features.{0..3}  [B, C, H_l, W_l]   inputs (strides 4, 8, 16, 32 of a 32x32 image)
  xyzr             [B, N, 4]          initial boxes (x, y, z, r)
  content          [B, N, C]          initial query content
  {model}/param/<name>                every parameter
  {model}/out      per stage: class logits [B,N,K], refined boxes [B,N,4], content [B,N,C], flattened and concatenated
  {model}/weights  fixed weights W; the loss is sum(out * W)
  {model}/grad/<name>, {model}/grad_input/{content,features.l}   gradients of the loss

Files: Tests/LorsNNTests/Fixtures/adamixer_reference.bin (little-endian float32) and adamixer_reference.json
(name -> {offset, shape}, offsets in floats). Run: python3 scripts/make_adamixer_fixtures.py  (torch only here).
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from fixture_io import pack_tensors

torch.manual_seed(0)
DT = torch.float64

# Reduced configuration (mirrored in the Swift test).
B, N, C, HEADS, G, P_IN, P_OUT, FFN, CLASSES, STAGES = 2, 4, 16, 2, 2, 4, 4, 32, 3, 2
CG = C // G
STRIDES = [4, 8, 16, 32]
IMAGE = 32
LORSA_RANK, LORSA_GROUPS, LORST_RANK, LORST_GROUPS = 2, [1, 2], 2, [1, 1]


def uniform(shape, bound):
    return (torch.rand(*shape, dtype=DT) * 2 - 1) * bound


def linear_params(p, name, fan_in, fan_out, bias=True, scale=1.0):
    p[name + ".weight"] = uniform((fan_out, fan_in), scale / math.sqrt(fan_in))
    if bias:
        p[name + ".bias"] = uniform((fan_out,), 0.2)


def norm_params(p, name, width):
    p[name + ".weight"] = 1 + uniform((width,), 0.2)
    p[name + ".bias"] = uniform((width,), 0.2)


def stage_params(p, s, vanilla):
    pre = "stages.%d." % s
    linear_params(p, pre + "attention.qkv", C, 3 * C)
    linear_params(p, pre + "attention.proj", C, C)
    norm_params(p, pre + "attention_norm", C)
    p[pre + "iof_tau"] = torch.rand(HEADS, dtype=DT) * 4
    linear_params(p, pre + "sampling_offset", C, G * P_IN * 3, scale=0.1)
    side = int(math.sqrt(P_IN))
    centres = [-0.5 + 0.5 / side + k / side for k in range(side)]
    bias = torch.zeros(G, P_IN, 3, dtype=DT)
    for g in range(G):
        for q in range(P_IN):
            bias[g, q] = torch.tensor([centres[q // side], centres[q % side], -1.0], dtype=DT)
    p[pre + "sampling_offset.bias"] = bias.flatten() + uniform((G * P_IN * 3,), 0.05)
    if vanilla:
        linear_params(p, pre + "mixing.parameter_generator", C, G * (CG * CG + P_IN * P_OUT))
        linear_params(p, pre + "mixing.out_proj", G * P_OUT * CG, C)
        norm_params(p, pre + "mixing.norm", C)
    linear_params(p, pre + "ffn.fc1", C, FFN)
    linear_params(p, pre + "ffn.fc2", FFN, C)
    norm_params(p, pre + "ffn_norm", C)
    linear_params(p, pre + "cls_fc", C, C)
    norm_params(p, pre + "cls_norm", C)
    linear_params(p, pre + "fc_cls", C, CLASSES)
    linear_params(p, pre + "reg_fc", C, C)
    norm_params(p, pre + "reg_norm", C)
    linear_params(p, pre + "fc_reg", C, 4, scale=0.1)


def lors_params(p):
    linear_params(p, "mixing.shared.generator", C, G * (CG * CG + P_IN * P_OUT))
    flat = G * P_OUT * CG
    p["mixing.shared.out_proj.weight"] = uniform((C, flat), 1 / math.sqrt(flat))
    r = LORSA_RANK
    for s, (k, kt) in enumerate(zip(LORSA_GROUPS, LORST_GROUPS)):
        pre = "mixing.private.%d." % s
        linear_params(p, pre + "generator", C, 2 * G * k * r * r)
        p[pre + "m_left"] = uniform((G * k, CG, r), math.sqrt(6 / (CG * r)))
        p[pre + "m_right"] = uniform((G * k, r, CG), math.sqrt(6 / (r * CG)))
        p[pre + "s_left"] = uniform((G * k, P_OUT, r), math.sqrt(6 / (P_OUT * r)))
        p[pre + "s_right"] = uniform((G * k, r, P_IN), math.sqrt(6 / (r * P_IN)))
        rank = kt * LORST_RANK
        p[pre + "out_A"] = uniform((rank, flat), math.sqrt(6 / flat))
        p[pre + "out_B"] = uniform((C, rank), 0.1)
        p[pre + "out_bias"] = uniform((C,), 0.2)
        norm_params(p, pre + "out_norm", C)


# --- the AdaMixer computation (official code semantics) ---

def decode_box(xyzr):
    scale = 2.00 ** xyzr[..., 2:3]
    ratio = 2.00 ** torch.cat([xyzr[..., 3:4] * -0.5, xyzr[..., 3:4] * 0.5], dim=-1)
    wh = scale * ratio
    xy = xyzr[..., 0:2]
    return torch.cat([xy - wh * 0.5, xy + wh * 0.5], dim=-1)


def iof(boxes):  # mmdet bbox_overlaps(mode="iof"), [B, N, N]
    lt = torch.max(boxes[..., :, None, :2], boxes[..., None, :, :2])
    rb = torch.min(boxes[..., :, None, 2:], boxes[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return overlap / area.clamp(min=1e-6)[..., :, None]


def position_embedding(xyzr, num_feats, temperature=10000):
    xyzr = xyzr / xyzr.new_tensor([1000, 1000, 1, 1]).view(1, 1, -1)
    dim_t = torch.arange(num_feats, dtype=DT)
    dim_t = (temperature ** (2 * (dim_t // 2) / num_feats)).view(1, 1, 1, -1)
    pos = xyzr[..., None] / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=4).flatten(2)


def sampling_3d(points, features):  # points [B, N, G*P, 3] -> [B, N, G, P, CG]
    xy, z = points[..., 0:2], points[..., 2]
    grid = torch.as_tensor(STRIDES, dtype=DT).log2()
    weight = torch.softmax(-((z[..., None] - grid) ** 2) / 2.0, dim=-1)
    out = 0
    for level, (value, stride) in enumerate(zip(features, STRIDES)):
        mapping = value.new_tensor([value.size(3), value.size(2)]) * stride
        pts = (xy / mapping).view(B, N, G, P_IN, 2).permute(0, 2, 1, 3, 4).flatten(0, 1) * 2.0 - 1.0
        v = value.reshape(B * G, CG, value.size(2), value.size(3))
        s = F.grid_sample(v, pts, mode="bilinear", padding_mode="zeros", align_corners=False)  # [B*G, CG, N, P]
        w = weight[..., level].view(B, N, G, P_IN).permute(0, 2, 1, 3).flatten(0, 1).unsqueeze(1)
        out = out + (s * w).view(B, G, CG, N, P_IN).permute(0, 3, 1, 4, 2)
    return out


def mix(x, m, s):  # x [BN, G, P, CG]
    out = F.relu(F.layer_norm(x @ m, [P_IN, CG]))
    out = F.relu(F.layer_norm(s @ out, [P_OUT, CG]))
    return out.reshape(B, N, -1)


def vanilla_mixing(p, pre, x, q):
    params = F.linear(q, p[pre + "parameter_generator.weight"], p[pre + "parameter_generator.bias"]).reshape(B * N, G, -1)
    m, s = params.split([CG * CG, P_OUT * P_IN], 2)
    out = mix(x.reshape(B * N, G, P_IN, CG), m.reshape(B * N, G, CG, CG), s.reshape(B * N, G, P_OUT, P_IN))
    out = F.linear(out, p[pre + "out_proj.weight"], p[pre + "out_proj.bias"])
    return F.layer_norm(q + out, [C], p[pre + "norm.weight"], p[pre + "norm.bias"])


def factorized_mixing(p, stage, x, q):  # FactorizedAdaptiveMixing.forward
    mc, sc = F.linear(q, p["mixing.shared.generator.weight"], p["mixing.shared.generator.bias"]).reshape(B * N, G, -1).split(
        [CG * CG, P_IN * P_OUT], 2)
    mc, sc = mc.reshape(B * N, G, 1, CG, CG), sc.reshape(B * N, G, 1, P_OUT, P_IN)
    k, r = LORSA_GROUPS[stage], LORSA_RANK
    pre = "mixing.private.%d." % stage
    params = F.linear(q, p[pre + "generator.weight"], p[pre + "generator.bias"]).reshape(B * N, 2, G * k, r, r)
    mp = (p[pre + "m_left"][None] @ params[:, 0] @ p[pre + "m_right"][None]).view(B * N, G, k, CG, CG)
    sp = (p[pre + "s_left"][None] @ params[:, 1] @ p[pre + "s_right"][None]).view(B * N, G, k, P_OUT, P_IN)
    m = torch.cat([mc, mp], dim=2).sum(dim=2)
    s = torch.cat([sc, sp], dim=2).sum(dim=2)
    out = mix(x.reshape(B * N, G, P_IN, CG), m, s)
    weight = p["mixing.shared.out_proj.weight"] + p[pre + "out_B"] @ p[pre + "out_A"]
    out = F.linear(out, weight, p[pre + "out_bias"])
    return F.layer_norm(q + out, [C], p[pre + "out_norm.weight"], p[pre + "out_norm.bias"])


def stage_forward(p, s, features, xyzr, content, vanilla):
    pre = "stages.%d." % s
    ln = lambda name, t: F.layer_norm(t, [C], p[pre + name + ".weight"], p[pre + name + ".bias"])
    lin = lambda name, t: F.linear(t, p[pre + name + ".weight"], p[pre + name + ".bias"])
    with torch.no_grad():
        bias = (iof(decode_box(xyzr)) + 1e-7).log()[:, None]
        pe = position_embedding(xyzr, C // 4)
    attn_bias = (bias * p[pre + "iof_tau"].view(1, -1, 1, 1)).flatten(0, 1)
    x = (content + pe).permute(1, 0, 2)  # [N, B, C]
    attn, _ = F.multi_head_attention_forward(
        x, x, x, C, HEADS, p[pre + "attention.qkv.weight"], p[pre + "attention.qkv.bias"], None, None, False, 0.0,
        p[pre + "attention.proj.weight"], p[pre + "attention.proj.bias"], training=False, need_weights=False,
        attn_mask=attn_bias)
    q = ln("attention_norm", x + attn).permute(1, 0, 2)  # identity = q + pe (mmcv)
    # adaptive 3D sampling (make_sample_points)
    offset = lin("sampling_offset", q).view(B, N, G * P_IN, 3)
    scale = 2.00 ** xyzr[..., 2:3]
    ratio = 2.00 ** torch.cat([xyzr[..., 3:4] * -0.5, xyzr[..., 3:4] * 0.5], dim=-1)
    wh = (scale * ratio).view(B, N, 1, 2)
    points = torch.cat([xyzr[..., None, :2] + offset[..., :2] * wh, xyzr[..., None, 2:3] + offset[..., 2:3]], dim=-1)
    sampled = sampling_3d(points, features)
    q = vanilla_mixing(p, pre + "mixing.", sampled, q) if vanilla else factorized_mixing(p, s, sampled, q)
    q = ln("ffn_norm", q + lin("ffn.fc2", F.relu(lin("ffn.fc1", q))))
    logits = lin("fc_cls", F.relu(ln("cls_norm", lin("cls_fc", q))))
    delta = lin("fc_reg", F.relu(ln("reg_norm", lin("reg_fc", q))))
    z = xyzr[..., 2:3]
    boxes = torch.cat([xyzr[..., 0:2] + delta[..., 0:2] * (2 ** z), xyzr[..., 2:4] + delta[..., 2:4]], dim=-1)
    return logits, boxes, q


def decoder_forward(p, features, xyzr, content, vanilla):
    outs = []
    for s in range(STAGES):
        logits, boxes, content = stage_forward(p, s, features, xyzr, content, vanilla)
        outs += [logits.flatten(), boxes.flatten(), content.flatten()]
        xyzr = boxes.detach()
    return torch.cat(outs)


def main():
    store = {}
    features = [torch.randn(B, C, IMAGE // s, IMAGE // s, dtype=DT) for s in STRIDES]
    centre = 8 + torch.rand(B, N, 2, dtype=DT) * 16
    z = 2.5 + torch.rand(B, N, 1, dtype=DT) * 1.5
    r = uniform((B, N, 1), 0.5)
    xyzr = torch.cat([centre, z, r], dim=-1)
    content = torch.randn(B, N, C, dtype=DT)
    for i, f in enumerate(features):
        store["features.%d" % i] = f
    store["xyzr"] = xyzr
    store["content"] = content
    for model, vanilla in [("vanilla", True), ("lors", False)]:
        p = {}
        for s in range(STAGES):
            stage_params(p, s, vanilla)
        if not vanilla:
            lors_params(p)
        for t in p.values():
            t.requires_grad_(True)
        feats = [f.clone().requires_grad_(True) for f in features]
        cont = content.clone().requires_grad_(True)
        out = decoder_forward(p, feats, xyzr, cont, vanilla)
        weights = uniform(out.shape, 1.0)
        (out * weights).sum().backward()
        store[model + "/out"] = out.detach()
        store[model + "/weights"] = weights
        for name, t in p.items():
            store[model + "/param/" + name] = t.detach()
            store[model + "/grad/" + name] = t.grad if t.grad is not None else torch.zeros_like(t)
        store[model + "/grad_input/content"] = cont.grad
        for i, f in enumerate(feats):
            store[model + "/grad_input/features.%d" % i] = f.grad
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.path.join(here, "..", "Tests", "LorsNNTests", "Fixtures")
    index, data = pack_tensors(store)
    with open(os.path.join(target, "adamixer_reference.bin"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(target, "adamixer_reference.json"), "w") as fh:
        json.dump({"config": {"batch": B, "queries": N, "content_dim": C, "heads": HEADS, "groups": G, "in_points": P_IN,
                              "out_points": P_OUT, "ffn": FFN, "classes": CLASSES, "stages": STAGES, "image": IMAGE,
                              "lorsa_rank": LORSA_RANK, "lorsa_groups": LORSA_GROUPS, "lorst_rank": LORST_RANK,
                              "lorst_groups": LORST_GROUPS},
                   "tensors": index}, fh, indent=0)
    print("wrote %d tensors, %d floats (%d bytes)" % (len(store), offset, len(data)))


if __name__ == "__main__":
    main()
