"""Shape probing on the meta device: where an input collapses and the smallest size that works.

Used by every zoo model to turn torch's deep shape errors into an
:class:`~cnnzoo.errors.InputTooSmallError` that names the layer and the minimum input, and by
the registry to compute each model's minimum input size (never typed in).
"""
from __future__ import annotations

import copy
import threading

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import InputTooSmallError

_state = threading.local()

#: Functions whose output has the shape of their first argument. A probe hands that argument back
#: instead of running their meta kernels (batch norm's is a Python decomposition that took half of
#: a probe's time), so finding every registry model's minimum input takes 2-3x less time.
SHAPE_PRESERVING = frozenset({F.batch_norm, F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu,
                              torch.Tensor.relu_, F.dropout, F.local_response_norm})


class _SkipShapePreserving(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in SHAPE_PRESERVING and args and isinstance(args[0], torch.Tensor):
            return args[0]
        return func(*args, **(kwargs or {}))


def is_probing() -> bool:
    """True while :func:`probe` runs a model; zoo models then skip their own diagnosis."""
    return getattr(_state, "probing", False)


def meta_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers live on the meta device.

    No tensor data is copied, so this is cheap even for VGG-16 (138M parameters).
    """
    memo: dict[int, object] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def probe(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[bool, str | None, BaseException | None]:
    """Run ``model`` (already on the meta device) on an input of ``input_shape`` (N, C, H, W).

    Returns:
        (ok, layer, error): ``layer`` is the qualified name of the innermost module that was
        running when the forward pass failed (``"(model)"`` for the top level).
    """
    stack: list[str] = []
    handles = []

    def enter(name: str) -> None:
        stack.append(name)

    def leave(*_) -> None:  # returns None: a forward hook's return value would replace the output
        stack.pop()

    for name, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(lambda m, a, n=name: enter(n)))
        handles.append(mod.register_forward_hook(leave))
    _state.probing = True
    try:
        with torch.no_grad(), _SkipShapePreserving():
            model(torch.empty(input_shape, device="meta"))
        return True, None, None
    except Exception as err:  # noqa: BLE001 - any failure of the forward pass is a probe result
        return False, (stack[-1] or "(model)") if stack else "(model)", err
    finally:
        _state.probing = False
        for h in handles:
            h.remove()




def min_input_size(model: nn.Module, default_input_size: tuple[int, int, int], upper: int | None = None) -> int:
    """Smallest square side ``s`` such that ``model`` runs on a (1, C, s, s) input.

    ``model`` must be on the meta device (see :func:`meta_copy`). Output sizes of conv and
    pooling layers never shrink as the input grows, so a binary search between 1 and the
    default size is exact.

    Raises:
        ValueError: the model fails even at its default size (or at ``upper``).
    """
    c, h, w = default_input_size
    hi = upper or max(h, w)
    ok, layer, err = probe(model, (1, c, hi, hi))
    if not ok:
        raise ValueError(f"model fails at its own default input size {hi}x{hi} in layer {layer}: {err}")
    if probe(model, (1, c, 1, 1))[0]:  # fully padded nets (the ResNets) run on any size
        return 1
    lo = 2
    while lo < hi:
        mid = (lo + hi) // 2
        if probe(model, (1, c, mid, mid))[0]:
            hi = mid
        else:
            lo = mid + 1
    return hi


def diagnose_input(model: nn.Module, input_shape: tuple[int, ...], error: BaseException,
                   default_input_size: tuple[int, int, int]) -> BaseException:
    """Turn a failed forward pass into a clear error when the input was too small.

    Returns an :class:`InputTooSmallError` naming the layer where the feature map collapses
    and the smallest input that works, or ``error`` itself when the input size is not the
    cause (the same shape runs on the meta device).
    """
    meta = meta_copy(model)
    ok, layer, _ = probe(meta, tuple(input_shape))
    if ok:
        return error
    c = input_shape[1]
    lo = min_input_size(meta, (c, *default_input_size[1:]), upper=max(max(input_shape[-2:]), *default_input_size[1:]))
    h, w = input_shape[-2:]
    return InputTooSmallError(
        f"input {h}x{w} is too small for {type(model).__name__}: the feature map collapses in layer "
        f"'{layer}'; the smallest input that works is {lo}x{lo}", layer=layer, min_size=lo)
