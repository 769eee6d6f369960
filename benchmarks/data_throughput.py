"""Images/s, peak memory and time to the first batch of cnnzoo's streamed training view against
torchvision's ``ImageFolder`` + ``DataLoader``, side by side, on ImageNet-size and phone-size JPEGs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/data_throughput.py [--workers 2] [--count 384]
        [--count-small 2048] [--sets imagenet phone] [--folder DIR] [--data-dir DIR] [--repeat 2]

Both produce the same output: the ImageNet training view, a random-resized crop to 224 x 224
(8%-100% of the area, aspect 3/4-4/3) and a horizontal flip with probability 0.5, as uint8 batches
(64, 3, 224, 224), decoded by the same number of ``DataLoader`` worker processes, one pass over every
file in a shuffled order. torchvision: ``ImageFolder`` (Pillow's full decode, ``convert("RGB")``),
``RandomResizedCrop(224)``, ``RandomHorizontalFlip()``, ``PILToTensor()``. cnnzoo:
:func:`cnnzoo.data.decode.decode_crop` per image (JPEGs decoded at reduced scale where the crop
allows) in the workers of :class:`cnnzoo.data.stream.StreamSource`, the streaming data source the
trainer uses (its files listed afresh by :func:`cnnzoo.data.list_image_folder`, not from the cached
index, as ``ImageFolder`` lists them).

The folders are made once (``--data-dir``, default under the system's temporary folder, reused):
``--count-small`` JPEGs of 500x375 (ImageNet's typical size) and ``--count`` of 4000x3000 (a 12 MP
phone photo), quality 90, with photo-like content (smooth colour fields, soft-edged shapes, sensor
noise at two scales) so that their file sizes are those of photos; or ``--folder DIR``, an
``ImageFolder`` layout of your own (``DIR/CLASS/*.jpg``), measured instead.

Each measurement runs in a fresh Python process, the two pipelines taking turns, ``--repeat``
rounds timed, then one round with memory sampled (reading ``smaps_rollup`` costs about 10 ms of
CPU per process here, so the timed rounds do not sample); the table keeps each one's best images/s,
its shortest time to the first batch and its largest memory. Columns:

* ``img/s``: every image over the time from building the data set to the last batch (listing the
  files and starting the workers included: use enough images that this start is small);
* ``first s``: seconds from building the data set to the first batch;
* ``PSS MB``: peak proportional set size of the process and its workers together (Linux
  ``/proc/PID/smaps_rollup``, sampled every 100 ms; a page shared by k processes counts 1/k in each),
  MB = 10^6 bytes; ``main MB`` and ``worker MB``: ``ru_maxrss`` of the main process and of the largest
  worker (resident set, shared pages counted in each).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIZES = {"imagenet": (500, 375), "phone": (4000, 3000)}
QUALITY = 90


# -- the folders ------------------------------------------------------------------------------------
def photo(w: int, h: int, seed: int):
    """A photo-like (h, w) RGB Pillow image: a smooth colour field, 15-30 soft-edged shapes, and noise
    at the pixel and at 4x coarser scale (the fine detail that makes a photo's JPEG large)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(15, 30))):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(w // 40, w // 6))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.ellipse((x - r, y - r, x + r, y + int(r * rng.uniform(0.5, 1.5))), fill=colour)
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, 5))
            d.polygon([(x + r * np.cos(a), y + r * np.sin(a)) for a in angles], fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(max(1, w // 1500)))
    coarse = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
    coarse = np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.Resampling.BILINEAR))
    noise = 8 * coarse + 5 * rng.standard_normal((h, w), dtype=np.float32)
    return Image.fromarray(np.clip(np.asarray(im, np.float32) + noise[..., None], 0, 255).astype(np.uint8))


def _write_photo(job: tuple[str, int, int, int]) -> None:
    path, w, h, seed = job
    photo(w, h, seed).save(path, quality=QUALITY)


def make_folder(root: Path, kind: str, count: int, workers: int) -> Path:
    """``root/KIND-COUNT/{a,b}/*.jpg`` (two classes), made once: reused when its ``done`` mark exists."""
    from multiprocessing import Pool

    folder = root / f"{kind}-{count}"
    if (folder / "done").exists():
        return folder
    w, h = SIZES[kind]
    jobs = []
    for i in range(count):
        cls = folder / "ab"[i % 2]
        cls.mkdir(parents=True, exist_ok=True)
        jobs.append((str(cls / f"{i:06d}.jpg"), w, h, i))
    print(f"writing {count} JPEGs of {w}x{h} to {folder} ...", flush=True)
    with Pool(max(1, workers)) as pool:
        pool.map(_write_photo, jobs, chunksize=4)
    (folder / "done").write_text("")
    return folder


# -- the two pipelines, each a loader of (uint8 (B, 3, 224, 224), labels) -----------------------------
def torchvision_batches(folder: Path, workers: int, batch_size: int, size: int, seed: int):
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.PILToTensor()])
    data = ImageFolder(str(folder), transform=tf)
    return iter(torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=workers,
                                            generator=torch.Generator().manual_seed(seed)))


def cnnzoo_batches(folder: Path, workers: int, batch_size: int, size: int, seed: int):
    import torch

    from cnnzoo.data import Augment, list_image_folder
    from cnnzoo.data.stream import StreamSource

    files, _, _ = list_image_folder(folder)                 # listed afresh, as ImageFolder does
    labels = torch.tensor([k for _, k in files])
    source = StreamSource(folder, [f for f, _ in files], labels, size, channels=3, workers=workers)
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))
    plan = [(idx, seed * 100_003 + b) for b, idx in enumerate(order.split(batch_size))]
    return iter(source.batches(plan, Augment(flip=True)))


