"""What a training run is: :class:`TrainConfig` (every option, ``None`` for the recipe's value),
the ranges and choices it is checked against, and :class:`TrainConfigError`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..data.datasets import DATA_MODES
from ..data.splits import parse_split
from ..errors import CnnzooError
from .recipes import recipe_for
from .selection import SELECT


class TrainConfigError(CnnzooError, ValueError):
    """An impossible training configuration (input too small, unknown option, ...)."""


@dataclass
class TrainConfig:
    """What a run is. ``None`` fields are filled from the model's recipe (:mod:`.recipes`)."""

    model: str                                # registry name ("lenet5_modern") or "/abs/path/FILE.py:FACTORY"
    dataset: str = "fashion-mnist"            # one of cnnzoo.data.DATASETS
    data_dir: str | None = None               # else CNNZOO_DATA, else the system location
    download: bool = False                    # fetch missing files with torchvision
    channels: int | None = None               # 1 (grey) | 3 (RGB) input channels; None: the data set's own
    epochs: int | None = None                 # training length in epochs ...
    budget_minutes: float | None = None       # ... or in minutes of train + eval time (epochs estimated,
                                              # re-fitted after epochs: Trainer.replan_for_budget)
    input_size: int | None = None             # side of the model input, pixels
    width: float | None = None                # channel multiplier (builder kwarg ``width``)
    batch_size: int | None = None             # images per step (per process)
    lr: float | None = None                   # peak learning rate
    optimizer: str | None = None              # "sgd" (Nesterov, momentum 0.9) | "adamw"
    weight_decay: float | None = None         # on weights, not on biases / norm parameters
    schedule: str | None = None               # "cosine" | "linear" | "constant", after warm-up
    warmup_epochs: float | None = None        # linear warm-up length, epochs
    label_smoothing: float | None = None      # cross-entropy label smoothing
    pad: int | None = None                    # random-crop padding, pixels (0 = off)
    flip: bool | None = None                  # random horizontal flip
    erase: float | None = None                # random-erasing probability (0 = off)
    ema: float | None = None                  # decay of an exponential moving average of the weights
                                              # (and BatchNorm statistics), which is evaluated and saved; 0 = off
    numerics: list[str] | None = None         # numeric paths the run may use (cnnzoo.numerics.TRAIN_PATHS); the
                                              # fastest of them on this machine is chosen (Trainer.numerics)
    amp: str | None = None                    # force "fp32" | "bf16" | "fp16" autocast; None: chosen
    channels_last: bool | None = None         # force the NHWC memory format on / off; None: chosen
    tta: str | None = None                    # also score the final model by multi-view testing: "flip" | "10crop"
    sync_bn: bool = False                     # BatchNorm statistics over all processes (DDP runs only)
    device: str | None = None                 # "cpu" | "cuda" | "cuda:N"; None: this process's GPU if any, else CPU
    aux_weight: float = 0.3                   # GoogLeNet auxiliary-loss weight (Szegedy et al. 2014, Sec. 5)
    seed: int = 0                             # every random draw derives from it
    model_kwargs: dict = field(default_factory=dict)  # extra builder kwargs
    limit_train: int | None = None            # use only the first N training images
    limit_test: int | None = None             # evaluate on the first N test images
    classes: list[int] | None = None          # keep only these labels, relabelled 0..k-1 in this order
    per_class: int | None = None              # then train on at most N images per class (a stratified
                                              # subset drawn from ``seed``, after limit_train)
    weights: str | None = None                # start from these weights: a weight file or a run (finetune.py)
    freeze: str | int | None = None           # "backbone" (all but the classifier) | N (stem + first N stages)
    unfreeze_epoch: int | None = None         # from this epoch (1-based) on, every layer trains
    backbone_lr_scale: float = 1.0            # the backbone's learning rate is this times the head's
    # -- validation, model selection, imbalance, folder data (docs/training.md "Fine-tuning", docs/data.md)
    val_split: float | None = None            # hold out this stratified, seeded fraction of the training images
    split: str | None = None                  # "TRAIN,VAL,TEST" fractions of a folder without train/ and test/
                                              # (None: 0.8,0.1,0.1)
    select: str | None = None                 # kept weights: "best" validation top-1 (default with validation
                                              # data) | "last"
    early_stop: int | None = None             # stop after this many epochs without a higher validation top-1
    class_weights: str | None = None          # "balanced": cross-entropy weights n / (k * n_c)
    sampler: str | None = None                # "balanced": each epoch drawn with replacement, classes equally likely
    labels: str | None = None                 # CSV of filename,label rows labelling the flat folder --data-dir
    skip_bad_images: bool = False             # leave unreadable images out (listed, counted) instead of refusing
    data_mode: str | None = None              # "memory" | "stream" (image folders decoded by worker processes as
                                              # needed) | "auto" or None (datasets.choose_mode; resolved at start)
    workers: int | None = None                # a stream's decoding processes (None: the cores, at most 8)

    def check(self) -> None:
        """Refuse values outside each numeric option's range (:data:`RANGES`), naming every bad
        option as its CLI flag, e.g. ``--epochs 0 (at least 1)``; ``None`` (the recipe's) passes.

        Raises:
            TrainConfigError: one line listing each option out of range and its range.
        """
        bad = [f"--{name.replace('_', '-')} {value} ({words})"
               for name, (low, low_open, high, high_open, words) in RANGES.items()
               if (value := getattr(self, name)) is not None
               and (value < low or (low_open and value == low) or (high is not None and value > high)
                    or (high_open and value == high))]
        bad += [f"--{name.replace('_', '-')} {value} (choose {' or '.join(choices)})"
                for name, choices in CHOICES.items() if (value := getattr(self, name)) not in (None, *choices)]
        if bad:
            raise TrainConfigError(f"out of range: {'; '.join(bad)}")
        if self.split is not None:
            parse_split(self.split)

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` recipe field filled in from the model's recipe (and the
        recipe's builder ``model_kwargs`` under the user's own)."""
        rec = recipe_for(self.model)
        if self.budget_minutes is not None:
            rec.pop("epochs")                    # estimated from the budget by Trainer.fit
        kwargs = {**rec.pop("model_kwargs", {}), **self.model_kwargs}
        rec["numerics"] = list(self.numerics or rec["numerics"])
        return dataclasses.replace(self, **{k: v for k, v in rec.items() if getattr(self, k) is None},
                                   model_kwargs=kwargs)


#: The range of each numeric option: (low, low excluded, high or None, high excluded, in words).
RANGES: dict[str, tuple] = {
    "epochs": (1, False, None, False, "at least 1"),
    "budget_minutes": (0, True, None, False, "above 0"),
    "input_size": (1, False, None, False, "at least 1"),
    "width": (0, True, None, False, "above 0"),
    "batch_size": (1, False, None, False, "at least 1"),
    "lr": (0, True, None, False, "above 0"),
    "weight_decay": (0, False, None, False, "0 or more"),
    "warmup_epochs": (0, False, None, False, "0 or more"),
    "label_smoothing": (0, False, 1, True, "in [0, 1)"),
    "pad": (0, False, None, False, "0 or more"),
    "erase": (0, False, 1, False, "a probability in [0, 1]"),
    "ema": (0, False, 1, True, "a decay in [0, 1)"),
    "aux_weight": (0, False, None, False, "0 or more"),
    "limit_train": (1, False, None, False, "at least 1 image"),
    "limit_test": (1, False, None, False, "at least 1 image"),
    "per_class": (1, False, None, False, "at least 1 image"),
    "backbone_lr_scale": (0, True, None, False, "above 0"),
    "val_split": (0, True, 1, True, "a fraction in (0, 1)"),
    "early_stop": (1, False, None, False, "at least 1 epoch"),
    "workers": (0, False, None, False, "0 or more processes"),
}
#: The options that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {"select": SELECT, "class_weights": ("balanced",), "sampler": ("balanced",),
                                       "data_mode": DATA_MODES}

SCHEDULES = ("cosine", "linear", "constant")
OPTIMIZERS = ("sgd", "adamw")
