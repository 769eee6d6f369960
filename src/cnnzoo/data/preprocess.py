"""How a run turns an image into its model's input: the normalisation and the resize rule, which
follow the weights a run started from.

A run trained from scratch normalises with its training set's mean and std and resizes an image
file's shorter side to the input size S before the centre S x S crop. A run fine-tuned from
torchvision's weights uses theirs (``Weights.transforms()``: ImageNet's mean and std, and the
shorter side to 256 before the 224 crop, a crop ratio of 0.875, kept at any S); one fine-tuned
from another run uses that run's. The record goes into the checkpoint (``preprocess``, with
``mean`` and ``std`` also at the top level as before) and metrics.json, and ``eval``, ``predict``,
``export`` and ``bench`` read it from there (:func:`run_preprocess`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preprocess:
    """Normalisation and resize rule.

    Attributes:
        mean, std: per channel, of images scaled to [0, 1].
        crop_ratio: crop side / shorter side after resizing (1.0: the whole shorter side;
            torchvision's ImageNet weights: 224 / 256 = 0.875).
        source: where the values come from, in words (printed at the start of training).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_ratio: float = 1.0
    source: str = "the training images' statistics"

    def resize(self, size: int) -> int | None:
        """The shorter side an image file is resized to before the centre ``size`` crop; ``None``
        when it is ``size`` itself. torchvision's 224 / 256 at ``size`` 224 gives 256."""
        side = round(size / self.crop_ratio)
        return None if side == size else side

    def for_channels(self, channels: int) -> "Preprocess":
        """The same for ``channels`` input channels: RGB statistics for a grey input (1 channel)
        become their means, as a grey image replicated to RGB would see them on average; a
        1-channel record for RGB is replicated."""
        if len(self.mean) == channels:
            return self
        if channels == 1:
            return Preprocess((sum(self.mean) / len(self.mean),), (sum(self.std) / len(self.std),),
                              self.crop_ratio, f"{self.source}, averaged over RGB for 1 channel")
        return Preprocess(tuple(self.mean) * channels, tuple(self.std) * channels, self.crop_ratio,
                          f"{self.source}, replicated to {channels} channels")

    def record(self, size: int) -> dict:
        """The checkpoint's and metrics.json's ``preprocess`` entry at input size ``size``:
        ``mean``, ``std``, ``crop_ratio``, ``source``, ``resize`` (shorter side) and ``crop`` (= size)."""
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std),
                "resize": self.resize(size) or size, "crop": size}

    def describe(self, size: int) -> str:
        """One line, e.g. ``mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225); image files: shorter
        side to 256, centre 224x224 crop (torchvision's ResNet18_Weights.IMAGENET1K_V1)``."""
        fmt = lambda v: "(" + ", ".join(f"{x:.4g}" for x in v) + ")"  # noqa: E731
        return (f"mean {fmt(self.mean)}, std {fmt(self.std)}; image files: shorter side to "
                f"{self.resize(size) or size}, centre {size}x{size} crop ({self.source})")


def run_preprocess(ck: dict) -> Preprocess:
    """The :class:`Preprocess` a run's checkpoint (or metrics.json) records; a run saved before
    the record existed has its top-level ``mean`` and ``std`` and no crop margin."""
    rec = ck.get("preprocess") or {}
    return Preprocess(tuple(rec.get("mean", ck["mean"])), tuple(rec.get("std", ck["std"])),
                      rec.get("crop_ratio", 1.0), rec.get("source", "the training images' statistics"))
