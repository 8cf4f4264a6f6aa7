#!/usr/bin/env python3
"""Side-by-side training-step benchmark: lors-bench vs PyTorch (CPU) on the same ViT.

Model (`lors-bench step --model vit-tiny`): 32x32x3 input, patch 4 (64 tokens + cls), dim 192, 12 pre-norm
blocks, 3 heads, MLP 768 (GELU), 100 classes; one step = forward, cross-entropy, backward, AdamW.
Both run with the same thread count, in this one process run, alternating so machine noise hits
both. Prints a JSON object with both medians and the ratio torch_ms / lors_ms (>= 1 means lors
is at least as fast). PyTorch is used only here, never by the product.

Usage: python3 scripts/bench_step_vs_torch.py [--model vit-tiny] [--batch 64] [--threads 2] [--steps 10] [--rounds 2]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def torch_step_ms(batch, threads, steps, lors_model):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, d, h, m):
            super().__init__()
            self.h = h
            self.norm1 = nn.LayerNorm(d, eps=1e-6)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.norm2 = nn.LayerNorm(d, eps=1e-6)
            self.fc1 = nn.Linear(d, m)
            self.fc2 = nn.Linear(m, d)

        def forward(self, x):
            b, t, d = x.shape
            qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            a = (q @ k.transpose(-2, -1)) * (d // self.h) ** -0.5
            a = a.softmax(dim=-1)
            x = x + self.proj((a @ v).transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))

    class ViT(nn.Module):
        def __init__(self, d=192, depth=12, h=3, m=768, classes=100):
            super().__init__()
            self.patch = nn.Conv2d(3, d, 4, 4)
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            self.pos = nn.Parameter(torch.zeros(1, 65, d))
            self.blocks = nn.ModuleList([Block(d, h, m) for _ in range(depth)])
            self.norm = nn.LayerNorm(d, eps=1e-6)
            self.head = nn.Linear(d, classes)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.norm(x[:, 0]))

    model = ViT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x = torch.rand(batch, 3, 32, 32) * 2 - 1
    y = torch.arange(batch) % 100
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return 1000 * times[len(times) // 2]


def lors_step(binary, model, batch, threads, steps):
    out = subprocess.run([binary, "step", "--model", model, "--batch", str(batch), "--threads", str(threads),
                          "--steps", str(steps), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="vit-tiny")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "lors-bench"))
    a = p.parse_args()
    lors_runs, torch_runs = [], []
    for _ in range(a.rounds):
        lors_runs.append(lors_step(a.binary, a.model, a.batch, a.threads, a.steps))
        torch_runs.append(torch_step_ms(a.batch, a.threads, a.steps, a.model))
    lors_ms = min(r["median_ms"] for r in lors_runs)
    torch_ms = min(torch_runs)
    gflop = lors_runs[0]["gflop_per_step"]
    result = {
        "model": a.model, "batch": a.batch, "threads": a.threads,
        "lors_median_ms": lors_ms, "torch_median_ms": torch_ms, "torch_over_lors": torch_ms / lors_ms,
        "gflop_per_step": gflop, "lors_gflops": gflop / lors_ms * 1000, "torch_gflops": gflop / torch_ms * 1000,
        "blas_core": lors_runs[0]["blas_core"], "lors_peak_rss_mb": lors_runs[0]["peak_rss_mb"],
        "lors_round_medians_ms": [round(r["median_ms"], 1) for r in lors_runs],
        "torch_round_medians_ms": [round(t, 1) for t in torch_runs],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
