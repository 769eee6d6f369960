"""Checkpoints and metric files, written atomically (temp file + ``os.replace``).

A checkpoint is a dict of plain data and tensors, loadable with ``torch.load(...,
weights_only=True)``. It holds everything ``eval``/``predict`` need to rebuild the model:

    format, model, model_kwargs, num_classes, in_chans, input_size, classes, mean, std,
    dataset, state_dict (the evaluated weights: with ``ema``, the average), optimizer, config,
    epoch (completed epochs), step (next step of an interrupted epoch, or None), partial (running
    sums of that epoch), history, elapsed_seconds, replans (a budget run's changes of plan),
    world_size, global_batch_size, backend (processes of a torchrun job, images per step over
    all of them, the process group's backend or None);
    with ``ema`` also train_state_dict (the trained weights) and ema_updates (steps averaged)
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from .._io import atomic_write_bytes, write_json  # noqa: F401 - re-exported
from ..errors import CnnzooError

FORMAT = "cnnzoo-checkpoint/1"


class CheckpointError(CnnzooError):
    """A checkpoint that is missing, corrupt or not written by cnnzoo."""


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


def write_csv(path: Path, rows: list[dict]) -> None:
    """Atomically write a list of dicts as CSV with a header: the keys in order of first
    appearance (a key some rows lack, e.g. the final epoch's ``test_acc_tta``, is empty there)."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())
