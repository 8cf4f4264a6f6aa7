#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures used by Tests/LorsNNTests/ReferenceTests.swift.

Each fixture is a pair `<name>.bin` (raw little-endian float32, all tensors back to back) and
`<name>.json` (`{"tensors": {name: {"offset": floats, "shape": [...]}}, "meta": {...}}`) in
Tests/LorsNNTests/Fixtures/. Inputs and parameters are drawn in float32; the references are then
computed in float64 from those exact float32 values and rounded once, so they are the true results
for the stored inputs (the Swift float32 computation is compared against them).

Fixtures:
  ops        forward outputs of matmul, softmax, log_softmax, layer_norm, gelu, cross_entropy
             (label smoothing), conv2d (stride, padding, groups), max_pool2d, grid_sample, group_norm
  vit_block  one pre-norm ViT block (dim 32, 2 heads, MLP 64, 5 tokens, batch 2): parameters, input,
             output, and the gradient of sum(output * probe) w.r.t. every parameter and the input
  lors_block the same block with all four linears static-LORS (W = W_sh + B A, private bias), B non-zero

Usage: python3 scripts/make_fixtures.py   (PyTorch CPU; run from the repository root)
"""
import json
import os
import struct

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LorsNNTests", "Fixtures")
torch.manual_seed(20240422)


class Writer:
    def __init__(self, name):
        self.name, self.floats, self.index, self.meta = name, [], {}, {}

    def add(self, key, t):
        t = t.detach().to(torch.float32).contiguous()
        self.index[key] = {"offset": len(self.floats), "shape": list(t.shape)}
        self.floats.extend(t.flatten().tolist())

    def save(self):
        with open(os.path.join(OUT, self.name + ".bin"), "wb") as f:
            f.write(struct.pack("<%df" % len(self.floats), *self.floats))
        with open(os.path.join(OUT, self.name + ".json"), "w") as f:
            json.dump({"tensors": self.index, "meta": self.meta}, f, indent=1, sort_keys=True)
        print(f"{self.name}: {len(self.floats)} floats")


def f32(*shape, scale=1.0, low=None, high=None):
    """float32 random values (uniform if low/high given, else normal·scale), returned as float64."""
    if low is not None:
        t = torch.rand(*shape, dtype=torch.float32) * (high - low) + low
    else:
        t = torch.randn(*shape, dtype=torch.float32) * scale
    return t.to(torch.float64)


def make_ops():
    w = Writer("ops")
    a, b = f32(2, 3, 4), f32(2, 5, 4)
    w.add("matmul.a", a); w.add("matmul.b", b); w.add("matmul.out", a @ b.transpose(-1, -2))
    x = f32(3, 7, scale=2)
    w.add("softmax.x", x); w.add("softmax.out", F.softmax(x, -1)); w.add("log_softmax.out", F.log_softmax(x, -1))
    x, g, bb = f32(2, 3, 8, scale=2), 1 + f32(8, scale=0.2), f32(8, scale=0.2)
    w.add("layer_norm.x", x); w.add("layer_norm.weight", g); w.add("layer_norm.bias", bb)
    w.add("layer_norm.out", F.layer_norm(x, (8,), g, bb, eps=1e-5))
    x = f32(50, low=-4, high=4)
    w.add("gelu.x", x); w.add("gelu.out", F.gelu(x))
    logits, targets = f32(4, 6, scale=2), torch.tensor([0, 5, 2, 2])
    w.add("cross_entropy.logits", logits)
    w.meta["cross_entropy.targets"] = targets.tolist()
    w.meta["cross_entropy.label_smoothing"] = 0.1
    w.add("cross_entropy.out", F.cross_entropy(logits, targets, label_smoothing=0.1).reshape(1))
    x, k, bias = f32(2, 4, 7, 7), f32(6, 2, 3, 3, scale=0.5), f32(6, scale=0.1)
    w.add("conv2d.x", x); w.add("conv2d.weight", k); w.add("conv2d.bias", bias)
    w.meta["conv2d"] = {"stride": [2, 1], "padding": [1, 2], "groups": 2}
    w.add("conv2d.out", F.conv2d(x, k, bias, stride=(2, 1), padding=(1, 2), groups=2))
    x = f32(2, 3, 7, 7)
    w.add("max_pool2d.x", x)
    w.meta["max_pool2d"] = {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]}
    w.add("max_pool2d.out", F.max_pool2d(x, 3, stride=2, padding=1))
    x, grid = f32(2, 3, 5, 6), f32(2, 4, 3, 2, low=-1.2, high=1.2)
    w.add("grid_sample.x", x); w.add("grid_sample.grid", grid)
    w.add("grid_sample.out", F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    x, g, bb = f32(2, 6, 3, 3, scale=2), 1 + f32(6, scale=0.2), f32(6, scale=0.2)
    w.add("group_norm.x", x); w.add("group_norm.weight", g); w.add("group_norm.bias", bb)
    w.meta["group_norm.groups"] = 3
    w.add("group_norm.out", F.group_norm(x, 3, g, bb, eps=1e-5))
    w.save()


DIM, HEADS, MLP, TOKENS, BATCH, EPS = 32, 2, 64, 5, 2, 1e-6
LINEARS = {"attn.qkv": (DIM, 3 * DIM), "attn.proj": (DIM, DIM), "mlp.fc1": (DIM, MLP), "mlp.fc2": (MLP, DIM)}


def block_forward(x, p, weight):
    """timm/DeiT pre-norm block; `weight(name)` gives the dense [out, in] weight of linear `name`."""
    B, T, D = x.shape
    hd = D // HEADS
    h = F.layer_norm(x, (D,), p["norm1.weight"], p["norm1.bias"], eps=EPS)
    qkv = F.linear(h, weight("attn.qkv"), p["attn.qkv.bias"]).reshape(B, T, 3, HEADS, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    att = F.softmax(q @ k.transpose(-1, -2) * hd ** -0.5, dim=-1)
    o = (att @ v).transpose(1, 2).reshape(B, T, D)
    x1 = x + F.linear(o, weight("attn.proj"), p["attn.proj.bias"])
    h = F.layer_norm(x1, (D,), p["norm2.weight"], p["norm2.bias"], eps=EPS)
    h = F.linear(F.gelu(F.linear(h, weight("mlp.fc1"), p["mlp.fc1.bias"])), weight("mlp.fc2"), p["mlp.fc2.bias"])
    return x1 + h


def make_block(name, lors_rank=None):
    w = Writer(name)
    p = {"norm1.weight": 1 + f32(DIM, scale=0.1), "norm1.bias": f32(DIM, scale=0.1),
         "norm2.weight": 1 + f32(DIM, scale=0.1), "norm2.bias": f32(DIM, scale=0.1)}
    shared = {}
    for lin, (i, o) in LINEARS.items():
        p[lin + ".bias"] = f32(o, scale=0.1)
        if lors_rank is None:
            p[lin + ".weight"] = f32(o, i, scale=i ** -0.5)
        else:
            shared[lin] = f32(o, i, scale=i ** -0.5)
            p[lin + ".A"] = f32(lors_rank, i, scale=i ** -0.5)
            p[lin + ".B"] = f32(o, lors_rank, scale=0.3)  # non-zero: the low-rank path matters
    for t in list(p.values()) + list(shared.values()):
        t.requires_grad_(True)
    if lors_rank is None:
        weight = lambda lin: p[lin + ".weight"]
    else:
        weight = lambda lin: shared[lin] + p[lin + ".B"] @ p[lin + ".A"]
    x = f32(BATCH, TOKENS, DIM).requires_grad_(True)
    probe = f32(BATCH, TOKENS, DIM)
    out = block_forward(x, p, weight)
    (out * probe).sum().backward()
    w.add("input", x); w.add("probe", probe); w.add("output", out)
    w.add("grad.input", x.grad)
    for k, t in p.items():
        w.add("blocks.0." + k, t); w.add("grad.blocks.0." + k, t.grad)
    for lin, t in shared.items():
        role = lin.split(".")[1]
        w.add("lors." + role + ".weight", t); w.add("grad.lors." + role + ".weight", t.grad)
    w.meta = {"dim": DIM, "heads": HEADS, "mlp": MLP, "tokens": TOKENS, "batch": BATCH, "eps": EPS}
    if lors_rank is not None:
        w.meta["rank"] = lors_rank
    w.save()


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_ops()
    make_block("vit_block")
    make_block("lors_block", lors_rank=4)
