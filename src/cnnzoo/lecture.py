"""``cnnzoo lecture``: the claims of CS231n Lecture 9, computed from cnnzoo's own modules.

Each claim of ``LECTURE.md`` is data (:class:`Claim`): its id and text, the lecture's figure
(:class:`Stated`: the figure as the lecture prints it, its value and its rounding step), and a
small function that builds the real cnnzoo module (on the meta device) and reads cnnzoo's
figure from the analyzer (:func:`cnnzoo.profile`). :func:`judge` compares the two and writes the
verdict and its reason from the computed numbers only:

* ``agrees``: cnnzoo's figure equals the lecture's;
* ``agrees up to rounding``: it rounds to the lecture's figure at the lecture's precision
  (``|cnnzoo - lecture| <= step / 2``, e.g. step 1K for "35K");
* ``differs``: neither. The reason then lists the figures cnnzoo computes under the other
  counting conventions the claim names (weights only, FLOPs, ReLU not in place, ...) and says
  which of them, if any, gives the lecture's figure.

Claims that no module can settle (history, hardware, experiments) carry a pointer to where
cnnzoo measures them instead of a verdict. Usage::

    cnnzoo lecture                      # text tables, one per architecture
    cnnzoo lecture --format markdown > docs/lecture.md

Python: :func:`evaluate` -> list of :class:`Result`; :func:`render_text`, :func:`render_markdown`.
Everything printed is deterministic (no dates, timings or machine details).
"""
from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ._text import hwc, megabytes, num, short
from .analysis import Profile, profile
from .models.resnet import BasicBlock, Bottleneck
from .registry import create_model

AGREES, ROUNDING, DIFFERS, ELSEWHERE = "agrees", "agrees up to rounding", "differs", "measured elsewhere"
VERDICTS = (AGREES, ROUNDING, DIFFERS, ELSEWHERE)


# ---------------------------------------------------------------------------------------- data types

@dataclass(frozen=True)
class Stated:
    """The lecture's figure.

    Attributes:
        text: the figure as the lecture prints it (``"(11·11·3)·96 ≈ 35K"``).
        value: the number, tuple or dict it stands for (compared with cnnzoo's value).
        step: rounding unit of a number (``1e3`` for "35K"); ``None``: exact comparison.
        holds: for a qualitative claim ("depth grows"), a test of cnnzoo's value instead of ``value``.
        unit: printed after the lecture's number in a reason (``" bytes"``).
    """

    text: str
    value: Any = None
    step: float | None = None
    holds: Callable[[Any], bool] | None = None
    unit: str = ""


@dataclass
class Computed:
    """cnnzoo's figure for a claim.

    Attributes:
        value: what is compared with :attr:`Stated.value` (or passed to :attr:`Stated.holds`).
        shown: how the value prints.
        source: which module and analyzer figure it comes from.
        notes: computed facts behind the figure, each built from numbers (for the reason).
        alternatives: the figure under other counting conventions, label -> number.
    """

    value: Any
    shown: str
    source: str
    notes: list[str] = field(default_factory=list)
    alternatives: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """One claim of the lecture: computed (``stated`` and ``compute``) or measured ``elsewhere``."""

    id: str
    section: str
    text: str
    stated: Stated | None = None
    compute: Callable[[], Computed] | None = None
    elsewhere: str | None = None


@dataclass
class Result:
    """A judged claim: the claim, cnnzoo's figure (None when measured elsewhere), verdict, reason."""

    claim: Claim
    computed: Computed | None
    verdict: str
    reason: str


# --------------------------------------------------------------------------------------- formatting

def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_show(v)}" for k, v in value.items())
    if isinstance(value, (tuple, list)):
        numeric = all(isinstance(v, (int, float)) for v in value)
        return (" / " if numeric else ", ").join(_show(v) for v in value)
    return num(value) if isinstance(value, (int, float)) else str(value)


# ------------------------------------------------------------------------------------------ verdict

def judge(stated: Stated, computed: Computed) -> tuple[str, str]:
    """The verdict and its reason for one claim, from the two figures only.

    Returns:
        (verdict, reason): verdict is ``"agrees"``, ``"agrees up to rounding"`` or ``"differs"``.
    """
    notes = list(computed.notes)
    v, ref = computed.value, stated.value
    if stated.holds is not None:
        if stated.holds(v):
            return AGREES, "; ".join(notes) or f"holds: {computed.shown}"
        return DIFFERS, "; ".join([f"does not hold: {computed.shown} is not '{stated.text}'"] + notes)
    if stated.step is None:
        if v == ref:
            return AGREES, "; ".join(notes) or f"equal: {_show(v)}"
        return DIFFERS, "; ".join([_difference(ref, v)] + notes)
    diff, half, lec = v - ref, stated.step / 2, short(ref) + stated.unit
    matching = [f"{label} gives {num(x)}" for label, x in computed.alternatives.items() if abs(x - ref) <= half]
    others = [f"{label}: {num(x)}" for label, x in computed.alternatives.items() if abs(x - ref) > half]
    if diff == 0:
        return AGREES, "; ".join(notes + matching) or f"equal: {num(v)}"
    if abs(diff) <= half:
        head = f"{num(v)} rounds to the lecture's {lec} (nearest {short(stated.step)})"
        return ROUNDING, "; ".join([head] + notes + [f"also {m}" for m in matching])
    head = f"{num(v)} is {diff / ref:+.1%} from the lecture's {lec} (beyond its rounding, ±{short(half)})"
    if matching:
        tail = [f"the lecture's figure matches: {'; '.join(matching)}"]
    elif others:
        tail = [f"no counted convention gives {lec}: {'; '.join(others)}"]
    else:
        tail = []
    return DIFFERS, "; ".join([head] + notes + tail)


