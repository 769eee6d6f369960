"""Load a torchvision weight file (``.pth``) that a user already has into a cnnzoo model.

Nothing is downloaded: cnnzoo's torchvision-compatible models (``alexnet``, ``vgg16``,
``googlenet``, ``resnet50``, …) have exactly torchvision's ``state_dict`` keys and shapes, so
a file saved by ``torch.save(tv_model.state_dict(), path)`` or fetched by torchvision's own
weight downloader (``~/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth``) loads strictly.
A file saved from ``nn.DataParallel``/``DistributedDataParallel`` (keys ``module.*``) or from
``torch.compile`` (keys ``_orig_mod.*``) loads too, with a one-line notice
(:func:`~cnnzoo.models._weights.strip_wrapper_prefixes`).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import CnnzooError, DataFileError
from ..registry import create_model, model_info
from ._weights import load_state_dict, read_weights, strip_wrapper_prefixes, unwrap_state_dict


def load_torchvision_weights(model: nn.Module | str, path: str | os.PathLike, strict: bool = True,
                             **kwargs) -> nn.Module:
    """Load torchvision weights from ``path`` into ``model`` (a module, or a registry name to build).

    The file is read with ``torch.load(..., weights_only=True)``; a checkpoint dict with a
    ``"state_dict"`` or ``"model"`` entry is unwrapped, and the key prefixes of PyTorch's wrappers
    (``module.``, ``_orig_mod.``) are removed with a notice.

    When a registry name is given, the model is built as torchvision builds it for its weights:
    ``num_classes`` from the file's final layer; for ``googlenet`` the auxiliary heads when the
    file has them (torchvision's own file does) and ``transform_input=True``, because
    ``torchvision.models.googlenet(weights=...)`` sets it with every weight file it loads (its
    ImageNet weights were trained on inputs in [-1, 1]; the flag re-normalises an input
    normalised with ImageNet's mean/std to that range), so the logits equal torchvision's. Pass
    ``transform_input=False`` for a GoogLeNet trained from scratch with torchvision's class
    default. ``**kwargs`` override any of these.

    Returns:
        The model with the weights loaded, in eval mode.

    Raises:
        DataFileError: the file is missing or is not a readable PyTorch weight file.
        CnnzooError: the registry name has no torchvision counterpart.
        WeightsMismatchError: the keys or shapes do not fit; a few lines with the counts, the first
            names and the likely cause (class count, width, architecture).
    """
    state = unwrap_state_dict(read_weights(path), path)
    raw = state
    state, _ = strip_wrapper_prefixes(state)        # to read the head; load_state_dict tells the user
    if isinstance(model, str):
        info = model_info(model)
        if info.torchvision is None:
            raise CnnzooError(f"{model!r} has no torchvision counterpart; torchvision-compatible models: "
                              "alexnet, vgg*, googlenet, resnet18/34/50/101/152")
        last = [v for k, v in state.items() if k.endswith(".weight") and v.dim() == 2][-1:]
        kwargs.setdefault("num_classes", last[0].shape[0] if last else 1000)
        kwargs.setdefault("in_chans", 3)
        if info.torchvision == "googlenet":
            kwargs.setdefault("aux_logits", any(k.startswith("aux1.") for k in state))
            kwargs.setdefault("transform_input", True)
        model = create_model(model, **kwargs)
    return load_state_dict(model, raw, str(path), strict=strict).eval()


def torchvision_weights(model: str, path: str | os.PathLike | None = None):
    """The torchvision weights enum member (e.g. ``ResNet18_Weights.IMAGENET1K_V1``) that describes a
    weight file for registry model ``model``, read offline from torchvision's metadata, and whether
    the file's name identified it.

    torchvision names its files after the weights (``resnet50-0676ba61.pth`` is ``IMAGENET1K_V1``,
    ``resnet50-11ad3fa6.pth`` ``IMAGENET1K_V2``); a file of another name is taken to be the first
    weights torchvision lists (its ``IMAGENET1K_V1``). The member's ``transforms()`` is its
    preprocessing (resize, crop, mean, std) and ``meta["categories"]`` its class names.

    Returns:
        (weights enum member, True if the file name matched it), or ``None`` for a model without a
        torchvision counterpart.
    """
    tv = model_info(model).torchvision
    if tv is None:
        return None
    import torchvision.models as tvm

    members = list(tvm.get_model_weights(tv))
    name = os.path.basename(str(path)) if path is not None else None
    match = next((w for w in members if os.path.basename(w.url) == name), None)
    return (match or members[0]), match is not None
