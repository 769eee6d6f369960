"""``cnnzoo draw --lecture``: the lecture's figures, drawn from cnnzoo's real modules into docs/figures/.

Each figure is data, :data:`cnnzoo.lecture.FIGURES` (a :class:`~cnnzoo.lecture.Figure`: the
file, the lecture section and claims it illustrates, which ``docs/lecture.md`` shows under that
section's table, a builder of the module, run here on the meta device, its input, the depth, and
the figures shown per box); this module draws them. Titles state the analyzer's totals (the
Inception modules' 854M vs 358M MACs are computed, not typed).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .._text import hwc, short
from ..lecture import FIGURES, Figure
from . import draw, trace


def render(fig: Figure):
    """The :class:`~cnnzoo.draw.Diagram` of one figure; its title carries the analyzer's totals."""
    with torch.device("meta"):
        model = fig.build()
    prof = trace(model, fig.input_size)
    t = prof.totals
    title = (f"{fig.caption}: {short(t.params)} params, {short(t.macs)} MACs ({' + '.join(prof.count)}), "
             f"output {hwc(prof.output_shapes[0][1:])}")
    return draw(model, fig.input_size, fig.depth, show=fig.show, title=title, prof=prof)


def write_figures(out: Path, fmt: str = "svg") -> list[Path]:
    """Render every figure into ``out`` (``docs/figures`` by default); returns the paths written."""
    return [render(f).save(out / f"{f.file}.{fmt}", fmt) for f in FIGURES]