def _difference(ref: Any, v: Any) -> str:
    """Where an exact figure differs: the first differing entry of a sequence or dict."""
    if isinstance(ref, dict) and isinstance(v, dict):
        keys = [k for k in ref if ref[k] != v.get(k)]
        return "; ".join(f"{k}: lecture {_show(ref[k])}, cnnzoo {_show(v.get(k))}" for k in keys)
    if isinstance(ref, (tuple, list)) and isinstance(v, (tuple, list)) and all(
            not isinstance(x, (int, float)) for x in [*ref, *v]):
        i = next((i for i, (a, b) in enumerate(zip(ref, v)) if a != b), min(len(ref), len(v)))
        same = sorted(map(str, ref)) == sorted(map(str, v))
        at = (f"item {i + 1}: lecture {ref[i] if i < len(ref) else '(end)'}, "
              f"cnnzoo {v[i] if i < len(v) else '(end)'}")
        return ("the same layers in another order; " if same else "") + at
    return f"lecture {_show(ref)}, cnnzoo {_show(v)}"


def evaluate(claims: list[Claim] | None = None) -> list[Result]:
    """Compute and judge every claim (default :data:`CLAIMS`), in order."""
    out = []
    for c in CLAIMS if claims is None else claims:
        if c.compute is None:
            out.append(Result(c, None, ELSEWHERE, c.elsewhere or ""))
            continue
        computed = c.compute()
        out.append(Result(c, computed, *judge(c.stated, computed)))
    return out


# ------------------------------------------------------------------------------- building and profiling

@functools.lru_cache(maxsize=None)
def _zoo(name: str, size: int, in_chans: int = 3, **kwargs) -> Profile:
    """Profile of a registry model on the meta device at a square input (eval)."""
    with torch.device("meta"):
        model = create_model(name, in_chans=in_chans, **kwargs)
    return profile(model, (in_chans, size, size))


def _meta(build: Callable[[], nn.Module], input_size: tuple) -> Profile:
    with torch.device("meta"):
        model = build()
    return profile(model, input_size)


def _of(p: Profile, *types: str):
    return [r for r in p.layers if r.type in types]


def _chw(row) -> tuple:
    return tuple(row.output_shape[1:])


def _conv_label(row) -> str:
    k = row.kernel[0]
    return f"{k}x{k} conv {row.output_shape[1]} (on {row.input_shape[1]} maps)"


def _weights(row) -> int:
    """Weight elements of a conv row from its geometry: C_out x C_in / groups x kh x kw."""
    return row.output_shape[1] * row.input_shape[1] // row.groups * row.kernel[0] * row.kernel[1]


def _conv_formula(row) -> str:
    """The output-side arithmetic of a window row, with the analyzer's output side."""
    i, k, s, p, o = row.input_shape[2], row.kernel[0], row.stride[0], row.padding[0], row.output_shape[2]
    return f"({i} - {k} + 2*{p})/{s} + 1 = {o}" if p else f"({i} - {k})/{s} + 1 = {o}"


# ------------------------------------------------------------------------------------ the claims
# Every function below builds real cnnzoo modules and reads the analyzer; none types a figure.

def _token(row) -> str:
    """A layer of the AlexNet layout written as the lecture writes it."""
    if row.type == "Conv2d":
        k, s, p = row.kernel[0], row.stride[0], row.padding[0]
        return f"CONV {row.output_shape[1]} {k}x{k}/{s} pad {p} -> {row.output_shape[2]}x{row.output_shape[3]}"
    if row.type == "MaxPool2d":
        return f"MAXPOOL {row.kernel[0]}x{row.kernel[0]}/{row.stride[0]} -> {row.output_shape[2]}x{row.output_shape[3]}"
    return f"FC {row.output_shape[1]}"


def _alexnet() -> Profile:
    return _zoo("alexnet_paper", 227)


def lenet_layout() -> Computed:
    p = _zoo("lenet5", 32, in_chans=1, num_classes=10)
    convs = _of(p, "Conv2d", "PartialConv2d")
    subs = _of(p, "TrainableSubsample")
    kinds = [{"Conv2d": "conv", "PartialConv2d": "conv", "TrainableSubsample": "subsample", "Linear": "FC"}[r.type]
             for r in p.layers if r.type in ("Conv2d", "PartialConv2d", "TrainableSubsample", "Linear")]
    value = {"conv kernels": sorted({f"{r.kernel[0]}x{r.kernel[1]}/{r.stride[0]}" for r in convs}),
             "layer order": kinds}
    return Computed(value, _show(value), "lenet5 (1998 paper), analyzer rows",
                    [f"{len(convs)} convs, {len(subs)} subsampling layers; the last conv: {convs[-1].kernel[0]}x"
                     f"{convs[-1].kernel[1]} on a {convs[-1].input_shape[2]}x{convs[-1].input_shape[3]} input -> "
                     f"{convs[-1].output_shape[2]}x{convs[-1].output_shape[3]} output"])


def alexnet_layers() -> Computed:
    p = _alexnet()
    value = {"conv layers": len(_of(p, "Conv2d")), "FC layers": len(_of(p, "Linear")), "depth": p.depth}
    return Computed(value, _show(value), "alexnet_paper at 227x227: analyzer rows and depth")


