"""The results table of training runs, read from their metrics.json files (never typed in)."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .._text import text_table
from ..errors import CnnzooError

COLUMNS = ("run", "model", "dataset", "input", "width", "params", "epochs", "test top-1 %", "test top-5 %",
           "top-1 TTA %", "EMA", "augment", "batch", "wall s", "train img/s", "numerics", "procs x threads", "seed",
           "status")


def _parallel(m: dict) -> tuple[str, str]:
    """The global batch (``256 = 2 x 128`` on two processes) and ``processes x threads`` (with
    the backend on several processes) of a run; runs saved before these were recorded ran on one."""
    world, threads = m.get("world_size", 1), m.get("hardware", {}).get("torch_threads", "-")
    per = m["config"].get("batch_size")
    batch = f"{m.get('global_batch_size', per)}" + (f" = {world} x {per}" if world > 1 else "")
    return batch, f"{world} x {threads}" + (f" ({m['backend']})" if world > 1 and m.get("backend") else "")


def _augment(c: dict) -> str:
    """The run's training augmentation in words, e.g. ``crop 2 + flip + erase 0.5``."""
    parts = ([f"crop {c['pad']}"] if c.get("pad") else []) + (["flip"] if c.get("flip") else []) \
        + ([f"erase {c['erase']:g}"] if c.get("erase") else [])
    return " + ".join(parts) or "none"


def _tta(final: dict, c: dict) -> str:
    """The final epoch's multi-view top-1, e.g. ``95.45 (flip)``; "-" for a run without ``tta``."""
    v = final.get("test_acc_tta")
    return "-" if v is None else f"{100 * v:.2f} ({c.get('tta')})"


def run_classes(m: dict) -> int | None:
    """The class count of a run's metrics.json (``None`` for a run saved before it was recorded
    that trained on a whole named data set)."""
    c = m.get("config") or {}
    return m.get("num_classes") or (len(c["classes"]) if c.get("classes") else None)


def shows_top5(num_classes: int | None) -> bool:
    """Whether top-5 accuracy means anything: only with more than 5 classes (with 5 or fewer every
    image is a top-5 hit); an unknown count (``None``) shows it."""
    return num_classes is None or num_classes > 5


def _row(run: str, m: dict) -> tuple:
    f = m.get("final") or {}
    pct = (lambda v: f"{100 * v:.2f}" if v is not None else "-")
    top5 = f.get("test_top5") if shows_top5(run_classes(m)) else None
    batch, procs = _parallel(m)
    return (run, m["model"], m["dataset"], f"{m['input_size']}x{m['input_size']}", f"{m['width']:g}",
            f"{m['params']:,}", f"{len(m['history'])}/{m['epochs']}", pct(f.get("test_acc")),
            pct(top5), _tta(f, m["config"]),
            f"{m['config']['ema']:g}" if m["config"].get("ema") else "-", _augment(m["config"]), batch,
            f"{m['wall_seconds']:.0f}", f"{f['images_per_s']:.0f}" if f else "-",
            m["config"]["amp"] + (" channels_last" if m["config"].get("channels_last") else ""),
            procs, str(m["seed"]), m["status"])


#: The columns of the terminal table by default (``cnnzoo results``; ``--all`` for every column).
TEXT_COLUMNS = ("run", "model", "epochs", "test top-1 %", "test top-5 %", "top-1 TTA %", "wall s", "status")


def results_table(runs_dir: str | os.PathLike, fmt: str = "markdown", full: bool = False) -> str:
    """A table of every run under ``runs_dir`` (each directory with a metrics.json).

    Args:
        fmt: ``"text"`` (aligned columns for a terminal), ``"markdown"``, ``"csv"`` or ``"json"``.
        full: every column in the text format too (markdown, csv and json always have them all;
            text shows :data:`TEXT_COLUMNS` by default).

    Raises:
        CnnzooError: no runs found, or an unknown format.
    """
    files = sorted(Path(runs_dir).glob("**/metrics.json"))
    if not files:
        raise CnnzooError(f"no runs (metrics.json) under {runs_dir}")
    runs = [json.loads(p.read_text()) for p in files]
    if fmt == "json":
        return json.dumps([{k: v for k, v in r.items() if k != "history"} for r in runs], indent=2)
    names = [p.parent.relative_to(runs_dir).as_posix() for p in files]
    names = [Path(runs_dir).resolve().name if n == "." else n for n in names]   # runs_dir is the run itself
    rows = [_row(n, r) for n, r in zip(names, runs)]
    if fmt == "csv":             # quoted where a cell has a comma (parameter counts: 61,848)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([COLUMNS, *rows])
        return buf.getvalue().rstrip("\n")
    if fmt == "text":
        keep = [i for i, c in enumerate(COLUMNS) if full or c in TEXT_COLUMNS]
        return "\n".join(text_table([[row[i] for i in keep] for row in [COLUMNS, *rows]]))
    if fmt != "markdown":
        raise CnnzooError(f"unknown format {fmt!r}; choose text, markdown, csv or json")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def readme_section(runs_dir: str | os.PathLike, page: str | os.PathLike) -> str:
    """The cnnzoo-results section of the markdown page ``page``: the command that wrote it and the
    full markdown table of the runs under ``runs_dir``.

    Raises:
        CnnzooError: no runs found.
    """
    return (f"Generated by `cnnzoo results {runs_dir} --readme {page}` from the runs' metrics.json files.\n\n"
            + results_table(runs_dir, "markdown"))
