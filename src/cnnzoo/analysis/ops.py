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
* attention (``F.multi_head_attention_forward``, i.e. ``nn.MultiheadAttention`` on either
  path, and ``F.scaled_dot_product_attention``): q/k/v and output projections as linear
  layers; QK^T = N x heads x L x S x head_dim and AV = N x heads x L x S x head_dim_v MACs
  (L queries, S keys); softmax one FLOP per score (activation), scaling and masks elementwise;
* ``einsum``: a pairwise contraction costs the product of the sizes of all its indices
  (one multiply-add per term; more operands are contracted left to right, or along
  opt_einsum's path when torch uses it); a pair with no summed index (an outer product) is
  that many element-wise multiplications, no MACs; an index found in one operand only (and
  not in the output) is summed first, one FLOP per element of that operand;
* recurrent layers (``nn.LSTM``/``GRU``/``RNN`` and their cells): per time step and batch
  element, one MAC per weight-matrix element (gate pre-activations W_ih x + W_hh h, and the
  LSTM projection W_hr): MACs = T x N x sum of weight-matrix sizes over layers and directions,
  where T x N is the number of (step, sequence) positions; biases one FLOP per bias element
  per position; gate nonlinearities (LSTM 5H, GRU 3H, RNN H per position and layer-direction)
  are activations and gate products element-wise FLOPs (LSTM 4H, GRU 5H), not MACs;
* comparisons and logical ops: one elementwise FLOP per output element;
* views, concatenation, dropout, tensor creation: zero cost. Any other op is *uncounted*
  and listed by name, never silently costed as zero.
"""
from __future__ import annotations

import math

import torch

#: Cost categories; ``profile(count=...)`` chooses which enter the figures.
CATEGORIES = ("conv", "linear", "bias", "norm", "activation", "pooling", "elementwise", "upsample")
DEFAULT_COUNT = ("conv", "linear")

_CONV = {f"conv{d}d": d for d in (1, 2, 3)}
_CONVT = {f"conv_transpose{d}d": d for d in (1, 2, 3)}
_POOL = {f"{k}_pool{d}d": d for k in ("max", "avg", "lp") for d in (1, 2, 3)}
_ADAPTIVE = {f"adaptive_{k}_pool{d}d": d for k in ("max", "avg") for d in (1, 2, 3)}
_MATMUL = {"matmul", "rmatmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "linear", "bilinear"}
_NORM = {"batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm", "rms_norm", "normalize"}
_ACT = {"relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "sigmoid", "tanh",
        "hardtanh", "hardswish", "hardsigmoid", "softplus", "softsign", "softmax", "log_softmax", "prelu",
        "threshold", "clamp", "clip", "logsigmoid", "tanhshrink", "glu"}
_ELEMENTWISE = {"add", "sub", "mul", "div", "rsub", "radd", "rmul", "rtruediv", "truediv", "true_divide",
                "neg", "pow", "sqrt", "rsqrt", "exp", "log", "abs", "square", "addcmul", "addcdiv",
                "sum", "mean", "amax", "amin", "max", "min", "maximum", "minimum", "std", "var", "norm",
                "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor",
                "and", "or", "xor", "invert", "where", "clamp_min", "clamp_max", "reciprocal", "erf", "sin", "cos"}
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
#: Only taken for tensors in a standard dense layout (contiguous or channels-last), where every
#: kernel gives its output that same layout; ``contiguous`` and ``clone`` always run (they alias
#: or re-lay memory, and the meta run must see the same strides and aliasing as a real one);
#: ``layer_norm`` has its own (its output is always contiguous).
SHAPE_PRESERVING = ({"batch_norm", "group_norm", "instance_norm", "local_response_norm",
                     "dropout", "dropout2d", "alpha_dropout", "feature_alpha_dropout"}
                    | {a for a in _ACT if a not in ("glu", "prelu", "softmax", "log_softmax")}
                    | {a + "_" for a in _ACT})

#: Tensor metadata queries: they return no new tensor, so no row and no stand-ins.
METADATA = {"get", "size", "dim", "stride", "numel", "is_contiguous", "element_size", "is_floating_point",
            "ndimension", "nelement", "data_ptr", "storage_offset"}

#: In-place binary elementwise ops: with an equal-shaped second input they return their first input
#: (the meta run skips their kernels then).
BINARY_INPLACE = {f"{op}_" for op in ("add", "sub", "mul", "div", "maximum", "minimum")}

#: Ops whose integer arguments (sequence lengths, batch sizes) must stay on the CPU, values and all:
#: the meta run hands them only the first argument's stand-in.
HOST_ARGS = {"pack_padded_sequence", "pad_packed_sequence"}

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
    "mha": ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias",
            "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias", "training",
            "key_padding_mask", "need_weights", "attn_mask", "use_separate_proj_weight", "q_proj_weight",
            "k_proj_weight", "v_proj_weight", "static_k", "static_v", "average_attn_weights", "is_causal"),
    "sdpa": ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
    "mm3": ("input", "mat1", "mat2"),
    # torch.lstm / gru / rnn_tanh / rnn_relu, padded and packed forms (what nn.LSTM & co. call)
    "rnn": ("input", "hx", "params", "has_biases", "num_layers", "dropout", "train", "bidirectional",
            "batch_first"),
    "rnn_packed": ("data", "batch_sizes", "hx", "params", "has_biases", "num_layers", "dropout", "train",
                   "bidirectional"),
    "cell": ("input", "hx", "w_ih", "w_hh", "b_ih", "b_hh"),
}

#: Gates per hidden unit of each recurrent op (rows of W_hh = gates x hidden size) and, per
#: position and hidden unit, the gate nonlinearities and the element-wise gate FLOPs.
_RNN = {"lstm": (4, 5, 4), "gru": (3, 3, 5), "rnn_tanh": (1, 1, 0), "rnn_relu": (1, 1, 0)}


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
        depth: weight layers the op stacks when it uses parameters (an LSTM: its layers).
    """

    __slots__ = ("name", "category", "macs", "flops", "kernel", "stride", "padding", "dilation",
                 "groups", "rf", "depth")

    def __init__(self, name: str):
        self.name = name
        self.category = None
        self.macs: dict[str, float] = {}
        self.flops: dict[str, float] = {}
        self.kernel = self.stride = self.padding = self.dilation = self.groups = None
        self.rf = "pointwise"
        self.depth = 1

    def add(self, category: str, macs: float = 0, flops: float = 0) -> None:
        """Add ``macs`` multiply-adds and ``flops`` other FLOPs under ``category``."""
        if macs:
            self.macs[category] = self.macs.get(category, 0) + macs
        if flops:
            self.flops[category] = self.flops.get(category, 0) + flops


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
    elif base in _RULES:
        info.category = "linear"
        _RULES[base](info, base, args, kwargs, out)
    elif base in _MATMUL:
        info.category = "linear"
        if base == "linear":
            a = bind("linear", args, kwargs)
            info.macs["linear"] = numel * a["weight"].shape[-1]
            if a.get("bias") is not None:
                info.flops["bias"] = numel
        elif base == "bilinear":
            info.macs["linear"] = numel * inputs[0].shape[-1] * inputs[1].shape[-1]
        elif base in ("addmm", "baddbmm", "addbmm"):   # input + mat1 @ mat2 (summed over the batch: addbmm)
            m1 = bind("mm3", args, kwargs)["mat1"]
            info.macs["linear"] = numel * m1.shape[-1] * (m1.shape[0] if base == "addbmm" else 1)
            info.flops["bias"] = numel
        else:   # matmul, mm, bmm: K is the first operand's last axis; x.__rmatmul__(y) = y @ x
            a, b = inputs[0], inputs[1]
            info.macs["linear"] = numel * (b.shape[-1] if base == "rmatmul" and a.dim() == 1 else
                                           a.shape[-2] if base == "rmatmul" else a.shape[-1])
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


# ---------------------------------------------------------------- attention, einsum, recurrent layers

def _mha(info: OpInfo, base, args, kwargs, out) -> None:
    """``F.multi_head_attention_forward``: query (L, N, E) or (L, E), key (S, N, E_k), value (S, N, E_v)."""
    a = bind("mha", args, kwargs)
    q, k, v = a["query"], a["key"], a["value"]
    n = q.shape[1] if q.dim() == 3 else 1
    L, S, E, heads = q.shape[0], k.shape[0], q.shape[-1], a["num_heads"]
    static_k, static_v = a.get("static_k"), a.get("static_v")
    keys = (static_k.shape[1] if static_k is not None else S + (a.get("bias_k") is not None)) \
        + bool(a.get("add_zero_attn"))
    # projected positions x input features: q always; k and v unless given already projected
    proj = [L * E] + ([] if static_k is not None else [S * k.shape[-1]]) + ([] if static_v is not None else
                                                                           [S * v.shape[-1]])
    e_out = a["out_proj_weight"].shape[0]
    info.add("linear", n * (E * sum(proj) + 2 * L * keys * E + L * E * e_out))   # projections, QK^T, AV, out
    info.add("bias", flops=n * ((L + (len(proj) - 1) * S) * E * (a.get("in_proj_bias") is not None)
                                + L * e_out * (a.get("out_proj_bias") is not None)))   # one add per output
    scores = n * heads * L * keys
    info.add("activation", flops=scores)   # softmax
    masked = a.get("attn_mask") is not None or a.get("key_padding_mask") is not None or a.get("is_causal")
    averaged = a.get("need_weights", True) and a.get("average_attn_weights", True)
    info.add("elementwise", flops=n * L * E + scores * (bool(masked) + bool(averaged)))   # scale q, mask, mean
    info.depth = 2   # input projection, then output projection


def _sdpa(info: OpInfo, base, args, kwargs, out) -> None:
    """``F.scaled_dot_product_attention``: query (..., L, E), key (..., S, E), value (..., S, E_v)."""
    a = bind("sdpa", args, kwargs)
    q, k, v = a["query"], a["key"], a["value"]
    batch, (L, E), S = math.prod(q.shape[:-2]), q.shape[-2:], k.shape[-2]
    info.add("linear", batch * L * S * (E + v.shape[-1]))   # QK^T, then the weighted sum of values
    info.add("activation", flops=batch * L * S)             # softmax
    masked = a.get("attn_mask") is not None or a.get("is_causal")
    info.add("elementwise", flops=batch * L * E + batch * L * S * bool(masked))


def _einsum_labels(eq: str, operands) -> tuple[list[list[str]], list[str], dict[str, int]]:
    """Index labels of each operand and of the output, and each label's size ('...' broadcast)."""
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms, sizes, longest = lhs.split(","), {}, 0
    labels = []
    for term, op in zip(terms, operands, strict=True):
        pre, ell, post = term.partition("...")
        m = op.dim() - len(pre) - len(post) if ell else 0
        longest = max(longest, m)
        names = [*pre, *(f".{i}" for i in range(m - 1, -1, -1)), *post]   # '...' axes numbered from the right
        for name, n in zip(names, op.shape, strict=True):
            sizes[name] = max(sizes.get(name, 1), n)
        labels.append(names)
    ellipsis = [f".{i}" for i in range(longest - 1, -1, -1)]
    if arrow:
        pre, _, post = rhs.partition("...")
        output = [*pre, *(ellipsis if "..." in rhs else []), *post]
    else:
        flat = [c for t in labels for c in t if not c.startswith(".")]
        output = ellipsis + sorted(c for c in set(flat) if flat.count(c) == 1)
    return labels, output, sizes


def _einsum(info: OpInfo, base, args, kwargs, out) -> None:
    """``torch.einsum(eq, *operands)``: each operand first sums the labels no other operand or the
    output has, then pairs are contracted (left to right, or along opt_einsum's path)."""
    eq, ops_ = args[0], list(args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])
    if not isinstance(eq, str):
        raise ValueError("einsum's sublist form has no rule")
    labels, output, sizes = _einsum_labels(eq, ops_)
    size = lambda ls: math.prod(sizes[c] for c in ls)  # noqa: E731
    sets = [set(ls) for ls in labels]
    for i, ls in enumerate(sets):
        private = {c for c in ls if c not in output and not any(c in o for j, o in enumerate(sets) if j != i)}
        if private:
            info.add("elementwise", flops=size(ls))   # a sum over those axes
            sets[i] = ls - private
    if len(sets) == 1:
        return
    oe = torch.backends.opt_einsum
    if oe.is_available() and oe.enabled:
        path = oe.get_opt_einsum().contract_path(eq, *(o.shape for o in ops_), shapes=True,
                                                 optimize=oe.strategy)[0]
    else:   # left to right: the first two, then their result with the next operand
        path = [(0, 1)] * (len(sets) - 1)
    for i, j in path:   # opt_einsum's convention: the pair's result goes to the end of the list
        a, b = sets[i], sets[j]
        rest = [o for k, o in enumerate(sets) if k not in (i, j)]
        keep = (a | b) & (set(output) | set().union(*rest))
        if keep == a | b:   # nothing summed (an outer or element-wise product): multiplications only
            info.add("elementwise", flops=size(a | b))
        else:   # one multiply-add per term of the pairwise product
            info.add("linear", size(a | b))
        sets = rest + [keep]


