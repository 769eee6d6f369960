"""``cnnzoo.draw``: the lecture's diagrams from the module itself, and a model page for the browser.

:func:`draw` runs the analyzer (:func:`cnnzoo.profile`, meta device) and draws its trace: one box
per layer labelled as the lecture labels it ("conv 3x3, 64", "max pool 3x3, /2", "FC 4096") with
the output shape (H x W x C) and optionally parameters, MACs and receptive field; branches as
branches (Inception's paths into a concatenation), residual shortcuts as arcs around their block
(identity and projection drawn apart), GoogLeNet's auxiliary classifiers as side exits, AlexNet's
two towers as two columns. At ``depth="block"`` identical blocks collapse into one with "x N", at
``"stage"`` each stage is one box. Layout: Graphviz (``dot``).

:func:`page` writes one self-contained HTML file: the diagram, the per-layer table (sortable,
filterable), the totals and a receptive-field viewer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import graphviz
from torch import nn

from .._io import atomic_write_bytes
from ..analysis import Profile, profile
from ..errors import CnnzooError
from .dot import SHOW, to_dot
from .graph import DEPTHS, Graph, Node, build

FORMATS = ("svg", "png", "pdf")


class DrawError(CnnzooError, ValueError):
    """A bad ``depth``/``format``/``show``, an output that cannot be written, or Graphviz missing."""


@dataclass
class Diagram:
    """What :func:`draw` returns: the analyzer's profile, the diagram's graph and its dot source.

    ``pipe(fmt)`` renders to bytes (``"svg"``, ``"png"``, ``"pdf"``); ``save(path)`` writes a file
    (format from the suffix unless given).
    """

    profile: Profile
    graph: Graph
    dot: graphviz.Digraph

    @property
    def source(self) -> str:
        return self.dot.source

    def pipe(self, fmt: str = "svg") -> bytes:
        """The rendered diagram. Raises :class:`DrawError` for an unknown format or a missing ``dot``."""
        if fmt not in FORMATS:
            raise DrawError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
        try:
            return self.dot.pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise DrawError("Graphviz's `dot` is not installed: `apt-get install graphviz` "
                            "(scripts/setup.sh does it as root)") from None

    def svg(self) -> str:
        return self.pipe("svg").decode()

    def save(self, path: str | Path, fmt: str | None = None) -> Path:
        """Write the diagram to ``path``; raises :class:`DrawError` when it cannot be written."""
        path = Path(path)
        fmt = fmt or path.suffix.lstrip(".").lower() or "svg"
        data = self.pipe(fmt)
        write_bytes(path, data)
        return path


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file (atomic); one-line :class:`DrawError` if not possible."""
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise DrawError(f"cannot write {path}: {err.strerror or err}; choose another --out") from None


def _has_aux(model: nn.Module) -> bool:
    """Whether the model has auxiliary heads built (GoogLeNet, Sec. 5): the profile in training
    mode then runs ``forward_with_aux``, so the diagram shows them as side exits."""
    return callable(getattr(model, "forward_with_aux", None)) and getattr(model, "aux1", None) is not None


def default_input_size(model: nn.Module) -> tuple[int, ...]:
    return tuple(getattr(model, "default_input_size", (3, 224, 224)))


def trace(model: nn.Module, input_size=None, aux: bool = True) -> Profile:
    """The analyzer's profile that the diagram draws (with the auxiliary heads when ``aux``).

    Raises:
        InputShapeError / InputTooSmallError / ModelForwardError: as :func:`cnnzoo.profile`.
    """
    size = input_size or default_input_size(model)
    return profile(model, size, train=aux and _has_aux(model))


def draw(model: nn.Module, input_size=None, depth: str = "layer", *, show: tuple[str, ...] = (),
         title: str | None = None, aux: bool = True, rankdir: str = "TB", prof: Profile | None = None) -> Diagram:
    """Draw ``model`` as the lecture does, from the analyzer's trace.

    Args:
        model: any ``nn.Module`` (on the meta device is fastest; real weights are not touched).
        input_size: (C, H, W), (N, C, H, W) or ``"3x224x224"``; default the model's
            ``default_input_size`` or 3x224x224.
        depth: ``"layer"`` (one box per layer; batch norm and activations join the box before them),
            ``"block"`` (blocks as clusters, identical ones collapsed with "x N") or ``"stage"``.
        show: extra figures per box, any of ``"params"``, ``"macs"``, ``"rf"``.
        title: graph title; default the model's class, input and totals (:func:`default_title`);
            ``""`` for none.
        aux: draw auxiliary classifiers (models with ``forward_with_aux``) as side exits.
        rankdir: Graphviz direction, ``"TB"`` (input on top) or ``"LR"``.
        prof: a profile already made by :func:`trace` (skips the run).

    Returns:
        :class:`Diagram` (``.svg()``, ``.pipe("png")``, ``.save(path)``).

    Raises:
        DrawError: unknown ``depth`` or ``show`` item. Errors of :func:`cnnzoo.profile` when the
        model cannot run at ``input_size`` (wrong channels, input too small).
    """
    if depth not in DEPTHS:
        raise DrawError(f"depth {depth!r} is not one of {', '.join(DEPTHS)}")
    bad = [s for s in show if s not in SHOW]
    if bad:
        raise DrawError(f"cannot show {bad}; choose from {', '.join(SHOW)}")
    prof = prof or trace(model, input_size, aux)
    g = build(prof, depth)
    title = default_title(model, prof) if title is None else title
    return Diagram(prof, g, to_dot(g, tuple(show), title, rankdir))


def default_title(model: nn.Module, prof: Profile) -> str:
    """A diagram's title: ``ResNet, input 3x224x224: 11,689,512 params, 1,814,073,344 MACs (conv + linear)``."""
    t = prof.totals
    return (f"{type(model).__name__}, input {'x'.join(map(str, prof.input_shape[1:]))}: "
            f"{t.params:,} params, {t.macs:,} MACs ({' + '.join(prof.count)})"
            + (", auxiliary heads included" if prof.train else ""))


def page(model: nn.Module, out: str | Path, input_size=None, *, name: str | None = None,
         depth: str = "layer") -> Path:
    """Write the model page (one self-contained HTML file) into directory ``out`` and return its path;
    ``name``: the registry name, for the paper, notes and the lecture's claims. See :mod:`.page`."""
    from .page import write_page
    return write_page(model, out, input_size, name=name, depth=depth)


__all__ = ["draw", "page", "trace", "Diagram", "DrawError", "Graph", "Node", "DEPTHS", "FORMATS", "SHOW"]
