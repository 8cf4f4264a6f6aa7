#!/usr/bin/env python3
"""Check a LORS ViT checkpoint and its merged export with h5py and PyTorch, independently of LORS.

    python3 scripts/check_export.py --checkpoint CKPT.h5 --safetensors MERGED.safetensors --reference REF.safetensors

1. h5py opens the checkpoint and reads /model/... at the documented shapes (docs/checkpoints.md: each tensor at its full
   logical shape, shared LORS weights once under /model/lors.<role>.weight), derived from the ViT settings in the
   export's metadata; every dataset's crc32 attribute equals zlib.crc32 of its little-endian float32 bytes.
2. The export (written by `lors export CKPT --out MERGED.safetensors --merge-lors --reference-logits REF.safetensors`)
   loads in PyTorch (safetensors.torch when installed, else a small reader over torch.frombuffer).
3. A dense DeiT/ViT built in PyTorch (pre-LN blocks, class token, exact-erf GELU, torch.nn.functional only) from the
   merged weights reproduces our logits for the fixed input stored in REF.safetensors.
Exits 1 with a message naming the dataset or tensor on the first failure. Needs: pip install h5py numpy torch.
"""
import argparse
import json
import math
import struct
import sys
import zlib

import h5py
import numpy as np
import torch
import torch.nn.functional as F


