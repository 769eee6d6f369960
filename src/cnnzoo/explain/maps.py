"""The three attribution maps, the Grad-CAM layer, and the model-randomisation sanity check.

Each map is a (H, W) float tensor over the input as the model saw it (higher = more evidence
for the class), computed with Captum (PyTorch's interpretability library):

- ``occlusion`` (Zeiler & Fergus 2013, Sec. 4.2, Fig. 7): a square of the training mean (0 after
  normalisation: the grey square of the paper) slides over the image; each pixel gets the mean
  drop of the class's softmax probability over the patch positions that cover it
  (:class:`captum.attr.Occlusion`, batched by ``perturbations_per_eval``).
- ``gradcam`` (Selvaraju et al. 2017, Eq. 1-2): ReLU of the feature maps of a layer weighted by
  the spatial mean of the class score's gradient, upsampled bilinearly to the input
  (:class:`captum.attr.LayerGradCam`, :meth:`captum.attr.LayerAttribution.interpolate`).
- ``saliency`` (Simonyan et al. 2014, Sec. 3.1): the largest absolute gradient of the class
  score over the input channels (:class:`captum.attr.Saliency`).

The sanity check is Adebayo et al. (2018, Sec. 3.1 and Fig. 2), cascading model
randomisation: the map is recomputed with the classifier re-initialised, then every layer, and
compared with the trained model's map by Spearman's rank correlation.
"""
from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import CnnzooError

METHODS = ("occlusion", "gradcam", "saliency")

#: Spearman's rho between the trained and the fully randomised model's maps at or above which a
#: method is flagged as not explaining the model. 0.5 is Cohen's (1988) "large" correlation; on
#: Inception v3 Adebayo et al. (2018, Fig. 2 and 4) find that the maps of methods that fail their
#: test (guided backpropagation, guided Grad-CAM) stay highly rank-correlated with the trained map
#: after cascading randomisation, while the gradient and Grad-CAM fall to low correlations.
FLAG_RHO = 0.5
SANITY_RULE = (f"a map that keeps Spearman rho >= {FLAG_RHO:g} with the trained map after every layer is "
               "re-initialised does not explain the model (Adebayo et al. 2018, Sec. 3.1)")


class ExplainError(CnnzooError, ValueError):
    """A bad method, layer, class, patch or stride for :func:`cnnzoo.explain` (the message says
    what is valid)."""


# --- Grad-CAM's layer -----------------------------------------------------------------------

@dataclass
class _Call:
    name: str
    module: nn.Module
    input: object
    output: object


def _record(model: nn.Module, run) -> list[_Call]:
    """Every named submodule's output in the order the calls finish, while ``run()`` runs."""
    calls: list[_Call] = []
    hooks = [m.register_forward_hook(lambda m, a, o, n=n: calls.append(_Call(n, m, a[0] if a else None, o)))
             for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            out = run()
    finally:
        for h in hooks:
            h.remove()
    calls.append(_Call("", model, None, out))
    return calls


def _spatial(o) -> bool:
    """A (N, C, h, w) map with more than one position."""
    return isinstance(o, torch.Tensor) and o.dim() == 4 and o.shape[-1] * o.shape[-2] > 1


_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def _outermost(calls: list[_Call], out) -> str:
    """The outermost module that returned the tensor ``out`` (``layer4``, not ``layer4.2.relu``);
    among siblings the last to finish (an in-place ReLU, not the conv before it)."""
    found = [(c.name.count("."), -i, c.name) for i, c in enumerate(calls) if c.output is out and c.name]
    return min(found)[2]


def _before_pooling(calls: list[_Call], out):
    """``out``, or where a local pooling layer produced it, that layer's input (repeatedly): the
    last convolutional map itself (Selvaraju et al. take VGG-16's relu5_3, not pool5)."""
    while True:
        first = next(c for c in calls if c.output is out)          # the innermost module finishes first
        if not isinstance(first.module, _POOLS) or not _spatial(first.input):
            return out
        out = first.input


def auto_layer(model: nn.Module, x: torch.Tensor) -> tuple[str, ...]:
    """The Grad-CAM layer(s) of ``model`` for an input ``x`` (N, C, H, W): the last convolutional
    feature map before global pooling.

    - A model with ``forward_features`` (every zoo model, timm's): the module that returns its
      output (ResNet ``layer4``, GoogLeNet ``inception5b``: the main head, never an auxiliary
      one); where that map is 1x1 (LeNet-5's C5), the last map before it with more than one
      position.
    - Any other CNN: the last module run once whose output is such a map, pooling layers
      excluded.
    - Either way, a map made by a local max or average pool is traced back to the pool's input,
      the last convolutional map itself, as Selvaraju et al. (2017, Sec. 3) take VGG-16's relu5_3
      rather than pool5: VGG, AlexNet and ZFNet get the ReLU after their last conv
      (``features.29`` in VGG-16), LeNet-5 its C3 block. Among modules returning the same tensor
      the outermost is named.
    - :class:`~cnnzoo.models.alexnet.AlexNetTwoTower`: the last conv of both towers together
      (their Grad-CAMs add before the ReLU, which equals Grad-CAM over the concatenated maps).

    Returns:
        one module name, or two for the towers.

    Raises:
        ExplainError: the model produces no (N, C, h, w) map with more than one position.
    """
    if hasattr(model, "tower0") and hasattr(model, "tower1"):
        last = max(i for i, m in enumerate(model.tower0) if isinstance(m, nn.Conv2d))
        return (f"tower0.{last}", f"tower1.{last}")
    counts: dict[str, int] = {}
    if callable(getattr(model, "forward_features", None)):
        calls = _record(model, lambda: model.forward_features(x))
        feat = calls[-1].output
        calls = calls[:-1]
        if _spatial(feat) and any(c.output is feat for c in calls):
            return (_outermost(calls, _before_pooling(calls, feat)),)
    else:
        calls = _record(model, lambda: model(x))[:-1]
    for c in calls:
        counts[c.name] = counts.get(c.name, 0) + 1
    pools = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, *_POOLS)
    for c in reversed(calls):
        if _spatial(c.output) and counts[c.name] == 1 and not isinstance(c.module, pools):
            return (_outermost(calls, _before_pooling(calls, c.output)),)
    raise ExplainError(f"{type(model).__name__} has no (N, C, h, w) feature map with more than one position "
                       "for Grad-CAM; use --method occlusion or saliency")


