"""Receptive fields propagated through the real graph, one spatial axis at a time.

Each tensor carries, per spatial axis (H, W for images), three numbers in input pixels
(Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019, eqs. 1-2 and section "Handling multiple paths"):

* ``size`` r: how many input pixels one output unit sees;
* ``stride`` j (effective stride, "jump"): input pixels between two neighbouring units;
* ``padding`` P (effective padding): the first unit's field starts at input pixel -P.

A window op (conv, pooling) of kernel k, stride s, padding p, dilation d maps
``r' = r + d(k-1) j``, ``j' = j s``, ``P' = P + p j``. Where paths meet (residual add,
concatenation, any elementwise op) the field is the maximum over the paths, per axis, so
asymmetric kernels and strides keep separate H and W figures. An op that collapses the
spatial axes (global pooling to 1x1, flatten, a mean over H and W) makes the field *global*:
every output unit sees the whole input; ``feature`` then keeps the field of the last spatial
map before the collapse, the figure papers and Araujo et al. tabulate (AlexNet 195, VGG-16 212,
ResNet-50 483).

Gates: where a spatial path meets a global one (squeeze-excitation's ``x * sigmoid(fc(mean(x)))``,
a pooled context branch added or concatenated back), the field stays the local one of the
spatial path, the figure Araujo et al. tabulate for such networks, and is marked ``gated``: each
unit also depends on the whole input through the gate. A gated field prints as ``15 /8 p7 +gate``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(v, 3)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one tensor's units, per spatial axis (H, W), in input pixels.

    Attributes:
        size: field size per axis (pixels of the input, padding included).
        stride: effective stride per axis (input pixels between neighbouring units).
        padding: effective padding per axis (the first unit's field starts at ``-padding``).
        is_global: the spatial axes were collapsed; each unit sees the whole input.
        feature: for a global field, the field of the last spatial map before the collapse.
        gated: a local field whose units also depend on the whole input through a gate (a
            global path multiplied or added into the spatial one).
    """

    size: tuple[float, ...]
    stride: tuple[float, ...]
    padding: tuple[float, ...]
    is_global: bool = False
    feature: "ReceptiveField | None" = None
    gated: bool = False

    @classmethod
    def identity(cls, ndim: int) -> "ReceptiveField":
        """The field of the input itself: one pixel, stride 1, no padding."""
        return cls((1,) * ndim, (1,) * ndim, (0,) * ndim)

    def window(self, kernel, stride, padding, dilation) -> "ReceptiveField":
        """After a conv or pooling window (per-axis tuples); global fields stay global."""
        if self.is_global:
            return self
        return ReceptiveField(
            tuple(r + d * (k - 1) * j for r, k, d, j in zip(self.size, kernel, dilation, self.stride)),
            tuple(j * s for j, s in zip(self.stride, stride)),
            tuple(P + p * j for P, p, j in zip(self.padding, padding, self.stride)), gated=self.gated)

    def transposed(self, kernel, stride, padding, dilation) -> "ReceptiveField":
        """After a transposed conv: stride divides by s; each output sees ceil(d(k-1)+1 / s)
        inputs; the first output's field starts (d(k-1) - p)/s inputs to the left."""
        if self.is_global:
            return self
        keff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        return ReceptiveField(
            tuple(r + (math.ceil(ke / s) - 1) * j for r, ke, s, j in zip(self.size, keff, stride, self.stride)),
            tuple(j / s for j, s in zip(self.stride, stride)),
            tuple(P + (ke - 1 - p) / s * j for P, ke, p, s, j in zip(self.padding, keff, padding, stride, self.stride)),
            gated=self.gated)

    def collapse(self, input_hw: tuple[int, ...]) -> "ReceptiveField":
        """Global field after the spatial axes collapse; ``input_hw`` is the model input's size."""
        if self.is_global:
            return self
        return ReceptiveField(tuple(input_hw), tuple(input_hw), (0,) * len(input_hw), True, self)

    @staticmethod
    def merge(fields: list["ReceptiveField"]) -> "ReceptiveField | None":
        """Maximum over paths (Araujo et al., "Handling multiple paths"), per axis. Global paths
        meeting spatial ones (a gate) leave the spatial field, marked ``gated``."""
        fields = [f for f in fields if f is not None]
        if not fields:
            return None
        if len(fields) == 1:
            return fields[0]
        spatial = [f for f in fields if not f.is_global]
        glob = [f for f in fields if f.is_global]
        if not spatial:
            return replace(glob[0], feature=ReceptiveField.merge([g.feature for g in glob]))
        if len(spatial) == 1:
            return replace(spatial[0], gated=True) if glob else spatial[0]
        return ReceptiveField(*(tuple(map(max, *(getattr(f, a) for f in spatial)))
                                for a in ("size", "stride", "padding")),
                              gated=bool(glob) or any(f.gated for f in spatial))

    def spatial(self) -> "ReceptiveField":
        """The field of the last spatial map: ``feature`` for a global field, else ``self``."""
        return self.feature if self.is_global and self.feature is not None else self

    def __str__(self) -> str:
        if self.is_global:
            return "global"
        fmt = lambda t: "x".join(str(_num(v)) for v in t) if len(set(t)) > 1 else str(_num(t[0]))  # noqa: E731
        return f"{fmt(self.size)} /{fmt(self.stride)} p{fmt(self.padding)}" + (" +gate" if self.gated else "")

    def to_dict(self) -> dict:
        d = {"size": [_num(v) for v in self.size], "stride": [_num(v) for v in self.stride],
             "padding": [_num(v) for v in self.padding], "is_global": self.is_global, "gated": self.gated}
        if self.feature is not None:
            d["feature"] = self.feature.to_dict()
        return d
