"""Fine-tuning: start from pretrained weights, freeze part of the network, train the rest.

The options (``cnnzoo train MODEL --weights SOURCE --freeze ...``; the same keywords in
:func:`cnnzoo.train`):

* ``weights``: a torchvision or timm-style weight file (a ``state_dict``, or a dict with a
  ``"state_dict"`` or ``"model"`` entry; ``module.`` / ``_orig_mod.`` prefixes removed) or a cnnzoo
  run folder / ``checkpoint.pt``, read with ``torch.load(weights_only=True)`` and loaded by
  :func:`cnnzoo.models._weights.load_pretrained` (a classifier of another class count is
  re-initialised, a first conv of another channel count adapted, both said; anything else is the
  few-line mismatch error). A run gives its model, width, builder options and recipe (augmentation
  included) to the new run unless given (:func:`source_options`); the preprocessing follows the
  weights (:func:`source_preprocess`).
* ``freeze``: ``"backbone"`` (everything but the classifiers: ``head_names()``) or N (the stem and
  the first N stages: ``stem_and_stages()``). Frozen parameters get ``requires_grad=False`` and
  frozen modules stay in eval mode whatever ``model.train()`` says (a forward pre-hook puts them
  back), so their BatchNorm statistics do not change: the frozen part is bit-identical after training.
* ``unfreeze_epoch``: from this epoch (1-based) on, everything trains.
* ``backbone_lr_scale``: the backbone's learning rate is this times the head's (each optimizer
  group carries ``lr_scale``, as timm's layer-wise decay groups do).

Python API (stable)::

    from cnnzoo.training.finetune import freeze, frozen_names, unfreeze, param_groups, read_source
    names = frozen_names(model, "backbone")    # or an int N
    handle = freeze(model, names)              # ...; unfreeze(handle)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ..data.preprocess import Preprocess, run_preprocess
from ..errors import CnnzooError

BACKBONE = "backbone"
#: The TrainConfig fields a run used as ``weights`` gives to the new run unless they are given:
#: its model's configuration and recipe (augmentation included), and its input channels.
RUN_GIVES = ("input_size", "width", "channels", "epochs", "batch_size", "lr", "optimizer", "weight_decay",
             "schedule", "warmup_epochs", "label_smoothing", "pad", "flip", "erase", "ema", "amp",
             "channels_last", "model_kwargs")


class FineTuneError(CnnzooError, ValueError):
    """A fine-tuning option that cannot apply: ``--freeze N`` beyond the model's stages, a model
    without known stages, ``--unfreeze-epoch`` without ``--freeze`` or beyond the run's epochs."""


# --- which modules ----------------------------------------------------------------------------

def head_names(model: nn.Module) -> list[str]:
    """The classifier modules (``model.head_names()``; else the last ``nn.Linear``)."""
    if hasattr(model, "head_names"):
        return list(model.head_names())
    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1:]
    if not last:
        raise FineTuneError(f"{type(model).__name__} has no classifier (no get_classifier/head_names and no "
                            "nn.Linear): --freeze backbone needs one")
    return last


def frozen_names(model: nn.Module, freeze: str | int) -> list[str]:
    """Qualified names of the modules ``freeze`` freezes: every top-level module but those holding
    a classifier (``"backbone"``), or the stem and the first ``freeze`` stages (an int >= 0).

    Raises:
        FineTuneError: an unknown ``freeze``, N beyond the model's stage count, or N for a model
            that defines no stages (``stem_and_stages()``; every registry model does).
    """
    if freeze == BACKBONE:
        heads = head_names(model)
        out: list[str] = []
        for name, module in model.named_modules():
            if not name or any(h == name or h.startswith(name + ".") for h in heads):
                continue                     # a head or a module that holds one: look inside
            if any(name.startswith(o + ".") for o in out) or any(name.startswith(h + ".") for h in heads):
                continue                     # inside a module already frozen, or inside a head
            out.append(name)
        return out
    if isinstance(freeze, bool) or not isinstance(freeze, int) or freeze < 0:
        raise FineTuneError(f"--freeze {freeze!r}: give 'backbone' or a number of stages N >= 0")
    try:
        stem, stages = model.stem_and_stages()
    except (AttributeError, NotImplementedError):
        raise FineTuneError(f"--freeze {freeze}: {type(model).__name__} defines no stages (stem_and_stages()); "
                            "use --freeze backbone") from None
    if freeze > len(stages):
        raise FineTuneError(f"--freeze {freeze}: {type(model).__name__} has {len(stages)} stages after its stem; "
                            f"give at most {len(stages)}, or --freeze backbone")
    return stem + [n for stage in stages[:freeze] for n in stage]


