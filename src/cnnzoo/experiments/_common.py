"""Helpers the training experiments share: one :func:`cnnzoo.train` call per arm, error curves."""
from __future__ import annotations

from pathlib import Path

#: TrainConfig fields an experiment preset may set for its runs (the rest are the experiment's own).
TRAIN_FIELDS = ("dataset", "epochs", "limit_train", "limit_test", "width", "input_size", "batch_size", "lr", "seed")


def train_arm(model: str, out: Path, preset: dict, data_dir: str | None, **overrides):
    """Train (or reuse a finished run of) ``model`` in ``out`` with the preset's training fields.

    Returns:
        :class:`cnnzoo.training.TrainResult` (``history``: one dict per epoch, the trainer's record).
    """
    from ..training import train

    opts = {k: preset[k] for k in TRAIN_FIELDS if preset.get(k) is not None}
    if data_dir is not None:
        opts["data_dir"] = data_dir
    return train(model, out=out, progress=False, **{**opts, **overrides})


def sample_sizes(result, data_dir: str | None) -> dict:
    """``train_images`` and ``test_images`` a run used (its ``classes``, ``limit_train`` /
    ``limit_test`` and ``per_class``, as the trainer applies them), the n of the accuracy noise
    rule (:func:`cnnzoo.compare.evidence.accuracy_gap`)."""
    import torch

    from ..data import load_dataset, per_class_indices

    cfg = result.summary["config"]
    data = load_dataset(cfg["dataset"], data_dir)
    train_y, test_y = data.train.labels, data.test.labels
    if cfg.get("classes"):
        kept = torch.tensor(cfg["classes"])
        train_y, test_y = train_y[torch.isin(train_y, kept)], test_y[torch.isin(test_y, kept)]
    train_y, test_y = train_y[:cfg.get("limit_train")], test_y[:cfg.get("limit_test")]
    if cfg.get("per_class"):          # the subset depends on which samples share a class, not on the labels' values
        train_y = train_y[per_class_indices(train_y, cfg["per_class"], cfg["seed"])]
    return {"train_images": len(train_y), "test_images": len(test_y)}


def error_curves(ax, label: str, history: list[dict], style: str = "-") -> None:
    """Plot training error (dashed) and test error (solid) per epoch, in percent, from a run's history.

    Training error is the running error over each epoch's augmented batches (as in He et al.
    2015, Fig. 1 and 6); test error is measured after the epoch.
    """
    epochs = [h["epoch"] for h in history]
    ln = ax.plot(epochs, [100 * (1 - h["train_acc"]) for h in history], "--", label=f"{label} train")[0]
    ax.plot(epochs, [100 * (1 - h["test_acc"]) for h in history], style, color=ln.get_color(), label=f"{label} test")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
