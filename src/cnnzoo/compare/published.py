"""Published accuracies of the lecture's networks, never measured here: the ImageNet-1K figures
torchvision ships with its weights (read at run time from each weight's metadata, offline), and
the papers' own figures (:data:`PAPER_FIGURES`, typed from the papers' tables, each row citing its
table and test protocol).

Every figure is a percentage of the stated evaluation set; ``source`` says where it comes from
(``"torchvision"`` or ``"paper"``). A network with neither gets one row with no accuracy
(:func:`accuracy_rows`), so that charts and tables show it rather than drop it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

#: Size of the ILSVRC-2012 validation set (the evaluation set of every ImageNet figure below).
IMAGENET_VAL_IMAGES = 50_000

_ALEX = "Krizhevsky, Sutskever & Hinton 2012, Table 2"
_ZF = "Zeiler & Fergus 2014 (ECCV version), Table 2"
_VGG = "Simonyan & Zisserman 2015, Table 3"
_RES2 = "He et al. 2016, Table 2"
_RES3 = "He et al. 2016, Table 3"
_TEN_CROP = "single model, 10-crop test"
_VGG_DENSE = "single model, dense (fully-convolutional) test at Q=256, trained at S=256"


@dataclass(frozen=True)
class PaperFigure:
    """One single-model result from a paper's table.

    Fields: model (cnnzoo registry name of the architecture the row describes), citation
    (paper, table), dataset (evaluation set), protocol (test-time procedure and caveats),
    top1_error / top5_error (percent; ``None`` where the table gives none).
    """

    model: str
    citation: str
    dataset: str
    protocol: str
    top1_error: float | None
    top5_error: float | None


#: The papers' own figures (errors in percent, as printed). Single models only, never ensembles.
PAPER_FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure("lenet5", "LeCun et al. 1998, Sec. III.C", "MNIST test (10,000 digits)",
                "LeNet-5 without distortions; not ImageNet", 0.95, None),
    PaperFigure("alexnet_paper", _ALEX, "ILSVRC-2012 val", "1 CNN, average of 10 patches (Sec. 4.1)", 40.7, 18.2),
    PaperFigure("zfnet", _ZF, "ILSVRC-2012 val", "1 convnet as per Fig. 3, 10 crops (Sec. 3.1)", 38.4, 16.5),
    PaperFigure("zfnet_lecture", _ZF, "ILSVRC-2012 val", "model (b): layers 3-5 with 512, 1024, 512 maps, 10 crops",
                37.5, 16.0),
    PaperFigure("vgg11", _VGG, "ILSVRC-2012 val", "configuration A, " + _VGG_DENSE, 29.6, 10.4),
    PaperFigure("vgg13", _VGG, "ILSVRC-2012 val", "configuration B, " + _VGG_DENSE, 28.7, 9.9),
    PaperFigure("vgg16_c", _VGG, "ILSVRC-2012 val", "configuration C, " + _VGG_DENSE, 28.1, 9.4),
    PaperFigure("vgg16", _VGG, "ILSVRC-2012 val", "configuration D, " + _VGG_DENSE, 27.0, 8.8),
    PaperFigure("vgg19", _VGG, "ILSVRC-2012 val", "configuration E, " + _VGG_DENSE, 27.3, 9.0),
    PaperFigure("googlenet_paper", "Szegedy et al. 2015, Table 3", "ILSVRC-2014 val (= 2012 val)",
                "1 model, 1 crop; the paper gives no top-1", None, 10.07),
    PaperFigure("plain18", _RES2, "ILSVRC-2012 val", "18-layer plain net, " + _TEN_CROP + "; top-1 only", 27.94, None),
    PaperFigure("resnet18", _RES2, "ILSVRC-2012 val", _TEN_CROP + "; option A (zero-padding) shortcuts; top-1 only",
                27.88, None),
    PaperFigure("plain34", _RES3, "ILSVRC-2012 val", "34-layer plain net, " + _TEN_CROP, 28.54, 10.02),
    PaperFigure("resnet34", _RES3, "ILSVRC-2012 val", "ResNet-34 B (projection shortcuts when dimensions grow), "
                + _TEN_CROP, 24.52, 7.46),
    PaperFigure("resnet50_v1", _RES3, "ILSVRC-2012 val", _TEN_CROP, 22.85, 6.71),
    PaperFigure("resnet101_v1", _RES3, "ILSVRC-2012 val", _TEN_CROP, 21.75, 6.05),
    PaperFigure("resnet152_v1", _RES3, "ILSVRC-2012 val", _TEN_CROP, 21.43, 5.71),
)


def torchvision_weights(name: str) -> list[dict]:
    """The ImageNet-1K weights torchvision offers for architecture ``name`` and their published
    metadata (no download: the enum's ``meta`` ships with torchvision). Empty when torchvision has
    no such model.

    Returns:
        one dict per weight: ``weights`` (enum member name), ``top1``/``top5`` (percent, ``None``
        where torchvision gives NaN, e.g. feature-only weights), ``num_params``, ``gmacs``
        (torchvision's ``_ops``, multiply-adds per image, billions), ``crop``/``resize`` (pixels,
        the evaluation transform), ``recipe`` (URL).
    """
    from torchvision.models import get_model_weights, list_models

    if name not in list_models():
        return []
    out = []
    for w in get_model_weights(name):
        m = w.meta
        acc = m.get("_metrics", {}).get("ImageNet-1K", {})
        t = w.transforms()
        num = lambda v: None if v is None or math.isnan(v) else float(v)  # noqa: E731
        out.append({"weights": w.name, "top1": num(acc.get("acc@1")), "top5": num(acc.get("acc@5")),
                    "num_params": m["num_params"], "gmacs": m.get("_ops"), "crop": t.crop_size[0],
                    "resize": t.resize_size[0], "recipe": m.get("recipe")})
    return out


def paper_figures(name: str) -> list[PaperFigure]:
    """Rows of :data:`PAPER_FIGURES` for the cnnzoo model ``name``."""
    return [f for f in PAPER_FIGURES if f.model == name]


def accuracy_rows(name: str) -> list[dict]:
    """Every published accuracy of model ``name``: one row per torchvision weight with metadata,
    one per paper figure, or a single row with ``source=None`` and no accuracy.

    Each row: ``model``, ``source`` (``"torchvision"``, ``"paper"`` or ``None``), ``weights``
    (enum member name, torchvision only), ``citation``, ``dataset``, ``protocol``, ``top1``,
    ``top5`` (accuracy in percent, ``None`` if not published), ``imagenet`` (whether the figure
    is on ImageNet-1K, i.e. belongs on the ImageNet chart).
    """
    rows = []
    for w in torchvision_weights(name):
        rows.append({"model": name, "source": "torchvision", "weights": w["weights"],
                     "citation": f"torchvision {name}_Weights.{w['weights']} meta", "dataset": "ImageNet-1K val",
                     "protocol": f"single {w['crop']}px centre crop of the image resized to {w['resize']}px; "
                                 f"recipe {w['recipe']}",
                     "top1": w["top1"], "top5": w["top5"], "imagenet": True,
                     "tv_num_params": w["num_params"], "tv_gmacs": w["gmacs"]})
    for f in paper_figures(name):
        acc = lambda err: None if err is None else round(100 - err, 4)  # noqa: E731
        rows.append({"model": name, "source": "paper", "weights": None, **{k: v for k, v in asdict(f).items()
                     if k in ("citation", "dataset", "protocol")}, "top1": acc(f.top1_error),
                     "top5": acc(f.top5_error), "imagenet": "ILSVRC" in f.dataset})
    return rows or [{"model": name, "source": None, "weights": None, "citation": None, "dataset": None,
                     "protocol": "no published figure in torchvision's metadata or cnnzoo's paper table",
                     "top1": None, "top5": None, "imagenet": False}]


__all__ = ["PAPER_FIGURES", "PaperFigure", "IMAGENET_VAL_IMAGES", "torchvision_weights",
           "paper_figures", "accuracy_rows"]
