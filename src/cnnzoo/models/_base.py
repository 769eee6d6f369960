"""The interface every zoo model shares (timm's conventions).

* ``forward(x)``: (N, in_chans, H, W) -> logits (N, num_classes), whatever the mode.
* ``forward_features(x)``: the feature maps before global pooling and classifier, (N, C, h, w).
* ``forward_head(features)``: pooling + classifier, features -> logits.
* ``get_classifier()`` / ``reset_classifier(num_classes)``: the final linear layer.

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

    Subclasses set ``self.num_classes``, ``self.in_chans``, implement ``forward_features`` and
    ``forward_head``, and name their final ``nn.Linear`` in ``classifier_attr`` (a dotted path
    such as ``"fc"`` or ``"classifier.6"``) or override the classifier methods.
    """

    classifier_attr: str = "fc"
    #: (C, H, W) the architecture was designed for; used to report the minimum input size.
    default_input_size: tuple[int, int, int] = (3, 224, 224)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

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

    def get_classifier(self) -> nn.Module:
        """The final classification layer."""
        return self.get_submodule(self.classifier_attr)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final linear layer by a freshly initialised one with ``num_classes``
        outputs (``0`` gives ``nn.Identity``, so ``forward`` returns pooled features)."""
        old = self.get_classifier()
        new = nn.Linear(old.in_features, num_classes) if num_classes > 0 else nn.Identity()
        parent_name, _, attr = self.classifier_attr.rpartition(".")
        parent = self.get_submodule(parent_name) if parent_name else self
        setattr(parent, attr, new)
        self.num_classes = num_classes
