"""Load a torchvision weight file (``.pth``) that a user already has into a cnnzoo model.

Nothing is downloaded: cnnzoo's torchvision-compatible models (``alexnet``, ``vgg16``,
``googlenet``, ``resnet50``, …) have exactly torchvision's ``state_dict`` keys and shapes, so
a file saved by ``torch.save(tv_model.state_dict(), path)`` or fetched by torchvision's own
weight downloader (``~/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth``) loads strictly.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import CnnzooError, DataFileError
from ..registry import create_model, model_info


def load_torchvision_weights(model: nn.Module | str, path: str | os.PathLike, strict: bool = True,
                             **kwargs) -> nn.Module:
    """Load torchvision weights from ``path`` into ``model`` (a module, or a registry name to build).

    The file is read with ``torch.load(..., weights_only=True)``; a checkpoint dict with a
    ``"state_dict"`` or ``"model"`` entry is unwrapped. ``num_classes`` is taken from the file's
    final layer when a name is given.

    Returns:
        The model with the weights loaded, in eval mode.

    Raises:
        DataFileError: the file is missing or is not a readable PyTorch weight file.
        CnnzooError: the registry name has no torchvision counterpart, or the keys/shapes do not
            match (the message lists the first mismatches).
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
    if isinstance(model, str):
        info = model_info(model)
        if info.torchvision is None:
            raise CnnzooError(f"{model!r} has no torchvision counterpart; torchvision-compatible models: "
                              "alexnet, vgg*, googlenet, resnet18/34/50/101/152")
        last = [v for k, v in state.items() if k.endswith(".weight") and v.dim() == 2][-1:]
        kwargs.setdefault("num_classes", last[0].shape[0] if last else 1000)
        if info.family == "googlenet":
            kwargs.setdefault("aux_logits", any(k.startswith("aux1.") for k in state))
        model = create_model(model, **kwargs)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        first = str(err).splitlines()[1:4]
        raise CnnzooError(f"{path} does not match {type(model).__name__}: {' '.join(s.strip() for s in first)}") from err
    return model.eval()
