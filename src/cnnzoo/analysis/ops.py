"""What each torch op costs and how it moves the receptive field: the analyzer's op table.

Conventions (also printed with every profile):

* one MAC = one multiply-add; FLOPs = 2 x MACs for conv, linear, matmul and norm;
* conv: MACs = output elements x (C_in / groups) x prod(kernel); transposed conv: input
  elements x (C_out / groups) x prod(kernel) (as fvcore and ``torch.utils.flop_counter``);
* linear / matmul: MACs = output elements x inner dimension K;
* bias: one add per output element (FLOPs only, no MAC);
* norm: batch norm at inference folds to one multiply-add per element; layer/group/instance
  norm likewise (statistics not counted); LRN: ``size`` MACs per element;
* activation, elementwise (add, mul, ...): one FLOP per output element, no MAC;
* pooling: one FLOP per window element per output element;
* upsample: nearest 0; (bi/tri)linear 2^d and bicubic 4^d MACs per output element;
* views, concatenation, dropout, tensor creation: zero cost. Any other op is *uncounted*
  and listed by name, never silently costed as zero.
"""
from __future__ import annotations

import math

#: Cost categories; ``profile(count=...)`` chooses which enter the figures.
CATEGORIES = ("conv", "linear", "bias", "norm", "activation", "pooling", "elementwise", "upsample")
DEFAULT_COUNT = ("conv", "linear")

