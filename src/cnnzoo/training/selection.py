"""Model selection on a validation set: which epoch's weights a run keeps, and early stopping.

With validation data a run evaluates the validation set after every epoch and keeps (``select
"best"``) the weights of the epoch with the highest validation top-1, the earlier epoch on a tie,
as Keras's ``ModelCheckpoint(save_best_only=True)`` + ``EarlyStopping(restore_best_weights=True)``
and Lightning's ``ModelCheckpoint(monitor=...)`` do; ``early_stop`` P stops after P epochs in a row
without a higher validation top-1 (Keras's ``patience``). The test set is then scored once, on the
kept weights: choosing the epoch by the test set would report an optimistic test figure.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .._text import plural
from ..errors import CnnzooError

SELECT = ("best", "last")


@dataclass
class Selection:
    """The state of model selection over the epochs of one run.

    Attributes:
        select: "best" (the highest validation top-1, the earlier on a tie) or "last".
        patience: stop after this many epochs without improvement (``None``: never).
        best_epoch, best_value: the 1-based epoch with the highest validation top-1 so far and that value.
        best_state: CPU copies of the evaluated model's tensors at ``best_epoch`` (``select == "best"`` only).
        stopped_after: the epoch after which early stopping ended the run, or ``None``.
    """

    select: str
    patience: int | None = None
    best_epoch: int | None = None
    best_value: float | None = None
    best_state: dict | None = None
    stopped_after: int | None = None

    @classmethod
    def for_run(cls, select: str | None, patience: int | None, has_val: bool) -> "Selection":
        """The selection of a run: ``select`` (``None``: "best" with validation data, else "last").

        Raises:
            CnnzooError: ``select`` not in :data:`SELECT`; "best" or ``patience`` without validation data.
        """
        if select is not None and select not in SELECT:
            raise CnnzooError(f"--select {select}: choose best or last")
        if not has_val and (select == "best" or patience is not None):
            flag = "--select best" if select == "best" else f"--early-stop {patience}"
            raise CnnzooError(f"{flag} needs validation data: add --val-split F (e.g. 0.1), give the folder a val/ "
                              "beside train/ and test/, or a folder of class folders to split (--split)")
        return cls(select or ("best" if has_val else "last"), patience)

    def update(self, epoch: int, value: float, model: nn.Module) -> bool:
        """Record the validation top-1 ``value`` of ``epoch`` (1-based) of ``model``'s weights;
        returns True when it is the best so far (strictly higher: a tie keeps the earlier epoch)."""
        better = self.best_value is None or value > self.best_value
        if better:
            self.best_epoch, self.best_value = epoch, value
            if self.select == "best":
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        elif self.patience is not None and epoch - self.best_epoch >= self.patience:
            self.stopped_after = epoch
        return better

    @property
    def stopped(self) -> bool:
        return self.stopped_after is not None

    def kept_epoch(self, epochs_run: int) -> int:
        return self.best_epoch if self.select == "best" and self.best_epoch is not None else epochs_run

    def restore_best(self, model: nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (with ``select == "best"``)."""
        if self.select == "best" and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state(self) -> dict:
        """What a checkpoint keeps of the selection (the best weights so far included)."""
        return {"select": self.select, "patience": self.patience, "best_epoch": self.best_epoch,
                "best_value": self.best_value, "stopped_after": self.stopped_after, "best_state_dict": self.best_state}

    def load(self, state: dict | None) -> None:
        if state:
            self.best_epoch, self.best_value = state["best_epoch"], state["best_value"]
            self.stopped_after, self.best_state = state["stopped_after"], state["best_state_dict"]

    def summary(self, epochs_run: int, planned: int, has_val: bool) -> dict:
        """metrics.json's ``selection``: which epoch was kept and why."""
        if not has_val:
            return {"select": "last", "kept_epoch": epochs_run, "metric": None, "early_stop": None,
                    "why": "no validation data: the last epoch's weights are kept, and the test set was scored "
                           "after every epoch"}
        kept = self.kept_epoch(epochs_run)
        why = (f"the highest validation top-1 ({self.best_value:.4f}) of {epochs_run} epochs; a tie keeps the earlier"
               if self.select == "best" else f"--select last: the last epoch run ({epochs_run})")
        stop = None
        if self.patience is not None:
            stop = {"patience": self.patience, "stopped_after_epoch": self.stopped_after, "planned_epochs": planned}
            if self.stopped:
                why += (f"; early stop after epoch {self.stopped_after} of {planned}: {plural(self.patience, 'epoch')} "
                        f"without a higher validation top-1 than epoch {self.best_epoch}'s")
        return {"select": self.select, "kept_epoch": kept, "metric": "val_acc", "best_epoch": self.best_epoch,
                "best_val_acc": self.best_value, "early_stop": stop,
                "why": why + "; the test set was scored once, after training, on the kept weights"}


def best_epoch(values: list[float]) -> int:
    """The 1-based index of the highest of ``values``, the earliest on a tie (what ``select
    "best"`` keeps, for checking a run's history)."""
    return max(range(len(values)), key=lambda i: (values[i], -i)) + 1

