"""The training loop: one :class:`Trainer` with a step function, checkpointing and resume (what a
run is: :mod:`.config`; scoring: :mod:`.evaluation`; device and environment: :mod:`.environment`;
the :func:`~cnnzoo.training.train` API around it: :mod:`.api`).

Determinism: every random draw of step ``s`` of epoch ``e`` (sample order, crop offsets,
flips, dropout masks) comes from generators seeded by ``(seed, e, s)``, so a run is a pure
function of its seed on a given machine and thread count, and resuming from any checkpoint
(end of epoch, or mid-epoch after Ctrl-C) reaches the same final metrics as an uninterrupted run.

Model selection: with validation data (``val_split``, a ``val/`` folder, a split folder) each
epoch scores the validation set, the kept weights are chosen by :class:`~.selection.Selection`
(the best epoch's are in every checkpoint) and the test set is scored once, by :meth:`Trainer.finish`.

Distributed seam: ``rank``/``world_size`` shard each global batch (:func:`batch_slices`),
``_all_reduce`` sums metric tensors (the identity on one process), ``is_main`` gates files and
progress, and ``self.train_model`` is the module the step calls (a DDP wrapper goes there).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .. import numerics
from .._io import save_checkpoint, write_csv, write_json
from .._text import plural
from ..data import (TTA_VIEWS, Augment, batch_slices, check_tta, epoch_order, load_dataset, num_steps,
                    per_class_indices, to_input)
from ..data.datasets import hold_out
from ..data.source import ImageSource
from ..data.splits import balanced_class_weights, balanced_order, imbalance_notice
from ..errors import CnnzooError
from ..resolve import resolve_model
from .config import OPTIMIZERS, SCHEDULES, TrainConfig, TrainConfigError
from .environment import environment, resolve_device
from .evaluation import autocast, evaluate_model, to_device
from .events import EventLog
from .finetune import FineTune, param_groups
from .selection import Selection


class TrainingDivergedError(CnnzooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


_REPLAN_WINDOW = 3                                # a budget run re-plans from its last 3 epochs' mean time


def lr_at(step: float, total: int, base: float, warmup: int, kind: str) -> float:
    """Learning rate of step ``step`` (0-based; a fraction between steps allowed) of ``total``:
    linear warm-up over ``warmup`` steps, then cosine or linear decay to zero, or constant."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    if kind == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * t))
    return base * (1.0 - t) if kind == "linear" else base


def step_seed(seed: int, epoch: int, step: int) -> int:
    """Seed of every random draw of one training step (a pure function of its position)."""
    return (seed * 1_000_003 + epoch) * 100_003 + step


def select_classes(data, classes: list[int]):
    """The :class:`~cnnzoo.data.ImageData` restricted to labels ``classes``, relabelled
    ``0..k-1`` in the given order (mean/std recomputed on the kept training images).

    Raises:
        TrainConfigError: a label outside ``[0, num_classes)`` or a repeated one.
    """
    if len(set(classes)) != len(classes) or not all(0 <= c < data.num_classes for c in classes):
        raise TrainConfigError(f"classes must be distinct labels in [0, {data.num_classes}), got {list(classes)}")
    from ..data.datasets import _make

    lut = torch.full((data.num_classes,), -1, dtype=torch.int64)
    lut[list(classes)] = torch.arange(len(classes))

    def keep(src: ImageSource) -> ImageSource:
        part = src.subset((lut[src.labels] >= 0).nonzero().flatten())
        part.labels = lut[part.labels]
        return part

    return _make(data.name, keep(data.train), keep(data.test), [data.classes[c] for c in classes], data.source,
                 data.notes, val=None if data.val is None else keep(data.val), skipped=data.skipped, mode=data.mode,
                 mode_reason=data.mode_reason)


