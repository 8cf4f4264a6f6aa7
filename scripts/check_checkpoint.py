#!/usr/bin/env python3
"""Check a LORS checkpoint (and optionally a safetensors export) with h5py/numpy/torch, independently of LORS.

    python3 scripts/check_checkpoint.py CKPT.h5 [--safetensors MODEL.safetensors] [--expect NAME=D0,D1,...]

Checks: /meta has format_version, step, epoch, world_size, seed, config and complete=1; every dataset listed in the
/meta `datasets` manifest exists with the listed shape and dtype float32; its `crc32` attribute equals
zlib.crc32 of the little-endian float32 bytes (row-major); /model/... shapes match any --expect. With --safetensors:
the file loads with torch (safetensors.torch if installed, else a small reader built on torch.frombuffer) and every
tensor equals /model/<name> bitwise. Exits 1 with a message naming the dataset on the first failure.
Needs: pip install h5py numpy (torch for --safetensors).
"""
import argparse
import json
import struct
import sys
import zlib

import h5py
import numpy as np


def fail(message):
    print(f"check_checkpoint: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def load_safetensors(path):
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        pass
    import torch
    with open(path, "rb") as handle:
        data = handle.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            fail(f"{path}: tensor {name} has dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        raw = bytearray(data[8 + length + begin:8 + length + end])
        tensors[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(entry["shape"]) if raw else \
            torch.zeros(entry["shape"], dtype=torch.float32)
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--safetensors")
    parser.add_argument("--expect", action="append", default=[], help="NAME=D0,D1,... expected /model shape")
    args = parser.parse_args()

    with h5py.File(args.checkpoint, "r") as f:
        meta = f["/meta"].attrs
        for key in ("format_version", "step", "epoch", "world_size", "seed", "config", "complete", "datasets"):
            if key not in meta:
                fail(f"/meta has no attribute {key}")
        if int(meta["complete"]) != 1:
            fail("checkpoint incomplete (complete != 1)")
        manifest = meta["datasets"]
        manifest = manifest.decode() if isinstance(manifest, bytes) else manifest
        count = 0
        for line in manifest.split("\n"):
            if not line:
                continue
            path, _, dims = line.partition("\t")
            shape = tuple(int(d) for d in dims.split(",") if d)
            if path not in f:
                fail(f"missing dataset {path}")
            dataset = f[path]
            if dataset.shape != shape:
                fail(f"dataset {path} has shape {dataset.shape}, manifest says {shape}")
            if dataset.dtype != np.float32:
                fail(f"dataset {path} has dtype {dataset.dtype}")
            values = np.asarray(dataset[()], dtype="<f4")
            crc = zlib.crc32(values.tobytes()) & 0xFFFFFFFF
            stored = int(dataset.attrs["crc32"]) & 0xFFFFFFFF
            if crc != stored:
                fail(f"checksum mismatch in {path}: stored {stored:#010x}, computed {crc:#010x}")
            count += 1
        for item in args.expect:
            name, _, dims = item.partition("=")
            shape = tuple(int(d) for d in dims.split(",") if d)
            path = f"/model/{name}"
            if path not in f:
                fail(f"missing dataset {path}")
            if f[path].shape != shape:
                fail(f"dataset {path} has shape {f[path].shape}, expected {shape}")
        print(f"check_checkpoint: {args.checkpoint}: step {int(meta['step'])}, {count} datasets, every crc32 verified")

        if args.safetensors:
            import torch
            tensors = load_safetensors(args.safetensors)
            model_names = []
            f["/model"].visititems(lambda name, obj: model_names.append(name) if isinstance(obj, h5py.Dataset) else None)
            if set(tensors) != set(model_names):
                fail(f"safetensors names differ from /model: {sorted(set(tensors) ^ set(model_names))[:8]}")
            for name in model_names:
                expected = torch.from_numpy(np.asarray(f["/model/" + name][()], dtype="<f4"))
                if tuple(tensors[name].shape) != tuple(expected.shape) or not torch.equal(tensors[name], expected):
                    fail(f"safetensors tensor {name} differs from /model/{name}")
            print(f"check_checkpoint: {args.safetensors}: {len(tensors)} tensors equal /model bitwise (torch {torch.__version__})")


if __name__ == "__main__":
    main()
