"""Training throughput (images/s) of one process against torchrun + DDP on this machine.

    .venv/bin/python benchmarks/ddp_scaling.py [--model lenet5_modern] [--images 12800] [--batch 256]

Every row trains the same model on the same first ``--images`` Fashion-MNIST images with the
same global batch for 2 epochs through the CLI (``python -m cnnzoo train`` or ``torchrun
--standalone --nproc_per_node=P -m cnnzoo train``) and reads the train throughput of the last
epoch (global images / training seconds, evaluation excluded) from metrics.json. Rows:
one process with 1 thread, one process with all cores, and P = 2 processes with
cores / P threads each (DDP over gloo). Prints one row per setting and the 2-process speed-up
over each single-process row.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(cmd: list[str], threads: int, out: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd + ["--out", str(out), "--quiet"], check=True, env=env, capture_output=True, text=True)
    return json.loads((out / "metrics.json").read_text())["history"][-1]["images_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lenet5_modern")
    ap.add_argument("--images", type=int, default=12800, help="training images used (first N)")
    ap.add_argument("--batch", type=int, default=256, help="global batch")
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    train = ["-m", "cnnzoo", "train", a.model, "--epochs", "2", "--limit-train", str(a.images)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in sorted({1, cores}):
            ips = run([sys.executable, *train, "--batch-size", str(a.batch)], threads, Path(tmp) / f"p1t{threads}")
            rows.append((f"1 process x {threads} thread(s)", ips))
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={a.procs}"]
        ips = run([*torchrun, *train, "--batch-size", str(a.batch // a.procs)], max(1, cores // a.procs),
                  Path(tmp) / "ddp")
        rows.append((f"{a.procs} processes x {max(1, cores // a.procs)} thread(s) (DDP, gloo)", ips))
    print(f"{a.model}, {a.images} Fashion-MNIST images, global batch {a.batch}, {cores} usable core(s)")
    for name, ips in rows:
        print(f"  {name:<42} {ips:8.0f} images/s")
    for name, ips in rows[:-1]:
        print(f"  speed-up of {a.procs} processes over {name}: {rows[-1][1] / ips:.2f}x")


if __name__ == "__main__":
    main()
