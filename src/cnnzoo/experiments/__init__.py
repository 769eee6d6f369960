"""The lecture's experiments, runnable: ``cnnzoo experiment NAME [--preset quick|full] [--out DIR]``.

Each experiment is one module with ``PRESETS`` (``tiny`` for tests, ``quick`` for 2 CPU cores in
under 15 minutes, ``full`` for the README's figures) and ``run(preset, out, data_dir) -> Report``;
:func:`run_experiment` writes ``report.md``, ``results.json`` and the PNGs into ``out``.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import CnnzooError
from .report import Report, command_line

#: Experiment name -> (module, lecture claims it reruns).
EXPERIMENTS = {
    "degradation": ("degradation", "L27"),
    "inception": ("inception", "L20-L23"),
    "small-filters": ("small_filters", "L13-L14"),
    "aux-heads": ("aux_heads", "L25"),
    "transfer": ("transfer", "L17"),
    "filters": ("filters", "Zeiler & Fergus 2013, Fig. 2"),
    "finetune": ("finetune", "L17, transfer workflow"),
}


class ExperimentError(CnnzooError, ValueError):
    """Unknown experiment or preset."""


def experiment_module(name: str):
    """The module implementing experiment ``name``.

    Raises:
        ExperimentError: unknown name.
    """
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f".{EXPERIMENTS[name][0]}", __name__)


def run_experiment(name: str, preset: str = "quick", out: str | os.PathLike | None = None,
                   data_dir: str | None = None, dataset: str | None = None) -> Report:
    """Run experiment ``name`` with a preset; write ``report.md``, ``results.json`` and plots to ``out``
    (default ``runs/experiments/NAME-PRESET``). Training runs go under ``out/runs/`` and a finished
    run with the same settings is reused. ``dataset`` replaces the default Fashion-MNIST
    (any name :func:`cnnzoo.data.load_dataset` knows).

    Raises:
        ExperimentError: unknown experiment or preset; CnnzooError from the trainer or analyzer.
    """
    mod = experiment_module(name)
    if preset not in mod.PRESETS:
        raise ExperimentError(f"unknown preset {preset!r} for {name}; choose one of {', '.join(mod.PRESETS)}")
    out = Path(out) if out is not None else Path("runs") / "experiments" / f"{name}-{preset}"
    settings = {**mod.PRESETS[preset], **({"dataset": dataset} if dataset else {})}
    rep = mod.run(settings, out, data_dir)
    rep.preset = preset
    rep.command = command_line(name, preset, out, dataset=dataset, data_dir=data_dir)
    rep.write(out)
    return rep


__all__ = ["EXPERIMENTS", "run_experiment", "experiment_module", "Report", "ExperimentError"]