def fail(message):
    print(f"check_export: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def read_safetensors(path):
    """(tensors, metadata); tensors via safetensors.torch when installed."""
    with open(path, "rb") as handle:
        data = handle.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    try:
        from safetensors.torch import load_file
        return load_file(path), metadata
    except ImportError:
        pass
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            fail(f"{path}: tensor {name} has dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        raw = bytearray(data[8 + length + begin:8 + length + end])
        tensors[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(entry["shape"]).clone() if raw else \
            torch.zeros(entry["shape"], dtype=torch.float32)
    return tensors, metadata


def vit_settings(metadata):
    ints = ["image_size", "in_channels", "patch_size", "num_classes", "embed_dim", "depth", "num_heads"]
    s = {key: int(metadata[key]) for key in ints}
    s["mlp_dim"] = int(round(s["embed_dim"] * float(metadata["mlp_ratio"])))
    s["eps"] = float(metadata["layer_norm_eps"])
    s["tokens"] = (s["image_size"] // s["patch_size"]) ** 2 + 1
    return s


def check_checkpoint(path, s):
    d, m = s["embed_dim"], s["mlp_dim"]
    documented = {
        "patch_embed.proj.weight": (d, s["in_channels"], s["patch_size"], s["patch_size"]),
        "patch_embed.proj.bias": (d,),
        "cls_token": (1, 1, d),
        "pos_embed": (1, s["tokens"], d),
        "norm.weight": (d,),
        "head.weight": (s["num_classes"], d),
        "head.bias": (s["num_classes"],),
    }
    dense_or_shared = {"qkv": (3 * d, d), "proj": (d, d), "fc1": (m, d), "fc2": (d, m)}
    with h5py.File(path, "r") as f:
        if "/model" not in f:
            fail(f"{path}: no /model group")
        model = f["/model"]
        lors = any(name.startswith("lors.") for name in model)
        for role, shape in dense_or_shared.items():
            group = "attn" if role in ("qkv", "proj") else "mlp"
            if lors and f"lors.{role}.weight" in model:
                documented[f"lors.{role}.weight"] = shape          # shared LORS weight, stored once
                documented[f"blocks.0.{group}.{role}.bias"] = (shape[0],)
                a = model[f"blocks.0.{group}.{role}.A"]
                if a.shape[1] != shape[1]:
                    fail(f"/model/blocks.0.{group}.{role}.A has shape {a.shape}, expected [K*r, {shape[1]}]")
                if model[f"blocks.0.{group}.{role}.B"].shape != (shape[0], a.shape[0]):
                    fail(f"/model/blocks.0.{group}.{role}.B has shape {model[f'blocks.0.{group}.{role}.B'].shape}")
            else:
                for block in range(s["depth"]):
                    documented[f"blocks.{block}.{group}.{role}.weight"] = shape
        count = 0
        for name, shape in documented.items():
            if name not in model:
                fail(f"missing dataset /model/{name}")
            dataset = model[name]
            if dataset.shape != shape:
                fail(f"dataset /model/{name} has shape {dataset.shape}, documented {shape}")
            if dataset.dtype != np.float32:
                fail(f"dataset /model/{name} has dtype {dataset.dtype}")
            values = np.ascontiguousarray(dataset[()], dtype="<f4")
            if zlib.crc32(values.tobytes()) != int(dataset.attrs["crc32"]) & 0xFFFFFFFF:
                fail(f"checksum mismatch in /model/{name}")
            count += 1
        meta = f["/meta"].attrs
        for key in ("format_version", "step", "epoch", "world_size", "seed", "config"):
            if key not in meta:
                fail(f"/meta has no attribute {key}")
        if "/optimizer" not in f:
            fail("no /optimizer group")
    print(f"check_export: {path}: {count} /model datasets at the documented shapes, crc32 verified "
          f"({'LORS' if lors else 'dense'} model)")


def dense_vit_logits(w, s, images):
    """timm/DeiT ViT forward (pre-LN, class token, exact GELU) in plain torch.nn.functional."""
    d, heads, p = s["embed_dim"], s["num_heads"], s["patch_size"]
    x = F.conv2d(images, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=p)  # [B, D, g, g]
    x = x.flatten(2).transpose(1, 2)                                                           # [B, g*g, D]
    x = torch.cat([w["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + w["pos_embed"]
    b, t, _ = x.shape
    hd = d // heads
    for i in range(s["depth"]):
        k = f"blocks.{i}."
        h = F.layer_norm(x, (d,), w[k + "norm1.weight"], w[k + "norm1.bias"], s["eps"])
        qkv = F.linear(h, w[k + "attn.qkv.weight"], w.get(k + "attn.qkv.bias"))
        qkv = qkv.reshape(b, t, 3, heads, hd).permute(2, 0, 3, 1, 4)
        q, key, v = qkv[0], qkv[1], qkv[2]
        attention = torch.softmax(q @ key.transpose(-2, -1) / math.sqrt(hd), dim=-1)
        h = (attention @ v).transpose(1, 2).reshape(b, t, d)
        x = x + F.linear(h, w[k + "attn.proj.weight"], w[k + "attn.proj.bias"])
        h = F.layer_norm(x, (d,), w[k + "norm2.weight"], w[k + "norm2.bias"], s["eps"])
        h = F.gelu(F.linear(h, w[k + "mlp.fc1.weight"], w[k + "mlp.fc1.bias"]))
        x = x + F.linear(h, w[k + "mlp.fc2.weight"], w[k + "mlp.fc2.bias"])
    x = F.layer_norm(x[:, 0], (d,), w["norm.weight"], w["norm.bias"], s["eps"])
    return F.linear(x, w["head.weight"], w["head.bias"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--safetensors", required=True, help="export written with --merge-lors")
    parser.add_argument("--reference", required=True, help="file written by --reference-logits")
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-5, help="relative to the largest |logit| of ours")
    args = parser.parse_args()

    weights, metadata = read_safetensors(args.safetensors)
    for key in ("embed_dim", "depth", "num_heads", "patch_size", "image_size", "in_channels", "num_classes"):
        if key not in metadata:
            fail(f"{args.safetensors}: __metadata__ has no {key}")
    s = vit_settings(metadata)
    check_checkpoint(args.checkpoint, s)

    leftovers = [name for name in weights if name.startswith("lors.") or name.endswith((".A", ".B"))]
    if leftovers:
        fail(f"{args.safetensors}: unmerged LORS tensors {leftovers[:4]}")
    expected = {"attn.qkv.weight": (3 * s["embed_dim"], s["embed_dim"]), "mlp.fc1.weight": (s["mlp_dim"], s["embed_dim"])}
    for block in range(s["depth"]):
        for name, shape in expected.items():
            key = f"blocks.{block}.{name}"
            if key not in weights:
                fail(f"{args.safetensors}: missing tensor {key}")
            if tuple(weights[key].shape) != shape:
                fail(f"{args.safetensors}: tensor {key} has shape {tuple(weights[key].shape)}, expected {shape}")

    reference, _ = read_safetensors(args.reference)
    with torch.no_grad():
        logits = dense_vit_logits(weights, s, reference["input"])
    ours = reference["logits"]
    if logits.shape != ours.shape:
        fail(f"logits shape {tuple(logits.shape)} vs ours {tuple(ours.shape)}")
    difference = (logits - ours).abs().max().item()
    scale = ours.abs().max().item()
    if scale == 0:
        fail("our reference logits are all zero: nothing to compare (train a few steps first)")
    if not torch.allclose(logits, ours, rtol=args.rtol, atol=args.atol * scale):
        fail(f"PyTorch dense ViT logits differ from ours by up to {difference:.3e} (largest |logit| {scale:.3e})")
    print(f"check_export: {args.safetensors}: {len(weights)} tensors load in PyTorch {torch.__version__}; "
          f"dense ViT logits match ours (max |diff| {difference:.2e}, largest |logit| {scale:.2e}, {tuple(ours.shape)})")


if __name__ == "__main__":
    main()
