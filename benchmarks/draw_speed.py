"""Time ``cnnzoo draw`` on ResNet-152 at layer depth (issue target: under 10 s) and size its page
(target: under 5 MB). Prints its figures; run with OMP_NUM_THREADS=1 for one core.

    OMP_NUM_THREADS=1 python benchmarks/draw_speed.py [MODEL]
"""
from __future__ import annotations

import sys
import tempfile
import time

import torch

from cnnzoo import create_model
from cnnzoo.draw import draw, trace
from cnnzoo.draw.page import write_page


def main(name: str = "resnet152") -> None:
    torch.set_num_threads(1)
    with torch.device("meta"):
        model = create_model(name)
    t0 = time.perf_counter()
    prof = trace(model)
    t1 = time.perf_counter()
    diagram = draw(model, prof=prof)
    t2 = time.perf_counter()
    svg = diagram.pipe("svg")
    t3 = time.perf_counter()
    print(f"{name} layer depth: trace {t1 - t0:.2f} s, graph {t2 - t1:.2f} s, dot layout + SVG {t3 - t2:.2f} s, "
          f"total {t3 - t0:.2f} s; {len(prof.layers)} rows, {len(diagram.graph.nodes)} boxes, "
          f"SVG {len(svg) / 1e6:.2f} MB")
    with tempfile.TemporaryDirectory() as out:
        t4 = time.perf_counter()
        path = write_page(model, out, name=None)
        t5 = time.perf_counter()
        print(f"{name} page (without the registry's claims): {path.stat().st_size / 1e6:.2f} MB "
              f"(MB = 10^6 bytes), written in {t5 - t4:.2f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
