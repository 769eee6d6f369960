"""The model registry: name -> builder + metadata, with the timm/torchvision conventions.

A family module registers each public builder with :func:`register_model`::

    @register_model(family="resnet", paper=_PAPER, year=2015, ilsvrc=_ILSVRC,
                    torchvision="resnet50", notes="v1.5: stride 2 on the 3x3 conv")
    def resnet50(num_classes=1000, in_chans=3, **kwargs) -> ResNet: ...

Users call :func:`create_model`, :func:`list_models` and :func:`model_info`.
"""
from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ._io import atomic_write_bytes, cache_dir
from .errors import UnknownModelError


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of one model.

    Attributes:
        name: registry name, e.g. ``"resnet50"``.
        family: architecture family (``"lenet"``, ``"alexnet"``, ``"zfnet"``, ``"vgg"``,
            ``"googlenet"``, ``"resnet"``).
        paper: the paper the architecture comes from (authors, title, venue).
        year: year of the paper.
        ilsvrc: the ILSVRC result as the paper or the challenge published it, or ``None``.
        default_input_size: (C, H, W) the architecture was designed for.
        notes: how this variant differs from the paper and from torchvision.
        torchvision: name of the torchvision builder whose ``state_dict`` loads strictly
            into this model, or ``None``.
        min_input_size: smallest square input side (pixels) the network runs on, found by
            running the model on the meta device (filled in by :func:`model_info`, see
            :func:`model_figures`).
        num_classes: the class count of the paper's own task (1000 for ImageNet, 10 for
            LeNet-5's digits and the CIFAR-10 nets); ``cnnzoo list`` counts parameters with it.
        weights_hook: the family's quirk for torchvision's weight files, beside the family's
            builders: ``hook(state_dict) -> builder kwargs`` the model needs to reproduce
            torchvision's outputs with them (GoogLeNet: its aux heads and ``transform_input``);
            called by :func:`cnnzoo.models._weights.model_for_weights`. ``None``: none needed.
    """

    name: str
    family: str
    paper: str
    year: int
    ilsvrc: str | None
    default_input_size: tuple[int, int, int]
    notes: str
    torchvision: str | None = None
    min_input_size: int | None = None
    num_classes: int = 1000
    builder: Callable[..., nn.Module] | None = field(default=None, repr=False, compare=False)
    weights_hook: Callable[[dict], dict] | None = field(default=None, repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(*, family: str, paper: str, year: int, ilsvrc: str | None = None,
                   default_input_size: tuple[int, int, int] = (3, 224, 224), notes: str = "",
                   torchvision: str | None = None, name: str | None = None, num_classes: int = 1000,
                   weights_hook: Callable[[dict], dict] | None = None):
    """Decorator that adds a builder ``fn(num_classes=1000, in_chans=3, **kwargs)`` to the registry;
    the keywords are the fields of :class:`ModelInfo`.

    Raises:
        ValueError: if the name is already registered.
    """

    def deco(fn: Callable[..., nn.Module]):
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelInfo(key, family, paper, year, ilsvrc, tuple(default_input_size),
                                   notes, torchvision, None, num_classes, fn, weights_hook)
        return fn

    return deco


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the package registers every family)


def _lookup(name: str) -> ModelInfo:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `cnnzoo list` shows them all"
        raise UnknownModelError(f"unknown model {name!r}{hint}") from None


def list_models(pattern: str | None = None, family: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style wildcard (``"resnet*"``)."""
    _ensure_loaded()
    names = sorted(n for n, i in _REGISTRY.items() if family is None or i.family == family)
    return fnmatch.filter(names, pattern) if pattern else names


def families() -> list[str]:
    """The architecture families in the registry's order, which is the lecture's (``models/__init__.py``
    imports the families in it): lenet, alexnet, zfnet, vgg, googlenet, resnet."""
    _ensure_loaded()
    return list(dict.fromkeys(i.family for i in _REGISTRY.values()))


