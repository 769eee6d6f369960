""":func:`explain`: for each image the top-k and a heat map of one class, saved as a PNG overlay
beside the image as the model saw it and as the raw map (``.npy``); and the model page's examples."""
from __future__ import annotations

import base64
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CnnzooError
from .maps import (METHODS, ExplainError, attribution, auto_layer, find_layers, occlusion_defaults,
                   sanity_check)

#: Normalisation of a model that is not a run (registry name, model file, module): torchvision's
#: ImageNet statistics (the ``transforms`` of its weights) for 3 channels, 0.5/0.5 otherwise.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Subject:
    """The model to explain and how it reads an image.

    Attributes:
        model: the module, eval mode, CPU.
        description: one line naming the model and its configuration.
        name: a short label for titles (registry name, ``FILE-FACTORY``, the run folder's name).
        input_size: (C, S, S) the images are fitted to.
        mean, std: per-channel normalisation of the [0, 1]-scaled image.
        classes: class names (index = logit), ``class K`` where the model has none.
        folder: a run's folder (the default output goes to ``folder/explain``), else ``None``.
        trained: whether the weights were trained (a run, or ``weights`` given).
        checkpoint: a run's checkpoint dict (no optimizer state), else ``None``.
        sized: whether ``input_size`` is the model's own (a module without ``default_input_size``
            is not: a tensor image is then fed at its own size).
    """

    model: nn.Module
    description: str
    name: str
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    folder: Path | None = None
    trained: bool = True
    checkpoint: dict | None = None
    sized: bool = True


def load_subject(model: str | os.PathLike | nn.Module, weights: str | os.PathLike | None = None) -> Subject:
    """Build the model argument (:func:`cnnzoo.resolve_model`'s three forms, or a module).

    ``weights``: a weight file for a registry name (torchvision's, or any ``state_dict`` of the
    model), loaded by :func:`cnnzoo.load_torchvision_weights`.

    Raises:
        ExplainError: ``weights`` with a run, a model file or a module.
        and the errors of :func:`cnnzoo.resolve_model` / :func:`cnnzoo.load_torchvision_weights`.
    """
    from ..models._torchvision import load_torchvision_weights
    from ..registry import model_info
    from ..resolve import model_label, resolve_model, run_folder

    if isinstance(model, nn.Module):
        if weights is not None:
            raise ExplainError("weights= is for a registry name; load them into the module yourself")
        from ..resolve import _built

        c, *hw = getattr(model, "default_input_size", None) or (_built(model, "in_chans") or 3, 224, 224)
        sub = _subject(model.eval(), type(model).__name__, type(model).__name__, (c, *hw), None, None, None)
        sub.sized = hasattr(model, "default_input_size")     # else a tensor image is taken at its own size
        return sub
    r = resolve_model(str(model))
    if weights is not None and r.kind != "registry":
        raise ExplainError(f"--weights {weights}: only for a registry name; a model file loads its own weights and a "
                           "run has its checkpoint")
    if r.kind == "run":
        ck = r.checkpoint
        sub = _subject(r.model, r.description, run_folder(model).resolve().name, r.input_size, ck["mean"], ck["std"],
                       ck["classes"], run_folder(model))
        sub.checkpoint = ck
        return sub
    if weights is None:
        return _subject(r.model.eval(), r.description + "; untrained weights (no --weights)", model_label(r.spec),
                        r.input_size, None, None, None, trained=False)
    net = load_torchvision_weights(str(model) if model_info(str(model)).torchvision else r.model, weights)
    return _subject(net, f"{r.description.split(':')[0]} with weights {weights}", str(model), r.input_size,
                    None, None, None)