def _rnn(info: OpInfo, base, args, kwargs, out) -> None:
    """``torch.lstm/gru/rnn_tanh/rnn_relu`` (padded or packed) and their ``*_cell`` forms."""
    gates, act, elem = _RNN[base.removesuffix("_cell")]
    if base.endswith("_cell"):
        a = bind("cell", args, kwargs)
        x = a["input"]
        positions = x.shape[0] if x.dim() == 2 else 1
        groups = [[t for t in (a["w_ih"], a["w_hh"], a.get("b_ih"), a.get("b_hh")) if t is not None]]
        info.depth = 1
    else:
        a = _bind_rnn(args, kwargs)
        x = a.get("data", a.get("input"))
        positions = x.numel() // x.shape[-1]   # (step, sequence) pairs: T x N, or the packed rows
        params = list(a["params"])
        per = len(params) // (a["num_layers"] * (2 if a["bidirectional"] else 1))
        groups = [params[i:i + per] for i in range(0, len(params), per)]   # one layer, one direction
        info.depth = a["num_layers"]
    for g in groups:
        hidden = g[1].shape[0] // gates   # W_hh: (gates x H, H_out)
        info.add("linear", positions * sum(t.numel() for t in g if t.dim() == 2))
        info.add("bias", flops=positions * sum(t.numel() for t in g if t.dim() == 1))
        info.add("activation", flops=positions * act * hidden)
        info.add("elementwise", flops=positions * elem * hidden)


