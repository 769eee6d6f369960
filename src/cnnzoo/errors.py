"""User-facing errors.

Every error a user can cause by a mistake (a wrong name, an input too small, a missing
file) is a subclass of :class:`CnnzooError`. The CLI prints these as one line and exits
with status 2; anything else is a bug in cnnzoo and keeps its traceback.
"""
from __future__ import annotations


class CnnzooError(Exception):
    """Base class of the errors a user can cause; the CLI prints them as one line."""


class UnknownModelError(CnnzooError, KeyError):
    """A model name that is not in the registry. The message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputShapeError(CnnzooError, ValueError):
    """An input tensor of the wrong rank or channel count for a model."""


class InputTooSmallError(InputShapeError):
    """An input whose spatial size makes a feature map collapse inside the network.

    Attributes:
        layer: qualified name of the module where the feature map collapses.
        min_size: the smallest square input side (pixels) that runs through the network.
    """

    def __init__(self, message: str, layer: str | None = None, min_size: int | None = None):
        super().__init__(message)
        self.layer = layer
        self.min_size = min_size


class ModelConfigError(CnnzooError, ValueError):
    """An invalid builder argument (``width <= 0``, an unknown ``head`` or ``shortcut``, ...)."""


class DataFileError(CnnzooError, OSError):
    """A data file that is missing, truncated or corrupt. The message names the file."""
