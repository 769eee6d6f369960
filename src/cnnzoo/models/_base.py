"""The interface every zoo model shares (timm's conventions).

* ``forward(x)``: (N, in_chans, H, W) -> logits (N, num_classes), whatever the mode.
* ``forward_features(x)``: the feature maps before global pooling and classifier, (N, C, h, w).
* ``forward_head(features, pre_logits=False)``: pooling (and any hidden FC layers) + classifier,
  features -> logits (N, num_classes); with ``pre_logits=True`` the (N, num_features) vector the
  classifier reads.
* ``num_classes``, ``in_chans``, ``num_features``: the logits' size, the input channels, the
  width of that pre-logits vector (ResNet-50: 2048; VGG-16 and AlexNet: FC7's 4096; LeNet-5:
  F6's 84; GoogLeNet: 1024).
* ``get_classifier()`` / ``reset_classifier(num_classes)``: the final layer; ``reset_classifier(0)``
  puts ``nn.Identity`` there, so ``forward`` returns the (N, num_features) pre-logits.
* ``stem_and_stages()``: the backbone's stem and its stages as names of child modules, and
  ``head_names()``: the classifiers (what fine-tuning's ``--freeze`` leaves trainable).

Input checks live here once: a wrong rank or channel count raises
:class:`~cnnzoo.errors.InputShapeError` naming the expected and given counts, and an input too
small raises :class:`~cnnzoo.errors.InputTooSmallError` naming the collapsing layer and the
smallest input that works.
"""
from __future__ import annotations

import torch
from torch import nn

from .._text import plural
from ..errors import InputShapeError, ModelConfigError
from ..shapes import diagnose_input, is_probing


def scale_channels(channels: int, width: float, divisor: int = 1) -> int:
    """``channels * width`` rounded to a multiple of ``divisor`` (at least ``divisor``): the
    ``width`` multiplier every builder takes (1.0 = the paper's network).

    Raises:
        ModelConfigError: ``width <= 0``.
    """
    if not width > 0:
        raise ModelConfigError(f"width must be > 0, got {width}")
    return max(divisor, round(channels * width / divisor) * divisor)


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()


class ZooModel(nn.Module):
    """Base class of cnnzoo's networks.

    Subclasses set ``self.num_classes``, ``self.in_chans``, ``self.num_features``, implement
    ``forward_features`` and ``forward_pre_logits``, and name their final layer in
    ``classifier_attr`` (a dotted path such as ``"fc"`` or ``"classifier.6"``) or override the
    classifier methods. This is timm's model interface (``timm.models.ResNet`` and friends).
    """

    classifier_attr: str = "fc"
    #: (C, H, W) the architecture was designed for; used to report the minimum input size.
    default_input_size: tuple[int, int, int] = (3, 224, 224)
    num_classes: int
    in_chans: int
    #: size of the vector the classifier reads (timm's name): ``forward_head(x, pre_logits=True)``
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_pre_logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Features (N, C, h, w) -> the (N, num_features) vector the classifier reads."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Features (N, C, h, w) -> logits (N, num_classes), or with ``pre_logits=True`` the
        (N, num_features) vector before the final layer (timm's signature)."""
        x = self.forward_pre_logits(x)
        return x if pre_logits else self.get_classifier()(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> logits (N, num_classes).

        Raises:
            InputShapeError: ``x`` is not 4-D or has the wrong number of channels.
            InputTooSmallError: a feature map collapses; names the layer and the minimum size.
        """
        return self.checked_call(lambda t: self.forward_head(self.forward_features(t)), x)

    def checked_call(self, fn, x: torch.Tensor):
        """``fn(x)`` behind the input checks of :meth:`forward` (for extra entry points such as
        GoogLeNet's ``forward_with_aux``); skipped while tracing, scripting or compiling."""
        if _tracing() or is_probing():
            return fn(x)
        self.check_input(x)
        try:
            return fn(x)
        except RuntimeError as err:
            raise diagnose_input(self, tuple(x.shape), err, self.default_input_size) from err

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` unless ``x`` is (N, in_chans, H, W)."""
        if x.dim() != 4:
            raise InputShapeError(
                f"{type(self).__name__} expects a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{type(self).__name__} expects {plural(self.in_chans, 'input channel')}, got {x.shape[1]} "
                f"(input shape {tuple(x.shape)}); build it with in_chans={x.shape[1]}")

    def stem_and_stages(self) -> tuple[list[str], list[list[str]]]:
        """The backbone's stem and stages, in forward order, as qualified names of sub-modules:
        ``(stem, [stage 1, stage 2, ...])``, each a list of names (``stem`` may be empty where the
        paper has none). What ``--freeze N`` freezes: the stem and the first N stages.

        Raises:
            NotImplementedError: a model whose stages are not defined.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no stages")

    def head_names(self) -> list[str]:
        """Qualified names of the classifier modules: the final layer (``classifier_attr``), and
        auxiliary classifiers where a model has them. Everything else is the backbone."""
        return [self.classifier_attr]

    def get_classifier(self) -> nn.Module:
        """The final classification layer."""
        return self.get_submodule(self.classifier_attr)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer by a freshly initialised one with ``num_classes``
        outputs (``0`` gives ``nn.Identity``, so ``forward`` returns the (N, num_features)
        pre-logits, as timm's ``reset_classifier(0)``)."""
        new = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        parent_name, _, attr = self.classifier_attr.rpartition(".")
        parent = self.get_submodule(parent_name) if parent_name else self
        setattr(parent, attr, new)
        self.num_classes = num_classes


def split_stages(prefix: str, layers: nn.Sequential, starts_stage) -> list[list[str]]:
    """Group the children of a flat ``nn.Sequential`` (named ``prefix``) into stages: a new stage
    begins at each child for which ``starts_stage(child, previous)`` is true."""
    stages: list[list[str]] = []
    prev = None
    for i, m in enumerate(layers):
        if not stages or starts_stage(m, prev):
            stages.append([])
        stages[-1].append(f"{prefix}.{i}")
        prev = m
    return stages
