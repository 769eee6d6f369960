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

from torch import nn

from ..registry import model_info
from ._weights import load_state_dict, model_for_weights, read_weights, strip_wrapper_prefixes, unwrap_state_dict


def load_torchvision_weights(model: nn.Module | str, path: str | os.PathLike, strict: bool = True,
                             **kwargs) -> nn.Module:
    """Load torchvision weights from ``path`` into ``model`` (a module, or a registry name to build).

    The file is read with ``torch.load(..., weights_only=True)``; a checkpoint dict with a
    ``"state_dict"`` or ``"model"`` entry is unwrapped, and the key prefixes of PyTorch's wrappers
    (``module.``, ``_orig_mod.``) are removed with a notice.

    When a registry name is given, the model is built as torchvision builds it for its weights
    (:func:`~cnnzoo.models._weights.model_for_weights`): ``num_classes`` from the file's final
    layer, and the family's quirks beside the family (``googlenet``: the auxiliary heads when the
    file has them and ``transform_input=True``, as ``torchvision.models.googlenet(weights=...)``
    sets it, so the logits equal torchvision's). Pass ``transform_input=False`` for a GoogLeNet
    trained from scratch with torchvision's class default. ``**kwargs`` override any of these.

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
        model = model_for_weights(model, state, **kwargs)
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