def alexnet_conv1_shape() -> Computed:
    row = _of(_alexnet(), "Conv2d")[0]
    return Computed(_chw(row), hwc(_chw(row)), f"alexnet_paper {row.name}, analyzer output shape",
                    [f"{row.kernel[0]}x{row.kernel[0]}/{row.stride[0]} on {row.input_shape[2]}x{row.input_shape[3]}: "
                     + _conv_formula(row)])


def alexnet_conv1_params() -> Computed:
    row = _of(_alexnet(), "Conv2d")[0]
    w = _weights(row)
    return Computed(row.params, num(row.params), f"alexnet_paper {row.name}, analyzer params",
                    [f"{num(w)} weights + {num(row.params - w)} biases = {num(row.params)}"],
                    {"weights only (no biases)": w})


def alexnet_pool1_shape() -> Computed:
    row = _of(_alexnet(), "MaxPool2d")[0]
    return Computed(_chw(row), hwc(_chw(row)), f"alexnet_paper {row.name}, analyzer output shape",
                    [f"{row.kernel[0]}x{row.kernel[0]}/{row.stride[0]}: " + _conv_formula(row)])


def alexnet_pool1_params() -> Computed:
    row = _of(_alexnet(), "MaxPool2d")[0]
    return Computed(row.params, num(row.params), f"alexnet_paper {row.name}, analyzer params")


def alexnet_layout() -> Computed:
    p = _alexnet()
    tokens = tuple(_token(r) for r in _of(p, "Conv2d", "MaxPool2d", "Linear"))
    return Computed(tokens, " | ".join(tokens), "alexnet_paper: analyzer rows (kernel, stride, padding, output)",
                    [f"{len(tokens)} conv, max-pool and FC rows on a {p.input_shape[2]}x{p.input_shape[3]} input"])


def alexnet_norm_order() -> Computed:
    p = _alexnet()
    order = tuple({"MaxPool2d": "MAXPOOL", "GroupedLRN": "NORM"}[r.type]
                  for r in p.layers[:p.layers.index(_of(p, "Conv2d")[2])] if r.type in ("MaxPool2d", "GroupedLRN"))
    return Computed(order, " -> ".join(order), "alexnet_paper: order of its LRN and max-pool rows after CONV1 and CONV2",
                    ["alexnet_paper follows the paper (Sec. 3.5: response normalization follows CONV1 and CONV2, "
                     "max pooling follows the normalization)"])


def alexnet_params() -> Computed:
    p = _alexnet()
    conv, fc = (sum(r.params for r in _of(p, t)) for t in ("Conv2d", "Linear"))
    return Computed(p.totals.params, short(p.totals.params), "alexnet_paper, analyzer total params",
                    [f"{num(conv)} in the 5 convs + {num(fc)} in the 3 FC layers"])


def zfnet_lecture() -> Computed:
    p, a = _zoo("zfnet_lecture", 224), _zoo("zfnet", 224)
    c = _of(p, "Conv2d")
    value = {"CONV1": f"{c[0].kernel[0]}x{c[0].kernel[0]}/{c[0].stride[0]}",
             "CONV3-5 filters": tuple(r.output_shape[1] for r in c[2:5]),
             "conv + FC layers": len(c) + len(_of(p, "Linear"))}
    return Computed(value, _show(value), "zfnet_lecture (the lecture's widths) at 224x224, analyzer rows",
                    [f"zfnet (the paper's Fig. 3 widths): CONV3-5 "
                     f"{', '.join(str(r.output_shape[1]) for r in _of(a, 'Conv2d')[2:5])}",
                     "'lower error' is a training result, not computed"])


def _vgg() -> Profile:
    return _zoo("vgg16", 224)


def vgg_small_filters() -> Computed:
    convs, pools = _of(_vgg(), "Conv2d"), _of(_vgg(), "MaxPool2d")
    value = {"depth": (_vgg().depth, _zoo("vgg19", 224).depth, _alexnet().depth),
             "conv": sorted({f"{r.kernel[0]}x{r.kernel[1]}/{r.stride[0]} pad {r.padding[0]}" for r in convs}),
             "pool": sorted({f"{r.kernel[0]}x{r.kernel[1]}/{r.stride[0]}" for r in pools})}
    return Computed(value, _show(value), "vgg16, vgg19, alexnet_paper: analyzer depth and conv/pool rows")


