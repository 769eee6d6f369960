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
from collections.abc import Mapping

import torch
from torch import nn

from ..errors import CnnzooError

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


def model_for_weights(name: str, state: Mapping[str, torch.Tensor], **kwargs) -> nn.Module:
    """Build the registry model ``name`` as torchvision builds it for a weight file's ``state`` (keys
    without wrapper prefixes): ``num_classes`` from the file's final layer, 3 input channels, then
    the family's quirks (:attr:`~cnnzoo.registry.ModelInfo.weights_hook`); ``kwargs`` override any.

    Raises:
        CnnzooError: ``name`` has no torchvision counterpart (the message lists those that have).
    """
    from ..registry import create_model, model_info, torchvision_models

    info = model_info(name)
    if info.torchvision is None:
        raise CnnzooError(f"{name!r} has no torchvision counterpart; torchvision-compatible models: "
                          f"{', '.join(torchvision_models())}")
    last = [v for k, v in state.items() if k.endswith(".weight") and v.dim() == 2][-1:]
    hook = info.weights_hook(dict(state)) if info.weights_hook else {}
    options = {"num_classes": last[0].shape[0] if last else 1000, "in_chans": 3, **hook, **kwargs}
    return create_model(name, **options)


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
