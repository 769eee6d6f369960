"""Recipe twins: one model's recipe trained twice per seed, differing in one option only.

    .venv/bin/python benchmarks/twins.py MODEL [--vary FIELD A B] [--seeds 0 1] [--epochs N] [--out runs/twins]

The recipes (``src/cnnzoo/training/recipes.py``) set an option only where it is measured; this script
is that measurement for accuracy. Each run is the model's Fashion-MNIST recipe through
:func:`cnnzoo.train` with ``FIELD`` (a :class:`~cnnzoo.training.TrainConfig` field) set to ``A`` in one
arm and ``B`` in the other; values are read as JSON where they parse (``0.1``, ``true``) and as
strings otherwise (``bf16``). The default, ``--vary amp fp32 bf16``, is the accuracy half of the
bf16 decision (the speed half is ``train_step_paths.py``).

Prints one row per seed (test top-1 and the mean training epoch time, seconds, of each arm) and the
mean top-1 difference B - A in percentage points. Runs are resumable: a finished run in ``--out``
(``MODEL-FIELD-VALUE-seedS``) is reused, not retrained.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from cnnzoo.training import train


def value(text: str):
    """A command-line value as JSON where it parses (numbers, booleans), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--vary", nargs=3, metavar=("FIELD", "A", "B"), default=["amp", "fp32", "bf16"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--out", default="runs/twins")
    a = ap.parse_args(argv)
    field, arms = a.vary[0], a.vary[1:]
    opts = {"epochs": a.epochs} if a.epochs else {}
    rows = []
    for seed in a.seeds:
        row = []
        for arm in arms:
            r = train(a.model, out=Path(a.out) / f"{a.model}-{field}-{arm}-seed{seed}", seed=seed, progress=False,
                      **{field: value(arm)}, **opts)
            row.append((r.final["test_acc"], statistics.mean(h["train_seconds"] for h in r.history),
                        len(r.history)))
        rows.append((seed, row))
    epochs = rows[0][1][0][2]
    print(f"{a.model}: Fashion-MNIST recipe, {epochs} epochs, {field} {arms[0]} vs {arms[1]}")
    w = max(10, *(len(f"{arm} s/epoch") for arm in arms))
    print(f"{'seed':>4} " + " ".join(f"{f'{arm} top-1':>{w}}" for arm in arms) + " "
          + " ".join(f"{f'{arm} s/epoch':>{w}}" for arm in arms))
    for seed, row in rows:
        print(f"{seed:>4} " + " ".join(f"{acc:>{w}.2%}" for acc, _, _ in row) + " "
              + " ".join(f"{sec:>{w}.1f}" for _, sec, _ in row))
    diff = statistics.mean(row[1][0] - row[0][0] for _, row in rows)
    print(f"mean top-1 difference {arms[1]} - {arms[0]}: {100 * diff:+.2f} points over {len(rows)} seed(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
