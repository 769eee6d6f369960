"""Inference paths on this CPU: torchvision's ResNet-50 at batch 16, 3x224x224, every path of
``cnnzoo bench`` against torchvision's eager fp32 in the same run, plus the fraction of this
machine's bf16 / int8 arithmetic peak each reaches, batch-1 latency and the lecture's other networks.

    OMP_NUM_THREADS=1 python benchmarks/inference_paths.py --r20 RUN --r50 RUN [--paths all]

Validation (the issue's rule: a path counts only if, on trained checkpoints, it loses at most
0.2 points of Fashion-MNIST top-1 against fp32 and agrees on at least 99.5% of the test images)
reads each training run's ``bench.json`` (written by ``cnnzoo bench RUN --paths all``; ``--rebench``
or a run without one: benches it here) (``--r20``: a cifar_resnet20 run, ``--r50``: a resnet50 run
of ``cnnzoo train``); a path is *validated* when every given run validates it.

The peak is measured here with a plain GEMM (``torch.matmul`` in bf16, ``torch._int_mm`` in int8,
2 x n^3 FLOPs each); images/s at the peak = peak FLOP/s / (2 x MACs per image from
``cnnzoo.profile``). Timings are medians of interleaved rounds (``torch.utils.benchmark``); on a
shared machine they move with the load, so each table says the load average when it started.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.benchmark import Timer

from cnnzoo import create_model, profile
from cnnzoo.deploy import PathResult, Source, bench
from cnnzoo.deploy.bench import BENCH_FILE
from cnnzoo.deploy.cli import bench_table

LECTURE = ("alexnet", "vgg16", "googlenet", "resnet50")


def gemm_peak(kind: str, n: int = 1024) -> float:
    """FLOP/s of an n x n x n matrix product in ``kind`` ("bf16" or "int8"), the best block of >= 1 s."""
    if kind == "int8":
        a = torch.randint(-128, 128, (n, n), dtype=torch.int8)
        stmt, glob = "torch._int_mm(a, a)", {"torch": torch, "a": a}
    else:
        a = torch.randn(n, n, dtype=torch.bfloat16)
        stmt, glob = "a @ a", {"a": a}
    t = Timer(stmt, globals=glob, num_threads=torch.get_num_threads()).blocked_autorange(min_run_time=1.0)
    return 2 * n ** 3 / min(t.times)            # a peak: the fastest block (load only slows it down)


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--r20", help="a cifar_resnet20 training run (folder) to validate the paths on")
    ap.add_argument("--r50", help="a resnet50 training run (folder) to validate the paths on")
    ap.add_argument("--paths", default="all", help="as cnnzoo bench --paths (default all)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--others", default=",".join(LECTURE[:-1]), help="the lecture's other networks ('' = none)")
    ap.add_argument("--other-paths", default="default", help="paths for the other networks")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--rebench", action="store_true", help="bench the runs even if they hold a bench.json")
    args = ap.parse_args()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread(s), {os.cpu_count()} CPUs; {load()}")

    valid: dict[str, bool] = {}
    for flag in ("r20", "r50"):
        run = getattr(args, flag)
        if run:
            saved = Path(run) / BENCH_FILE
            if saved.exists() and not args.rebench:
                rows = [PathResult(**r) for r in json.loads(saved.read_text())["rows"]]
                print(f"\n## validation on {run} (from its {BENCH_FILE}, written by `cnnzoo bench`)\n")
            else:
                rows = bench(run, batch_size=args.batch_size, paths=args.paths, rounds=args.rounds)
                print(f"\n## validation on {run} (batch {args.batch_size})\n")
            print(bench_table(rows))
            for r in rows:
                valid[r.path] = valid.get(r.path, True) and r.validated

    peaks = {k: gemm_peak(k) for k in ("bf16", "int8")}

    shape = (3, 224, 224)
    tv = torchvision.models.resnet50().eval()          # torchvision's own model: its eager fp32 is the baseline
    macs = profile(create_model("resnet50"), shape).totals.macs
    print(f"\n## torchvision resnet50, batch {args.batch_size}, 3x224x224 ({macs / 1e9:.2f} GMACs = {2 * macs / 1e9:.2f} GFLOPs "
          f"per image; {load()})\n")
    t0 = time.perf_counter()
    rows = bench(Source(tv, "torchvision resnet50", shape), batch_size=args.batch_size, paths=args.paths,
                 rounds=args.rounds)
    print(bench_table(rows))
    print(f"({time.perf_counter() - t0:.0f} s)\n")
    base = rows[0].images_per_s
    peaks = {k: max(v, gemm_peak(k)) for k, v in peaks.items()}      # the best of before and after
    print(f"\nGEMM peak (1024^3, best of before and after the table): bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s, "
          f"int8 {peaks['int8'] / 1e9:.0f} GOP/s")
    print("| path | x torchvision eager | validated on the runs | % of bf16 peak | % of int8 peak |")
    print("|---|---:|---|---:|---:|")
    for r in rows:
        if r.images_per_s is None:
            continue
        flops = r.images_per_s * 2 * macs
        ok = "-" if not valid else ("yes" if valid.get(r.path) else "no")
        print(f"| {r.path} | {r.images_per_s / base:.2f} | {ok} | {100 * flops / peaks['bf16']:.1f} | "
              f"{100 * flops / peaks['int8']:.1f} |")
    fast = [r for r in rows if r.images_per_s and (valid.get(r.path) if valid else r.path == "eager")]
    best = max(fast, key=lambda r: r.images_per_s)
    print(f"\nfastest validated path: {best.path}, {best.images_per_s:.1f} images/s = "
          f"{best.images_per_s / base:.2f}x torchvision eager fp32 (target 5x)")

    if not args.skip_latency:
        print(f"\n## batch-1 latency, torchvision resnet50 ({load()})\n")
        print(bench_table(bench(Source(tv, "torchvision resnet50", shape), batch_size=1, paths=args.paths,
                                rounds=args.rounds)))
    for name in filter(None, args.others.split(",")):
        model = create_model(name).eval()
        print(f"\n## {name}, batch {args.batch_size}, 3x224x224 ({profile(model, shape).totals.macs / 1e9:.2f} "
              f"GMACs/image; {load()})\n")
        print(bench_table(bench(Source(model, name, shape), batch_size=args.batch_size, paths=args.other_paths,
                                rounds=args.rounds)))


if __name__ == "__main__":
    main()
