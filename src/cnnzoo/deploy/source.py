"""What ``export`` and ``bench`` run: a model with its input shape and, for a training run, its data.

:func:`resolve_source` is the one place that turns the ``MODEL_OR_RUN`` argument into a
:class:`Source`, through the shared model argument (:func:`cnnzoo.resolve_model`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnzooError


@dataclass
class Source:
    """A model ready for export or benchmarking.

    Attributes:
        model: the network in eval mode, fp32, on the CPU.
        name: what the user named (registry name, run folder or checkpoint file).
        input_shape: (C, H, W) of one input image.
        ckpt: the training run's checkpoint dict (``dataset``, ``input_size``, ``mean``, ``std``,
            ``classes``), or ``None`` for a model without trained weights of a run.
        data_dir: where the run's data set lives (``None``: the usual places, see ``load_dataset``).
        meta: what a user of the model needs besides its weights (:func:`input_meta`): ``classes``,
            ``input_size``, ``mean``, ``std``, ``resize``; ``{}`` where nothing is known (fresh weights).
    """

    model: nn.Module
    name: str
    input_shape: tuple[int, int, int]
    ckpt: dict | None = None
    data_dir: str | None = None
    meta: dict = field(default_factory=dict)
    _data: object = field(default=None, repr=False)

    @property
    def trained(self) -> bool:
        """Whether real images (a training run's data set) can validate the model."""
        return self.ckpt is not None

    def images(self, split: str, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The run's first ``n`` ``"train"`` or ``"test"`` images as model inputs (all with ``None``:
        for a few, e.g. calibration; a whole split goes through :meth:`image_batches`).

        Returns:
            (x, y): x (n, C, H, W) float32, resized and normalised as in training; y (n,) int64.

        Raises:
            CnnzooError: the source is not a training run; DataFileError: its data are missing.
        """
        return next(self.image_batches(split, n or len(self.part(split)), n))

    def part(self, split: str):
        """The run's ``"train"`` or ``"test"`` :class:`~cnnzoo.data.source.ImageSource`, read as
        ``cnnzoo eval`` reads it (the run's folder, channels, size, data mode)."""
        if self.ckpt is None:
            raise CnnzooError(f"{self.name} is not a training run: it has no images to validate with")
        from ..resolve import run_data

        if self._data is None:
            self._data = run_data(self.ckpt, self.data_dir)
        return self._data.train if split == "train" else self._data.test

    def image_batches(self, split: str, batch_size: int, n: int | None = None):
        """(x (B, C, H, W) float32 model inputs, y (B,) int64) of the first ``n`` (all) images of a
        split, ``batch_size`` at a time.

        Raises:
            CnnzooError, DataFileError: as :meth:`images`.
        """
        from ..data import to_input

        for x, y in self.part(split).head(n).in_batches(batch_size):
            yield to_input(x, self.ckpt["input_size"], self.ckpt["mean"], self.ckpt["std"]), y


def input_meta(classes: list[str] | None, input_shape, pre) -> dict:
    """The metadata an exported model carries (ONNX ``metadata_props``, the export's JSON report)
    and :func:`~cnnzoo.deploy.predict.predict` reads: ``classes`` (names, index = output), ``input_size``
    [C, H, W], ``mean`` and ``std`` (per channel, of [0, 1] images), ``resize`` (an image file's
    shorter side before the centre crop to H); only what is known (``pre``: a
    :class:`~cnnzoo.data.preprocess.Preprocess` or None)."""
    meta = {"classes": list(classes)} if classes else {}
    meta["input_size"] = list(input_shape)
    if pre is not None:
        meta.update(mean=list(pre.mean), std=list(pre.std), resize=pre.resize(input_shape[-1]) or input_shape[-1])
    return meta


def _torchvision_meta(name: str, weights, model: nn.Module, input_shape) -> dict:
    """:func:`input_meta` of a torchvision weight file: its categories (when the model has as many
    outputs) and its ``transforms()``, from torchvision's metadata (offline), and ``weights``, the
    torchvision weights they are (e.g. ``ResNet18_Weights.IMAGENET1K_V1``)."""
    from ..data.preprocess import Preprocess
    from ..models._torchvision import torchvision_weights

    w, _ = torchvision_weights(name, weights)
    t = w.transforms()
    pre = Preprocess(tuple(t.mean), tuple(t.std), t.crop_size[0] / t.resize_size[0]).for_channels(input_shape[0])
    cats = w.meta["categories"]
    return {**input_meta(cats if getattr(model, "num_classes", None) == len(cats) else None, input_shape, pre),
            "weights": f"{type(w).__name__}.{w.name}"}


def _shape(given: tuple[int, ...] | None, default: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) from ``--input`` dims in the forms of ``cnnzoo summary`` (S, HxW, CxHxW; the channel
    count of ``default`` where not given) or ``default``.

    Raises:
        CnnzooError: a size with a batch axis (the batch is ``--batch`` / ``--batch-size``).
    """
    from .._text import complete_input

    shape = complete_input(tuple(given), tuple(default)) if given else tuple(default)
    if len(shape) != 3:
        raise CnnzooError(f"--input {'x'.join(map(str, given))}: give one image's size (CxHxW, HxW or S); "
                          "the batch is --batch (export) or --batch-size (bench)")
    return shape


def resolve_source(spec: str | nn.Module, input_shape: tuple[int, int, int] | None = None,
                  weights: str | os.PathLike | None = None, data_dir: str | None = None) -> Source:
    """Turn a ``MODEL_OR_RUN`` argument into a :class:`Source`.

    Args:
        spec: a registry name (fresh weights, or ``weights``), ``FILE.py:FACTORY``, a training
            run's folder or its ``checkpoint.pt`` (loaded with ``weights_only=True``), or an
            ``nn.Module`` (the forms of :func:`cnnzoo.resolve_model`).
        input_shape: (C, H, W); default: the run's input, else the registry's default input size.
        weights: a torchvision weight file for a registry name (``load_torchvision_weights``).
        data_dir: where a run's data set lives.

    Raises:
        UnknownModelError, CheckpointError, DataFileError: a name, run or weight file that is wrong.
        CnnzooError: ``input_shape`` differs from a run's input, or ``weights`` given with a run.
    """
    if isinstance(spec, nn.Module):
        if input_shape is None:
            raise CnnzooError("give input_shape (C, H, W) with a module")
        return Source(spec.eval(), type(spec).__name__, tuple(input_shape))
    from ..resolve import load_model, model_kind, resolve_model

    kind = model_kind(str(spec))                 # the shared model argument (cnnzoo.resolve_model)
    path = Path(spec)
    if kind == "run":
        if weights is not None:
            raise CnnzooError(f"--weights is for a registry name; {spec} is a training run with its own weights")
        from ..data.preprocess import run_preprocess

        model, ckpt = load_model(path)
        run_shape = (ckpt["in_chans"], ckpt["input_size"], ckpt["input_size"])
        if input_shape is not None and _shape(input_shape, run_shape) != run_shape:
            raise CnnzooError(f"--input {'x'.join(map(str, input_shape))} differs from the run's input "
                              f"{'x'.join(map(str, run_shape))}; leave --input out for a run")
        return Source(model, str(spec), run_shape, ckpt, data_dir,
                      input_meta(ckpt["classes"], run_shape, run_preprocess(ckpt)))
    if weights is not None:
        from ..models._torchvision import load_torchvision_weights

        if kind != "registry":
            raise CnnzooError(f"--weights is for a registry name; {spec} is a model file")
        model = load_torchvision_weights(spec, weights)
        shape = _shape(input_shape, getattr(model, "default_input_size", (3, 224, 224)))
        return Source(model.eval(), spec, shape, meta=_torchvision_meta(spec, weights, model, shape))
    chans = input_shape[0] if input_shape and len(input_shape) == 3 else None
    r = resolve_model(spec, in_chans=chans)               # the paper's classes and input, or the file's own
    return Source(r.model.eval(), spec, _shape(input_shape, r.input_size))