class Trainer:
    """Trains one model on one in-memory data set; see the module docstring.

    Args:
        config: the run (``None`` fields come from the recipe).
        out_dir: where ``checkpoint.pt``, ``metrics.csv`` and ``metrics.json`` go.
        progress: show a tqdm bar (main process only).
        rank, world_size: process index and count (1 process: 0, 1).

    Raises:
        TrainConfigError: unknown optimizer or schedule, an option out of range
            (:meth:`TrainConfig.check`), or builder kwargs the model does not take.
        CnnzooError: an unknown ``tta``, any without random flips, or "10crop" without crop padding
            (:func:`~cnnzoo.data.check_tta`).
        InputTooSmallError: (at the first step) an input size below the model's minimum.
    """

    def __init__(self, config: TrainConfig, out_dir: str | os.PathLike, progress: bool = True,
                 rank: int = 0, world_size: int = 1):
        self.cfg = config.resolved()
        self.out = Path(out_dir)
        self.progress = progress
        self.rank, self.world_size = rank, world_size
        cfg = self.cfg
        if (cfg.optimizer not in OPTIMIZERS or cfg.schedule not in SCHEDULES
                or cfg.amp not in (None, *numerics.DTYPES)):
            raise TrainConfigError(f"optimizer must be one of {OPTIMIZERS}, schedule one of {SCHEDULES}, "
                                   f"amp one of {tuple(numerics.DTYPES)}; got {cfg.optimizer!r}, {cfg.schedule!r}, "
                                   f"{cfg.amp!r}")
        numerics.check_paths(cfg.numerics)
        cfg.check()                               # the recipe's values too
        check_tta(cfg.tta, cfg.pad, cfg.flip)
        self.ft = FineTune(cfg)                   # --weights, --freeze, ... (finetune.py)
        # an image folder is resized to the input size at load time (shorter side, centre crop)
        self.data = load_dataset(cfg.dataset, cfg.data_dir, cfg.download, channels=cfg.channels, size=cfg.input_size,
                                 resize=self.ft.resize(cfg.input_size), split=cfg.split, seed=cfg.seed,
                                 labels=cfg.labels, skip_bad=cfg.skip_bad_images, mode=cfg.data_mode or "auto",
                                 workers=cfg.workers)
        cfg.data_mode = self.data.mode            # "auto" resolved: a resumed run reads its data the same way
        if cfg.classes is not None:
            self.data = select_classes(self.data, cfg.classes)
        if cfg.val_split is not None:               # stratified, seeded, of the images training would use
            self.data = hold_out(self.data, cfg.val_split, cfg.seed, cfg.limit_train)
        self.data = self.ft.normalise(self.data)   # the weights' mean and std, if they have their own
        d = self.data
        self.train: ImageSource = d.train.head(cfg.limit_train)
        if cfg.per_class is not None:             # few-shot: a seeded, stratified subset
            self.train = self.train.subset(per_class_indices(self.train.labels, cfg.per_class, cfg.seed))
        self.test: ImageSource = d.test.head(cfg.limit_test)
        self.val: ImageSource | None = d.val       # None: no validation set (the test set is scored every epoch)
        self.selection = Selection.for_run(cfg.select, cfg.early_stop, self.val is not None)
        self.final: dict | None = None              # with validation: the kept epoch and its one test score
        if notice := imbalance_notice(self.train.labels, d.classes, cfg.class_weights, cfg.sampler):
            self.data = d = dataclasses.replace(d, notes=(*d.notes, notice))
        for line in d.notes if self.is_main and progress else ():
            print(line, flush=True)                # what was skipped, converted, resized, split; class imbalance
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: cuDNN picks its fastest kernels once
        self.loss_weight = (balanced_class_weights(self.train.labels, d.num_classes).to(self.device)
                            if cfg.class_weights == "balanced" else None)
        self.model = self.build_model()
        for line in self.ft.start_lines(self.data) if self.is_main and progress else ():
            print(line, flush=True)
        self.train_model = self.model               # the seam where a DDP wrapper goes
        self.ema = self.scaler = None               # built once the numeric path is chosen (below)
        self.aug = Augment(cfg.pad, cfg.flip, cfg.erase)
        self.steps_per_epoch = num_steps(len(self.train), cfg.batch_size, world_size=world_size)
        self.optimizer = self.build_optimizer()
        self.use_aux = hasattr(self.model, "forward_with_aux") and cfg.aux_weight > 0
        self.numerics = self.choose_numerics()      # sets cfg.amp and cfg.channels_last
        self.model.to(memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
        self.ema, self.scaler = self.build_ema(), self.build_scaler()
        self.history: list[dict] = []
        self.epoch, self.step, self.partial = 0, 0, None
        self.elapsed = 0.0
        self.replans: list[dict] = []             # budget runs: each change of the plan (replan_for_budget)
        self.resume_changes: list[dict] = []      # options changed by --resume (restore)
        self._stop_requested = False              # set by the first Ctrl-C
        self.events = EventLog(self.out)          # TensorBoard event files (main process)
        self.named_skipped = set(dict(self.data.skipped))   # named once (say_skipped); those left out at load
                                                             # are in the notes printed above
        self.more_skipped: dict[str, str] = {}    # ... met by other processes, or before a resume

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        """The process group's backend ("gloo", "nccl"); None for one process."""
        return None

    def parallelism(self) -> dict:
        """How the run is spread over processes, as metrics.json and the checkpoint record it:
        ``world_size`` (processes), ``global_batch_size`` (images per step over all processes)
        and ``backend``."""
        return {"world_size": self.world_size, "global_batch_size": self.cfg.batch_size * self.world_size,
                "backend": self.backend}

    # -- building -------------------------------------------------------------------------
    def model_kwargs(self) -> dict:
        kw = dict(self.cfg.model_kwargs)
        if self.cfg.width != 1.0:
            kw["width"] = self.cfg.width
        return kw

    def build_model(self) -> nn.Module:
        """The model of ``cfg.model`` (registry name or model file, :func:`~cnnzoo.resolve.resolve_model`)
        for the data set's classes and channels; its one-line description goes to ``self.description``."""
        cfg, d = self.cfg, self.data
        torch.manual_seed(cfg.seed)
        try:
            r = resolve_model(cfg.model, num_classes=d.num_classes, in_chans=d.in_chans, model_kwargs=self.model_kwargs(),
                              input_size=cfg.input_size)
        except TypeError as err:
            raise TrainConfigError(f"{cfg.model} does not take these options {self.model_kwargs()}: {err}") from None
        self.description = r.description
        if r.kind == "file":        # a user's forward that fails names its layer here, not as a traceback mid-step
            from ..analysis import profile
            profile(r.model, (d.in_chans, cfg.input_size, cfg.input_size))      # meta device: no arithmetic
        self.ft.prepare(r.model)                  # pretrained weights in, frozen modules frozen
        model = r.model.to(self.device)
        return model.to(memory_format=torch.channels_last) if cfg.channels_last else model

    def numerics_config(self) -> dict:
        """What the speed of a numeric path depends on besides the machine (the cache key of
        :func:`cnnzoo.numerics.choose`): model, builder options, input, classes, batch, aux heads,
        optimizer and weight average."""
        cfg, d = self.cfg, self.data
        return {"model": cfg.model, "model_kwargs": self.model_kwargs(), "input": [d.in_chans, cfg.input_size,
                cfg.input_size], "num_classes": d.num_classes, "batch_size": cfg.batch_size, "aux": self.use_aux,
                "optimizer": cfg.optimizer, "ema": bool(cfg.ema)}

    def choose_numerics(self) -> numerics.Choice:
        """The numeric path of this run (:func:`cnnzoo.numerics.choose`): forced by ``cfg.amp`` /
        ``cfg.channels_last`` where set, else the fastest of ``cfg.numerics`` that this device runs
        well, measured by :meth:`measure_numerics` (not under torchrun, where every process must
        take the same path: there the first candidate). Sets ``cfg.amp`` and ``cfg.channels_last``."""
        cfg = self.cfg
        choice = numerics.choose(cfg.numerics, self.numerics_config(),
                                 self.measure_numerics if self.world_size == 1 else None,
                                 device=str(self.device), amp=cfg.amp, channels_last=cfg.channels_last)
        cfg.amp, cfg.channels_last = choice.amp, choice.channels_last
        return choice

    def measure_numerics(self, path: str, steps: int = 2) -> float:
        """Images/s of one training step in numeric ``path`` (a key of
        :data:`cnnzoo.numerics.TRAIN_PATHS`): the fastest of ``steps`` steps after one warm-up step (the
        least disturbed by other work on the machine), on a throwaway copy of the model and
        optimizer (nothing of the run changes)."""
        amp, cl = numerics.TRAIN_PATHS[path]
        with self._throwaway(amp, cl):
            x, y = self.first_batch()
            n = len(y)
            times = []
            for _ in range(steps + 1):
                t0 = time.perf_counter()
                self.train_step(x, y)                # returns CPU tensors: the device has finished
                times.append(time.perf_counter() - t0)
        return n / min(times[1:])

    @contextlib.contextmanager
    def _throwaway(self, amp: str | None = None, channels_last: bool | None = None):
        """Within: the model, optimizer, weight average and gradient scaler are throwaway copies
        (for timing steps), optionally in another numeric path; all restored on exit."""
        cfg = self.cfg
        real = (self.model, self.train_model, self.optimizer, self.ema, self.scaler, cfg.amp, cfg.channels_last)
        try:
            cfg.amp = amp or cfg.amp
            cfg.channels_last = cfg.channels_last if channels_last is None else channels_last
            fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
            self.model = self.train_model = copy.deepcopy(self.model).to(memory_format=fmt)
            self.optimizer, self.ema, self.scaler = self.build_optimizer(), self.build_ema(), self.build_scaler()
            yield
        finally:
            self.model, self.train_model, self.optimizer, self.ema, self.scaler, cfg.amp, cfg.channels_last = real

    def build_scaler(self) -> torch.amp.GradScaler:
        """The gradient scaler of fp16 autocast (loss scaling, Micikevicius et al. 2018); a
        pass-through (disabled) for fp32 and bf16."""
        import warnings

        with warnings.catch_warnings():           # "GradScaler is enabled, but CUDA is not available" on CPU
            warnings.simplefilter("ignore")
            return torch.amp.GradScaler(self.device.type, enabled=self.cfg.amp == "fp16")

    def build_ema(self) -> AveragedModel | None:
        """The weight average of ``cfg.ema`` (None when 0): after every step each weight and
        BatchNorm buffer moves to ``ema * average + (1 - ema) * current`` (torch's
        ``AveragedModel``; the first step copies the model), as timm's ``--model-ema``. Szegedy et
        al. 2016 (Inception-v3), Sec. 8, evaluate such a running average of the parameters."""
        if not self.cfg.ema:
            return None
        ema_update = get_ema_multi_avg_fn(self.cfg.ema)

        def update(averages: list, currents: list, n_averaged) -> None:   # one device/dtype group per call
            if averages[0].is_floating_point():
                ema_update(averages, currents, n_averaged)
            else:                                         # counters (num_batches_tracked): copied, not averaged
                for avg, now in zip(averages, currents):
                    avg.copy_(now)

        return AveragedModel(self.model, multi_avg_fn=update, use_buffers=True)

    @property
    def eval_model(self) -> nn.Module:
        """The network that is evaluated and saved: the weight average with ``ema``, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.cfg
        groups = param_groups(self.model, cfg.weight_decay, cfg.backbone_lr_scale)   # decay / no decay (x backbone / head)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=cfg.lr)
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)

    @property
    def total_steps(self) -> int:
        return self.cfg.epochs * self.steps_per_epoch

    @property
    def warmup_steps(self) -> int:
        return round(self.cfg.warmup_epochs * self.steps_per_epoch)

    def schedule_step(self, step: int) -> float:
        """Where global step ``step`` sits on the current plan's schedule of :attr:`total_steps`.

        Without re-plans this is ``step``. Each re-plan of a budget run (``self.replans``) maps
        the rest of the run after warm-up onto the new end: the decay reached at the re-plan is
        kept and the remaining decay is stretched or compressed over the remaining steps, so the
        learning rate never jumps. A step before a re-plan (the start of the epoch in which a
        resume changed ``epochs``) sits where that re-plan's earlier plan put it. Re-plans saved by
        the older rule (no ``"rule": "stretch"``) kept the plain schedule of the current plan, as before."""
        spe, total, warmup = self.steps_per_epoch, self.total_steps, self.warmup_steps
        replans = [r for r in self.replans if r.get("rule") == "stretch"]
        if not replans or step <= warmup:
            return step
        s0, t0 = warmup, 0.0                      # a step and the fraction of the decay done there
        for r in replans:
            at, end = r["after_epoch"] * spe, r["from_epochs"] * spe
            if at > s0:                           # a re-plan inside warm-up changes no decay yet
                if step <= at:                    # before this re-plan (a resume's, mid-epoch): the plan then
                    return warmup + (t0 + (1.0 - t0) * (step - s0) / (end - s0)) * (total - warmup)
                t0, s0 = t0 + (1.0 - t0) * (at - s0) / (end - s0), at
        return warmup + (t0 + (1.0 - t0) * (step - s0) / (total - s0)) * (total - warmup)

    def set_lr(self, epoch: int, step: int) -> float:
        cfg = self.cfg
        lr = lr_at(self.schedule_step(epoch * self.steps_per_epoch + step), self.total_steps, cfg.lr,
                   self.warmup_steps, cfg.schedule)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)     # lr_scale: the backbone's of --backbone-lr-scale
        return lr

    # -- batches --------------------------------------------------------------------------
    def batch_seed(self, seed: int) -> int:
        """The seed of this process's share of a global batch whose step seed is ``seed`` (crops,
        flips, erasing, dropout); one process: ``seed`` itself."""
        return seed

    def before_step(self, step: int, sl: slice) -> None:
        """Called before each training step with this process's slice of the epoch order (a DDP hook)."""

    def should_step(self, n: int) -> bool:
        """Whether a batch of ``n`` images is trained on: not one image, which BatchNorm cannot
        normalise in training (the last batch of an epoch, or a streamed batch short of unreadable
        files), nor none (a streamed batch of unreadable files only)."""
        return n > 1

    def train_batches(self, epoch: int, start: int = 0):
        """(step, slice of the epoch order, x, y) of each step of ``epoch`` from step ``start``: the
        source's training views of its share (:meth:`~cnnzoo.data.source.ImageSource.batches`, every
        draw seeded by :meth:`batch_seed` of the step's :func:`step_seed`), as model inputs on the
        device: x (B, C, S, S) float, normalised; y (B,) int64."""
        order = self.sample_order(epoch)
        steps = list(batch_slices(len(self.train), self.cfg.batch_size, start=start, rank=self.rank,
                                  world_size=self.world_size))
        plan = [(order[sl], self.batch_seed(step_seed(self.cfg.seed, epoch, step))) for step, sl in steps]
        for (step, sl), (xb, yb) in zip(steps, self.train.batches(plan, self.aug)):
            yield step, sl, self.model_input(xb), to_device(yb, self.device)

    def model_input(self, xb: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) on the CPU -> the model's normalised float input on the device."""
        x = to_input(xb, self.cfg.input_size, self.data.mean, self.data.std, self.cfg.channels_last)
        return to_device(x, self.device)

    def first_batch(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The training views of the first ``n`` (default: a batch of) training images, seed 0, as
        model inputs (for timing steps)."""
        n = min(n or self.cfg.batch_size, len(self.train))
        xb, yb = next(iter(self.train.batches([(torch.arange(n), 0)], self.aug)))
        return self.model_input(xb), to_device(yb, self.device)

    # -- one step -------------------------------------------------------------------------

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on a batch (N, C, S, S) float, (N,) int64.

        Returns:
            (summed loss over the batch, number correct), as 0-d tensors.

        Raises:
            TrainingDivergedError: the loss is NaN or infinite (no update is made).
        """
        self.train_model.train()
        ls = self.cfg.label_smoothing
        with autocast(self.device, self.cfg.amp):
            if self.use_aux:
                logits, auxs = self.train_model.forward_with_aux(x)
            else:
                logits, auxs = self.train_model(x), []
            logits = logits.float()
            loss = F.cross_entropy(logits, y, weight=self.loss_weight, label_smoothing=ls)
            for a in auxs:
                loss = loss + self.cfg.aux_weight * F.cross_entropy(a.float(), y, weight=self.loss_weight,
                                                                    label_smoothing=ls)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"the loss became {loss.item()} at epoch {self.epoch + 1}, step {self.step + 1} "
                f"(lr {self.optimizer.param_groups[0]['lr']:.3g}); the last good checkpoint is kept in "
                f"{self.out / 'checkpoint.pt'}; try a lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()          # fp16: scaled, and unscaled by step; else as is
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return (loss.detach() * len(y)).cpu(), (logits.detach().argmax(1) == y).sum().cpu()

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        """Sum a metric tensor over processes (identity with one process)."""
        return t

    # -- one epoch ------------------------------------------------------------------------
    def train_epoch(self, bar=None) -> dict:
        """Train the epoch ``self.epoch`` from step ``self.step`` (0, or where an interrupted
        run stopped). Returns the epoch's train metrics."""
        cfg, e = self.cfg, self.epoch
        sums = self.partial or {"loss": torch.zeros(()), "correct": torch.zeros((), dtype=torch.int64),
                                "n": 0, "seconds": 0.0}
        t0 = time.perf_counter() - sums["seconds"]
        for step, sl, x, y in self.train_batches(e, self.step):
            self.step = step
            torch.manual_seed(self.batch_seed(step_seed(cfg.seed, e, step)))     # dropout masks
            self.before_step(step, sl)
            lr = self.set_lr(e, step)
            if self.should_step(len(y)):                 # not on one image or none (see should_step)
                loss, correct = self.train_step(x, y)
                sums["loss"] += loss
                sums["correct"] += correct
                sums["n"] += len(y)
            self.say_skipped()
            sums["seconds"] = time.perf_counter() - t0
            self.partial = sums
            self.step = step + 1
            if self._stop_requested:
                raise KeyboardInterrupt
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix_str(f"ep {e + 1} loss {float(sums['loss']) / sums['n']:.3f} "
                                        f"acc {float(sums['correct']) / sums['n']:.3f} "
                                        f"{sums['n'] * self.world_size / max(sums['seconds'], 1e-9):.0f} img/s "
                                        f"lr {lr:.3g}", refresh=False)
        n = self._all_reduce(torch.tensor(float(sums["n"])))
        return {"train_loss": float(self._all_reduce(sums["loss"])) / float(n),
                "train_acc": float(self._all_reduce(sums["correct"])) / float(n),
                "train_seconds": sums["seconds"], "images_per_s": float(n) / max(sums["seconds"], 1e-9),
                "epoch_images": int(n)}

    def sample_order(self, epoch: int) -> torch.Tensor:
        """The training images' order in ``epoch``, a pure function of (seed, epoch): a permutation
        (:func:`~cnnzoo.data.epoch_order`), or with ``sampler "balanced"`` a draw with replacement,
        classes equally likely (:func:`~cnnzoo.data.splits.balanced_order`)."""
        if self.cfg.sampler == "balanced":
            return balanced_order(self.train.labels, self.data.num_classes, self.cfg.seed, epoch)
        return epoch_order(len(self.train), self.cfg.seed, epoch)

    def eval_set(self, split: str = "test") -> ImageSource:
        """The ``"test"`` or ``"val"`` set."""
        return self.val if split == "val" else self.test

    def skipped_files(self) -> dict[str, str]:
        """{file: why} of every unreadable image file this run knows: left out when the data were
        read, met by a stream in any part (train, val, test) and, under torchrun, by any process
        (:meth:`gather_skipped`), or before a resume."""
        files = {**dict(self.data.skipped), **self.more_skipped}
        for part in (self.train, self.val, self.test):
            files.update(part.skipped if part is not None else [])
        return files

    def gather_skipped(self) -> None:
        """Share the unreadable files each process met (a torchrun hook; one process: nothing to do)."""

    def say_skipped(self) -> None:
        """Name, once per run, each image file a stream could not decode so far (it is left out of
        its batch; the epoch goes on)."""
        for f, why in self.skipped_files().items():
            if f not in self.named_skipped:
                self.named_skipped.add(f)
                if self.is_main and self.progress:
                    print(f"skipped an unreadable image file: {f} ({why})", flush=True)

    def evaluate(self, tta: str | None = None, split: str = "test") -> dict:
        """Metrics of the current model on the test (or ``"val"``) set (eval mode, in the run's
        numerics ``amp``, as training; ``cnnzoo eval`` gives the fp32 figure of a checkpoint);
        ``tta`` as in :func:`evaluate_model`."""
        res = self.evaluate_on(self.eval_set(split), tta)
        self.say_skipped()
        return res

    def evaluate_on(self, images: ImageSource, tta: str | None = None) -> dict:
        """:func:`evaluate_model` of the current model on ``images``, with the run's input size,
        normalisation, memory format and numerics."""
        cfg, d = self.cfg, self.data
        return evaluate_model(self.eval_model, images, None, cfg.input_size, d.mean, d.std, d.num_classes,
                              channels_last=cfg.channels_last, amp=cfg.amp, tta=tta, pad=cfg.pad, flip=cfg.flip)

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        cfg, d = self.cfg, self.data
        return {
            "model": cfg.model, "model_kwargs": self.model_kwargs(), "num_classes": d.num_classes,
            "in_chans": d.in_chans, "input_size": cfg.input_size, "classes": list(d.classes),
            "mean": list(d.mean), "std": list(d.std), "dataset": cfg.dataset,
            "preprocess": self.ft.preprocess(d).record(cfg.input_size), "finetune": self.ft.record(),
            "state_dict": self.eval_model.state_dict(), "optimizer": self.optimizer.state_dict(),
            # with ema: the trained weights (state_dict holds their average) and the average's step count
            **({"train_state_dict": self.model.state_dict(), "ema_updates": int(self.ema.n_averaged)}
               if self.ema is not None else {}),
            "config": dataclasses.asdict(cfg), "epoch": self.epoch,
            "step": self.step if self.partial is not None else None,
            "partial": self.partial, "history": self.history, "elapsed_seconds": self.elapsed,
            "replans": self.replans, "resume_changes": self.resume_changes, **self.parallelism(),
            "numerics": self.numerics.to_dict(),
            **({"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}),
            "selection": self.selection.state(), "final": self.final,   # the best weights so far, for --resume
            "skipped_images": self.data_record()["skipped_images"],    # incl. those a stream met so far
        }

    def save(self) -> None:
        if self.is_main:
            save_checkpoint(self.state(), self.out / "checkpoint.pt")

    def restore(self, ckpt: dict, changes: dict | None = None) -> None:
        """Continue from a checkpoint written by :meth:`save`.

        ``changes``: options this config (already holding them) changed against the checkpoint's,
        as :func:`~cnnzoo.training.api.resume_plan` allows; each is recorded in
        ``resume_changes`` and, on the main process, said in one line. A changed ``epochs`` is a
        re-plan from the resume point (:meth:`schedule_step`), so the schedule's rest is
        stretched or compressed to the new end; a changed ``lr`` is the new peak of the same
        schedule shape from here on."""
        self.model.load_state_dict(ckpt.get("train_state_dict", ckpt["state_dict"]))
        if self.ema is not None:
            self.ema.module.load_state_dict(ckpt["state_dict"])
            self.ema.n_averaged.fill_(ckpt.get("ema_updates", 0))   # 0: the next step copies the weights
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if "scaler" in ckpt and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        if "numerics" in ckpt and not {"amp", "channels_last"} & set(changes or {}):
            self.numerics = numerics.Choice.from_dict(ckpt["numerics"])    # the choice made when the run began
        self.epoch, self.history, self.elapsed = ckpt["epoch"], list(ckpt["history"]), ckpt["elapsed_seconds"]
        self.partial = ckpt["partial"]
        self.step = ckpt["step"] or 0
        self.replans = list(ckpt.get("replans", []))
        self.resume_changes = list(ckpt.get("resume_changes", []))
        self.selection.load(ckpt.get("selection"))
        self.more_skipped.update((r["file"], r["error"]) for r in ckpt.get("skipped_images", []))
        self.named_skipped.update(self.more_skipped)
        self.final = ckpt.get("final")
        if changes:
            self.apply_resume_changes(ckpt["config"], changes)
        elif self.is_main and self.progress:
            print(f"resuming {self.out} at epoch {self.epoch + 1}, step {self.step}", flush=True)

    def apply_resume_changes(self, saved: dict, changes: dict) -> None:
        """Record (and for ``epochs``, re-plan) the options that a resume changed; see :meth:`restore`."""
        at = self.epoch + self.step / self.steps_per_epoch        # where the run resumes, in epochs
        if "epochs" in changes:
            self.replans.append({"after_epoch": at, "epoch_seconds": None, "from_epochs": saved["epochs"],
                                 "to_epochs": self.cfg.epochs, "rule": "stretch", "reason": "resume"})
        effect = {"lr": "the schedule continues with this peak", "budget_minutes": "later epochs are re-planned to it",
                  "epochs": "the rest of the schedule "
                            f"{'stretched' if self.cfg.epochs > saved['epochs'] else 'compressed'} to end there"}
        words = []
        for k, v in changes.items():
            self.resume_changes.append({"at_epoch": at, "option": k, "from": saved.get(k), "to": v})
            words.append(f"--{k.replace('_', '-')} {v} (was {saved.get(k)}{'; ' + effect[k] if k in effect else ''})")
        if self.is_main:
            print(f"resuming {self.out} at epoch {self.epoch + 1}, step {self.step} with {'; '.join(words)}", flush=True)

    def data_record(self) -> dict:
        """metrics.json's ``data``: channels, source, notes, the data mode and why, the images of each
        part and how the parts were made (the held-out files or indices are in ``split.json``),
        unreadable files skipped (when read, or met in a stream)."""
        d = self.data
        n = {"train": len(self.train), "val": 0 if self.val is None else len(self.val), "test": len(self.test)}
        skipped = self.skipped_files()
        split = {k: v for k, v in (d.split or {}).items() if k not in ("files", "val_indices")}
        return {"in_chans": d.in_chans, "source": d.source, "notes": list(d.notes), "images": n,
                "mode": d.mode, "mode_reason": d.mode_reason, "workers": getattr(self.train, "workers", None),
                "split": split or None, "split_file": "split.json" if d.split else None,
                "skipped_images": [{"file": f, "error": why} for f, why in skipped.items()],
                "class_weights": self.loss_weight.tolist() if self.loss_weight is not None else None}

    def write_metrics(self, status: str) -> dict:
        cfg = self.cfg
        summary = {
            "status": status, "model": cfg.model, "dataset": cfg.dataset, "seed": cfg.seed,
            "input_size": cfg.input_size, "width": cfg.width, "epochs": cfg.epochs,
            "params": sum(p.numel() for p in self.model.parameters()), "num_classes": self.data.num_classes,
            "final": self.final or (self.history[-1] if self.history else None),
            "selection": self.selection.summary(len(self.history), cfg.epochs, self.val is not None),
            "wall_seconds": self.elapsed, "budget_replans": self.replans, "resume_changes": self.resume_changes,
            "data": self.data_record(),
            "model_description": self.description, **self.parallelism(), "numerics": self.numerics.to_dict(),
            "preprocess": self.ft.preprocess(self.data).record(cfg.input_size), "finetune": self.ft.record(),
            "config": dataclasses.asdict(cfg), **environment(),
            "history": self.history,
        }
        if self.is_main:
            write_json(self.out / "metrics.json", summary)
            write_csv(self.out / "metrics.csv", self.history)
        return summary

    # -- the run --------------------------------------------------------------------------
    def estimate_epochs(self, budget_s: float, probe_steps: int = 8) -> int:
        """Epochs that fit in ``budget_s`` seconds, from timing a few steps on a throwaway
        copy of the model (the real model and optimizer are untouched)."""
        order = epoch_order(len(self.train), self.cfg.seed, 0)
        plan = [(order[sl], step) for step, sl in batch_slices(len(self.train), self.cfg.batch_size)][:probe_steps]
        times = []
        with self._throwaway():
            batches = self.train.batches(plan, self.aug)
            for _ in plan:
                t0 = time.perf_counter()                 # a stream's decoding counts where it is not hidden
                xb, yb = next(batches)
                self.train_step(self.model_input(xb), to_device(yb, self.device))
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ev = self.eval_set("val" if self.val is not None else "test")    # what each epoch evaluates
            self.evaluate_on(ev.head(1000))
            eval_s = (time.perf_counter() - t0) * len(ev) / min(1000, len(ev))
        step_s = sorted(times[2:] or times)[len(times[2:] or times) // 2]
        return max(1, int((budget_s - self.tta_reserve(eval_s)) / (step_s * self.steps_per_epoch + eval_s)))

    def tta_reserve(self, eval_s: float) -> float:
        """Seconds a budget keeps for the end of the run, given that an epoch's evaluation takes
        ``eval_s`` seconds: without validation data, the final epoch's extra test views (``tta``:
        9 more for 10crop, 1 for flip); with it, the one test pass on the kept weights (the test
        set's size over the validation set's, times the views)."""
        views = TTA_VIEWS[self.cfg.tta] if self.cfg.tta else 1
        if self.val is not None:
            return views * eval_s * len(self.test) / max(1, len(self.val))
        return (views - 1) * eval_s

    def replan_for_budget(self, epoch_s: float, eval_s: float = 0.0) -> bool:
        """After an epoch of a budget run whose recent epochs took ``epoch_s`` seconds each (train
        + evaluation, of which ``eval_s`` evaluation): re-fit the plan to the epochs that fit in
        what is left of ``budget_minutes``, less :meth:`tta_reserve`.

        The plan grows when the machine ran faster than planned and shrinks when it ran slower,
        never below one more epoch, so the schedule still reaches its final learning rate. The
        rest of the schedule is stretched or compressed to the new end (:meth:`schedule_step`),
        so the learning rate does not jump. Each change is kept in ``self.replans``
        (metrics.json ``budget_replans``).

        Returns:
            True if the number of epochs changed.
        """
        cfg = self.cfg
        if cfg.budget_minutes is None or self.epoch >= cfg.epochs:
            return False
        # every process decides from the same (mean) figures, so they run the same epochs
        epoch_s, eval_s, elapsed = (self._all_reduce(torch.tensor([epoch_s, eval_s, self.elapsed], dtype=torch.float64))
                                    / self.world_size).tolist()
        fits = self.epoch + max(1, int((cfg.budget_minutes * 60 - elapsed - self.tta_reserve(eval_s)) / epoch_s))
        if fits == cfg.epochs:
            return False
        self.replans.append({"after_epoch": self.epoch, "epoch_seconds": epoch_s, "from_epochs": cfg.epochs,
                             "to_epochs": fits, "rule": "stretch"})
        if self.is_main and self.progress:
            print(f"\nbudget: recent epochs took {epoch_s:.0f} s; the plan goes from {cfg.epochs} to "
                  f"{plural(fits, 'epoch')} to end within {cfg.budget_minutes:g} min", flush=True)
        cfg.epochs = fits
        return True

    def fit(self) -> dict:
        """Train to the configured number of epochs, checkpointing after each; returns the
        summary written to metrics.json (``status`` "complete").

        Raises:
            TrainingDivergedError: NaN/inf loss; metrics.json gets status "diverged" and the
                last good checkpoint stays.
            KeyboardInterrupt: after saving a mid-epoch checkpoint that ``--resume`` continues.
        """
        from tqdm import tqdm

        if self.is_main and self.progress:
            print(f"numerics: {self.numerics.reason}", flush=True)
        if self.cfg.epochs is None:              # a budget run that has not started yet
            self.cfg.epochs = self.estimate_epochs(self.cfg.budget_minutes * 60)
        if self.is_main and self.data.split:            # which images went where: written before any step
            write_json(self.out / "split.json", self.data.split)
        bar = tqdm(total=self.total_steps, initial=self.epoch * self.steps_per_epoch + self.step,
                   desc=f"{self.cfg.model}", unit="step", disable=not (self.progress and self.is_main),
                   dynamic_ncols=True)
        try:
            with _deferred_sigint(self):
                self._run_epochs(bar)
                self.finish()
        except TrainingDivergedError:
            self.write_metrics("diverged")
            raise
        except KeyboardInterrupt:
            self.save()
            self.write_metrics("interrupted")
            if self.is_main:
                print(f"\ninterrupted: saved epoch {self.epoch + 1} step {self.step} to "
                      f"{self.out / 'checkpoint.pt'}; continue with --resume", flush=True)
            raise
        finally:
            bar.close()
            self.events.close()
        return self.write_metrics("complete")

    def _run_epochs(self, bar) -> None:
        has_val = self.val is not None
        while self.epoch < self.cfg.epochs and not self.selection.stopped:
            line = self.ft.on_epoch(self.epoch)         # --unfreeze-epoch
            if line and self.is_main and self.progress:
                print(f"\n{line}", flush=True)
            row = {"epoch": self.epoch + 1, "lr": self.set_lr(self.epoch, 0), **self.train_epoch(bar)}
            t0 = time.perf_counter()
            if has_val:                                 # validation every epoch; the test set once, in finish()
                val = self.evaluate(split="val")
                row.update(val_loss=val["loss"], val_acc=val["top1"], val_top5=val["top5"])
            else:  # the plan's last epoch is final: a re-plan never ends it at an epoch already evaluated
                row.update(self.test_row(self.evaluate(tta=self.cfg.tta if self.epoch + 1 == self.cfg.epochs else None)))
            row["eval_seconds"] = time.perf_counter() - t0
            self.elapsed += row["train_seconds"] + row["eval_seconds"]
            row["elapsed_seconds"] = self.elapsed
            self.history.append(row)
            if self.is_main:
                self.events.epoch(row)
            self.epoch, self.step, self.partial = self.epoch + 1, 0, None
            if has_val:
                self.selection.update(self.epoch, row["val_acc"], self.eval_model)
                if self.selection.stopped and self.is_main and self.progress:
                    s = self.selection
                    print(f"\nearly stop after epoch {self.epoch} of {self.cfg.epochs}: validation top-1 has not "
                          f"risen above epoch {s.best_epoch}'s {s.best_value:.2%} for {plural(s.patience, 'epoch')}",
                          flush=True)
            self.gather_skipped()
            self.say_skipped()
            recent = self.history[-_REPLAN_WINDOW:]      # a mean, so one slow epoch does not cut the plan
            if self.replan_for_budget(sum(r["train_seconds"] + r["eval_seconds"] for r in recent) / len(recent),
                                      sum(r["eval_seconds"] for r in recent) / len(recent)):
                bar.total = self.total_steps
            self.save()
            self.write_metrics("running" if self.epoch < self.cfg.epochs or has_val else "complete")
            which = "val" if has_val else "test"
            bar.set_postfix_str(f"ep {self.epoch} loss {row['train_loss']:.3f} {which} acc {row[which + '_acc']:.4f}")

    @staticmethod
    def test_row(test: dict) -> dict:
        """The test-set columns of a history row from :meth:`evaluate`'s result."""
        row = {"test_loss": test["loss"], "test_acc": test["top1"], "test_top5": test["top5"]}
        if "tta" in test:
            row.update(test_acc_tta=test["tta"]["top1"], test_top5_tta=test["tta"]["top5"])
        return row

    def finish(self) -> None:
        """With validation data, after the last epoch: load the kept weights (:class:`Selection`)
        into the evaluated model, score the test set once on them (with ``tta`` if asked), and
        save; ``self.final`` becomes the kept epoch's row with the test figures. Without
        validation data there is nothing to do (each epoch scored the test set)."""
        if self.val is None or self.final is not None or not self.history:
            return
        kept = self.selection.kept_epoch(len(self.history))
        self.selection.restore_best(self.eval_model)
        t0 = time.perf_counter()
        self.final = {**self.history[kept - 1], **self.test_row(self.evaluate(tta=self.cfg.tta)),
                      "kept_epoch": kept, "test_seconds": time.perf_counter() - t0}
        self.elapsed += self.final["test_seconds"]
        self.gather_skipped()
        self.save()


class _deferred_sigint:
    """While active, the first Ctrl-C only asks the trainer to stop after the current step
    (so the saved state is consistent); a second Ctrl-C interrupts at once."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def __enter__(self):
        import signal
        import threading

        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        import signal

        if self.trainer._stop_requested:
            raise KeyboardInterrupt
        self.trainer._stop_requested = True
        signal.signal(signal.SIGINT, self.old)

    def __exit__(self, *exc):
        import signal

        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        return False
