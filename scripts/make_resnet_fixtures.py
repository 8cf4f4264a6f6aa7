#!/usr/bin/env python3
"""PyTorch reference for the ResNet backbone tests (Tests/LorsNNTests/ResNetReferenceTests.swift).

The reference ResNet is written here in plain torch with torchvision's `resnet18` architecture and parameter names
(`conv1`, `bn1`, `layerK.i.conv1/bn1/conv2/bn2`, `layerK.0.downsample.0/1`; BasicBlock with the stride on conv1;
7x7/2 stem, 3x3/2 max pool; no classifier). torchvision itself is not used: its wheels are built against one torch
release each, and its `BasicBlock` only allows base width 64, whose 11.7M weights are too large to commit. The layout
is torchvision's at a reduced base width (stage widths W, 2W, 4W, 8W). Two models:

  bn  ResNet-18, width 8, eval-mode BatchNorm (= frozen BN) with random affines and random running statistics
  gn  ResNet-18, width 8, GroupNorm(4 groups) with random affines, no running statistics

Weights are random (not the training init). Computes in float64 from the float32-rounded weights and input and
writes, as float32:

  input                    [1, 3, 64, 64]
  {model}/param/<name>     every parameter (torchvision names)
  {model}/buffer/<name>    running_mean / running_var of each BatchNorm (bn only)
  {model}/out.{0..3}       C2..C5

Files: Tests/LorsNNTests/Fixtures/resnet_reference.bin (little-endian float32) and resnet_reference.json
(`tensors: {name: {offset, shape}}` with offsets in floats, `meta`). Deterministic (fixed seed).
Run: python3 scripts/make_resnet_fixtures.py   (needs only torch: pip install torch)
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
DT = torch.float64
WIDTH, GN_GROUPS, IMAGE = 8, 4, 64


def make_norm(kind, channels):
    return nn.BatchNorm2d(channels) if kind == "bn" else nn.GroupNorm(GN_GROUPS, channels)


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (expansion 1)."""

    def __init__(self, inplanes, planes, stride, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = make_norm(norm, planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), make_norm(norm, planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """torchvision.models.resnet.ResNet without avgpool/fc, returning C2..C5."""

    def __init__(self, layers, width, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = make_norm(norm, width)
        inplanes = width
        for stage, count in enumerate(layers):
            planes = width << stage
            blocks = []
            for i in range(count):
                blocks.append(BasicBlock(inplanes, planes, 2 if i == 0 and stage > 0 else 1, norm))
                inplanes = planes
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*blocks))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        outs = []
        for stage in range(4):
            x = getattr(self, "layer%d" % (stage + 1))(x)
            outs.append(x)
        return outs


def randomize(model):
    """Random float32-representable weights; BN running statistics random too."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 4:
                fan_out = p.shape[0] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn(p.shape) * (2.0 / fan_out) ** 0.5)
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape) + 0.5)
            else:
                p.copy_(torch.randn(p.shape) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape) + 0.5)


def main():
    store = []
    image = torch.randn(1, 3, IMAGE, IMAGE, dtype=torch.float32)
    store.append(("input", image))
    for kind in ["bn", "gn"]:
        model = ResNet([2, 2, 2, 2], WIDTH, kind)
        randomize(model)
        model.eval()
        for name, p in model.named_parameters():
            store.append(("%s/param/%s" % (kind, name), p.detach().float()))
        for name, b in model.named_buffers():
            if name.endswith("num_batches_tracked"):
                continue
            store.append(("%s/buffer/%s" % (kind, name), b.detach().float()))
        model = model.to(DT)
        with torch.no_grad():
            outs = model(image.to(DT))
        for k, out in enumerate(outs):
            store.append(("%s/out.%d" % (kind, k), out.float()))

    index, chunks, offset = {}, [], 0
    for name, t in store:
        t = t.contiguous().to(torch.float32)
        index[name] = {"offset": offset, "shape": list(t.shape)}
        chunks.append(t.numpy().astype("<f4").tobytes())
        offset += t.numel()
    data = b"".join(chunks)
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LorsNNTests", "Fixtures")
    with open(os.path.join(out_dir, "resnet_reference.bin"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(out_dir, "resnet_reference.json"), "w") as fh:
        json.dump({"meta": {"depth": 18, "width": WIDTH, "gn_groups": GN_GROUPS, "image": IMAGE}, "tensors": index}, fh, indent=0)
    print("wrote %d tensors, %d floats (%d bytes)" % (len(store), offset, len(data)))


if __name__ == "__main__":
    main()
