"""Seconds per map of each ``cnnzoo explain`` method on ResNet-50 at 224x224, on the CPU.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/explain_speed.py [--model resnet50] [--side 224] [--repeats 3]

Times :func:`cnnzoo.explain.attribution` for one image (random weights: the arithmetic is the
same as a trained model's) after one warm-up call, and prints the median of ``--repeats`` per
method with the forward/backward passes it needs: Grad-CAM and saliency one forward and one
backward; occlusion one forward per patch position (default patch and stride, batched 32 per
pass) plus one. Also prints one batched forward pass's time per image, for the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from cnnzoo import create_model
from cnnzoo.explain import METHODS, attribution, occlusion_defaults


def seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--side", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = create_model(a.model).eval()
    x = torch.randn(1, 3, a.side, a.side)
    print(f"{a.model} at {a.side}x{a.side}, {torch.get_num_threads()} threads, median of {a.repeats}")
    with torch.inference_mode():
        batch = x.expand(32, -1, -1, -1).contiguous()
        fwd = seconds(lambda: model(batch), 1) / 32
    print(f"forward pass, batch 32: {fwd:.3f} s per image")
    patch, stride = occlusion_defaults(a.side)
    positions = ((a.side - patch) // stride + 1) ** 2
    for method in METHODS:
        s = seconds(lambda: attribution(model, x, method, 0), a.repeats)
        what = f"{positions + 1} forward images (patch {patch}, stride {stride})" if method == "occlusion" else \
            "1 forward + 1 backward"
        print(f"{method:9s}  {s:7.2f} s per map  ({what}; {s / fwd:.0f}x a batched forward image)")


if __name__ == "__main__":
    main()