def find_layers(model: nn.Module, names) -> list[nn.Module]:
    """The modules called ``names``.

    Raises:
        ExplainError: an unknown name; the message lists the closest module names.
    """
    mods = dict(model.named_modules())
    for name in names:
        if name not in mods:
            near = difflib.get_close_matches(name, [n for n in mods if n], n=6, cutoff=0.5)
            conv = [n for n, m in mods.items() if isinstance(m, nn.Conv2d)][-3:]
            raise ExplainError(f"--layer {name!r}: no such module in {type(model).__name__}; "
                               f"closest names: {', '.join(near or conv) or '-'} (or --layer auto)")
    return [mods[n] for n in names]


# --- the maps -------------------------------------------------------------------------------

def occlusion_defaults(side: int) -> tuple[int, int]:
    """(patch, stride) in pixels for a square input of ``side``: a patch of about 1/7 of the side
    moved by one patch, 7 x 7 = 49 positions (32 px at 224: the cells of ResNet's and VGG's last
    7x7 map, so the map has Grad-CAM's resolution; 49 forward passes of ResNet-50 take seconds on
    2 cores). Pass ``stride`` = patch / 2 or less for a denser map like Zeiler & Fergus's Fig. 7."""
    patch = max(2, round(side / 7))
    return patch, patch


def _probs(model: nn.Module):
    return lambda inp: model(inp).softmax(1)


