#!/usr/bin/env python3
"""References for loading torchvision ResNet weights through `model.adamixer.backbone.pretrained`
(Tests/LorsTrainingTests/PretrainedBackboneTests.swift).

1. torchvision's own `resnet18` and `resnet50` (full size, torchvision.models) with weights that BOTH sides generate
   from a seed, run in eval mode (BatchNorm with running statistics = lors' frozen BatchNorm) in float64 on a small
   input. The weights are not committed (ResNet-18 alone is 47 MB of float32): the Swift test regenerates the same
   float32 state dict bit for bit, writes it to a temporary safetensors / HDF5 file with torchvision's names (fc.* and
   num_batches_tracked included, as in a real state dict), loads it through `pretrained` and compares C2-C5 with the
   outputs stored here. The generator (identical in Swift):

     key(name)  = FNV-1a 64 of the UTF-8 name, XOR seed
     z_i        = key + (i + 1) * 0x9E3779B97F4A7C15 (mod 2^64), i = 0, 1, ... in row-major order
     z_i        = splitmix64 finaliser: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
                  z ^= z >> 31
     u_i        = (z_i >> 40) / 2^24  (exact in float32, in [0, 1))
     value      = per tensor kind, in float32 arithmetic:
                  conv weight [O, I, k, k]   (u - 0.5) * 2 * s, s = 2^round(log2(sqrt(6 / (I k k))))   (exact)
                  norm weight                0.5 + 0.5 * u
                  norm bias, running_mean    (u - 0.5) * 0.25
                  running_var                0.5 + u
                  fc.weight, fc.bias         (u - 0.5) * 0.0625
                  num_batches_tracked        0 (an int64 in torchvision; not read)
                  the input image            (u - 0.5) * 4, name "input"

   The JSON stores, per model, the float64 sum of every generated tensor and its first values, so the Swift test can
   tell a generator mismatch from a loading or forward mismatch.

2. Two small files written by the reference writers (safetensors' `save_file` and h5py) with F32, F16, BF16, F64 and
   int64 tensors, and the float32 values each should read as: the format test of the reader.

Files (Tests/LorsTrainingTests/Fixtures/): backbone_pretrained.bin / .json (little-endian float32 tensors back to back;
`tensors: {name: {offset, shape}}`, offsets in floats; `meta`), weights_formats.safetensors, weights_formats.h5,
weights_formats.json.

Needs torch, torchvision, safetensors and h5py. torchvision's wheels are built against one torch release each; only its
pure-Python `torchvision.models.resnet` is used, so when the wheel's compiled operators do not load against the
installed torch (e.g. the CUDA wheel on a CPU torch) the script skips torchvision's operator registrations (see
`import_torchvision`). Run: python3 scripts/make_backbone_pretrained_fixtures.py
"""
import json
import math
import os
import sys
import types

import numpy as np
import torch

SEED = 20240611
MASK = (1 << 64) - 1
INPUTS = {"resnet18": [1, 3, 64, 48], "resnet50": [1, 3, 64, 32]}
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "LorsTrainingTests", "Fixtures")


def import_torchvision():
    """torchvision's ResNet code; its `_meta_registrations` (fake kernels of nms, roi_align, ...) fails when the wheel's
    compiled operators did not load, and nothing here uses those operators."""
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        import torchvision  # noqa: F401
    import torchvision.models
    return torchvision


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def uniforms(name, count):
    key = np.uint64(fnv1a64(name) ^ SEED)
    i = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = key + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)


def generated(name, shape):
    """The float32 values of tensor `name` (see the module docstring)."""
    count = int(np.prod(shape)) if len(shape) else 1
    u = uniforms(name, count)
    half, f32 = np.float32(0.5), np.float32
    if name == "input":
        v = (u - half) * f32(4)
    elif name.startswith("fc."):
        v = (u - half) * f32(0.0625)
    elif len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        s = f32(2.0 ** round(math.log2(math.sqrt(6.0 / fan_in))))
        v = (u - half) * f32(2) * s
    elif name.endswith("running_var"):
        v = half + u
    elif name.endswith("running_mean") or name.endswith("bias"):
        v = (u - half) * f32(0.25)
    elif name.endswith("weight"):
        v = half + half * u
    else:
        raise ValueError("no rule for " + name)
    return v.astype(np.float32).reshape(shape)


