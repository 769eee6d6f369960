"""``cnnzoo draw --lecture``: the lecture's figures, drawn from cnnzoo's real modules into docs/figures/.

Each figure is data (:class:`Figure`): the file, the lecture section and claims it illustrates
(``docs/lecture.md`` shows it under that section's table, see :func:`cnnzoo.lecture.render_markdown`),
a builder of the module (run on the meta device), its input, the depth, and the figures shown per
box. Titles state the analyzer's totals (the Inception modules' 854M vs 358M MACs are computed,
not typed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..lecture import ALEXNET, GOOGLENET, LENET, RESNET, VGG, short
from . import draw, trace
from .graph import hwc


@dataclass(frozen=True)
class Figure:
    """One lecture figure: ``file`` stem, ``section`` and ``claims`` of docs/lecture.md it goes
    with, ``caption``, the module ``build``\\ er, ``input_size`` (C, H, W), ``depth``, ``show``."""

    file: str
    section: str
    claims: tuple[str, ...]
    caption: str
    build: Callable[[], nn.Module]
    input_size: tuple[int, int, int]
    depth: str = "layer"
    show: tuple[str, ...] = ()


def _zoo(name: str, **kwargs) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from ..registry import create_model
        return create_model(name, **kwargs)
    return build


def _inception(naive: bool) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from ..models.googlenet import Inception
        red = None if naive else 64
        return Inception(256, 128, red, 192, red, 96, red, naive=naive)  # the lecture's 28x28x256 example
    return build


def _block(kind: str, in_ch: int, planes: int) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from ..models import resnet
        return getattr(resnet, kind)(in_ch, planes)
    return build


FIGURES: list[Figure] = [
    Figure("lenet5", LENET, ("L2",), "LeNet-5 (1998 paper version)", _zoo("lenet5", num_classes=10, in_chans=1),
           (1, 32, 32)),
    Figure("alexnet", ALEXNET, ("L3", "L4", "L6", "L8", "L9"), "AlexNet (2012 paper): two towers, groups=2 on "
           "CONV2, CONV4, CONV5", _zoo("alexnet_paper"), (3, 227, 227)),
    Figure("vgg16", VGG, ("L12", "L15"), "VGG-16, stacks of 3x3 convs collapsed (x N)", _zoo("vgg16"), (3, 224, 224),
           "block"),
    Figure("inception_naive", GOOGLENET, ("L20", "L21", "L22"), "Naive Inception module on 28x28x256",
           _inception(True), (256, 28, 28), show=("macs",)),
    Figure("inception_bottleneck", GOOGLENET, ("L23",), "Inception module with 1x1 bottlenecks on 28x28x256",
           _inception(False), (256, 28, 28), show=("macs",)),
    Figure("googlenet", GOOGLENET, ("L18", "L24", "L25"), "GoogLeNet (paper), one box per Inception module, "
           "auxiliary classifiers as side exits", _zoo("googlenet_paper"), (3, 224, 224), "stage"),
    Figure("residual_block", RESNET, ("L28",), "Residual (basic) block: F(x) + x", _block("BasicBlock", 64, 64),
           (64, 56, 56), show=("params",)),
    Figure("bottleneck_block", RESNET, ("L30",), "Bottleneck block on 28x28x256", _block("Bottleneck", 256, 64),
           (256, 28, 28), show=("params", "macs")),
    Figure("resnet34", RESNET, ("L26", "L29"), "ResNet-34, identical blocks collapsed (x N)", _zoo("resnet34"),
           (3, 224, 224), "block"),
    Figure("plain34", RESNET, ("L27",), "Plain-34: ResNet-34 without shortcuts", _zoo("plain34"), (3, 224, 224),
           "block"),
    Figure("resnet50", RESNET, ("L26", "L30"), "ResNet-50 (bottleneck blocks), collapsed (x N)", _zoo("resnet50"),
           (3, 224, 224), "block"),
]


def figures_for(section: str) -> list[Figure]:
    """The figures that go under ``section`` of docs/lecture.md."""
    return [f for f in FIGURES if f.section == section]


def render(fig: Figure):
    """The :class:`~cnnzoo.draw.Diagram` of one figure; its title carries the analyzer's totals."""
    with torch.device("meta"):
        model = fig.build()
    prof = trace(model, fig.input_size)
    t = prof.totals
    title = (f"{fig.caption}: {short(t.params)} params, {short(t.macs)} MACs ({' + '.join(prof.count)}), "
             f"output {hwc(prof.output_shapes[0])}")
    return draw(model, fig.input_size, fig.depth, show=fig.show, title=title, prof=prof)


def write_figures(out: Path, fmt: str = "svg") -> list[Path]:
    """Render every figure into ``out`` (``docs/figures`` by default); returns the paths written."""
    return [render(f).save(out / f"{f.file}.{fmt}", fmt) for f in FIGURES]
