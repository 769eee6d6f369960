"""Loading a ``state_dict`` as people save them, with a short diagnosis when it does not fit.

* Wrapper prefixes that PyTorch's own wrappers put on every key are removed, each with a
  one-line notice on the ``cnnzoo`` logger (shown on stderr unless logging is configured
  otherwise): ``module.`` from ``nn.DataParallel`` and ``DistributedDataParallel``
  (``torch.save(ddp_model.state_dict(), f)``), ``_orig_mod.`` from ``torch.compile``
  (``torch.save(torch.compile(model).state_dict(), f)``), in either order and nested.
* Any other mismatch raises :class:`WeightsMismatchError`, a few lines long: the counts of
  missing, unexpected and differently shaped tensors, the first few names of each, and the
  likely cause (another class count, width, input channel count, key prefix, or architecture:
  the registry model whose keys the file has, when there is one).
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

import torch
from torch import nn

from ..errors import CnnzooError, DataFileError

log = logging.getLogger("cnnzoo")

#: Prefix -> the PyTorch wrapper that adds it to every key of its ``state_dict``.
WRAPPER_PREFIXES = {"module.": "nn.DataParallel / DistributedDataParallel", "_orig_mod.": "torch.compile"}
_SHOW = 3                                  # names shown per kind of mismatch


class WeightsMismatchError(CnnzooError, ValueError):
    """A ``state_dict`` whose keys or shapes do not fit the model; the message says how and why."""


def strip_wrapper_prefixes(state: Mapping[str, torch.Tensor], model_keys=()) -> tuple[dict, list[str]]:
    """``state`` without the prefixes of :data:`WRAPPER_PREFIXES` that all its keys share (and the
    model's own keys lack), and one notice per prefix removed.

    Example: ``{"module._orig_mod.fc.weight": w}`` -> ``({"fc.weight": w}, [two notices])``.
    """
    state, notes = dict(state), []
    while state:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)
                       and not any(k.startswith(p) for k in model_keys)), None)
        if prefix is None:
            return state, notes
        state = {k[len(prefix):]: v for k, v in state.items()}
        notes.append(f"removed the '{prefix}' prefix that {WRAPPER_PREFIXES[prefix]} adds to every key")
    return state, notes


def load_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "the state_dict",
                    strict: bool = True) -> nn.Module:
    """Load ``state`` into ``model`` after :func:`strip_wrapper_prefixes`, logging its notices.

    Args:
        source: how the messages name the weights, e.g. the file's path.
        strict: as ``nn.Module.load_state_dict``: missing and unexpected keys are errors
            (shapes must always agree).

    Returns:
        ``model``, with the weights copied in.

    Raises:
        WeightsMismatchError: missing or unexpected keys (with ``strict``) or different shapes;
            at most about ten lines naming the counts, the first names and the likely cause.
    """
    own = model.state_dict()
    state, notes = strip_wrapper_prefixes(state, own)
    for note in notes:
        log.warning("cnnzoo: %s: %s", source, note)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if shapes or (strict and (missing or unexpected)):
        raise WeightsMismatchError(describe_mismatch(model, own, state, missing, unexpected, shapes, source))
    model.load_state_dict(state, strict=strict)
    return model


def read_weights(path: str | os.PathLike, flag: str = "weight file"):
    """What ``torch.load(path, weights_only=True)`` gives, on the CPU.

    Raises:
        DataFileError: ``path`` is missing, a folder, or not a readable PyTorch file (one line
            naming it and ``flag``, how the user gave it).
    """
    if not os.path.isfile(path):
        raise DataFileError(f"{flag} {path} is a folder, not a file" if os.path.isdir(path)
                            else f"{flag} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's file problem
        raise DataFileError(f"{flag} {path} is not a readable PyTorch weight file (torch.load with "
                            f"weights_only=True: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
                            ) from None


def unwrap_state_dict(obj, path: str | os.PathLike) -> dict:
    """The ``state_dict`` in what a weight file holds: the dict itself, or its ``"state_dict"``
    or ``"model"`` entry (training frameworks' checkpoints; timm's ``train.py`` saves ``state_dict``).

    Raises:
        DataFileError: no dict of tensors there.
    """
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataFileError(f"{path} holds a {type(obj).__name__}, not a state_dict of tensors")
    return obj


def adapt_input_conv(in_chans: int, weight: torch.Tensor) -> torch.Tensor:
    """A first conv's RGB weight (O, 3, kH, kW) for ``in_chans`` input channels, as timm's
    ``adapt_input_conv``: 1 channel: the sum of the three RGB filters (a grey image replicated to
    RGB gives the same output); C > 3: the RGB filters repeated to C and scaled by 3 / C (the
    output's scale is kept for an input whose channels are alike). dtype kept.

    Raises:
        WeightsMismatchError: ``weight`` does not take 3 channels.
    """
    if weight.shape[1] != 3:
        raise WeightsMismatchError(f"a first conv with {weight.shape[1]} input channel(s) cannot be adapted to "
                                   f"{in_chans}: only RGB (3-channel) filters are (as timm's adapt_input_conv)")
    w = weight.float()
    if in_chans == 1:
        w = w.sum(dim=1, keepdim=True)                                        # (O, 1, kH, kW)
    elif in_chans != 3:
        w = w.repeat(1, math.ceil(in_chans / 3), 1, 1)[:, :in_chans] * (3 / in_chans)   # (O, C, kH, kW)
    return w.to(weight.dtype)


def head_keys(model: nn.Module, own: dict) -> set[str]:
    """Keys of the classifiers: ``head_names()`` where the model has it (GoogLeNet's auxiliary
    heads included), else the final layer (:func:`_classifier_keys`)."""
    names = getattr(model, "head_names", None)
    if names is None:
        return _classifier_keys(model, own)
    return {k for k in own if any(k.startswith(n + ".") for n in names())}


def load_pretrained(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> list[str]:
    """Load pretrained weights into a model built for another task: strictly, after three repairs,
    each said in the returned notes (one line each).

    * the prefixes of :func:`strip_wrapper_prefixes` are removed;
    * a classifier whose shape differs (another class count) keeps the model's fresh
      initialisation (torchvision's and timm's fine-tuning recipes re-initialise the head);
    * a first conv that takes 3 channels where the model takes another count is adapted by
      :func:`adapt_input_conv`.

    Args:
        model: the model to fill (its classifier already sized for the new classes).
        state: the weights (a ``state_dict``); source: how notes and errors name them.

    Returns:
        The notes, e.g. ``r18.pth: the classifier (fc.weight, fc.bias) has 1000 outputs, this model 5:
        re-initialised``.

    Raises:
        WeightsMismatchError: anything else that does not fit (missing or unexpected keys, other
            shapes): the few lines of :func:`describe_mismatch`.
    """
    own = model.state_dict()
    state, notes = strip_wrapper_prefixes(state, own)
    notes = [f"{source}: {n}" for n in notes]
    diff = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    head = [k for k in diff if k in head_keys(model, own)]
    if head:
        k = next((k for k in head if k.endswith("weight")), head[0])
        notes.append(f"{source}: the classifier ({', '.join(head)}) has {state[k].shape[0]} outputs, this model "
                     f"{own[k].shape[0]}: re-initialised")
        state = {k: (own[k] if k in head else v) for k, v in state.items()}
    conv = next((k for k, v in own.items() if v.dim() == 4), None)
    if (conv in diff and state[conv].shape[1] == 3 and own[conv].shape[1] != 3
            and state[conv].shape[0] == own[conv].shape[0] and state[conv].shape[2:] == own[conv].shape[2:]):
        c = own[conv].shape[1]
        state = {**state, conv: adapt_input_conv(c, state[conv])}
        how = "the sum of its RGB filters" if c == 1 else f"its RGB filters repeated and scaled by 3/{c}"
        notes.append(f"{source}: the first conv ({conv}) takes 3 channels, this model {c}: adapted to {how} "
                     "(timm's adapt_input_conv)")
    load_state_dict(model, state, source)
    return notes


def _names(keys: list[str]) -> str:
    more = f", ... ({len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def describe_mismatch(model: nn.Module, own: dict, state: dict, missing: list[str], unexpected: list[str],
                      shapes: list[str], source: str) -> str:
    """The message of :class:`WeightsMismatchError`: counts, first names, likely cause."""
    name = type(model).__name__
    lines = [f"{source} does not fit {name} ({len(own)} tensors): {len(missing)} missing from the file, "
             f"{len(unexpected)} in the file that {name} lacks, {len(shapes)} of another shape"]
    if missing:
        lines.append(f"  missing: {_names(missing)}")
    if unexpected:
        lines.append(f"  unexpected: {_names(unexpected)}")
    if shapes:
        lines.append("  shapes (file vs model): " + "; ".join(
            f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shapes[:_SHOW])
            + (f"; ... ({len(shapes) - _SHOW} more)" if len(shapes) > _SHOW else ""))
    lines.append(f"  likely cause: {likely_cause(model, own, state, missing, unexpected, shapes)}")
    return "\n".join(lines)


def likely_cause(model: nn.Module, own: dict, state: dict, missing: list[str], unexpected: list[str],
                 shapes: list[str]) -> str:
    """One phrase: another class count, width, channel count, key prefix, or architecture."""
    if shapes and not missing and not unexpected:
        first_conv = next((k for k, v in own.items() if v.dim() == 4), None)
        if shapes == [first_conv] and state[first_conv].shape[1] != own[first_conv].shape[1]:
            return (f"another input channel count: the file's first conv takes {state[first_conv].shape[1]} "
                    f"channel(s), the model {own[first_conv].shape[1]}; build it with in_chans="
                    f"{state[first_conv].shape[1]}")
        head = _classifier_keys(model, own)
        if set(shapes) <= head:
            k = next(k for k in shapes if k.endswith("weight")) if any(k.endswith("weight") for k in shapes) else shapes[0]
            return (f"another class count: the file's classifier has {state[k].shape[0]} outputs, the model "
                    f"{own[k].shape[0]}; build it with num_classes={state[k].shape[0]}")
        ratios = {round(state[k].shape[0] / own[k].shape[0], 3) for k in shapes if own[k].dim() and own[k].shape[0]}
        ratios.discard(1.0)
        if len(ratios) == 1:
            return (f"another width: the file's layers have {ratios.pop():g} x the model's channels; build it "
                    "with the width the file was trained at")
        return "another configuration of the same architecture (layer sizes differ)"
    for prefix in _common_prefixes(state):
        if {k[len(prefix):] for k in state} >= set(own):
            return f"every key in the file starts with '{prefix}'; remove it: {{k.removeprefix('{prefix}'): v ...}}"
    match = _registry_match(set(state))
    if match:
        return f"another architecture: the file's keys are those of {match}, not of this {type(model).__name__}"
    if missing and not unexpected:
        return "the file holds only part of the model (a backbone without its head, or a sub-module)"
    return "another architecture (the key names differ)"


def _classifier_keys(model: nn.Module, own: dict) -> set[str]:
    """Keys of the final classifier (``get_classifier()`` if the model has it, else the last 2-D weight)."""
    head = getattr(model, "get_classifier", None)
    if head is not None:
        path = getattr(model, "classifier_attr", None)
        if path:
            return {f"{path}.{k}" for k in head().state_dict()}
    last = [k for k, v in own.items() if v.dim() == 2][-1:]
    return {k for k in own if last and k.rpartition(".")[0] == last[0].rpartition(".")[0]}


def _common_prefixes(state: dict) -> list[str]:
    """Dotted prefixes shared by every key: ``["model.", "model.net."]`` for ``model.net.fc.weight``, ..."""
    keys = list(state)
    parts = keys[0].split(".")[:-1] if keys else []
    out = []
    for i in range(1, len(parts) + 1):
        p = ".".join(parts[:i]) + "."
        if not all(k.startswith(p) for k in keys):
            break
        out.append(p)
    return out


def _registry_match(keys: set[str]) -> str | None:
    """A registry model (built on the meta device with its defaults, GoogLeNet with its aux
    heads too) whose ``state_dict`` has exactly ``keys``, or None."""
    from ..registry import create_model, list_models

    for name in list_models():
        for kw in ({}, {"aux_logits": True}, {"norm": True}):
            try:
                with torch.device("meta"):
                    if set(create_model(name, **kw).state_dict()) == keys:
                        return name + "".join(f" ({k}={v})" for k, v in kw.items())
            except (TypeError, CnnzooError):
                continue
    return None