def _bind_rnn(args, kwargs) -> dict:
    b = args[1] if len(args) > 1 else None
    packed = isinstance(b, torch.Tensor) and b.dim() == 1 and not b.is_floating_point()   # batch_sizes
    return bind("rnn_packed" if packed else "rnn", args, kwargs)


def rnn_outputs(args: tuple, kwargs: dict) -> tuple | None:
    """The outputs of a well-formed ``torch.lstm/gru/rnn_*`` call (its meta kernels step through
    time: 20 s for 1,000 steps)."""
    a = _bind_rnn(args, kwargs)
    x, params, hx = a.get("data", a.get("input")), list(a["params"]), a["hx"]
    if not params or x.shape[-1] != params[0].shape[-1]:
        return None
    feat = (2 if a["bidirectional"] else 1) * params[1].shape[1]   # directions x H_out (W_hh: (gates x H, H_out))
    y = _new(x, (x.shape[1], x.shape[0], feat)).transpose(0, 1) if a.get("batch_first") and x.dim() == 3 else \
        _new(x, (*x.shape[:-1], feat))
    return (y, *(torch.empty_like(h) for h in (hx if isinstance(hx, (tuple, list)) else (hx,))))


def standard(x: torch.Tensor) -> bool:
    """Dense in a standard layout (contiguous or channels-last): every kernel's output keeps it."""
    return x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))


