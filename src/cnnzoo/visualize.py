"""What a trained network looks at: the first conv layer's filters as an image grid and the
feature maps of any layer for one image (``cnnzoo visualize CHECKPOINT [IMAGE] [--layer NAME]``).

Zeiler & Fergus (2013, Sec. 4 and Fig. 2) show both for AlexNet/ZFNet; trained first-layer
filters look like oriented edges and colour blobs, smoother than their random initialization.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from .errors import CnnzooError


class LayerNameError(CnnzooError, KeyError):
    """The model has no module of that name (the message lists its conv layers)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first ``nn.Conv2d`` in module order: (qualified name, module).

    Raises:
        LayerNameError: the model has no Conv2d.
    """
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            return name, mod
    raise LayerNameError(f"{type(model).__name__} has no Conv2d layer")


def filter_tiles(weight: torch.Tensor) -> torch.Tensor:
    """Conv weights (O, I, kh, kw) -> (O, kh, kw, 3) RGB tiles in [0, 1], each filter min-max
    scaled on its own; 3 input channels are shown as colour, otherwise their mean as gray."""
    w = weight.detach().float()
    w = w if w.shape[1] == 3 else w.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    lo = w.amin((1, 2, 3), keepdim=True)
    hi = w.amax((1, 2, 3), keepdim=True)
    return ((w - lo) / (hi - lo).clamp_min(1e-12)).permute(0, 2, 3, 1)


def low_frequency_share(weight: torch.Tensor) -> float:
    """Mean over filters of the share of spatial power at the lowest frequencies (|f| <= 1 cycle
    per kernel in both axes, DC included) of conv weights (O, I, kh, kw): near the white-noise value
    for random filters, higher for smooth, structured ones."""
    w = weight.detach().float()
    power = torch.fft.fft2(w).abs().pow(2).sum(1)                               # (O, kh, kw)
    fy = torch.fft.fftfreq(w.shape[2]).abs() * w.shape[2] <= 1
    fx = torch.fft.fftfreq(w.shape[3]).abs() * w.shape[3] <= 1
    low = (power * (fy[:, None] & fx[None, :])).sum((1, 2))
    return float((low / power.sum((1, 2)).clamp_min(1e-30)).mean())


def conv_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """Names of the modules whose forward runs a convolution, in execution order: ``nn.Conv2d``
    and any other module that calls one (LeNet-5's partial C3), found by the analyzer on the
    meta device for an input of ``input_shape`` (N, C, H, W)."""
    from .analysis import profile

    rows = profile(model, input_shape, count=("conv",)).layers
    return list(dict.fromkeys(r.name.partition(":")[0] for r in rows if r.macs > 0))


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """Output of module ``layer`` for input ``x`` (1, C, H, W): (C', H', W').

    Raises:
        LayerNameError: no module of that name (the message lists :func:`conv_layers`), or its
            output is not a (1, C', H', W') map.
    """
    mods = dict(model.named_modules())
    if layer not in mods:
        convs = conv_layers(model, tuple(x.shape))
        raise LayerNameError(f"no layer {layer!r}; conv layers: {', '.join(convs[:12])}{' ...' if len(convs) > 12 else ''}")
    got = []
    h = mods[layer].register_forward_hook(lambda m, a, o: got.append(o))
    try:
        model.eval()(x)
    finally:
        h.remove()
    if not got or not isinstance(got[0], torch.Tensor) or got[0].dim() != 4:
        raise LayerNameError(f"layer {layer!r} does not output a (N, C, H, W) feature map")
    return got[0][0]


def _grid(images: list[torch.Tensor], path: Path, title: str, cmap: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].numpy(), cmap=cmap, interpolation="nearest")
    fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_filters(weight: torch.Tensor, path: Path, title: str) -> None:
    """Save the (O, I, kh, kw) filters as a grid image at ``path``."""
    _grid(list(filter_tiles(weight)), path, title)


def plot_input(image: torch.Tensor, path: Path, title: str) -> None:
    """Save a (C, H, W) uint8 model input (C = 1: grey, 3: RGB) as the image the model sees."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 3.5))
    hwc = image.permute(1, 2, 0).numpy()                                         # (H, W, C)
    ax.imshow(hwc[..., 0] if hwc.shape[2] == 1 else hwc, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title, fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_feature_maps(maps: torch.Tensor, path: Path, title: str, max_maps: int = 64) -> None:
    """Save the first ``max_maps`` channels of a (C, H, W) map as a grid (each channel scaled alone)."""
    _grid(list(maps[:max_maps].float()), path, title, cmap="viridis")


def visualize(checkpoint: str | os.PathLike, image: str | os.PathLike | None = None, layer: str | None = None,
              out: str | os.PathLike | None = None) -> dict:
    """Write ``filters.png`` (first conv layer) and, given an image, ``input.png`` (the image as
    the model sees it: read, converted and cropped as :func:`cnnzoo.deploy.predict` does, before
    normalisation) and ``feature_maps.png`` of ``layer`` (default: the first conv layer).

    Args:
        checkpoint: a run's ``checkpoint.pt`` (or its directory).
        image: an image file (any size and mode; read, converted, resized and centre-cropped as in
            :func:`cnnzoo.deploy.predict`).
        layer: qualified module name, e.g. ``features.3``.
        out: output directory (default: the checkpoint's directory).

    Returns:
        dict: ``filters_png``, ``first_conv`` (name), and with an image ``input_png``,
        ``feature_maps_png``, ``layer``, ``map_shape`` (C, H, W).

    Raises:
        CheckpointError, DataFileError: missing/corrupt checkpoint or image; LayerNameError: unknown
            layer (the message lists the conv layers); CnnzooError: ``layer`` without ``image``.
            Each is raised before any file is written.
    """
    from .data import read_image, to_input
    from .training import load_model

    cp = Path(checkpoint)
    cp = cp / "checkpoint.pt" if cp.is_dir() else cp
    model, ck = load_model(cp)
    out = Path(out) if out is not None else cp.parent
    if layer is not None and image is None:   # refused before anything is written
        raise CnnzooError(f"--layer {layer} needs an IMAGE to compute its feature maps: cnnzoo visualize "
                          f"{checkpoint} IMAGE --layer {layer} (without --layer only filters.png is written)")
    name, conv = first_conv(model)
    maps = None
    if image is not None:                      # a bad image or layer fails before filters.png is written
        layer = layer or name
        seen = read_image(Path(image), ck["in_chans"], ck["input_size"])               # (C, S, S) uint8
        x = to_input(seen[None], ck["input_size"], ck["mean"], ck["std"])
        maps = feature_maps(model, x, layer)
    res = {"first_conv": name, "filters_png": str(out / "filters.png")}
    plot_filters(conv.weight, out / "filters.png", f"{ck['model']}: {name} filters {tuple(conv.weight.shape)}")
    if maps is not None:
        plot_input(seen, out / "input.png", f"{ck['model']} input: {Path(image).name}, {seen.shape[0]} channel(s), "
                   f"{ck['input_size']}x{ck['input_size']}")
        plot_feature_maps(maps, out / "feature_maps.png", f"{ck['model']}: {layer} on {Path(image).name} "
                          f"{tuple(maps.shape)}")
        res.update(input_png=str(out / "input.png"), feature_maps_png=str(out / "feature_maps.png"), layer=layer,
                   map_shape=list(maps.shape))
    return res