_CONV = {f"conv{d}d": d for d in (1, 2, 3)}
_CONVT = {f"conv_transpose{d}d": d for d in (1, 2, 3)}
_POOL = {f"{k}_pool{d}d": d for k in ("max", "avg", "lp") for d in (1, 2, 3)}
_ADAPTIVE = {f"adaptive_{k}_pool{d}d": d for k in ("max", "avg") for d in (1, 2, 3)}
_MATMUL = {"matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "linear", "bilinear"}
_NORM = {"batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm", "rms_norm"}
_ACT = {"relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh",
        "hardtanh", "hardswish", "hardsigmoid", "softplus", "softsign", "softmax", "log_softmax", "prelu",
        "threshold", "clamp", "clip", "logsigmoid", "tanhshrink", "glu"}
_ELEMENTWISE = {"add", "sub", "mul", "div", "rsub", "radd", "rmul", "rtruediv", "truediv", "true_divide",
                "neg", "pow", "sqrt", "rsqrt", "exp", "log", "abs", "square", "addcmul", "addcdiv",
                "sum", "mean", "amax", "amin", "max", "min", "maximum", "minimum", "std", "var", "norm"}
_UPSAMPLE = {"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"}
_FREE = {"view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "contiguous", "squeeze",
         "unsqueeze", "expand", "expand_as", "view_as", "reshape_as", "cat", "concat", "concatenate", "stack",
         "chunk", "split", "narrow", "select", "getitem", "unbind", "dropout", "dropout1d", "dropout2d",
         "dropout3d", "alpha_dropout", "feature_alpha_dropout", "clone", "to", "type", "float", "half",
         "double", "detach", "identity", "zeros", "ones", "empty", "full", "arange", "zeros_like",
         "ones_like", "empty_like", "full_like", "rand", "randn", "rand_like", "randn_like", "tensor",
         "as_tensor", "new_zeros", "new_ones", "new_empty", "new_full", "repeat", "flip", "roll", "pad",
         "channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "copy", "fill", "zero", "masked_fill",
         "requires_grad", "cpu", "cuda", "get", "movedim", "swapaxes", "index_select", "gather",
         "set", "setitem"}

#: Ops whose output has the input's shape and dtype (the meta run skips their kernels).
SHAPE_PRESERVING = ({"batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
                     "dropout", "dropout2d", "alpha_dropout", "feature_alpha_dropout", "contiguous", "clone"}
                    | {a for a in _ACT if a not in ("glu", "prelu", "softmax", "log_softmax")}
                    | {a + "_" for a in _ACT})

#: Binary elementwise ops whose output has the shape of two equal-shaped inputs (the meta run
#: skips their kernels then; the in-place ones return their first input).
BINARY_SAME_SHAPE = {f"{op}{s}" for op in ("add", "sub", "mul", "div", "maximum", "minimum") for s in ("", "_")}

#: Positional argument names of the ops whose arguments the analyzer reads.
_ARGS = {
    "conv": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "convt": ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
    "max_pool": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "lp_pool": ("input", "norm_type", "kernel_size", "stride", "ceil_mode"),
    "linear": ("input", "weight", "bias"),
    "local_response_norm": ("input", "size", "alpha", "beta", "k"),
    "interpolate": ("input", "size", "scale_factor", "mode"),
}


def normalize(name: str) -> str:
    """``__iadd__`` -> ``add_``, ``__radd__`` -> ``radd``, ``__getitem__`` -> ``getitem``."""
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        if core.startswith("i") and core[1:] in _ELEMENTWISE | {"truediv"}:
            return core[1:] + "_"
        return core
    return name.lstrip("_")


def inplace(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether an activation or dropout call writes into its input (``inplace=True``, by keyword or
    as ``F.dropout``'s 4th / an activation's last positional argument)."""
    if name.endswith("_") or kwargs.get("inplace"):
        return True
    if "dropout" in name:
        return len(args) > 3 and args[3] is True
    return name in _ACT and len(args) > 1 and args[-1] is True


def returns_input(name: str, args: tuple, kwargs: dict) -> bool:
    """In-place, or dropout in eval mode (``training=False``), which returns its input tensor."""
    if "dropout" in name and not kwargs.get("training", args[2] if len(args) > 2 else True):
        return True
    return inplace(name, args, kwargs)


def bind(kind: str, args: tuple, kwargs: dict) -> dict:
    """Arguments of an op as a dict by name (positional names from ``_ARGS[kind]``)."""
    return {**dict(zip(_ARGS[kind], args)), **kwargs}


def ntuple(v, n: int) -> tuple:
    if v is None:
        return None
    return tuple(v) * (n if len(tuple(v)) == 1 else 1) if isinstance(v, (tuple, list)) else (v,) * n


def conv_output_shape(name: str, args: tuple, kwargs: dict) -> tuple[int, ...] | None:
    """(N, C_out, *spatial) of a well-formed batched ``conv{1,2,3}d`` call, by the output-size rule
    ``floor((i + 2p - d(k - 1) - 1) / s) + 1``; ``None`` wherever torch itself must decide (string
    padding, wrong channel count, a collapsed map, mixed dtypes): its kernel then raises its own error.
    """
    n = _CONV.get(name)
    if n is None:
        return None
    a = bind("conv", args, kwargs)
    x, w, b, groups = a.get("input"), a.get("weight"), a.get("bias"), a.get("groups", 1)
    if (getattr(x, "ndim", 0) != n + 2 or getattr(w, "ndim", 0) != n + 2 or x.dtype != w.dtype
            or isinstance(a.get("padding"), str) or not isinstance(groups, int) or groups < 1
            or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups
            or (b is not None and tuple(getattr(b, "shape", ())) != (w.shape[0],))):
        return None
    stride, padding, dilation = (ntuple(a.get(k, v), n) for k, v in (("stride", 1), ("padding", 0), ("dilation", 1)))
    out = tuple((i + 2 * p - d * (k - 1) - 1) // s + 1
                for i, k, s, p, d in zip(x.shape[2:], w.shape[2:], stride, padding, dilation))
    return (x.shape[0], w.shape[0], *out) if min(out) >= 1 and min(stride) >= 1 else None


class OpInfo:
    """Cost and geometry of one executed op.

    Attributes:
        category: a cost category of :data:`CATEGORIES`, ``"free"`` or ``None`` (uncounted).
        macs, flops: per category, ``{category: value}`` (before the ``count`` selection).
        kernel, stride, padding, dilation, groups: window geometry (conv and pooling), else None.
        rf: ``"window"``, ``"transposed"``, ``"adaptive"``, ``"upsample"`` or ``"pointwise"``.
    """

    __slots__ = ("name", "category", "macs", "flops", "kernel", "stride", "padding", "dilation",
                 "groups", "rf")

    def __init__(self, name: str):
        self.name = name
        self.category = None
        self.macs: dict[str, float] = {}
        self.flops: dict[str, float] = {}
        self.kernel = self.stride = self.padding = self.dilation = self.groups = None
        self.rf = "pointwise"


def _window(info: OpInfo, kernel, stride, padding, dilation, n: int) -> None:
    info.kernel = ntuple(kernel, n)
    info.stride = ntuple(stride if stride not in (None, []) else kernel, n)
    info.dilation = ntuple(dilation, n)
    if isinstance(padding, str):  # 'valid' or 'same' (torch pads total // 2 on the left)
        padding = [0 if padding == "valid" else d * (k - 1) // 2 for k, d in zip(info.kernel, info.dilation)]
    info.padding = ntuple(padding, n)


def analyze(name: str, args: tuple, kwargs: dict, inputs: list, out) -> OpInfo:
    """Cost and geometry of op ``name`` called with ``args``/``kwargs``, returning ``out``.

    ``inputs`` are the tensor arguments in order; ``out`` the first output tensor.
    """
    info = OpInfo(name)
    base = name.rstrip("_")
    numel = out.numel()
    if base in _CONV or base in _CONVT:
        t = base in _CONVT
        a = bind("convt" if t else "conv", args, kwargs)
        w, n = a["weight"], (_CONVT if t else _CONV)[base]
        _window(info, tuple(w.shape[2:]), a.get("stride", 1), a.get("padding", 0), a.get("dilation", 1), n)
        info.groups = a.get("groups", 1)
        info.category, info.rf = "conv", ("transposed" if t else "window")
        info.macs["conv"] = (a["input"].numel() if t else numel) * math.prod(w.shape[1:])
        if a.get("bias") is not None:
            info.flops["bias"] = numel
    elif base in _MATMUL:
        info.category = "linear"
        if base == "linear":
            a = bind("linear", args, kwargs)
            info.macs["linear"] = numel * a["weight"].shape[-1]
            if a.get("bias") is not None:
                info.flops["bias"] = numel
        elif base == "bilinear":
            info.macs["linear"] = numel * inputs[0].shape[-1] * inputs[1].shape[-1]
        else:
            first = inputs[1] if base in ("addmm", "baddbmm", "addbmm") else inputs[0]
            info.macs["linear"] = numel * first.shape[-1] * (first.shape[0] if base == "addbmm" else 1)
    elif base in _POOL or base in _ADAPTIVE:
        info.category = "pooling"
        n = (_POOL | _ADAPTIVE)[base]
        x = inputs[0]
        if base in _ADAPTIVE:
            info.rf = "adaptive"
            ins, outs = x.shape[-n:], out.shape[-n:]
            info.kernel = tuple(max(math.ceil((i + 1) * I / O) - (i * I) // O for i in range(O))
                                for I, O in zip(ins, outs))
        else:
            kind = base.split("_pool")[0] + "_pool"
            a = bind(kind, args, kwargs)
            _window(info, a["kernel_size"], a.get("stride"), a.get("padding", 0), a.get("dilation", 1), n)
            info.rf = "window"
        info.flops["pooling"] = numel * math.prod(info.kernel)
    elif base in _NORM:
        info.category = "norm"
        size = bind("local_response_norm", args, kwargs)["size"] if base == "local_response_norm" else 1
        info.macs["norm"] = numel * size
    elif base in _ACT:
        info.category = "activation"
        info.flops["activation"] = numel
    elif base in _ELEMENTWISE:
        info.category = "elementwise"
        reduce = base in {"sum", "mean", "amax", "amin", "std", "var", "norm"} or (
            base in {"max", "min"} and len(inputs) == 1)
        info.flops["elementwise"] = inputs[0].numel() if reduce and inputs else numel
    elif base in _UPSAMPLE:
        info.category, info.rf = "upsample", "upsample"
        mode = bind("interpolate", args, kwargs).get("mode") or "nearest"
        d = out.dim() - 2
        taps = 0 if "nearest" in mode else 4 ** d if mode == "bicubic" else 2 ** d
        if mode == "area":
            info.category = None
        info.macs["upsample"] = numel * taps
    elif base in _FREE:
        info.category = "free"
    return info
