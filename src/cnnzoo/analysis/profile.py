"""``cnnzoo.profile``: per-layer shapes, parameters, MACs, memory and receptive fields of any nn.Module.

How it works: the model runs once (on the meta device by default, so no memory and no
arithmetic) under a :class:`~torch.overrides.TorchFunctionMode` that sees every torch call,
including the functional ops inside ``forward`` (``out += identity``, ``torch.cat``,
``F.max_pool2d``, ``F.interpolate``, ``x @ w``); two global module forward hooks give the ops
their layer names. The weights stay where they are: an op that must run on a meta tensor gets
meta stand-ins of its real ones, and ops whose output shape is plain (convolutions, batch norm, activations)
are not run at all. One row per leaf-module call and per op called directly in a parent's
``forward`` (named ``parent:op``, e.g. ``layer1.0:add_``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..errors import CnnzooError, InputShapeError, InputTooSmallError
from . import ops
from .receptive_field import ReceptiveField

CONVENTIONS = (
    "MACs: one multiply-add; FLOPs = 2 x MACs for conv/linear/norm (+1 per element for bias, "
    "activation, elementwise, pooling ops when counted).",
    "Counted: {count} (linear includes matmuls, attention and recurrent gates: torchvision's `_ops` "
    "convention); switches: {switches}. Ops without a rule are listed as uncounted, never costed 0.",
    "Params: once per tensor even if shared or called twice; MACs: per call.",
    "Activations: bytes of every op output that allocates (in-place ops and views add none).",
    "Memory: MB = 10^6 bytes, MiB = 2^20 bytes.",
    "RF: receptive field size /effective stride p(effective padding), input pixels, per axis (HxW when "
    "they differ); max over paths; 'global' after global pooling or flatten; '+gate': the local field of "
    "the spatial path, each unit also depending on the whole input through a gate (squeeze-excitation).",
    "Training memory estimate: weights + gradients + {opt} optimizer state(s) per trainable weight, "
    "plus 2 x forward activations per image (saved activations and their gradients).",
)


class ModelForwardError(CnnzooError, RuntimeError):
    """The model raised inside ``forward``; the message names the layer that was running."""


class ProfileOptionError(CnnzooError, ValueError):
    """A bad argument to :func:`profile` (input size, cost category)."""


class UnsupportedModelError(CnnzooError, TypeError):
    """A model whose ops the analyzer cannot see (TorchScript); the message says what to profile instead."""


@dataclass
class LayerRow:
    """One leaf-module call or one functional op, in execution order.

    Attributes:
        name: qualified module name (``"layer1.0.conv1"``), ``"parent:op"`` for an op called in
            a parent's ``forward``, ``"(model)"`` for the root when it is itself a leaf.
        type: module class name or op name.
        call: 1 for the first call of this module, 2 for the second, ...
        kernel, stride, padding, dilation, groups: window geometry of conv/pool rows, else None.
        input_shape, output_shape: (N, C, H, W) of the first tensor in and out.
        params: parameter elements first used by this row (a shared module counts once).
        macs, flops: cost of this call under the profile's ``count`` convention.
        activation_elems, activation_bytes: newly allocated output (0 for in-place ops and views).
        rf: receptive field of the output (None when no rule applies, see ``uncounted``).
        uncounted: ops in this row the analyzer cannot cost.
    """

    name: str
    type: str
    call: int = 1
    kernel: tuple | None = None
    stride: tuple | None = None
    padding: tuple | None = None
    dilation: tuple | None = None
    groups: int | None = None
    input_shape: tuple | None = None
    output_shape: tuple | None = None
    params: int = 0
    macs: int = 0
    flops: int = 0
    activation_elems: int = 0
    activation_bytes: int = 0
    rf: ReceptiveField | None = None
    uncounted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["rf"] = self.rf.to_dict() if self.rf else None
        return d


@dataclass
class Totals:
    """Whole-model figures; bytes are plain bytes (divide by 1e6 for MB, 2**20 for MiB).

    ``macs``, ``flops``, ``activation_*`` and ``input_bytes`` are for the whole batch;
    ``params*`` and ``param_bytes`` are declared (``model.parameters()``, each tensor once)
    unless named ``executed``.
    """

    params: int
    params_trainable: int
    params_frozen: int
    params_executed: int
    param_bytes: int
    buffer_bytes: int
    macs: int
    flops: int
    activation_elems: int
    activation_bytes: int
    input_bytes: int
    batch_size: int
    train_bytes_fixed: int
    train_bytes_per_image: int

    def train_bytes(self, batch_size: int) -> int:
        """Estimated training memory for a batch: fixed (weights, grads, optimizer) + per image."""
        return self.train_bytes_fixed + batch_size * self.train_bytes_per_image


@dataclass
class Profile:
    """What :func:`profile` returns.

    Attributes:
        model: class name of the model.
        input_shape: (N, C, H, W) the model ran on.
        output_shapes: shape of every tensor in the output (tuples, dicts, named tuples flattened).
        layers: one :class:`LayerRow` per leaf-module call or functional op, execution order.
        totals: :class:`Totals`.
        uncounted: ``"layer:op"`` names of ops the analyzer could not cost (never counted as 0).
        receptive_field: field of the last spatial map feeding the first output (before
            global pooling or flatten): what papers tabulate.
        output_receptive_field: field of the first output tensor itself (``global`` after a classifier).
        depth: weight layers (conv, linear, matmul with a parameter) on the longest path from
            the input to the first output, as papers count depth (ResNet-50: 50, VGG-16: 16).
        count: cost categories included in ``macs``/``flops``.
        device: ``"meta"`` or the real device it ran on.
        train: whether the model ran in training mode.
        module_types: qualified name -> class name of every module (for grouping by depth).
        edges: the data flow between rows, ``(producer, consumer)`` row indices into ``layers``
            (``-1``: the model's input), each pair once, in the order the consumer read it.
        output_rows: the row that produced each tensor of ``output_shapes`` (``-1``: the input).
    """

    model: str
    input_shape: tuple
    output_shapes: list[tuple]
    layers: list[LayerRow]
    totals: Totals
    uncounted: list[str]
    receptive_field: ReceptiveField | None
    output_receptive_field: ReceptiveField | None
    depth: int
    count: tuple[str, ...]
    device: str
    train: bool
    optimizer_states: int = 1
    module_types: dict[str, str] = field(default_factory=dict, repr=False)
    edges: list[tuple[int, int]] = field(default_factory=list, repr=False)
    output_rows: list[int] = field(default_factory=list, repr=False)

    def layer(self, name: str, call: int = 1) -> LayerRow:
        """The row of module (or op) ``name``; ``call`` picks a later call of a reused module.

        Raises:
            KeyError: no such row (the message lists close names).
        """
        for row in self.layers:
            if row.name == name and row.call == call:
                return row
        import difflib
        close = difflib.get_close_matches(name, [r.name for r in self.layers], n=3)
        raise KeyError(f"no layer {name!r} (call {call}) in the profile" + (f"; close: {close}" if close else ""))

    def rows(self, depth: int | None = None) -> list[LayerRow]:
        """Rows grouped to ``depth`` name levels (``depth=1``: ``conv1``, ``layer1``, ...).

        A group sums params, MACs, FLOPs and activations; its input is its first row's input and
        its output, RF and kernel the last row's. ``None`` gives the leaf rows.
        """
        if depth is None:
            return self.layers
        out: list[LayerRow] = []
        for row in self.layers:
            mod, sep, op = row.name.partition(":")
            parts = mod.split(".") if mod and mod != "(model)" else []
            key = ".".join(parts[:depth]) if len(parts) > depth or (len(parts) == depth and sep) else row.name
            if out and out[-1].name == key and key != row.name:
                g = out[-1]
                g.params += row.params
                g.macs += row.macs
                g.flops += row.flops
                g.activation_elems += row.activation_elems
                g.activation_bytes += row.activation_bytes
                g.output_shape, g.rf = row.output_shape, row.rf
                g.uncounted = g.uncounted + row.uncounted
            elif key != row.name:
                out.append(LayerRow(**{**row.__dict__, "name": key, "type": self.module_types.get(key, "?"),
                                       "kernel": None, "stride": None, "padding": None, "dilation": None,
                                       "groups": None, "uncounted": list(row.uncounted)}))
            else:
                out.append(row)
        return out

    def conventions(self) -> list[str]:
        """The counting conventions of this profile, one sentence each."""
        switches = ", ".join(c for c in ops.CATEGORIES if c not in self.count) or "none"
        return [c.format(count=" + ".join(self.count), switches=switches, opt=self.optimizer_states)
                for c in CONVENTIONS]

    def to_text(self, depth: int | None = None) -> str:
        from .render import to_text
        return to_text(self, depth)

    def to_markdown(self, depth: int | None = None) -> str:
        from .render import to_markdown
        return to_markdown(self, depth)

    def to_csv(self, depth: int | None = None) -> str:
        from .render import to_csv
        return to_csv(self, depth)

    def to_json(self, depth: int | None = None) -> str:
        from .render import to_json
        return to_json(self, depth)

    def __str__(self) -> str:
        return self.to_text()


def _tensors(obj) -> list[torch.Tensor]:
    """Tensors inside nested tuples, lists and dicts, in order (a fast subset of pytree flattening)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if not isinstance(obj, (tuple, list, dict)):
        return []
    out: list[torch.Tensor] = []
    todo = [obj]
    while todo:
        o = todo.pop()
        if isinstance(o, torch.Tensor):
            out.append(o)
        elif isinstance(o, (tuple, list)):
            todo.extend(reversed(o))
        elif isinstance(o, dict):
            todo.extend(reversed(o.values()))
    return out


@dataclass
class _ModelIndex:
    """One walk over a model: what :func:`profile` and the tracer read from it.

    ``modules``: (qualified name, module), each module once; ``params``/``buffers``: each tensor
    once (what ``model.parameters()`` yields).
    """

    modules: list[tuple[str, nn.Module]]
    params: list[torch.Tensor]
    buffers: list[torch.Tensor]

    @classmethod
    def of(cls, model: nn.Module) -> "_ModelIndex":
        modules = list(model.named_modules())
        params, buffers = {}, {}
        for _, m in modules:
            for store, unique in ((m._parameters, params), (m._buffers, buffers)):
                for t in store.values():
                    if t is not None:
                        unique.setdefault(id(t), t)
        return cls(modules, list(params.values()), list(buffers.values()))


def _root(t: torch.Tensor) -> torch.Tensor:
    return t._base if t._base is not None else t


def _allocates(out: torch.Tensor, inputs: list[torch.Tensor]) -> bool:
    """Whether ``out`` is new memory: not an input, nor a view of one. A view of memory the op
    allocated itself (``F.linear`` on a 4-D input returns a view of its matmul's output) is new."""
    root = _root(out)
    return not any(root is _root(i) for i in inputs)


class _Tracer(TorchFunctionMode):
    """Records every torch op with the module stack, per-tensor RF and depth."""

    def __init__(self, index: _ModelIndex, x: torch.Tensor, count: set[str]):
        super().__init__()
        self.count = count
        self.meta = x.device.type == "meta"
        self.params = {id(p): p for p in index.params}
        self.seen: set[int] = set()
        self.names_of: dict = {}  # torch function -> normalized op name
        self.stand_ins: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(real) -> (real, meta)
        self.names = {id(m): name or "(model)" for name, m in index.modules}
        self.leaf = {id(m) for _, m in index.modules if not any(c is not None for c in m._modules.values())}
        self.stack: list[tuple[str, nn.Module, LayerRow | None]] = []
        self.calls: dict[str, int] = {}
        self.rows: list[LayerRow] = []
        self.uncounted: list[str] = []
        self.spatial = x.dim() - 2
        self.input_hw = tuple(x.shape[2:])
        # id(tensor) -> (tensor, rf, depth); keeping the tensor alive keeps ids unique.
        self.info: dict[int, tuple[torch.Tensor, ReceptiveField | None, int]] = {
            id(x): (x, ReceptiveField.identity(self.spatial) if self.spatial > 0 else None, 0)}
        # Data flow for diagrams: id(tensor) -> the row that wrote it last (None: the model input).
        self.producer: dict[int, LayerRow | None] = {id(x): None}
        self.edges: dict[tuple[int, int], tuple[LayerRow | None, LayerRow]] = {}
        # Two global module hooks (torch's profiling hooks) instead of two per module: modules
        # outside the model are ignored, their ops go to the caller's row.
        self.handles = [register_module_forward_pre_hook(self._enter),
                        register_module_forward_hook(self._exit)]

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def _new_row(self, name: str, type_: str, inp) -> LayerRow:
        call = self.calls[name] = self.calls.get(name, 0) + 1
        first = inp[0] if inp and isinstance(inp[0], torch.Tensor) else next(iter(_tensors(inp)), None)
        row = LayerRow(name, type_, call, input_shape=tuple(first.shape) if first is not None else None)
        self.rows.append(row)
        return row

    def _enter(self, mod: nn.Module, args) -> None:
        name = self.names.get(id(mod))
        if name is not None:
            row = self._new_row(name, type(mod).__name__, args) if id(mod) in self.leaf else None
            self.stack.append((name, mod, row))

    def _exit(self, mod: nn.Module, args, out) -> None:
        if id(mod) not in self.names:
            return
        _, _, row = self.stack.pop()
        if row is not None:
            first = out if isinstance(out, torch.Tensor) else next(iter(_tensors(out)), None)
            if first is not None:
                row.output_shape = tuple(first.shape)
                row.rf = self.info.get(id(first), (None, None))[1]
            self._link(row, _tensors(args), _tensors(out))  # a leaf without torch ops (nn.Identity) too

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = self.names_of.get(func)
        if name is None:
            name = self.names_of[func] = ops.normalize(getattr(func, "__name__", str(func)))
        x = args[0] if args else None
        # On meta, skip torch's (slow, Python) meta kernels where the output is plain: ops that keep
        # their input's shape and standard layout (batch norm, activations), well-formed convolutions,
        # linear layers, matmuls, attention, recurrent layers, broadcast arithmetic. Each shortcut
        # gives the shape, strides and aliasing torch would (tests compare with real=True).
        fast = self.meta and isinstance(x, torch.Tensor) and x.device.type == "meta"
        if name in ops.METADATA:   # x.shape, x.size(), x.dim(), p.T: no row
            return func(*args, **kwargs)
        inputs = _tensors((args, kwargs))
        if fast and name in ops.SHAPE_PRESERVING and ops.returns_input(name, args, kwargs):
            out = x   # in place, or eval dropout
        elif fast and name in ops.SHAPE_PRESERVING and ops.standard(x):
            out = ops.empty_like(x)
        elif fast and name == "layer_norm":   # torch's kernel makes its output contiguous, whatever the input
            out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        elif fast and name in ops.BINARY_INPLACE and len(args) > 1 and isinstance(args[1], torch.Tensor) \
                and args[1].shape == x.shape and args[1].dtype == x.dtype and args[1].device == x.device:
            out = x   # e.g. the residual add: out += identity
        elif fast and (shape := ops.conv_output_shape(name, args, kwargs)) is not None:
            cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
            out = torch.empty(shape, dtype=x.dtype, device=x.device,
                              memory_format=torch.channels_last if cl else torch.contiguous_format)
        elif fast and (res := ops.plain_output(name, args, kwargs)) is not None:
            out = res
        elif fast and name == "setitem" and ops.fills_slices(args):
            out = None
        else:
            # Where a meta tensor meets real ones (the weights, tensors made in forward), the real ones
            # get meta stand-ins (no arithmetic); ops on real tensors alone (index and length
            # arithmetic) run as they are, so their values stay right.
            if self.meta and name in ops.HOST_ARGS:   # lengths stay real: the output shape needs them
                args = (self._on_meta(args[0]), *args[1:])
                inputs = _tensors((args, kwargs))
            elif self.meta and any(t.device.type == "meta" for t in inputs):
                args, kwargs = self._on_meta(args), self._on_meta(kwargs)
                inputs = [self._on_meta(t) for t in inputs]
            out = func(*args, **kwargs)
        outs = _tensors(out)
        if outs:
            self._record(name, args, kwargs, inputs, outs)
        return out

    def _on_meta(self, obj):
        """``obj`` with every tensor off the meta device replaced by its meta stand-in, the same one
        each time (a parameter's stand-in counts as that parameter)."""
        if isinstance(obj, torch.Tensor):
            if obj.device.type == "meta":
                return obj
            hit = self.stand_ins.get(id(obj))
            if hit is None:
                hit = self.stand_ins[id(obj)] = (obj, ops.empty_like(obj, "meta"))
                if id(obj) in self.params:
                    self.params[id(hit[1])] = obj
            return hit[1]
        if isinstance(obj, (tuple, list)):
            if type(obj) not in (tuple, list) or all(
                    not isinstance(o, (torch.Tensor, tuple, list, dict)) or
                    (isinstance(o, torch.Tensor) and o.device.type == "meta") for o in obj):
                return obj   # nothing to replace (the common case): no new container
            return type(obj)(self._on_meta(o) for o in obj)
        if isinstance(obj, dict):
            return {k: self._on_meta(v) for k, v in obj.items()}
        return obj

    def _record(self, name: str, args, kwargs, inputs: list[torch.Tensor], outs: list[torch.Tensor]) -> None:
        if not name.endswith("_") and ops.inplace(name, args, kwargs):
            name += "_"
        try:
            op = ops.analyze(name, args, kwargs, inputs, outs[0])
        except Exception:  # noqa: BLE001 - an op we cannot read is reported, not fatal
            op = ops.OpInfo(name)
        parent = self.stack[-1] if self.stack else ("(model)", None, None)
        row = parent[2] or self._new_row(f"{parent[0]}:{name}" if parent[0] != "(model)" else name, name, inputs)
        if op.category is None:
            label = f"{row.name}:{name}" if parent[2] else row.name
            row.uncounted.append(name)
            self.uncounted.append(label)
        if op.kernel is not None and row.kernel is None:
            row.kernel, row.stride, row.padding, row.dilation, row.groups = (
                op.kernel, op.stride, op.padding, op.dilation, op.groups)
        row.macs += sum(v for k, v in op.macs.items() if k in self.count)
        row.flops += 2 * sum(v for k, v in op.macs.items() if k in self.count) + sum(
            v for k, v in op.flops.items() if k in self.count)
        used = [self.params[id(t)] for t in inputs if id(t) in self.params]  # stand-ins -> their parameter
        for p in used:
            if id(p) not in self.seen:
                self.seen.add(id(p))
                row.params += p.numel()
        known = [self.info[id(t)] for t in inputs if id(t) in self.info]
        rf = self._rf(op, known, inputs, outs[0])
        depth = max((d for _, _, d in known), default=0) + (op.depth if op.category in ("conv", "linear") and used
                                                            else 0)
        for t in outs:
            if _allocates(t, inputs):
                row.activation_elems += t.numel()
                row.activation_bytes += t.numel() * t.element_size()
            self.info[id(t)] = (t, rf, depth)
        if parent[2] is None:
            row.output_shape, row.rf = tuple(outs[0].shape), rf
        self._link(row, inputs, outs)

    def _link(self, row: LayerRow, inputs: list[torch.Tensor], outs: list[torch.Tensor]) -> None:
        """Record which rows' tensors ``row`` read and mark ``outs`` as written by it (edges only;
        no figure depends on them)."""
        for t in inputs:
            if id(t) in self.producer and self.producer[id(t)] is not row:
                src = self.producer[id(t)]
                self.edges.setdefault((id(src), id(row)), (src, row))
        for t in outs:
            if id(t) in self.info:  # kept alive by ``info``, so the id stays unique
                self.producer[id(t)] = row

    def _rf(self, op: ops.OpInfo, known, inputs, out: torch.Tensor) -> ReceptiveField | None:
        pre = ReceptiveField.merge([r for _, r, _ in known])
        n = self.spatial
        if pre is None or pre.is_global:
            return pre
        if out.dim() != n + 2:  # flatten, a mean over H and W, ...: spatial axes gone
            return pre.collapse(self.input_hw)
        src = next((t for t, r, _ in known if r is not None and not r.is_global), known[0][0])  # spatial path
        ins, outs = tuple(src.shape[2:]) if src.dim() == n + 2 else None, tuple(out.shape[2:])
        if ins and all(o == 1 for o in outs) and any(i > 1 for i in ins):
            return pre.collapse(self.input_hw)  # global pooling
        if op.rf == "window":
            return pre.window(op.kernel, op.stride, op.padding, op.dilation)
        if op.rf == "transposed":
            return pre.transposed(op.kernel, op.stride, op.padding, op.dilation)
        if op.rf == "adaptive" and ins:
            return pre.window(op.kernel, [i / o for i, o in zip(ins, outs)], (0,) * n, (1,) * n)
        if op.rf == "upsample" and ins:
            taps = 1 if max(op.macs.values(), default=0) == 0 else 2
            return ReceptiveField(tuple(r + (taps - 1) * j for r, j in zip(pre.size, pre.stride)),
                                  tuple(j * i / o for j, i, o in zip(pre.stride, ins, outs)), pre.padding,
                                  gated=pre.gated)
        if ins and outs != ins:
            return None  # spatial size changed by an op without a rule
        return pre


def _input_rank(index: _ModelIndex) -> tuple[int, str] | None:
    """(d, name) of the model's first layer in module order that fixes its input's rank: it takes one
    input of d + 1 axes or a batch of d + 2 (Conv2d: d = 2; Conv3d: 3; LSTM, attention: 1; LSTMCell: 0)."""
    for name, m in index.modules:
        if isinstance(m, nn.modules.conv._ConvNd):
            d = len(m.kernel_size)
        elif isinstance(m, (nn.RNNBase, nn.MultiheadAttention, nn.TransformerEncoderLayer,
                            nn.TransformerDecoderLayer)):
            d = 1
        elif isinstance(m, nn.RNNCellBase):
            d = 0
        else:
            continue
        return d, f"'{name or '(model)'}' ({type(m).__name__})"
    return None


def _input_shape(input_size, batch_size: int | None, rank: tuple[int, str] | None) -> tuple[int, ...]:
    """The batched input shape. The model's first rank-fixing layer decides (:func:`_input_rank`); where
    the model cannot tell, an explicit ``batch_size`` equal to the first axis marks it as the batch;
    otherwise up to 3 axes are one input, 5 a batch, and 4 are ambiguous ((N, C, H, W) or one
    (C, D, H, W) clip) and refused."""
    if isinstance(input_size, str):
        try:
            input_size = tuple(int(v) for v in input_size.lower().split("x"))
        except ValueError:
            raise ProfileOptionError(f"input size {input_size!r} is not like 3x224x224") from None
    shape = tuple(int(v) for v in input_size)
    if not shape or any(v < 1 for v in shape):
        raise ProfileOptionError(f"input size {shape} must be (C, H, W) or (N, C, H, W) with positive sides")
    one = (batch_size or 1, *shape)
    if rank is not None and len(shape) in (rank[0] + 1, rank[0] + 2):
        batched = len(shape) == rank[0] + 2
    elif batch_size is not None:
        batched = shape[0] == batch_size
    elif len(shape) == 4:
        why = f"its first layer {rank[1]} takes {rank[0] + 1} or {rank[0] + 2} axes" if rank else \
            "no layer fixes the input's rank"
        raise ProfileOptionError(
            f"input size {shape} is ambiguous ({why}): a batch of {shape[0]} inputs {shape[1:]}, or one input "
            f"{shape}, batch {one}; give batch_size={shape[0]} (--batch {shape[0]}) for the first reading, "
            f"the 5-axis size {one} for the second")
    else:
        batched = len(shape) > 4
    if not batched:
        return one
    if batch_size is not None and shape[0] != batch_size:
        raise ProfileOptionError(f"input size {shape} has batch {shape[0]} but batch_size={batch_size}")
    return shape


def _forward_error(model: nn.Module, tracer: _Tracer, shape, err: Exception) -> CnnzooError:
    layer, mod = (tracer.stack[-1][0], tracer.stack[-1][1]) if tracer.stack else ("(model)", model)
    where = f"layer '{layer}' ({type(mod).__name__})"
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    low = msg.lower()
    if "channel" in low:
        return InputShapeError(f"input {shape} has the wrong channel count for {where}: {msg}")
    if "too small" in low or "kernel size can't be greater" in low or "non-positive" in low:
        return InputTooSmallError(f"input {shape} is too small: the feature map collapses in {where}: {msg}",
                                  layer=layer)
    fix = ""
    if "type" in low and any(t in low for t in ("half", "bfloat16", "float", "double")):
        fix = " (the input's dtype must match the weights': give dtype=, --dtype fp32|fp16|bf16, or cast the model)"
    elif tracer.meta and "meta" in low:   # e.g. "Cannot copy out of meta tensor" (.item(), .tolist())
        fix = " (the model reads tensor values in forward, which the meta device has not: use real=True, --real)"
    return ModelForwardError(f"{type(model).__name__} raised {type(err).__name__} in {where}: {msg}{fix}")


def profile(model: nn.Module, input_size, batch_size: int | None = None, *, count=ops.DEFAULT_COUNT,
            real: bool = False, train: bool = False, dtype: torch.dtype | None = None,
            optimizer_states: int = 1) -> Profile:
    """Profile ``model`` layer by layer: shapes, params, MACs/FLOPs, memory, receptive fields, depth.

    Args:
        model: any ``nn.Module`` (a zoo model, a torchvision model, a bare ``nn.Conv2d``).
        input_size: (C, H, W) without the batch, or (N, C, H, W) with it; also ``"3x224x224"``.
            The model's first convolution (or recurrent or attention layer) decides: Conv1d takes
            (C, L) or (N, C, L), Conv3d (C, D, H, W) or (N, C, D, H, W), an LSTM (L, F) or (L, N, F).
            Where no layer decides, up to 3 axes are one input, 5 a batch, and a 4-tuple is
            ambiguous (refused) unless ``batch_size`` is given.
        batch_size: N when ``input_size`` has no batch dimension (default 1); given for a model
            that cannot tell, an ``input_size`` whose first axis equals it is read as batched.
        count: cost categories that enter ``macs``/``flops``, from ``ops.CATEGORIES``
            (``"conv"``, ``"linear"``, ``"bias"``, ``"norm"``, ``"activation"``, ``"pooling"``,
            ``"elementwise"``, ``"upsample"``) or ``"all"``. The default, conv + linear (incl. matmul),
            is what torchvision's ``_ops`` counts.
        real: run on real tensors (zeros, on the model's own device, under ``torch.no_grad``)
            instead of a meta copy of the model; figures are the same, only slower.
        train: run in training mode (dropout; a model with ``forward_with_aux``, GoogLeNet, runs
            that, so its auxiliary classifiers enter the rows, MACs and training memory); default eval.
        dtype: input dtype; default: that of the model's first floating-point parameter or
            buffer (an ``.half()`` model gets a float16 input). Activation bytes use each output's
            own element size.
        optimizer_states: optimizer tensors per trainable weight for the training estimate
            (SGD with momentum: 1, Adam: 2).

    Returns:
        :class:`Profile`. Conventions (``Profile.conventions()``): one MAC = one multiply-add,
        FLOPs = 2 x MACs for conv and linear; parameters once per tensor, MACs per call; in-place
        ops and views add no activation memory; bytes are bytes (MB = 1e6, MiB = 2**20);
        receptive fields are the max over paths; training memory per image =
        2 x forward activation bytes per image, fixed = weights + gradients + optimizer states.

    Raises:
        ProfileOptionError: a malformed or ambiguous ``input_size`` or an unknown cost category.
        UnsupportedModelError: a TorchScript module (scripted or traced) anywhere in the model; its
            ops run where the analyzer cannot see them (profile the eager module instead).
        InputShapeError: wrong channel count; InputTooSmallError: a feature map collapses
            (both name the layer); ModelForwardError: the model raised in ``forward`` (names the layer).
    """
    count = tuple(ops.CATEGORIES) if count == "all" else tuple([count] if isinstance(count, str) else count)
    bad = [c for c in count if c not in ops.CATEGORIES]
    if bad:
        raise ProfileOptionError(f"unknown cost categories {bad}; choose from {', '.join(ops.CATEGORIES)} or 'all'")
    model = getattr(model, "_orig_mod", model) if type(model).__name__ == "OptimizedModule" else model  # torch.compile
    index = _ModelIndex.of(model)
    scripted = next((name or "(model)" for name, m in index.modules if isinstance(m, torch.jit.ScriptModule)), None)
    if scripted is not None:
        raise UnsupportedModelError(
            f"module '{scripted}' of {type(model).__name__} is TorchScript (torch.jit.script/trace): its ops run "
            "inside TorchScript, out of the analyzer's sight; profile the eager nn.Module it was made from")
    shape = _input_shape(input_size, batch_size, _input_rank(index))
    if dtype is None:
        dtype = next((t.dtype for t in [*index.params, *index.buffers] if t.is_floating_point()), torch.float32)
    modes = {m: m.training for _, m in index.modules}  # restored one by one (a frozen BN stays in eval)
    # The model runs as-is: weights stay where they are, and the tracer hands every op that does
    # run a meta stand-in of each real tensor (made once per tensor, so a shared one counts once).
    device = next((t.device for t in [*index.params, *index.buffers]), torch.device("cpu")) if real \
        else torch.device("meta")
    x = (torch.zeros if real else torch.empty)(shape, dtype=dtype, device=device)
    if any(mode != train for mode in modes.values()):
        model.train(train)
    tracer = _Tracer(index, x, set(count))
    with_aux = train and callable(getattr(model, "forward_with_aux", None))
    if with_aux:
        model.forward = model.forward_with_aux  # training's forward: GoogLeNet's aux heads run too
    try:
        with torch.no_grad(), tracer:
            out = model(x)
    except CnnzooError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear line
        raise _forward_error(model, tracer, shape, err) from err
    finally:
        tracer.close()
        if with_aux:
            del model.forward
        for m, mode in modes.items():
            if m.training != mode:
                m.__dict__["training"] = mode   # (Module.__setattr__ costs ~20 us a module)
    outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    _, out_rf, depth = tracer.info.get(id(outs[0]), (None, None, 0)) if outs else (None, None, 0)
    return Profile(type(model).__name__, shape, [tuple(t.shape) for t in outs], tracer.rows,
                   _totals(index, tracer, x, shape[0], optimizer_states), tracer.uncounted,
                   out_rf.spatial() if out_rf else None, out_rf, depth, count, str(device.type), train,
                   optimizer_states, {n or "(model)": type(m).__name__ for n, m in index.modules},
                   *_graph(tracer, outs))


def _graph(tracer: _Tracer, outs: list[torch.Tensor]) -> tuple[list[tuple[int, int]], list[int]]:
    """The tracer's data flow as row indices: (edges, output rows); -1 stands for the input."""
    pos = {id(r): i for i, r in enumerate(tracer.rows)}
    at = lambda r: -1 if r is None else pos[id(r)]  # noqa: E731
    return ([(at(a), at(b)) for a, b in tracer.edges.values()],
            [at(tracer.producer.get(id(t))) for t in outs])


def _totals(index: _ModelIndex, tracer: _Tracer, x: torch.Tensor, n: int, optimizer_states: int) -> Totals:
    params = index.params  # unique tensors (shared ones once)
    size = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    trainable = [p for p in params if p.requires_grad]
    rows = tracer.rows
    act = sum(r.activation_bytes for r in rows)
    fixed = size(params) + (1 + optimizer_states) * size(trainable)
    return Totals(
        params=sum(p.numel() for p in params), params_trainable=sum(p.numel() for p in trainable),
        params_frozen=sum(p.numel() for p in params if not p.requires_grad),
        params_executed=sum(r.params for r in rows), param_bytes=size(params), buffer_bytes=size(index.buffers),
        macs=int(sum(r.macs for r in rows)), flops=int(sum(r.flops for r in rows)),
        activation_elems=sum(r.activation_elems for r in rows), activation_bytes=act,
        input_bytes=x.numel() * x.element_size(), batch_size=n, train_bytes_fixed=fixed,
        train_bytes_per_image=math.ceil(2 * act / n))
