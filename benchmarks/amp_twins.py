"""Accuracy twins: the same recipe trained in fp32 and in bf16 autocast, seed for seed.

    .venv/bin/python benchmarks/amp_twins.py MODEL [--seeds 0 1] [--epochs N] [--out runs/amp-twins]

The recipes switch a model to bf16 only where it is measured faster (``train_step_paths.py``)
*and* no less accurate; this script measures the second half. Each run is the model's Fashion-MNIST
recipe (channels_last on in both arms) through :func:`cnnzoo.train`, differing only in ``amp``.
Prints one row per seed (test top-1 and the mean training epoch time of each arm) and the mean
top-1 difference bf16 - fp32 in percentage points. Runs are resumable: a finished run in ``--out``
is reused.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from cnnzoo.training import train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--out", default="runs/amp-twins")
    a = ap.parse_args(argv)
    rows = []
    for seed in a.seeds:
        row = {}
        for amp in ("fp32", "bf16"):
            opts = {"epochs": a.epochs} if a.epochs else {}
            r = train(a.model, out=Path(a.out) / f"{a.model}-{amp}-seed{seed}", amp=amp, channels_last=True,
                      seed=seed, progress=False, **opts)
            row[amp] = (r.final["test_acc"], statistics.mean(h["train_seconds"] for h in r.history))
        rows.append((seed, row))
    print(f"{a.model}: Fashion-MNIST recipe, channels_last, fp32 vs bf16 autocast")
    print(f"{'seed':>4} {'fp32 top-1':>10} {'bf16 top-1':>10} {'fp32 s/epoch':>12} {'bf16 s/epoch':>12}")
    for seed, row in rows:
        print(f"{seed:>4} {row['fp32'][0]:10.2%} {row['bf16'][0]:10.2%} {row['fp32'][1]:12.1f} {row['bf16'][1]:12.1f}")
    diff = statistics.mean(row["bf16"][0] - row["fp32"][0] for _, row in rows)
    print(f"mean top-1 difference bf16 - fp32: {100 * diff:+.2f} points over {len(rows)} seed(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
