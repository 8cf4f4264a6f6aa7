"""Packing of reference tensors into the fixtures' binary + JSON index form (shared by the fixture scripts)."""
import torch


def pack_tensors(store):
    """`store` {name: tensor} -> (index {name: {offset, shape}} with offsets in floats, little-endian float32 bytes),
    in the store's order."""
    index, chunks, offset = {}, [], 0
    for name, t in store.items():
        flat = t.detach().to(torch.float32).contiguous().flatten()
        index[name] = {"offset": offset, "shape": list(t.shape)}
        chunks.append(flat)
        offset += flat.numel()
    return index, torch.cat(chunks).numpy().astype("<f4").tobytes()