class Features(torch.nn.Module):
    """C2-C5 of a torchvision ResNet (its own modules, in its own order)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        outs = []
        for layer in [n.layer1, n.layer2, n.layer3, n.layer4]:
            x = layer(x)
            outs.append(x)
        return outs


def reference(torchvision, arch):
    net = getattr(torchvision.models, arch)(weights=None)
    state = net.state_dict()
    total, first = 0.0, {}
    new_state = {}
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            new_state[name] = t
            continue
        values = generated(name, list(t.shape))
        new_state[name] = torch.from_numpy(values.copy())
        total += float(values.astype(np.float64).sum())
        if len(first) < 6:
            first[name] = [float(x) for x in values.flatten()[:3]]
    net.load_state_dict(new_state)
    net.eval()
    image = torch.from_numpy(generated("input", INPUTS[arch]).copy())
    with torch.no_grad():
        outs = Features(net.double())(image.double())
    # torchvision's state dict, names and shapes in its order: the Swift test writes its file from this list.
    layout = [[name, list(t.shape)] for name, t in state.items()]
    return image, outs, {"sum": total, "first": first, "state_dict": layout, "input": INPUTS[arch]}


def write_reference(torchvision):
    store, meta = [], {"seed": SEED}
    for arch in ["resnet18", "resnet50"]:
        image, outs, info = reference(torchvision, arch)
        store.append((arch + "/input", image))
        for k, out in enumerate(outs):
            store.append(("%s/out.%d" % (arch, k), out))
            info.setdefault("out_max_abs", []).append(float(out.abs().max()))
        meta[arch] = info
    index, chunks, offset = {}, [], 0
    for name, t in store:
        flat = t.detach().to(torch.float32).contiguous().flatten()
        index[name] = {"offset": offset, "shape": list(t.shape)}
        chunks.append(flat.numpy().astype("<f4").tobytes())
        offset += flat.numel()
    with open(os.path.join(OUT, "backbone_pretrained.bin"), "wb") as fh:
        fh.write(b"".join(chunks))
    with open(os.path.join(OUT, "backbone_pretrained.json"), "w") as fh:
        json.dump({"meta": meta, "tensors": index}, fh, indent=0)
    print("backbone_pretrained: %d tensors, %d floats" % (len(store), offset))


def write_formats():
    from safetensors.torch import save_file
    import h5py

    g = torch.Generator().manual_seed(7)
    base = {
        "a.weight": torch.randn(2, 3, generator=g),
        "b.half": torch.randn(5, generator=g).half(),
        "c.bf16": torch.randn(2, 2, generator=g).bfloat16(),
        "d.double": torch.randn(3, generator=g).double(),
    }
    tensors = dict(base)
    tensors["layer.num_batches_tracked"] = torch.tensor(17, dtype=torch.int64)
    save_file(tensors, os.path.join(OUT, "weights_formats.safetensors"), metadata={"format": "pt"})
    with h5py.File(os.path.join(OUT, "weights_formats.h5"), "w") as f:
        f.create_dataset("a.weight", data=base["a.weight"].numpy(), track_times=False)
        f.create_dataset("b.half", data=base["b.half"].numpy(), track_times=False)
        f.create_dataset("d.double", data=base["d.double"].numpy(), track_times=False)
        f.create_dataset("layer.num_batches_tracked", data=np.int64(17), track_times=False)
    expected = {name: {"shape": list(t.shape), "values": [float(x) for x in t.float().flatten()]} for name, t in base.items()}
    with open(os.path.join(OUT, "weights_formats.json"), "w") as fh:
        json.dump({"safetensors": expected, "hdf5": {k: v for k, v in expected.items() if k != "c.bf16"}}, fh, indent=1)
    print("weights_formats: safetensors %d bytes" % os.path.getsize(os.path.join(OUT, "weights_formats.safetensors")))


def main():
    os.makedirs(OUT, exist_ok=True)
    torchvision = import_torchvision()
    print("torch", torch.__version__, "torchvision", torchvision.__version__)
    write_reference(torchvision)
    write_formats()


if __name__ == "__main__":
    main()
