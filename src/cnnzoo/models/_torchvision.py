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

from ..errors import DataFileError
from ._weights import load_state_dict, model_for_weights, strip_wrapper_prefixes


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
    if not os.path.isfile(path):
        raise DataFileError(f"weight file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's file problem
        raise DataFileError(f"{path} is not a readable PyTorch weight file: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise DataFileError(f"{path} holds a {type(state).__name__}, not a state_dict")
    raw = state
    state, _ = strip_wrapper_prefixes(state)        # to read the head; load_state_dict tells the user
    if isinstance(model, str):
        model = model_for_weights(model, state, **kwargs)
    return load_state_dict(model, raw, str(path), strict=strict).eval()