def torchvision_models() -> list[str]:
    """The torchvision builders whose ``state_dict`` a registry model loads strictly
    (:attr:`ModelInfo.torchvision`), in the registry's order: alexnet, vgg11, ..., resnet152."""
    _ensure_loaded()
    return [i.torchvision for i in _REGISTRY.values() if i.torchvision]


def create_model(name: str, num_classes: int | None = None, in_chans: int | None = None, **kwargs) -> nn.Module:
    """Build a registered model with freshly initialised weights.

    The defaults build the paper's network: ``create_model("lenet5")`` is LeNet-5 for 10 classes
    of 1x32x32 grey images, ``create_model("resnet50")`` ResNet-50 for 1000 classes of 3x224x224
    images (the ``num_classes`` and ``default_input_size`` of :func:`model_info`, which
    ``cnnzoo list`` shows).

    Args:
        name: a registry name (see :func:`list_models`).
        num_classes: size of the logits; the model maps (N, in_chans, H, W) to (N, num_classes).
            ``None``: the paper's class count (``model_info(name).num_classes``).
        in_chans: number of input channels. ``None``: the channels of the paper's input
            (``model_info(name).default_input_size[0]``).
        **kwargs: passed to the family builder (e.g. ``width``, ``aux_logits``, ``norm``).

    Raises:
        UnknownModelError: the name is not registered; the message lists close matches.
    """
    info = _lookup(name)
    return info.builder(num_classes=info.num_classes if num_classes is None else num_classes,
                        in_chans=info.default_input_size[0] if in_chans is None else in_chans, **kwargs)


@functools.lru_cache(maxsize=None)
def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model, with its minimum input size (see :func:`model_figures`).

    Raises:
        UnknownModelError: the name is not registered.
    """
    info = _lookup(name)
    return ModelInfo(**{**info.__dict__, "min_input_size": model_figures(name)[1]})


def model_figures(name: str) -> tuple[int, int]:
    """(parameters, minimum input side) of a registered model, computed by building it on the meta device.

    Parameters are counted for the paper's class count and default ``in_chans`` (every declared
    parameter, GoogLeNet's auxiliary heads included); the minimum side is the smallest square input
    that runs (:func:`~cnnzoo.shapes.min_input_size`). Both are computed once and kept in a JSON file
    under :func:`cache_dir`, valid while cnnzoo's source and torch's version stay the same, so a
    listing costs little more than the import.

    Raises:
        UnknownModelError: the name is not registered.
    """
    figures = _cached_figures()
    if name not in figures:
        from .shapes import min_input_size

        info = _lookup(name)
        with torch.device("meta"):
            model = info.builder(num_classes=info.num_classes, in_chans=info.default_input_size[0])
        figures[name] = [sum(p.numel() for p in model.parameters()),
                         min_input_size(model.eval(), info.default_input_size)]
        _store_figures(figures)
    params, side = figures[name]
    return params, side


@functools.lru_cache(maxsize=None)
def _source_key() -> str:
    """Hash of torch's version and every source file of cnnzoo: cached figures of another version are never used."""
    digest = hashlib.sha256(torch.__version__.encode())
    package = Path(__file__).parent
    for f in sorted(package.rglob("*.py")):
        digest.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def _figures_file() -> Path:
    return cache_dir() / "registry-figures.json"


@functools.lru_cache(maxsize=None)
def _cached_figures() -> dict[str, list[int]]:
    try:
        data = json.loads(_figures_file().read_text())
    except (OSError, ValueError):
        return {}
    return dict(data["models"]) if isinstance(data, dict) and data.get("key") == _source_key() else {}


def _store_figures(figures: dict[str, list[int]]) -> None:
    """Write the cache atomically; a cache that cannot be written (read-only home) is skipped."""
    try:
        atomic_write_bytes(_figures_file(), json.dumps({"key": _source_key(), "models": figures}).encode())
    except OSError:
        pass
