"""File writing under every layer: atomic writes (temp file + ``os.replace``), JSON, CSV and
cnnzoo's checkpoints. Imports nothing of cnnzoo but :mod:`cnnzoo.errors`.

A checkpoint is a dict of plain data and tensors, loadable with ``torch.load(...,
weights_only=True)``. It holds everything ``eval``/``predict`` need to rebuild the model:

    format, model, model_kwargs, num_classes, in_chans, input_size, classes, mean, std,
    dataset, state_dict (the evaluated weights: with ``ema``, the average), optimizer, config,
    epoch (completed epochs), step (next step of an interrupted epoch, or None), partial (running
    sums of that epoch), history, elapsed_seconds, replans (a budget run's changes of plan),
    world_size, global_batch_size, backend (processes of a torchrun job, images per step over
    all of them, the process group's backend or None); selection (model selection on validation
    data: the best epoch, its value and weights ``best_state_dict``, the early-stop epoch), final
    (with validation data: the kept epoch's row and its one test score, once training ended);
    with ``ema`` also train_state_dict (the trained weights) and ema_updates (steps averaged)
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import torch

from .errors import CnnzooError

FORMAT = "cnnzoo-checkpoint/1"


class CheckpointError(CnnzooError):
    """A checkpoint that is missing, corrupt or not written by cnnzoo."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old or the new file,
    never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(ckpt: dict, path: Path) -> None:
    """Atomically save a checkpoint dict with ``torch.save``."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **ckpt}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Load a cnnzoo checkpoint on the CPU with ``weights_only=True``.

    Raises:
        CheckpointError: the file is missing, not loadable, or not a cnnzoo checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"missing checkpoint {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors come in many types
        raise CheckpointError(f"{path} is not a checkpoint cnnzoo can read (torch.load with weights_only=True "
                              f"refused it: {type(err).__name__}); give a run folder of cnnzoo train or its "
                              f"checkpoint.pt") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cnnzoo checkpoint (format {FORMAT})")
    return ckpt


def planned_epochs(ckpt: dict) -> int | None:
    """The epochs a run's checkpoint ``ckpt`` ends at: the configured ``epochs``, or the epoch after
    which early stopping ended it (``selection.stopped_after``); ``None`` for a budget run not yet started."""
    stopped = (ckpt.get("selection") or {}).get("stopped_after")
    return stopped or ckpt["config"].get("epochs")


def write_json(path: Path, obj) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def write_csv(path: Path, rows: list[dict]) -> None:
    """Atomically write a list of dicts as CSV with a header: the keys in order of first
    appearance (a key some rows lack, e.g. the final epoch's ``test_acc_tta``, is empty there)."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def cache_dir() -> Path:
    """Where cnnzoo keeps computed figures between runs: ``$CNNZOO_CACHE``, else
    ``$XDG_CACHE_HOME/cnnzoo``, else ``~/.cache/cnnzoo``."""
    if os.environ.get("CNNZOO_CACHE"):
        return Path(os.environ["CNNZOO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnnzoo"
