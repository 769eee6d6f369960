"""Training on a folder of photos: time to the first step and peak memory, in memory vs streamed,
at two folder sizes (issue 24's "Done when": start under 10 s, peak resident memory under 1.5 GB,
flat in the number of images).

    python benchmarks/stream_training.py --counts 2000 10000 --steps 5

For each folder size (JPEGs of 500x375, ImageNet's typical size, 2 classes; generated once under
--root) and each data mode, runs ``cnnzoo train resnet18 --dataset folder --input-size 224`` (the
recipe's width 0.25, batch 128) in a fresh process that stops after --steps training steps, and
prints: seconds from the process's start to the start of the first step (its batch ready),
images/s of the steps after the first (start of step 2 to start of step N + 1), the trainer process's peak resident memory (its ``ru_maxrss``) and the peak of the whole
process tree (trainer + decoding workers) sampled every 50 ms, as RSS summed (shared pages counted
in every process) and as PSS summed (shared pages divided among the processes sharing them).
The numeric path is measured on the first run of a configuration and cached per machine
(cnnzoo.numerics); a --warm run first fills that cache so that the timed runs show the data path.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r'''
import json, resource, sys, time
t_start = float(sys.argv[1])
from cnnzoo.training import trainer, api
steps, marks = int(sys.argv[2]), []
step = trainer.Trainer.train_step

def timed(self, x, y):
    marks.append((time.time(), len(y)))          # when the step starts: its batch is ready
    if len(marks) > steps:
        first = marks[0][0] - t_start
        rate = sum(n for _, n in marks[1:-1]) / (marks[-1][0] - marks[1][0])
        print(json.dumps({"first_step_s": first, "images_per_s": rate, "mode": self.data.mode,
                          "reason": self.data.mode_reason,
                          "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
        raise SystemExit(0)
    return step(self, x, y)

trainer.Trainer.train_step = timed
api.train("resnet18", dataset="folder", data_dir=sys.argv[3], input_size=224, epochs=1, progress=False,
          data_mode=sys.argv[4], out=sys.argv[5], batch_size=int(sys.argv[6]))
'''


def make_folder(root: Path, n: int, size=(500, 375)) -> Path:
    """``n`` photo-like JPEGs (smooth colour fields, shapes and sensor noise; quality 90) in
    ``root/train/{a,b}`` plus 100 in ``root/test``; kept between runs."""
    from PIL import Image, ImageDraw

    stamp = root / ".complete"
    if stamp.exists():
        return root
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for part, count in (("train", n), ("test", 100)):
        for i in range(count):
            k = i % 2
            d = root / part / "ab"[k]
            d.mkdir(parents=True, exist_ok=True)
            c = rng.uniform(40, 215, 6)
            base = np.stack([c[j] + (c[j + 3] - c[j]) * (xx / w if j % 2 else yy / h) for j in range(3)], -1)
            im = Image.fromarray(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))
            dr = ImageDraw.Draw(im)
            for _ in range(4):
                x0, y0 = rng.integers(0, w - 60), rng.integers(0, h - 60)
                box = (int(x0), int(y0), int(x0 + rng.integers(30, 200)), int(y0 + rng.integers(30, 150)))
                fill = tuple(int(v) for v in rng.integers(0, 255, 3))
                (dr.ellipse if k else dr.rectangle)(box, fill=fill)
            im.save(d / f"{i:06d}.jpg", quality=90)
    stamp.touch()
    return root


def peak_tree(pid: int, proc: subprocess.Popen) -> tuple[float, float]:
    """Peak RSS and PSS (MB) summed over ``pid`` and its descendants, sampled every 50 ms until ``proc`` ends."""
    peak_rss = peak_pss = 0.0
    while proc.poll() is None:
        tree, todo = [], [pid]
        while todo:
            p = todo.pop()
            tree.append(p)
            try:
                for t in os.listdir(f"/proc/{p}/task"):
                    todo += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
            except OSError:
                pass
        rss = pss = 0.0
        for p in tree:
            try:
                for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) / 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) / 1024
            except OSError:
                pass
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.05)
    return peak_rss, peak_pss


def run(folder: Path, mode: str, steps: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cnnzoo-stream-") as out:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(time.time()), str(steps), str(folder), mode, out,
                                 str(batch)],
                                stdout=subprocess.PIPE, text=True)
        rss, pss = peak_tree(proc.pid, proc)
        line = proc.stdout.read().strip().splitlines()
        if proc.returncode != 0 or not line:
            raise SystemExit(f"the training process failed ({proc.returncode})")
        return {**json.loads(line[-1]), "tree_rss_mb": rss, "tree_pss_mb": pss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--modes", nargs="+", default=["stream", "auto"])
    ap.add_argument("--steps", type=int, default=5, help="training steps per run")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[128], help="the recipe's 128, and others")
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "cnnzoo-photos"),
                    help="where the generated folders are kept")
    ap.add_argument("--no-warm", action="store_true", help="skip the run that fills the numerics cache")
    args = ap.parse_args()
    import platform

    folders = {n: make_folder(Path(args.root) / f"n{n}", n) for n in args.counts}
    if not args.no_warm:
        for b in args.batch_sizes:
            run(folders[args.counts[0]], "stream", 2, b)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    print(f"resnet18 (width 0.25) at 224 on 500x375 JPEGs, {args.steps} steps; {cpu}, "
          f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    print(f"{'images':>7} {'batch':>5} {'asked':>6} {'mode':>6} {'first step s':>12} {'img/s':>6} "
          f"{'trainer RSS MB':>14} {'tree RSS MB':>11} {'tree PSS MB':>11}")
    for b in args.batch_sizes:
        for n, folder in folders.items():
            for mode in args.modes:
                r = run(folder, mode, args.steps, b)
                print(f"{n:>7,} {b:>5} {mode:>6} {r['mode']:>6} {r['first_step_s']:12.1f} {r['images_per_s']:6.1f} "
                      f"{r['maxrss_mb']:14.0f} {r['tree_rss_mb']:11.0f} {r['tree_pss_mb']:11.0f}", flush=True)
                print(f"        ({r['reason']})", flush=True)


if __name__ == "__main__":
    main()