# --- freezing ---------------------------------------------------------------------------------

def _keep_eval(module: nn.Module, args) -> None:
    if module.training:
        module.eval()                        # BatchNorm uses and keeps its running statistics; no dropout


@dataclass
class Frozen:
    """What :func:`freeze` did, for :func:`unfreeze`: the module names and their hook handles."""

    names: list[str]
    handles: list = field(default_factory=list)


def freeze(model: nn.Module, names: list[str]) -> Frozen:
    """Freeze the modules ``names`` of ``model``: their parameters get ``requires_grad=False``
    and they run in eval mode even after ``model.train()`` (a forward pre-hook), so neither their
    weights nor their BatchNorm statistics (running mean, var, batch count) change."""
    frozen = Frozen(list(names))
    for name in names:
        module = model.get_submodule(name)
        module.requires_grad_(False)
        module.eval()
        frozen.handles.append(module.register_forward_pre_hook(_keep_eval))
    return frozen


def unfreeze(model: nn.Module, frozen: Frozen) -> None:
    """Undo :func:`freeze`: the modules train again (with ``model.train()``) and get gradients."""
    for handle in frozen.handles:
        handle.remove()
    for name in frozen.names:
        model.get_submodule(name).requires_grad_(True).train(model.training)
    frozen.handles.clear()


def param_groups(model: nn.Module, weight_decay: float, backbone_lr_scale: float = 1.0) -> list[dict]:
    """Optimizer groups: weights (ndim > 1) with ``weight_decay``, biases and norm parameters
    without; with ``backbone_lr_scale`` != 1 each is split into backbone and head, the backbone's
    groups carrying ``lr_scale`` = ``backbone_lr_scale`` (the trainer sets each group's lr to the
    schedule's times its ``lr_scale``). Frozen parameters are in their groups too: without
    gradients the optimizers skip them, and unfreezing needs no new groups."""
    params = list(model.named_parameters())
    heads = head_names(model) if backbone_lr_scale != 1.0 else []
    in_head = lambda n: any(n.startswith(h + ".") for h in heads)  # noqa: E731
    groups = []
    for part, scale in (((False, backbone_lr_scale), (True, 1.0)) if heads else ((None, 1.0),)):
        mine = [(n, p) for n, p in params if part is None or in_head(n) == part]
        for decay in (True, False):
            ps = [p for n, p in mine if (p.ndim > 1) == decay]
            if ps:
                groups.append({"params": ps, "weight_decay": weight_decay if decay else 0.0,
                               **({"lr_scale": scale} if heads else {})})
    return groups


# --- the weights' source ----------------------------------------------------------------------

@dataclass
class Source:
    """A ``--weights`` SOURCE, read.

    Attributes:
        path: as given; kind: ``"run"`` or ``"file"``.
        state: the weights (``state_dict``); ckpt: a run's checkpoint (no optimizer), else None.
    """

    path: str
    kind: str
    state: dict
    ckpt: dict | None = None

    def describe(self) -> str:
        if self.kind == "run":
            ck = self.ckpt
            return f"run {self.path} ({ck['model']} on {ck['dataset']}, {ck['num_classes']} classes, epoch {ck['epoch']})"
        return f"weight file {self.path}"


def read_source(path: str | os.PathLike) -> Source:
    """Read a ``--weights`` SOURCE: a run folder or ``checkpoint.pt`` of cnnzoo, or a weight file.

    Raises:
        DataFileError: missing or unreadable file, a folder without checkpoint.pt, no state_dict.
        CheckpointError: a corrupt run checkpoint.
    """
    from ..errors import DataFileError
    from ..models._weights import read_weights, unwrap_state_dict
    from .._io import FORMAT, load_checkpoint

    p = Path(path)
    if p.is_dir():
        if not (p / "checkpoint.pt").is_file():
            raise DataFileError(f"--weights {path}: a folder without checkpoint.pt; give a weight file or a run folder "
                                "of cnnzoo train")
        p = p / "checkpoint.pt"
    obj = read_weights(p, "--weights file")
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        ck = load_checkpoint(p)
        ck.pop("optimizer", None)
        return Source(str(path), "run", ck["state_dict"], ck)
    return Source(str(path), "file", unwrap_state_dict(obj, p))