def _stack(k: int, n: int, c: int) -> Profile:
    """n convs k x k, C -> C, stride 1, 'same' padding, ReLU after each, weights only."""
    def build():
        return nn.Sequential(*[m for _ in range(n) for m in (nn.Conv2d(c, c, k, padding=k // 2, bias=False),
                                                          nn.ReLU(inplace=True))])
    return _meta(build, (c, 32, 32))


def vgg_receptive_field() -> Computed:
    three, one = _stack(3, 3, 8).receptive_field, _stack(7, 1, 8).receptive_field
    value = (three.size[0], one.size[0])
    return Computed(value, f"three 3x3: {value[0]}x{value[0]}; one 7x7: {value[1]}x{value[1]}",
                    "analyzer receptive field of real conv stacks (stride 1, pad 1 / pad 3)")


def vgg_stack_weights() -> Computed:
    value = {f"C={c}": (_stack(3, 3, c).totals.params, _stack(7, 1, c).totals.params) for c in (64, 256)}
    ratio = value["C=64"][0] / value["C=64"][1]
    return Computed(value, _show(value), "analyzer params of real stacks (bias=False: weights only)",
                    [f"three 3x3 / one 7x7 = {ratio:.3f}", f"non-linearities: {len(_of(_stack(3, 3, 64), 'ReLU'))} "
                     f"ReLUs in the stack vs {len(_of(_stack(7, 1, 64), 'ReLU'))}"])


def vgg_params() -> Computed:
    p = _vgg()
    conv, fc = (sum(r.params for r in _of(p, t)) for t in ("Conv2d", "Linear"))
    return Computed(p.totals.params, short(p.totals.params), "vgg16, analyzer total params",
                    [f"{num(conv)} in 13 convs + {num(fc)} in 3 FC layers"])


def _vgg_activation_conventions() -> dict[str, int]:
    p = _vgg()
    numel = lambda s: int(torch.Size(s).numel())  # noqa: E731
    inp = numel(p.input_shape)
    return {"input + every conv, pool and FC output (the slide's per-layer list)":
            inp + sum(numel(r.output_shape) for r in _of(p, "Conv2d", "MaxPool2d", "Linear")),
            "input + every layer's output as its own tensor (ReLU not in place)":
            inp + sum(numel(r.output_shape) for r in p.layers),
            "forward + backward (2x the analyzer's count)": 2 * p.totals.activation_elems}


def vgg_activations() -> Computed:
    p = _vgg()
    return Computed(p.totals.activation_elems, short(p.totals.activation_elems),
                    "vgg16 at 224x224, analyzer activation elements (allocated outputs)",
                    ["the analyzer counts newly allocated outputs: in-place ReLUs and views add none, "
                     f"the {short(p.layer('avgpool').activation_elems)} output of the adaptive average pool "
                     "(identity at 224) counts, the input does not"],
                    _vgg_activation_conventions())


def vgg_activation_bytes() -> Computed:
    t = _vgg().totals
    b, size = t.activation_bytes, t.activation_bytes // t.activation_elems
    return Computed(b, megabytes(b), "vgg16, analyzer activation bytes (float32)",
                    [f"{num(t.activation_elems)} values (L16) x {size} bytes per value",
                     f"training estimate {t.train_bytes_per_image / 1e6:.2f} MB per image "
                     f"(analyzer: {t.train_bytes_per_image / b:.0f} x forward)"],
                    {f"{label} x {size} bytes": n * size for label, n in _vgg_activation_conventions().items()}
                    | {"MiB instead of MB": b / 2**20 * 1e6})


def vgg_fc_share() -> Computed:
    p = _vgg()
    fc = sum(r.params for r in _of(p, "Linear"))
    share = fc / p.totals.params
    return Computed(share, f"FC layers hold {short(fc)} of {short(p.totals.params)} params ({share:.1%})",
                    "vgg16, analyzer params per row")


def _googlenet() -> Profile:
    return _zoo("googlenet_paper", 224)


def googlenet_depth() -> Computed:
    p = _googlenet()
    value = {"depth": p.depth, "FC layers at inference": len(_of(p, "Linear"))}
    return Computed(value, _show(value), "googlenet_paper at 224x224 (eval), analyzer depth and rows",
                    [f"the last linear layer reads the global average pool: "
                     f"{p.layer('avgpool').output_shape[1]} maps pooled to 1x1"])


def googlenet_params() -> Computed:
    p, tv, a = _googlenet(), _zoo("googlenet", 224), _alexnet()
    n = p.totals.params_executed
    return Computed(n, short(n), "googlenet_paper, analyzer params of the inference network (aux heads not run)",
                    [f"alexnet_paper / googlenet_paper = {a.totals.params / n:.1f}x (the lecture's 60M / 5M = 12x)"],
                    {"torchvision's googlenet": tv.totals.params,
                     "googlenet_paper with its two aux heads": p.totals.params})


def _example_inception(naive: bool, in_ch: int = 256) -> nn.Module:
    """The lecture's Inception example on 28x28x``in_ch``: naive, or with 64-channel 1x1 reductions."""
    from .models.googlenet import Inception
    red = None if naive else 64
    return Inception(in_ch, 128, red, 192, red, 96, red, naive=naive)


def _inception(naive: bool, in_ch: int = 256):
    return _meta(lambda: _example_inception(naive, in_ch), (in_ch, 28, 28))


def naive_shape() -> Computed:
    p = _inception(True)
    return Computed(p.output_shapes[0][1:], hwc(p.output_shapes[0][1:]), "Inception(naive=True) on 28x28x256",
                    [" + ".join(f"{r.output_shape[1]} ({r.type})" for r in _of(p, "Conv2d", "MaxPool2d"))
                     + f" = {p.output_shapes[0][1]} channels"])


def _mac_terms(p: Profile) -> str:
    return " + ".join(f"{_conv_label(r)} {short(r.macs)}" for r in _of(p, "Conv2d"))


def naive_ops() -> Computed:
    p = _inception(True)
    m = p.totals.macs
    return Computed(m, short(m), "Inception(naive=True) on 28x28x256, analyzer MACs (conv)",
                    [_mac_terms(p)], {"FLOPs (2 x MACs)": p.totals.flops})


def naive_depth_growth() -> Computed:
    first = _inception(True)
    second = _inception(True, first.output_shapes[0][1])
    chans = (first.input_shape[1], first.output_shapes[0][1], second.output_shapes[0][1])
    return Computed(chans, " -> ".join(map(str, chans)) + " channels", "two naive Inception modules in a row",
                    [f"the pool branch passes all {chans[0]} then {chans[1]} input channels on"])


def bottleneck_ops() -> Computed:
    p = _inception(False)
    m = p.totals.macs
    twice = {f"its terms with the {_conv_label(r)} term counted twice": m + r.macs for r in _of(p, "Conv2d")}
    return Computed(m, short(m), "Inception (with 1x1 reductions) on 28x28x256, analyzer MACs (conv)",
                    [_mac_terms(p)], {"FLOPs (2 x MACs)": p.totals.flops, **twice})


def bottleneck_shape() -> Computed:
    p = _inception(False)
    return Computed(p.output_shapes[0][1:], hwc(p.output_shapes[0][1:]), "Inception (with 1x1 reductions) on 28x28x256",
                    [f"naive module on the same input: {_inception(True).totals.macs / p.totals.macs:.2f}x the MACs"])


def googlenet_stem() -> Computed:
    p = _googlenet()
    rows = p.rows(1)
    stem = rows[:next(i for i, r in enumerate(rows) if r.type == "Inception")]
    kinds = {"BasicConv2d": "conv", "MaxPool2d": "pool", "LocalResponseNorm": "norm"}
    seq = [kinds.get(r.type, r.type) for r in stem]
    plain = tuple(k for k in seq if k != "norm")
    return Computed(plain, "-".join(plain), "googlenet_paper: top-level rows before inception3a",
                    [f"with the norm layers: {'-'.join(seq)}"])


def googlenet_aux() -> Computed:
    with torch.device("meta"):
        model = create_model("googlenet_paper").train()
        logits, aux = model.forward_with_aux(torch.empty(1, 3, 224, 224))
    value = {"aux classifiers": len(aux), "aux loss weight": model.aux_weight}
    return Computed(value, _show(value), "googlenet_paper.forward_with_aux in training mode (meta device)",
                    [f"aux logits {', '.join(str(tuple(a.shape)) for a in aux)}"])


def resnet_depth() -> Computed:
    p = _zoo("resnet152", 224)
    return Computed(p.depth, str(p.depth), "resnet152 at 224x224, analyzer depth (weight layers on the longest path)")


def residual_shortcut() -> Computed:
    from .models.resnet import BasicBlock
    p = _meta(lambda: BasicBlock(64, 64), (64, 56, 56))
    body = sum(r.params for r in _of(p, "Conv2d", "BatchNorm2d"))
    adds = [f"{r.name} {r.output_shape}" for r in p.layers if r.type.startswith("add")]
    shortcut = p.totals.params - body
    return Computed(shortcut, num(shortcut), "BasicBlock(64, 64): block params - conv/BN params",
                    [f"F(x) + x ops: {', '.join(adds) or 'none'}", f"conv/BN params (F(x)): {num(body)}"])


def _stages_ok(v: dict) -> bool:
    s = v["stages"]
    return (all(c2 == 2 * c1 and h2 * 2 == h1 for (c1, h1), (c2, h2) in zip(s, s[1:]))
            and v["convs per block"] == ["3x3", "3x3"] and v["FC layers"] == 1)


def resnet_stages() -> Computed:
    p = _zoo("resnet34", 224)
    stages = [(r.output_shape[1], r.output_shape[2]) for r in p.rows(1) if r.name.startswith("layer")]
    block = [r for r in p.layers if r.name.startswith("layer1.0.conv")]
    stem = p.layers[0]
    value = {"stages": stages, "convs per block": [f"{r.kernel[0]}x{r.kernel[1]}" for r in block],
             "FC layers": len(_of(p, "Linear"))}
    shown = " -> ".join(f"{c}@{h}x{h}" for c, h in stages)
    return Computed(value, shown, "resnet34 at 224x224, analyzer rows grouped by stage",
                    [f"stem {stem.kernel[0]}x{stem.kernel[1]}/{stem.stride[0]} conv {stem.output_shape[1]}",
                     f"{len(block)} {value['convs per block'][0]} convs per basic block",
                     f"{len(_of(p, 'Linear'))} FC layer ({_of(p, 'Linear')[0].input_shape[1]} -> "
                     f"{_of(p, 'Linear')[0].output_shape[1]}) after global average pooling"])


def bottleneck_cost() -> Computed:
    from .models.resnet import BasicBlock, Bottleneck
    b = _meta(lambda: Bottleneck(256, 64), (256, 28, 28))
    two = _meta(lambda: BasicBlock(256, 256), (256, 28, 28))
    b3, t3 = (next(r for r in _of(p, "Conv2d") if r.kernel == (3, 3)) for p in (b, two))
    return Computed((b.totals.macs, two.totals.macs),
                    f"{short(b.totals.macs)} vs {short(two.totals.macs)} MACs ({two.totals.macs / b.totals.macs:.1f}x less)",
                    "Bottleneck(256, 64) vs BasicBlock(256, 256) (two 3x3 convs at 256) on 28x28x256, analyzer MACs",
                    [_mac_terms(b), f"its 3x3 conv: {short(b3.macs)} vs {short(t3.macs)} for a 3x3 conv at 256 "
                     f"({t3.macs / b3.macs:.0f}x)"])


def _grows(chans) -> bool:
    return all(b > a for a, b in zip(chans, chans[1:]))


_L8_LAYOUT = ("CONV 96 11x11/4 pad 0 -> 55x55", "MAXPOOL 3x3/2 -> 27x27", "CONV 256 5x5/1 pad 2 -> 27x27",
              "MAXPOOL 3x3/2 -> 13x13", "CONV 384 3x3/1 pad 1 -> 13x13", "CONV 384 3x3/1 pad 1 -> 13x13",
              "CONV 256 3x3/1 pad 1 -> 13x13", "MAXPOOL 3x3/2 -> 6x6", "FC 4096", "FC 4096", "FC 1000")

LENET, ALEXNET, ZFNET, VGG, GOOGLENET, RESNET, COMPARING = (
    "LeNet-5 (LeCun et al., 1998)", "AlexNet (Krizhevsky et al., 2012)", "ZFNet (Zeiler & Fergus, 2013)",
    "VGGNet (Simonyan & Zisserman, 2014)", "GoogLeNet (Szegedy et al., 2014)", "ResNet (He et al., 2015)",
    "Comparing (Canziani et al., 2016)")

#: Every claim of LECTURE.md, in its order. The lecture's figures are data (they are its claims);
#: cnnzoo's figures come from the functions above.
CLAIMS: list[Claim] = [
    Claim("L1", LENET, "The first ConvNet applied successfully in industry (digit recognition).",
          elsewhere="history, not computable; cnnzoo trains lenet5 on digits: `cnnzoo train lenet5 --dataset mnist`"),
    Claim("L2", LENET, "Conv filters are 5x5, stride 1; conv and subsampling layers alternate, FC layers at the end.",
          Stated("5x5/1; conv, subsample, conv, subsample, (conv), FC",
                 {"conv kernels": ["5x5/1"], "layer order": ["conv", "subsample", "conv", "subsample", "conv", "FC"]}),
          lenet_layout),
    Claim("L3", ALEXNET, "5 conv layers and 3 FC layers.",
          Stated("5 conv + 3 FC = 8 layers", {"conv layers": 5, "FC layers": 3, "depth": 8}), alexnet_layers),
    Claim("L4", ALEXNET, "Input 227x227x3; CONV1 96 filters 11x11 stride 4: output 55x55x96.",
          Stated("55x55x96, from (227-11)/4+1 = 55", (96, 55, 55)), alexnet_conv1_shape),
    Claim("L5", ALEXNET, "CONV1 parameters: (11*11*3)*96.",
          Stated("(11·11·3)·96 ≈ 35K", 35_000, 1_000), alexnet_conv1_params),
    Claim("L6", ALEXNET, "POOL1 3x3 stride 2: output 27x27x96.",
          Stated("27x27x96, from (55-3)/2+1 = 27", (96, 27, 27)), alexnet_pool1_shape),
    Claim("L7", ALEXNET, "POOL1 has 0 parameters.", Stated("0", 0), alexnet_pool1_params),
    Claim("L8", ALEXNET, "Full layout: conv, pool and FC layers with kernel, stride, padding and output size.",
          Stated(" | ".join(_L8_LAYOUT), _L8_LAYOUT), alexnet_layout),
    Claim("L8 (norm)", ALEXNET, "MAXPOOL1 then NORM1; MAXPOOL2 then NORM2.",
          Stated("MAXPOOL -> NORM -> MAXPOOL -> NORM", ("MAXPOOL", "NORM", "MAXPOOL", "NORM")), alexnet_norm_order),
    Claim("L9", ALEXNET, "Trained on two 3 GB GPUs; CONV2, CONV4, CONV5 see only their own GPU's maps.",
          elsewhere="GPU memory is hardware, not computable; the split is alexnet_paper's groups=2 convs, run on "
                    "two devices by `cnnzoo.models.alexnet.AlexNetTwoTower` (same logits, tests/test_alexnet.py)"),
    Claim("L10", ALEXNET, "About 60M parameters.", Stated("≈60M", 60e6, 10e6), alexnet_params),
    Claim("L11", ZFNET, "CONV1 7x7 stride 2; CONV3-5 512, 1024, 512 filters; same number of layers; lower error.",
          Stated("7x7/2; 512, 1024, 512; 8 layers",
                 {"CONV1": "7x7/2", "CONV3-5 filters": (512, 1024, 512), "conv + FC layers": 8}), zfnet_lecture),
    Claim("L12", VGG, "16-19 layers vs AlexNet's 8; only 3x3 conv stride 1 pad 1 and 2x2 max pool stride 2.",
          Stated("16, 19 vs 8; 3x3/1 pad 1; 2x2/2",
                 {"depth": (16, 19, 8), "conv": ["3x3/1 pad 1"], "pool": ["2x2/2"]}), vgg_small_filters),
    Claim("L13", VGG, "Three stacked 3x3 convs (stride 1) have the receptive field of one 7x7 conv.",
          Stated("7 = 7", (7, 7)), vgg_receptive_field),
    Claim("L14", VGG, "C channels in and out: three 3x3 layers have 3*(3^2 C^2) weights, one 7x7 has 7^2 C^2.",
          Stated("27C² vs 49C² at C = 64, 256",
                 {f"C={c}": (3 * (3 ** 2 * c ** 2), 7 ** 2 * c ** 2) for c in (64, 256)}), vgg_stack_weights),
    Claim("L15", VGG, "VGG-16 has about 138M parameters.", Stated("≈138M", 138e6, 1e6), vgg_params),
    Claim("L16", VGG, "VGG-16 needs about 24M activation values per image (forward).",
          Stated("≈24M", 24e6, 1e6), vgg_activations),
    Claim("L16 (bytes)", VGG, "24M x 4 bytes = about 96 MB per image forward, about twice with backward.",
          Stated("≈96 MB", 96e6, 1e6, unit=" bytes"), vgg_activation_bytes),
    Claim("L17", VGG, "Most parameters sit in the FC layers.",
          Stated("most (> 50%) in FC layers", holds=lambda share: share > 0.5), vgg_fc_share),
    Claim("L17 (transfer)", VGG, "FC7 (4096-d) is a good generic feature that transfers to other tasks.",
          elsewhere="a training experiment: `cnnzoo experiment transfer` (a linear classifier on FC7 features, "
                    "`VGG.forward_fc7` (N, 4096), of held-out classes vs random features)"),
    Claim("L18", GOOGLENET, "22 layers deep; no FC layers at the end but one linear classifier after global average pooling.",
          Stated("22 layers, 1 linear layer", {"depth": 22, "FC layers at inference": 1}), googlenet_depth),
    Claim("L19", GOOGLENET, "Only about 5M parameters, against AlexNet's 60M.",
          Stated("≈5M", 5e6, 1e6), googlenet_params),
    Claim("L20", GOOGLENET, "Naive Inception on 28x28x256 (1x1 128, 3x3 192, 5x5 96, 3x3 pool): output 28x28x672.",
          Stated("28x28x672", (672, 28, 28)), naive_shape),
    Claim("L21", GOOGLENET, "The naive module's conv operations total 854M.",
          Stated("854M ops", 854e6, 1e6), naive_ops),
    Claim("L22", GOOGLENET, "Pooling keeps the input depth, so depth grows at every naive module.",
          Stated("grows at every module", holds=_grows), naive_depth_growth),
    Claim("L23", GOOGLENET, "Bottleneck module (1x1 conv 64 reductions and pool projection): conv operations total 358M.",
          Stated("358M ops", 358e6, 1e6), bottleneck_ops),
    Claim("L23 (output)", GOOGLENET, "The bottleneck module's output is 28x28x480.",
          Stated("28x28x480", (480, 28, 28)), bottleneck_shape),
    Claim("L24", GOOGLENET, "The stem is a plain stack conv-pool-conv-conv-pool.",
          Stated("conv-pool-conv-conv-pool", ("conv", "pool", "conv", "conv", "pool")), googlenet_stem),
    Claim("L25", GOOGLENET, "Two auxiliary classifiers also compute the training loss.",
          Stated("2 aux classifiers (paper: loss weight 0.3)", {"aux classifiers": 2, "aux loss weight": 0.3}),
          googlenet_aux),
    Claim("L26", RESNET, "152 layers for ImageNet.", Stated("152", 152), resnet_depth),
    Claim("L27", RESNET, "On CIFAR-10 plain-56 has higher training and test error than plain-20.",
          elsewhere="a training experiment: `cnnzoo experiment degradation` (cifar_plain20 vs cifar_plain56)"),
    Claim("L28", RESNET, "A residual block outputs F(x) + x; the identity shortcut has no parameters.",
          Stated("0 params", 0), residual_shortcut),
    Claim("L29", RESNET, "Basic blocks of two 3x3 convs; stages double the filters and halve the spatial size; "
                         "one final FC after global average pooling.",
          Stated("x2 filters, /2 side per stage; 3x3, 3x3; 1 FC", holds=_stages_ok), resnet_stages),
    Claim("L30", RESNET, "Bottleneck 1x1 64 -> 3x3 64 -> 1x1 256 on 28x28x256 cuts the cost of the 3x3 conv.",
          Stated("bottleneck cheaper than two 3x3 convs at 256", holds=lambda v: v[0] < v[1]), bottleneck_cost),
    Claim("L31", COMPARING, "Accuracy vs operations vs parameters: VGG most expensive, GoogLeNet most efficient, "
                            "ResNet most accurate.",
          elsewhere="measured on the user's machine and data: `cnnzoo compare` (operations and parameters from "
                    "`cnnzoo summary`)"),
    Claim("L32", COMPARING, "Per-image forward time falls as the batch grows; operations predict inference time.",
          elsewhere="measured on the user's machine: `cnnzoo compare` (latency against batch size)"),
]


#: The lecture's section of each architecture family (:attr:`cnnzoo.registry.ModelInfo.family`).
FAMILY_SECTIONS = {"lenet": LENET, "alexnet": ALEXNET, "zfnet": ZFNET, "vgg": VGG, "googlenet": GOOGLENET,
                   "resnet": RESNET}


def claims_of(family: str) -> list[Claim]:
    """The claims of the lecture's section on ``family`` (none for a family the lecture does not treat)."""
    return [c for c in CLAIMS if c.section == FAMILY_SECTIONS.get(family)]


# ----------------------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class Figure:
    """One lecture figure: ``file`` stem, ``section`` and ``claims`` of docs/lecture.md it goes
    with, ``caption``, the module ``build``\\ er, ``input_size`` (C, H, W), ``depth``, ``show``."""

    file: str
    section: str
    claims: tuple[str, ...]
    caption: str
    build: Callable[[], nn.Module]
    input_size: tuple[int, int, int]
    depth: str = "layer"
    show: tuple[str, ...] = ()


def _model(name: str, **kwargs) -> Callable[[], nn.Module]:
    """A builder of the registry model ``name`` (the drawing builds it on the meta device)."""
    return functools.partial(create_model, name, **kwargs)


#: The figures of docs/lecture.md (``cnnzoo draw --lecture`` draws them): file, section, claims, caption,
#: builder of the module, input (C, H, W), depth, figures per box.
FIGURES: list[Figure] = [
    Figure("lenet5", LENET, ("L2",), "LeNet-5 (1998 paper version)", _model("lenet5", num_classes=10, in_chans=1),
           (1, 32, 32)),
    Figure("alexnet", ALEXNET, ("L3", "L4", "L6", "L8", "L9"), "AlexNet (2012 paper): two towers, groups=2 on "
           "CONV2, CONV4, CONV5", _model("alexnet_paper"), (3, 227, 227)),
    Figure("vgg16", VGG, ("L12", "L15"), "VGG-16, stacks of 3x3 convs collapsed (x N)", _model("vgg16"), (3, 224, 224),
           "block"),
    Figure("inception_naive", GOOGLENET, ("L20", "L21", "L22"), "Naive Inception module on 28x28x256",
           functools.partial(_example_inception, True), (256, 28, 28), show=("macs",)),
    Figure("inception_bottleneck", GOOGLENET, ("L23",), "Inception module with 1x1 bottlenecks on 28x28x256",
           functools.partial(_example_inception, False), (256, 28, 28), show=("macs",)),
    Figure("googlenet", GOOGLENET, ("L18", "L24", "L25"), "GoogLeNet (paper), one box per Inception module, "
           "auxiliary classifiers as side exits", _model("googlenet_paper"), (3, 224, 224), "stage"),
    Figure("residual_block", RESNET, ("L28",), "Residual (basic) block: F(x) + x",
           functools.partial(BasicBlock, 64, 64), (64, 56, 56), show=("params",)),
    Figure("bottleneck_block", RESNET, ("L30",), "Bottleneck block on 28x28x256",
           functools.partial(Bottleneck, 256, 64), (256, 28, 28), show=("params", "macs")),
    Figure("resnet34", RESNET, ("L26", "L29"), "ResNet-34, identical blocks collapsed (x N)", _model("resnet34"),
           (3, 224, 224), "block"),
    Figure("plain34", RESNET, ("L27",), "Plain-34: ResNet-34 without shortcuts", _model("plain34"), (3, 224, 224),
           "block"),
    Figure("resnet50", RESNET, ("L26", "L30"), "ResNet-50 (bottleneck blocks), collapsed (x N)", _model("resnet50"),
           (3, 224, 224), "block"),
]


def figures_for(section: str) -> list[Figure]:
    """The figures that go under ``section`` of docs/lecture.md."""
    return [f for f in FIGURES if f.section == section]


# --------------------------------------------------------------------------------------- rendering

def summary_line(results: list[Result]) -> str:
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    return f"{len(results)} claims: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)


def _sections(results: list[Result]) -> dict[str, list[Result]]:
    out: dict[str, list[Result]] = {}
    for r in results:
        out.setdefault(r.claim.section, []).append(r)
    return out


def render_text(results: list[Result]) -> str:
    """One table per architecture: id, lecture's figure, cnnzoo's figure, verdict; claim and reason below."""
    lines = ["CS231n Lecture 9 claims, computed from cnnzoo's modules by the analyzer (MACs = multiply-adds)", ""]
    for section, rows in _sections(results).items():
        lines += [section, "-" * len(section)]
        for r in rows:
            cz = r.computed.shown if r.computed else "-"
            lines.append(f"{r.claim.id:<15} {r.verdict.upper()}")
            lines.append(f"  claim:   {r.claim.text}")
            if r.claim.stated:
                lines.append(f"  lecture: {r.claim.stated.text}")
                lines.append(f"  cnnzoo:  {cz}   [{r.computed.source}]")
            lines.append(f"  {'reason:  ' if r.computed else 'where:   '}{r.reason}")
        lines.append("")
    lines.append(summary_line(results))
    return "\n".join(lines) + "\n"


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(results: list[Result]) -> str:
    """The document committed as ``docs/lecture.md`` (deterministic)."""
    lines = ["# CS231n Lecture 9, checked by cnnzoo", "",
             "<!-- Generated: `cnnzoo lecture --format markdown > docs/lecture.md`; do not edit by hand. -->", "",
             "Every claim of the lecture (`LECTURE.md`) with the lecture's figure, cnnzoo's figure computed from "
             "real cnnzoo modules by the analyzer (`cnnzoo.profile`, meta device), and a verdict whose reason is "
             "built from the computed numbers. MACs are multiply-adds (FLOPs = 2 x MACs); MB = 10^6 bytes, "
             "MiB = 2^20 bytes. Regenerate with `cnnzoo lecture --format markdown > docs/lecture.md`.", "",
             f"**{summary_line(results)}.**", ""]
    for section, rows in _sections(results).items():
        lines += [f"## {section}", "", "| id | claim | lecture | cnnzoo | verdict | reason |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            lec = r.claim.stated.text if r.claim.stated else "-"
            cz = f"{r.computed.shown} ({r.computed.source})" if r.computed else "-"
            lines.append("| " + " | ".join(_cell(c) for c in (r.claim.id, r.claim.text, lec, cz, f"**{r.verdict}**",
                                                               r.reason)) + " |")
        lines.append("")
        lines += _figures(section)
    return "\n".join(lines)


def _figures(section: str) -> list[str]:
    """The section's figures (``cnnzoo draw --lecture`` writes them to docs/figures/), each with the
    claims it illustrates."""
    return [line for f in figures_for(section) for line in
            (f"![{f.caption}](figures/{f.file}.svg)", "", f"*{f.caption}; illustrates {', '.join(f.claims)}. "
             f"Drawn from the module by `cnnzoo draw --lecture`.*", "")]


def render(fmt: str = "text") -> str:
    """All claims judged and rendered as ``"text"`` or ``"markdown"``."""
    results = evaluate()
    return render_markdown(results) if fmt == "markdown" else render_text(results)


def _cmd_lecture(args: argparse.Namespace) -> None:
    sys.stdout.write(render(args.format))


def add_commands(sub) -> None:
    p = sub.add_parser("lecture", help="the lecture's claims against cnnzoo's figures, with verdicts",
                       description="Every claim of CS231n Lecture 9: the lecture's figure, cnnzoo's figure from "
                                   "the analyzer, and a verdict with its reason.")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    p.set_defaults(func=_cmd_lecture)
