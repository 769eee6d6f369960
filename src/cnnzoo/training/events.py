"""TensorBoard event files of a training run, in its folder (``tensorboard --logdir runs``).

After every epoch each number of the epoch's row (what metrics.csv holds) is written as a scalar
at step = the epoch: losses and accuracies grouped so that one chart shows every split
(``loss/train``, ``loss/test``, ``loss/val``, ``top1/...``, ``top5/...``), the learning rate as
``lr``, the rest (seconds, images/s) under ``other/``. Rows with keys added later (a validation
split's ``val_loss``, ``val_acc``) are written the same way. ``torch.utils.tensorboard`` is
imported at the first epoch, so other commands do not pay for it.
"""
from __future__ import annotations

from pathlib import Path

#: The metric part of a ``SPLIT_METRIC`` key -> the chart it goes to.
_CHARTS = {"loss": "loss", "acc": "top1", "top5": "top5"}


def tag(key: str) -> str:
    """The TensorBoard tag of a history key: ``train_loss`` -> ``loss/train``, ``test_acc`` ->
    ``top1/test``, ``test_acc_tta`` -> ``top1/test_tta``, ``lr`` -> ``lr``, ``train_seconds`` ->
    ``other/train_seconds``."""
    if key == "lr":
        return key
    split, _, metric = key.partition("_")
    metric, _, suffix = metric.partition("_")
    if metric in _CHARTS:
        return f"{_CHARTS[metric]}/{split}{'_' + suffix if suffix else ''}"
    return f"other/{key}"


class EventLog:
    """Writes the epochs' rows of one run into ``out`` (event files ``events.out.tfevents.*``)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.writer = None

    def epoch(self, row: dict) -> None:
        """Write every number of one epoch's row at step ``row["epoch"]`` and flush."""
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out))
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag(key), value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