def source_options(source: Source, model: str | None) -> dict:
    """The TrainConfig options a SOURCE gives the new run (the caller's own win): a run's model
    (``model`` when None), :data:`RUN_GIVES` of its config (without width and builder options when
    ``model`` is another model); for GoogLeNet from a torchvision
    file, torchvision's ``transform_input=True`` and the auxiliary heads the file has."""
    if source.kind == "run":
        cfg = source.ckpt["config"]
        out = {k: cfg[k] for k in RUN_GIVES if cfg.get(k) is not None}
        out["channels"] = source.ckpt["in_chans"]
        if source.ckpt.get("model_kwargs"):
            out["model_kwargs"] = {k: v for k, v in source.ckpt["model_kwargs"].items() if k != "width"}
        if model is not None and model != source.ckpt["model"]:     # another model: its own configuration
            out.pop("model_kwargs", None)                            # (the weights must still fit it)
            out.pop("width", None)
        return {"model": source.ckpt["model"], **out} if model is None else out
    from ..models._torchvision import torchvision_weights

    tv = torchvision_weights(model, source.path) if _registry(model) else None
    if tv is not None and type(tv[0]).__name__ == "GoogLeNet_Weights":
        from ..models._weights import strip_wrapper_prefixes

        keys = strip_wrapper_prefixes(source.state)[0]
        return {"model_kwargs": {"transform_input": True, "aux_logits": any(k.startswith("aux1.") for k in keys)}}
    return {}


def with_source(model: str | None, options: dict) -> tuple[str, dict]:
    """The model and training options of a run with ``options["weights"]``: the path made absolute,
    and the SOURCE's options (:func:`source_options`) under the ones given (``model_kwargs`` merged;
    a run's ``epochs`` dropped when ``budget_minutes`` is given).

    Raises:
        CnnzooError: no model and no ``weights`` run to take it from.
        DataFileError, CheckpointError: an unreadable SOURCE.
    """
    path = options.get("weights")
    if not path:
        raise CnnzooError("give the model to train, or --weights RUN to train that run's model")
    source = read_source(path)                  # errors name the path as given
    options = {**options, "weights": os.path.abspath(path)}
    if model is None and source.kind != "run":
        raise CnnzooError(f"--weights {path} is a weight file: name the model it is for, e.g. "
                          f"cnnzoo train resnet18 --weights {path}")
    given = source_options(source, model)
    model = given.pop("model", model)
    if options.get("budget_minutes") is not None:
        given.pop("epochs", None)
    kwargs = {**given.pop("model_kwargs", {}), **options.get("model_kwargs", {})}
    return model, {**given, **options, **({"model_kwargs": kwargs} if kwargs else {})}


def _registry(model: str) -> bool:
    from ..registry import list_models

    return model in list_models()


def source_preprocess(source: Source, model: str) -> Preprocess | None:
    """The preprocessing of the SOURCE's weights: a run's own; torchvision's metadata for a file
    loaded into a torchvision-compatible registry model (its ``transforms()``: mean, std, resize and
    crop); ``None`` when unknown (a file for another model: the training set's statistics then)."""
    if source.kind == "run":
        pre = run_preprocess(source.ckpt)
        return Preprocess(pre.mean, pre.std, pre.crop_ratio, f"the run {source.path}")
    if not _registry(model):
        return None
    from ..models._torchvision import torchvision_weights

    tv = torchvision_weights(model, source.path)
    if tv is None:
        return None
    weights, matched = tv
    t = weights.transforms()
    how = "" if matched else ", taken for a file of another name"
    return Preprocess(tuple(t.mean), tuple(t.std), t.crop_size[0] / t.resize_size[0],
                      f"torchvision's {type(weights).__name__}.{weights.name}{how}")


# --- the trainer's use --------------------------------------------------------------------------