def occlusion_map(model: nn.Module, x: torch.Tensor, target: int, patch: int, stride: int,
                  batch: int = 32, fill: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Zeiler & Fergus's occlusion map of class ``target`` for ``x`` (1, C, H, W): (H, W), the
    mean drop of the class probability when a ``patch`` x ``patch`` square of the training mean
    covers the pixel (positions ``stride`` apart; ``batch`` occluded images per forward pass).
    ``fill``: the square's value in the model's (normalised) input, a number or (1, C, 1, 1);
    0 is the training mean.

    Raises:
        ExplainError: ``patch`` or ``stride`` < 1 or the patch larger than the input.
    """
    from captum.attr import Occlusion

    c, h, w = x.shape[1:]
    if patch < 1 or stride < 1 or patch > min(h, w):
        raise ExplainError(f"--patch {patch} / --stride {stride}: need 1 <= patch <= {min(h, w)} and stride >= 1")
    baseline = fill if isinstance(fill, float) else fill.expand_as(x)
    with torch.no_grad():
        attr = Occlusion(_probs(model)).attribute(x, sliding_window_shapes=(c, patch, patch), strides=(c, stride, stride),
                                                  baselines=baseline, target=target, perturbations_per_eval=batch)
    return attr[0, 0].detach()                                     # every channel holds the same value


def gradcam_map(model: nn.Module, x: torch.Tensor, target: int, layers) -> torch.Tensor:
    """Grad-CAM of class ``target`` (its logit) at the modules ``layers`` for ``x`` (1, C, H, W):
    (H, W). Several layers (AlexNet's two towers) add before the ReLU."""
    from captum.attr import LayerAttribution, LayerGradCam

    cam = sum(LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=False) for layer in layers)
    cam = LayerAttribution.interpolate(cam.relu(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return cam[0, 0].detach()


def saliency_map(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Simonyan et al.'s saliency of class ``target`` (its logit) for ``x`` (1, C, H, W): (H, W),
    the max over channels of |d score / d x|."""
    from captum.attr import Saliency

    return Saliency(model).attribute(x.clone().requires_grad_(), target=target, abs=True)[0].amax(0).detach()


def attribution(model: nn.Module, x: torch.Tensor, method: str, target: int, *, layers=None,
                patch: int | None = None, stride: int | None = None, fill: float | torch.Tensor = 0.0) -> torch.Tensor:
    """The ``method`` map of class ``target`` for ``x`` (1, C, H, W): (H, W) float32.

    ``layers``: Grad-CAM's module names (default :func:`auto_layer`); ``patch``/``stride``:
    occlusion's (default :func:`occlusion_defaults`) and ``fill`` (see :func:`occlusion_map`). The model is put in eval mode.

    Raises:
        ExplainError: unknown method or layer, bad patch or stride.
    """
    model.eval()
    if method == "occlusion":
        dp, ds = occlusion_defaults(min(x.shape[-2:]))
        return occlusion_map(model, x, target, patch or dp, stride or ds, fill=fill)
    if method == "gradcam":
        return gradcam_map(model, x, target, find_layers(model, layers or auto_layer(model, x)))
    if method == "saliency":
        return saliency_map(model, x, target)
    raise ExplainError(f"--method {method!r}: choose one of {', '.join(METHODS)}")


# --- the sanity check -----------------------------------------------------------------------

def classifier_modules(model: nn.Module) -> list[nn.Module]:
    """The layer(s) that produce the logits: ``get_classifier()`` (zoo and timm models), both
    towers' last layers (AlexNetTwoTower), else the last ``nn.Linear`` (or conv) in module order."""
    if hasattr(model, "tower0") and hasattr(model, "tower1"):
        return [model.tower0[-1], model.tower1[-1]]
    if callable(getattr(model, "get_classifier", None)):
        return [model.get_classifier()]
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return layers[-1:]


def randomised(model: nn.Module, stage: str, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the classifier's (``stage="classifier"``) or every layer's
    (``"all"``) weights re-initialised by their own ``reset_parameters`` (PyTorch's default
    initialisation; batch-norm statistics reset too), seeded."""
    rand = copy.deepcopy(model)
    mods = classifier_modules(rand) if stage == "classifier" else list(rand.modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in mods:
            if callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()
            if callable(getattr(m, "reset_running_stats", None)):
                m.reset_running_stats()
    return rand.eval()


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rho of two maps (ties share their mean rank; 0 where a map is constant)."""
    from ..compare.evidence import spearman

    a, b = a.flatten().double().numpy(), b.flatten().double().numpy()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return spearman(a, b)


#: The cascade's stages (Adebayo et al. 2018 randomise from the logits down): the classifier
#: alone, then every layer.
STAGES = ("classifier", "all layers")


def sanity_check(model: nn.Module, x: torch.Tensor, method: str, target: int, trained: torch.Tensor,
                 **kwargs) -> dict:
    """Adebayo et al.'s cascading model randomisation for one map: the ``method`` map of class
    ``target`` recomputed with the classifier, then every layer, re-initialised (seed 0), and its
    Spearman rank correlation with the ``trained`` map (H, W). ``kwargs`` as :func:`attribution`.

    Returns:
        ``stages``: [{``stage``, ``rho``, ``map`` (H, W)}, ...] in :data:`STAGES` order;
        ``flagged``: rho after every layer is re-initialised >= :data:`FLAG_RHO`; ``rule``.
    """
    stages = []
    for stage in STAGES:
        m = attribution(randomised(model, "classifier" if stage == "classifier" else "all"), x, method, target, **kwargs)
        stages.append({"stage": stage, "rho": rank_correlation(trained, m), "map": m})
    return {"stages": stages, "flagged": stages[-1]["rho"] >= FLAG_RHO, "rule": SANITY_RULE}