def empty_like(x: torch.Tensor, device=None) -> torch.Tensor:
    """``torch.empty_like(x, device=device)`` for a dense tensor without its Python meta path (~4 us
    instead of ~80 us); ``device`` defaults to ``x``'s."""
    device = x.device if device is None else device
    if standard(x):
        return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=device)
    return torch.empty_like(x, device=device)


def _new(x: torch.Tensor, shape, channels_last: bool = False) -> torch.Tensor:
    return torch.empty(shape, dtype=x.dtype, device=x.device,
                       memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _binary(args: tuple, kwargs: dict):
    """``add/sub/mul/div`` of a floating tensor and a tensor of its dtype or a Python number: the
    broadcast shape, contiguous when both inputs are (TensorIterator keeps that order), the first
    input's layout when the shapes and strides match or the other is a number."""
    x, y = args[0], args[1] if len(args) > 1 else kwargs.get("other")
    if not x.is_floating_point() or set(kwargs) - {"other", "alpha", "rounding_mode"}:
        return None
    if type(y) in (int, float) or (isinstance(y, torch.Tensor) and y.shape == x.shape and y.stride() == x.stride()
                                   and y.dtype == x.dtype and y.device == x.device):
        return empty_like(x) if standard(x) else None
    if isinstance(y, torch.Tensor) and y.dtype == x.dtype and y.device == x.device and x.is_contiguous() \
            and y.is_contiguous():
        try:
            return _new(x, torch.broadcast_shapes(x.shape, y.shape))
        except RuntimeError:
            return None
    return None


def _linear(args: tuple, kwargs: dict):
    a = bind("linear", args, kwargs)
    x, w, b = a["input"], a["weight"], a.get("bias")
    if x.dim() < 1 or w.dim() != 2 or x.shape[-1] != w.shape[1] or x.dtype != w.dtype or (
            b is not None and tuple(b.shape) != (w.shape[0],)):
        return None
    return _new(x, (*x.shape[:-1], w.shape[0]))   # contiguous, whatever the input's layout


def _matmul(args: tuple, kwargs: dict):
    """Batched or folded ``x @ y`` with ``x`` of at least ``y``'s rank (the other case transposes)."""
    x, y = args[0], args[1] if len(args) > 1 else kwargs.get("other")
    if not isinstance(y, torch.Tensor) or kwargs or y.dim() < 2 or x.dim() < y.dim() or x.dtype != y.dtype \
            or x.device != y.device or x.shape[-1] != y.shape[-2]:
        return None
    try:
        return _new(x, (*torch.broadcast_shapes(x.shape[:-2], y.shape[:-2]), x.shape[-2], y.shape[-1]))
    except RuntimeError:
        return None


def _adaptive_avg(args: tuple, kwargs: dict):
    x, size = args[0], args[1] if len(args) > 1 else kwargs.get("output_size")
    d = 3 if x.dim() == 5 else 2 if x.dim() in (3, 4) else 1
    size = ntuple(size, d)
    if not standard(x) or x.dim() < d + 1 or len(size) != d or any(s is not None and s < 1 for s in size):
        return None
    shape = (*x.shape[:-d], *(i if s is None else s for i, s in zip(x.shape[-d:], size)))
    return _new(x, shape, channels_last=x.dim() == 4 and not x.is_contiguous())


def _mha_outputs(args: tuple, kwargs: dict):
    """(attn_output (L, N, E_out) or (L, E_out), weights or None) of an unmasked, well-formed call."""
    a = bind("mha", args, kwargs)
    q, k, v = a["query"], a["key"], a["value"]
    if a.get("attn_mask") is not None or a.get("key_padding_mask") is not None or not q.dim() == k.dim() == v.dim() \
            or q.dim() not in (2, 3) or q.shape[-1] != a["embed_dim_to_check"] or k.shape[:-1] != v.shape[:-1] \
            or q.shape[1:-1] != k.shape[1:-1] or q.shape[-1] % a["num_heads"]:
        return None
    out = _new(q, (*q.shape[:-1], a["out_proj_weight"].shape[0]))
    if not a.get("need_weights", True):
        return out, None
    static_k, n, L = a.get("static_k"), (q.shape[1],) if q.dim() == 3 else (), q.shape[0]
    keys = (static_k.shape[1] if static_k is not None else k.shape[0] + (a.get("bias_k") is not None)) \
        + bool(a.get("add_zero_attn"))
    heads = () if a.get("average_attn_weights", True) else (a["num_heads"],)
    return out, _new(q, (*n, *heads, L, keys))


def _roll(args: tuple, kwargs: dict):
    """``torch.roll``: the CPU kernel keeps a standard layout when rolling along dims, else contiguous."""
    x, dims = args[0], args[2] if len(args) > 2 else kwargs.get("dims")
    return empty_like(x) if dims not in (None, (), []) and standard(x) else _new(x, x.shape)


def fills_slices(args: tuple) -> bool:
    """``x[slices] = number``: on meta a no-op that cannot fail (its kernel runs in Python, ~1 ms)."""
    x, index, value = args
    index = index if isinstance(index, tuple) else (index,)
    return type(value) in (int, float, bool) and sum(i is not None for i in index) <= x.dim() and all(
        i is None or i is Ellipsis or (isinstance(i, slice) and all(type(v) in (int, type(None))
                                                                    for v in (i.start, i.stop, i.step)))
        for i in index)


#: Ops whose output the meta run makes from the arguments' shapes instead of running torch's meta
#: kernel (written in Python, slow); each gives torch's shape, dtype and strides, or ``None`` where
#: torch must decide (a malformed call then raises torch's own error).
_PLAIN = {"linear": _linear, "matmul": _matmul, "multi_head_attention_forward": _mha_outputs,
          "adaptive_avg_pool1d": _adaptive_avg, "adaptive_avg_pool2d": _adaptive_avg,
          "adaptive_avg_pool3d": _adaptive_avg, "roll": _roll, **{r: rnn_outputs for r in _RNN},
          **{op: _binary for op in ("add", "sub", "mul", "div", "truediv")}}


def plain_output(name: str, args: tuple, kwargs: dict):
    """The output of op ``name`` made from shapes alone (see ``_PLAIN``), or ``None``."""
    fn = _PLAIN.get(name)
    return fn(args, kwargs) if fn is not None else None


_RULES = {"multi_head_attention_forward": _mha, "scaled_dot_product_attention": _sdpa, "einsum": _einsum,
          **{k: _rnn for r in _RNN for k in (r, r + "_cell")}}