PIPELINES = {"cnnzoo": cnnzoo_batches, "torchvision": torchvision_batches}


# -- one measurement, in its own process --------------------------------------------------------------
def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def _children(pid: int) -> list[int]:
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            kids += [int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return kids


class PeakPss(threading.Thread):
    """Samples the PSS of this process and its children every ``period`` s; ``peak_kb`` the largest sum."""

    def __init__(self, period: float = 0.1):
        super().__init__(daemon=True)
        self.period, self.peak_kb, self.stop = period, 0, threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(_pss_kb(p) for p in [me, *_children(me)]))
            self.stop.wait(self.period)


def measure(kind: str, folder: Path, workers: int, batch_size: int, size: int, seed: int, sample: bool) -> dict:
    import torch
    import torchvision.datasets  # noqa: F401 - both pipelines' modules imported before the clock starts,
    import torchvision.transforms  # noqa: F401   in both measurements, so neither is charged the other's
    import cnnzoo.data.decode  # noqa: F401

    sampler = PeakPss()
    if sample:
        sampler.start()
    t0 = time.perf_counter()
    batches = PIPELINES[kind](folder, workers, batch_size, size, seed)
    n, t_first = 0, None
    for x, y in batches:
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, size, size), (x.dtype, x.shape)
        n += len(x)
        t_first = t_first or time.perf_counter()
    t_end = time.perf_counter()
    del batches                                          # the workers exit and are waited for
    if sample:
        sampler.stop.set()
        sampler.join()
    mb = 1024 / 1e6                                      # ru_maxrss is in KiB on Linux
    return {"images": n, "first_s": t_first - t0, "images_per_s": n / (t_end - t0), "pss_mb": sampler.peak_kb * mb,
            "main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * mb,
            "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * mb}


def run_one(kind: str, folder: Path, args, sample: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--measure", kind, "--folder", str(folder), "--workers", str(args.workers),
           "--batch-size", str(args.batch_size), "--size", str(args.size), "--seed", str(args.seed)]
    cmd += ["--sample"] if sample else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(folder: Path) -> str:
    from PIL import Image

    files = sorted(folder.rglob("*.jp*g"))
    mean_kb = sum(f.stat().st_size for f in files) / len(files) / 1e3
    with Image.open(files[0]) as im:
        return f"{folder}: {len(files)} JPEGs, e.g. {im.width}x{im.height}, mean file {mean_kb:.0f} KB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="DataLoader worker processes of each pipeline (default: the cores)")
    ap.add_argument("--count", type=int, default=384, help="phone-size (4000x3000) JPEGs to make")
    ap.add_argument("--count-small", type=int, default=2048, help="ImageNet-size (500x375) JPEGs to make")
    ap.add_argument("--sets", nargs="+", choices=sorted(SIZES), default=list(SIZES),
                    help="which made folders to measure (default: both)")
    ap.add_argument("--folder", type=Path, help="measure this ImageFolder layout instead of made ones")
    ap.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "cnnzoo-data-throughput",
                    help="where the made folders are kept (reused)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeat", type=int, default=2, help="rounds; the best images/s of each is kept")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--measure", choices=sorted(PIPELINES), help=argparse.SUPPRESS)     # the child process
    ap.add_argument("--sample", action="store_true", help=argparse.SUPPRESS)            # it samples PSS
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.folder, args.workers, args.batch_size, args.size, args.seed,
                                 args.sample)))
        return
    counts = {"imagenet": args.count_small, "phone": args.count}
    folders = [args.folder] if args.folder else [make_folder(args.data_dir, k, counts[k], args.workers)
                                                 for k in SIZES if k in args.sets]
    print("cnnzoo: StreamSource (decode_crop in its workers); torchvision: ImageFolder + DataLoader")
    print(f"{args.workers} worker(s) each, batch {args.batch_size}, RandomResizedCrop({args.size}) + flip -> uint8, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {args.repeat} round(s), best kept")
    for folder in folders:
        print(describe(folder))
        runs = {k: [] for k in PIPELINES}
        for r in range(args.repeat):
            for kind in (list(PIPELINES) if r % 2 == 0 else list(PIPELINES)[::-1]):     # taking turns
                runs[kind].append(run_one(kind, folder, args))
        pss = {kind: run_one(kind, folder, args, sample=True) for kind in PIPELINES}
        print(f"  {'pipeline':<12} {'img/s':>7} {'first s':>8} {'PSS MB':>7} {'main MB':>8} {'worker MB':>9}")
        best = {}
        for kind, rs in runs.items():
            best[kind] = max(m["images_per_s"] for m in rs)
            print(f"  {kind:<12} {best[kind]:>7.1f} {min(m['first_s'] for m in rs):>8.2f} "
                  f"{pss[kind]['pss_mb']:>7.0f} {max(m['main_mb'] for m in rs):>8.0f} "
                  f"{max(m['worker_mb'] for m in rs):>9.0f}")
        every = "; ".join(f"{k} " + ", ".join(f"{m['images_per_s']:.1f}" for m in rs) for k, rs in runs.items())
        median = {k: statistics.median(m["images_per_s"] for m in rs) for k, rs in runs.items()}
        print(f"  cnnzoo / torchvision images/s: {best['cnnzoo'] / best['torchvision']:.2f}x of the best runs, "
              f"{median['cnnzoo'] / median['torchvision']:.2f}x of the medians (all runs: {every})")


if __name__ == "__main__":
    main()