def _subject(model, description, name, size, mean, std, classes, folder=None, trained=True) -> Subject:
    c = size[0]
    mean = tuple(mean) if mean else (IMAGENET_MEAN if c == 3 else (0.5,) * c)
    std = tuple(std) if std else (IMAGENET_STD if c == 3 else (0.5,) * c)
    n = getattr(model, "num_classes", None) or [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
    return Subject(model.eval(), description, name, tuple(size), mean, std, list(classes or [f"class {k}" for k in range(n)]),
                   Path(folder) if folder else None, trained)


def class_index(spec: int | str | None, classes: list[str]) -> int | None:
    """``spec`` (an index, its text, or a class name; ``None``: the top-1 class) as an index.

    Raises:
        ExplainError: an index out of range or an unknown name (the message lists the classes).
    """
    import difflib

    if spec is None:
        return None
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        k = int(text)
        if 0 <= k < len(classes):
            return k
        raise ExplainError(f"--class {text}: out of range; give 0..{len(classes) - 1} or a class name")
    if text in classes:
        return classes.index(text)
    near = difflib.get_close_matches(text, classes, n=3, cutoff=0.4)
    shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
    raise ExplainError(f"--class {text!r}: not a class of this model" + (f" (did you mean {', '.join(near)}?)" if near else "")
                       + f"; classes: {shown} (or an index 0..{len(classes) - 1})")


def layer_field(model: nn.Module, input_size, names) -> str | None:
    """The receptive field of the last layer at or inside ``names`` with one, as the analyzer
    computes it (:func:`cnnzoo.profile`): ``"99x99 px, effective stride 8 px, padding 45 px"``."""
    from ..analysis import profile

    try:
        layers = profile(model, (1, *input_size)).layers
    except CnnzooError:                       # a model that reads tensor values (AlexNetTwoTower's device moves)
        layers = profile(model, (1, *input_size), real=True).layers
    rows = [r for r in layers if r.rf is not None and not r.rf.is_global
            and any(r.name == n or r.name.startswith((n + ".", n + ":")) for n in names)]
    if not rows:
        return None
    rf = rows[-1].rf
    hw = lambda v: "x".join(f"{a:g}" for a in v) if len(set(v)) > 1 else f"{v[0]:g}"  # noqa: E731
    return f"{'x'.join(f'{a:g}' for a in rf.size)} px, effective stride {hw(rf.stride)} px, padding {hw(rf.padding)} px"


def _inputs(subject: Subject, images) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, uint8 image (C, S, S) as the model sees it, normalised input (1, C, S, S)) per image."""
    from ..data import read_image, to_input

    c, s, _ = subject.input_size
    out = []
    for img in images:
        if isinstance(img, torch.Tensor):          # (C, H, W) uint8 of a data set (the page, tests)
            size = s if subject.sized else img.shape[-1]
            x = to_input(img[None], size, subject.mean, subject.std)     # resized as training resizes it
            seen = img if img.shape[-1] == size else nn.functional.interpolate(
                img[None].float(), size=(size, size), mode="bilinear", antialias=size < img.shape[-1])[0].round().clamp(0, 255).byte()
            out.append((f"image{len(out)}", seen, x))
        else:
            seen = read_image(Path(img), c, s)
            out.append((Path(img).name, seen, to_input(seen[None], s, subject.mean, subject.std)))
    return out


def explain(model: str | os.PathLike | nn.Module, images, *, method: str = "gradcam", layer: str | None = "auto",
            target: int | str | None = None, topk: int = 5, out: str | os.PathLike | None = None,
            weights: str | os.PathLike | None = None, check: bool = False, patch: int | None = None,
            stride: int | None = None, fill: str = "mean", write: bool = True) -> list[dict]:
    """Which regions of each image drove the model's output for one class.

    Each image is read as :func:`cnnzoo.training.predict` reads it (a viewer's orientation, the
    model's channels, shorter side resized to the input size and the centre cut) and normalised
    with the run's statistics (ImageNet's for a registry name or file). The map of class
    ``target`` (default: the top-1 class) is computed by ``method`` (see :mod:`cnnzoo.explain.maps`).

    Args:
        model: a registry name, ``FILE.py:FACTORY``, a run folder / ``checkpoint.pt``, or a module.
        images: image files, or (C, H, W) uint8 tensors of a data set (resized to the input size as
            training resizes them).
        method: ``"occlusion"``, ``"gradcam"`` or ``"saliency"``.
        layer: Grad-CAM's module name, or ``"auto"``/``None`` (:func:`~cnnzoo.explain.maps.auto_layer`).
        target: a class index or name; ``None``: each image's top-1 class.
        topk: how many classes to list per image.
        out: output folder (default: ``RUN/explain`` for a run, else ``./explain``).
        weights: a weight file for a registry name (see :func:`load_subject`).
        check: run the sanity check (classifier, then all layers re-initialised).
        patch, stride: occlusion's square side and step in pixels (default from the input size).
        fill: occlusion's square: ``"mean"`` (the training mean, Zeiler & Fergus's grey) or
            ``"black"`` (pixel value 0, a dark background's own colour).
        write: write the PNG and ``.npy`` files (``False``: only return the maps).

    Returns:
        one dict per image: ``image``, ``top`` ([(class, probability), ...]), ``class``,
        ``class_index``, ``probability``, ``method``, ``map`` ((S, S) float32 numpy), ``seconds``
        (the map's), ``seen`` (the (C, S, S) uint8 image as the model saw it), ``layer`` and
        ``receptive_field`` (Grad-CAM), ``patch``/``stride``/
        ``positions`` (occlusion), ``check`` (with ``check``: stages with ``rho``, ``flagged``,
        ``rule``), ``png``/``npy`` paths (with ``write``), ``description``, ``trained``.

    Raises:
        ExplainError: a bad method, layer, class, patch, stride or fill; DataFileError: a missing or
            unreadable image; the errors of :func:`cnnzoo.resolve_model`. Each is raised before
            any file is written.
    """
    if method not in METHODS:
        raise ExplainError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    import captum.attr  # noqa: F401  (imported here, about 2 s, so that the first map's ``seconds`` is the map's)

    if fill not in ("mean", "black"):
        raise ExplainError(f"--fill {fill!r}: choose mean or black")
    subject = model if isinstance(model, Subject) else load_subject(model, weights)
    net = subject.model
    k = class_index(target, subject.classes)
    inputs = _inputs(subject, images)                      # a missing image fails before any work
    s = inputs[0][2].shape[-1]
    info: dict = {}
    layers = None
    if method == "gradcam":
        x0 = inputs[0][2]
        layers = auto_layer(net, x0) if layer in (None, "auto") else tuple(layer.split("+"))
        find_layers(net, layers)
        info = {"layer": "+".join(layers), "receptive_field": layer_field(net, tuple(x0.shape[1:]), layers)}
    elif method == "occlusion":
        dp, ds = occlusion_defaults(s)
        patch, stride = patch or dp, stride or ds
        info = {"patch": patch, "stride": stride, "fill": fill,
                "positions": ((s - patch) // stride + 1) ** 2 if patch <= s else 0}
    value = 0.0 if fill == "mean" else torch.tensor([-m / d for m, d in zip(subject.mean, subject.std)]).view(1, -1, 1, 1)
    results = []
    for name, seen, x in inputs:
        with torch.no_grad():
            probs = net(x).softmax(1)[0]
        p, idx = probs.topk(min(topk, len(subject.classes)))
        t = int(idx[0]) if k is None else k
        t0 = time.perf_counter()
        m = attribution(net, x, method, t, layers=layers, patch=patch, stride=stride, fill=value)
        res = {"image": name, "top": [(subject.classes[i], float(q)) for q, i in zip(p, idx.tolist())],
               "class": subject.classes[t], "class_index": t, "probability": float(probs[t]), "method": method,
               "map": m.numpy().astype(np.float32), "seconds": time.perf_counter() - t0, **info,
               "description": subject.description, "trained": subject.trained, "seen": seen}
        if check:
            chk = sanity_check(net, x, method, t, m, layers=layers, patch=patch, stride=stride, fill=value)
            res["check"] = {**chk, "stages": [{"stage": st["stage"], "rho": st["rho"], "map": st["map"].numpy()}
                                              for st in chk["stages"]]}
        results.append(res)
    if write:
        folder = Path(out) if out is not None else (subject.folder / "explain" if subject.folder else Path("explain"))
        for res in results:
            stem = f"{Path(res['image']).stem}_{method}"
            res["png"], res["npy"] = str(folder / f"{stem}.png"), str(folder / f"{stem}.npy")
            _write(Path(res["npy"]), _npy(res["map"]))
            _write(Path(res["png"]), overlay_png(res, subject.name))
    return results


def _write(path: Path, data: bytes) -> None:
    from .._io import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _show(ax, seen: torch.Tensor) -> None:
    hwc = seen.permute(1, 2, 0).numpy()
    ax.imshow(hwc[..., 0] if hwc.shape[2] == 1 else hwc, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _heat(ax, seen: torch.Tensor, m: np.ndarray, title: str) -> None:
    _show(ax, seen)
    lo, hi = float(m.min()), float(m.max())
    if hi > lo:                                   # a constant map (Grad-CAM's ReLU zeroed it) is left off
        ax.imshow((m - lo) / (hi - lo), cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title + ("" if hi > lo else f" (map {hi:g} everywhere)"), fontsize=8)


def _method_words(res: dict) -> str:
    if res["method"] == "occlusion":
        return f"occlusion {res['patch']}px/{res['stride']}"
    if res["method"] == "gradcam":
        return f"Grad-CAM at {res['layer']}"
    return "saliency"


def overlay_png(res: dict, label: str, dpi: int = 100, compact: bool = False) -> bytes:
    """The PNG of one result: the image as the model saw it, the map over it (jet, scaled to its
    own min..max) and, with a sanity check, the randomised models' maps with their rho."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = (res.get("check") or {}).get("stages", []) if not compact else []
    n = 1 + (not compact) + len(stages)
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.7 if not compact else 2.4), squeeze=False)
    axes = axes[0]
    if not compact:
        _show(axes[0], res["seen"])
        axes[0].set_title(f"{res['image']} ({res['seen'].shape[-1]}px)", fontsize=8)
    _heat(axes[-1 - len(stages)], res["seen"], res["map"],
          "" if compact else f"{_method_words(res)}\n{res['class']} p={res['probability']:.2f}")
    for ax, st in zip(axes[n - len(stages):], stages):
        _heat(ax, res["seen"], st["map"], f"{st['stage']} re-init\nrho={st['rho']:.2f}")
    if not compact:
        top = ", ".join(f"{c} {q:.2f}" for c, q in res["top"][:3])
        fig.suptitle(f"{label}: top {top}", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def page_examples(run: str | os.PathLike, per_class: int = 1, max_classes: int = 10, method: str = "gradcam") -> dict:
    """The model page's explanations of a run: the first ``per_class`` test images of each of the
    first ``max_classes`` classes, each a compact overlay PNG as a ``data:`` URI (offline).

    Returns:
        ``method``, ``layer``, ``receptive_field`` and ``items``: [{``class``, ``predicted``,
        ``probability``, ``src``}, ...].

    Raises:
        DataFileError: the run's data set is missing (names it and how to get it).
    """
    from ..resolve import run_data

    subject = load_subject(run)
    if subject.folder is None:
        raise ExplainError(f"{run} is not a run: the page's explanations need a trained run's test images")
    data = run_data(subject.checkpoint)
    picks = []
    for k in range(min(max_classes, len(data.classes))):
        picks += (data.test.labels == k).nonzero().flatten()[:per_class].tolist()
    images = list(data.test.read(torch.tensor(picks, dtype=torch.int64)))
    res = explain(subject, images, method=method, target=None, write=False, topk=1)
    items = []
    for i, r in zip(picks, res):
        png = overlay_png({**r, "image": ""}, subject.name, dpi=60, compact=True)
        items.append({"class": data.classes[int(data.test.labels[i])], "predicted": r["class"],
                      "probability": r["probability"], "src": "data:image/png;base64," + base64.b64encode(png).decode()})
    head = res[0] if res else {}
    return {"method": method, "layer": head.get("layer"), "receptive_field": head.get("receptive_field"), "items": items}