class FineTune:
    """What a run's ``weights``, ``freeze``, ``unfreeze_epoch`` and ``backbone_lr_scale`` do, for
    :class:`~cnnzoo.training.trainer.Trainer` (one object, a few calls).

    Raises:
        FineTuneError: ``unfreeze_epoch`` without ``freeze``, outside 2..epochs, or under torchrun.
        DataFileError, CheckpointError: an unreadable SOURCE.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.source = read_source(cfg.weights) if cfg.weights else None
        self.weights_preprocess = source_preprocess(self.source, cfg.model) if self.source else None
        self.frozen: Frozen | None = None
        self.notes: list[str] = []
        if cfg.unfreeze_epoch is not None:
            if cfg.freeze is None:
                raise FineTuneError(f"--unfreeze-epoch {cfg.unfreeze_epoch} needs --freeze (nothing is frozen)")
            from .distributed import dist_env

            if dist_env().world_size > 1:          # DDP registers the parameters that train when it starts
                raise FineTuneError("--unfreeze-epoch under torchrun: DDP would not average the gradients of the "
                                    "layers unfrozen later; run the frozen and the full phase as two runs "
                                    "(the second with --weights RUN)")
            if cfg.epochs is not None and not 2 <= cfg.unfreeze_epoch <= cfg.epochs:
                raise FineTuneError(f"--unfreeze-epoch {cfg.unfreeze_epoch}: give an epoch from 2 to the run's "
                                    f"{cfg.epochs} (--epochs)")

    def resize(self, size: int) -> int | None:
        """The shorter side image files are resized to before the centre ``size`` crop (the weights'
        rule), or None (``size``)."""
        return self.weights_preprocess.resize(size) if self.weights_preprocess else None

    def preprocess(self, data) -> Preprocess:
        """The run's :class:`Preprocess`: the weights' for the data's channels, else the data's own."""
        if self.weights_preprocess is None:
            return Preprocess(tuple(data.mean), tuple(data.std))
        return self.weights_preprocess.for_channels(data.in_chans)

    def normalise(self, data):
        """``data`` with the mean and std of :meth:`preprocess` (what every batch, evaluation and
        the checkpoint then use)."""
        import dataclasses

        pre = self.preprocess(data)
        return dataclasses.replace(data, mean=tuple(pre.mean), std=tuple(pre.std))

    def start_lines(self, data) -> list[str]:
        """What training prints before its first step: the weights' notes, the preprocessing and
        the augmentation (so that, e.g., flips on digits are seen)."""
        c = self.cfg
        if data.mode == "stream" and c.pad:        # the stream's own crop (cnnzoo.data.stream)
            aug = [f"random-resized crop to {c.input_size}x{c.input_size} (8-100% of the area, aspect 3/4-4/3; "
                   f"streamed, in place of the recipe's padded crop, pad {c.pad})"]
        else:
            aug = [f"random crop (pad {c.pad})"] if c.pad else []
        aug += ["horizontal flip"] if c.flip else []
        aug += [f"random erasing (p {c.erase:g})"] if c.erase else []
        whence = f"the run {self.source.path}'s recipe" if self.source is not None and self.source.kind == "run" else \
            "the model's recipe and the options given"
        return [*self.notes, f"preprocessing: {self.preprocess(data).describe(c.input_size)}",
                f"augmentation: {' + '.join(aug) or 'none'} ({whence}; --pad 0, --no-flip, --erase 0 change it)"]

    def prepare(self, model: nn.Module) -> None:
        """Load the weights into ``model`` and freeze what ``freeze`` asks (before the optimizer
        and the weight average are built). Notes go to ``self.notes``."""
        from ..models._weights import load_pretrained

        names = frozen_names(model, self.cfg.freeze) if self.cfg.freeze is not None else None   # refused first
        if self.source is not None:
            self.notes.append(f"weights: {self.source.describe()}")
            self.notes += load_pretrained(model, self.source.state, self.source.path)
        if self.cfg.freeze is not None:
            self.model = model
            self.frozen = freeze(model, names)
            n = sum(p.numel() for p in model.parameters() if not p.requires_grad)
            until = f" until epoch {self.cfg.unfreeze_epoch}" if self.cfg.unfreeze_epoch else ""
            self.notes.append(f"frozen{until} (--freeze {self.cfg.freeze}): {len(self.frozen.names)} modules, "
                              f"{n:,} of {sum(p.numel() for p in model.parameters()):,} parameters, BatchNorm "
                              "statistics kept")

    def on_epoch(self, epoch: int) -> str | None:
        """At the start of 0-based ``epoch``: unfreeze when it is ``unfreeze_epoch`` - 1 or later
        (also on a resume past it). Returns a line to print when it unfroze."""
        if self.frozen is None or self.cfg.unfreeze_epoch is None or epoch + 1 < self.cfg.unfreeze_epoch:
            return None
        unfreeze(self.model, self.frozen)
        self.frozen = None
        return f"epoch {epoch + 1}: unfrozen (--unfreeze-epoch {self.cfg.unfreeze_epoch}): every layer trains"

    def record(self) -> dict | None:
        """metrics.json's and the checkpoint's ``finetune`` entry (None for a run from scratch)."""
        c = self.cfg
        if self.source is None and c.freeze is None and c.backbone_lr_scale == 1.0:
            return None
        return {"weights": self.source.describe() if self.source else None, "freeze": c.freeze,
                "unfreeze_epoch": c.unfreeze_epoch, "backbone_lr_scale": c.backbone_lr_scale, "notes": self.notes}
