"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998) and a modern re-reading of it.

Paper: "Gradient-based learning applied to document recognition", Proc. IEEE 86(11), 1998,
Sec. II.B (the architecture, Fig. 2), Table I (C3's connection table), Appendix A (the
squashing function) and Appendix C (weight initialisation).

Layer table of the paper network (32x32 input, ``lenet5``)::

    name  layer                                   output (C, H, W)   trainable params
    C1    conv 6@5x5, stride 1                    (6, 28, 28)        156
    S2    2x2 sum * coefficient + bias, stride 2  (6, 14, 14)        12
    C3    conv 16@5x5 on the maps of Table I      (16, 10, 10)       1,516
    S4    2x2 sum * coefficient + bias, stride 2  (16, 5, 5)         32
    C5    conv 120@5x5                            (120, 1, 1)        48,120
    F6    fully connected 84                      (84,)              10,164
    out   Euclidean RBF, one unit per class       (num_classes,)     0 (fixed codes)

Every layer up to F6 is followed by the scaled tanh ``f(a) = A tanh(S a)``, A = 1.7159,
S = 2/3 (Sec. II.B and Appendix A).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ModelConfigError
from ..registry import register_model
from ._base import ZooModel, scale_channels

_PAPER = ("Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, \"Gradient-based learning applied to "
          "document recognition\", Proceedings of the IEEE 86(11), 1998")

#: Table I of the paper: entry j lists the S2 feature maps that C3 feature map j is connected to.
#: Maps 0-5 see 3 contiguous maps, 6-11 see 4 contiguous maps, 12-14 see 4 non-contiguous maps
#: and map 15 sees all 6 (Sec. II.B).
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class ScaledTanh(nn.Module):
    """The paper's squashing function ``f(a) = A tanh(S a)`` (Sec. II.B, Appendix A).

    A = 1.7159 and S = 2/3 make f(1) = 1 and f(-1) = -1, with maximal curvature at +-1.
    Shape-preserving: any (N, ...) -> (N, ...).
    """

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0):
        super().__init__()
        self.amplitude, self.slope = amplitude, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class TrainableSubsample(nn.Module):
    """LeNet-5's S2/S4 layer: each unit sums a non-overlapping 2x2 window, multiplies it by a
    trainable coefficient and adds a trainable bias, one pair per feature map (Sec. II.B).

    (N, C, H, W) -> (N, C, H // 2, W // 2); 2 * C trainable parameters. The squashing
    function is applied by the caller.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.fan_in = 4  # each unit sees 4 inputs (Appendix C's F_i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = 4.0 * nn.functional.avg_pool2d(x, 2)  # sum over each 2x2 window, (N, C, H/2, W/2)
        return total * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartialConv2d(nn.Module):
    """A convolution whose output map ``j`` sees only the input maps ``table[j]`` (Table I).

    Only the kernels of real connections are parameters: ``weight`` is (connections, k, k),
    one k x k kernel per (output map, input map) pair of the table, so C3 has exactly
    ``sum(len(t) * k * k + 1 for t in table)`` = 1,516 trainable parameters. The forward pass
    scatters them into a dense (out, in, k, k) kernel with zeros elsewhere and runs one
    ``conv2d`` (as fast as a dense convolution; gradients reach only the real connections).

    (N, in_maps, H, W) -> (N, len(table), H - k + 1, W - k + 1).
    """

    def __init__(self, table: Sequence[Sequence[int]], in_maps: int, kernel_size: int):
        super().__init__()
        self.table = tuple(tuple(t) for t in table)
        self.in_maps, self.kernel_size = in_maps, kernel_size
        self.pairs = [(j, i) for j, t in enumerate(self.table) for i in t]  # (output map, input map)
        self.weight = nn.Parameter(torch.empty(len(self.pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(len(self.table)))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Conv2d's default; LeNet5 re-inits

    def dense_weight(self) -> torch.Tensor:
        """The (out, in, k, k) kernel of an equivalent ``nn.Conv2d``, zero where Table I has no X."""
        k = self.kernel_size
        index = torch.tensor(self.pairs, device=self.weight.device).t()  # (2, connections)
        dense = self.weight.new_zeros(len(self.table), self.in_maps, k, k)
        return dense.index_put((index[0], index[1]), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.dense_weight(), self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_maps}, {len(self.table)}, kernel_size={self.kernel_size}, "
                f"connections={len(self.pairs)}")


def scale_table(table: Sequence[Sequence[int]], in_maps: int, out_maps: int,
                table_in_maps: int = 6) -> tuple[tuple[int, ...], ...]:
    """Stretch a connection table to ``in_maps`` -> ``out_maps`` maps (the ``width`` multiplier).

    Input map ``i`` stands for the table's input map ``i * table_in_maps // in_maps``, output
    map ``j`` for column ``j * len(table) // out_maps``, so each connection of the paper becomes
    a block and the table is unchanged at width 1. An output left with no input sees them all.
    """
    out = []
    for j in range(out_maps):
        src = set(table[j * len(table) // out_maps])
        ins = tuple(i for i in range(in_maps) if i * table_in_maps // in_maps in src)
        out.append(ins or tuple(range(in_maps)))
    return tuple(out)


class EuclideanRBF(nn.Module):
    """The paper's output layer: one Euclidean RBF unit per class (Sec. II.B, Eq. 7).

    ``y_i = sum_j (x_j - w_ij)^2``; this layer returns ``-y_i`` as logits, so cross-entropy on
    them is the paper's discriminative criterion (Eq. 9) without its constant rejection class.

    The paper fixed the centres ``w_i`` by hand to +1/-1 codes drawn as 7x12 bitmaps of the
    characters; such bitmaps do not exist for an arbitrary ``num_classes``, so the centres are
    fixed random +1/-1 codes drawn from a generator seeded with ``seed`` (a buffer, not
    trained, as in the paper). (N, in_features) -> (N, out_features).

    The logits span hundreds of units (84 squared distances), so cross-entropy on them wants a
    smaller learning rate than a linear head: in a one-epoch Fashion-MNIST check with SGD and
    momentum 0.9, lr 1e-3 trained and lr 2e-2 diverged.
    """

    def __init__(self, in_features: int, out_features: int, seed: int = 0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        gen = torch.Generator().manual_seed(seed)
        codes = torch.randint(0, 2, (out_features, in_features), generator=gen, device="cpu") * 2.0 - 1.0
        self.register_buffer("centers", torch.empty(out_features, in_features))
        with torch.no_grad():
            self.centers.copy_(codes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.centers
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, (N, K)
        dist2 = x.pow(2).sum(1, keepdim=True) - 2.0 * x @ c.t() + c.pow(2).sum(1)
        return -dist2

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class LeNet5(ZooModel):
    """LeNet-5 as one configurable network: the 1998 paper version and a modern one.

    Modules carry the paper's names: ``c1``, ``s2``, ``c3``, ``s4``, ``c5`` (features),
    ``f6`` and ``output`` (head). Shapes at the paper's 32x32 input: (N, in_chans, 32, 32) ->
    c1 (N, 6, 28, 28) -> s2 (N, 6, 14, 14) -> c3 (N, 16, 10, 10) -> s4 (N, 16, 5, 5) ->
    c5 (N, 120, 1, 1) -> f6 (N, 84) -> logits (N, num_classes).

    The paper has no global pooling: C5 is a 5x5 convolution that gives 1x1 maps at 32x32.
    Inputs larger than the minimum give larger C5 maps; an adaptive average pool to 1x1
    (the identity at the minimum size) lets them reach F6.

    Args:
        num_classes: number of output units.
        in_chans: input channels (1 for the paper's grey-level digits).
        width: channel multiplier of C1, C3, C5 and F6 (C3's table is stretched by
            :func:`scale_table`).
        paper: True for the 1998 network (scaled tanh, trainable subsampling, Table I, paper
            init); False for the modern one (ReLU, 2x2 max pooling, dense C3, padding 2 on C1
            so 28x28 inputs work, PyTorch's default init).
        head: ``"rbf"`` (the paper's Euclidean RBF output, logits = -distance^2) or
            ``"linear"`` (an ``nn.Linear``, as every modern re-implementation).
        norm: add ``BatchNorm2d`` after C1, C3 and C5 (modern network only).

    Raises:
        ModelConfigError: unknown ``head``, ``norm`` with ``paper``, or ``width <= 0``.
    """

    classifier_attr = "output"
    default_input_size = (1, 32, 32)

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: float = 1.0, paper: bool = True,
                 head: str = "rbf", norm: bool = False):
        super().__init__()
        if head not in ("rbf", "linear"):
            raise ModelConfigError(f"head must be 'rbf' or 'linear', got {head!r}")
        if paper and norm:
            raise ModelConfigError("norm=True is for the modern LeNet-5 (lenet5_modern); the 1998 network has no BatchNorm")
        self.num_classes, self.in_chans, self.head_kind = num_classes, in_chans, head
        self.default_input_size = (in_chans, 32, 32) if paper else (in_chans, 28, 28)
        c1, c3, c5, f6 = (scale_channels(c, width) for c in (6, 16, 120, 84))

        def act() -> nn.Module:
            return ScaledTanh() if paper else nn.ReLU(inplace=True)

        def conv_unit(conv: nn.Module, out: int) -> nn.Sequential:  # conv [-> BN] -> act
            return nn.Sequential(conv, *([nn.BatchNorm2d(out)] if norm else []), act())

        def pool(ch: int) -> nn.Module:  # paper: trainable subsampling then squashing
            return nn.Sequential(TrainableSubsample(ch), act()) if paper else nn.MaxPool2d(2)

        c3_conv = (PartialConv2d(scale_table(C3_TABLE, c1, c3), c1, 5) if paper
                   else nn.Conv2d(c1, c3, 5, bias=not norm))
        self.c1 = conv_unit(nn.Conv2d(in_chans, c1, 5, padding=0 if paper else 2, bias=not norm), c1)
        self.s2 = pool(c1)
        self.c3 = conv_unit(c3_conv, c3)
        self.s4 = pool(c3)
        self.c5 = conv_unit(nn.Conv2d(c3, c5, 5, bias=not norm), c5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.f6 = nn.Sequential(nn.Linear(c5, f6), act())
        self.num_features = f6
        self.output = self._make_output(f6, num_classes)
        if paper:
            self.reset_parameters_paper()

    def _make_output(self, in_features: int, num_classes: int) -> nn.Module:
        return EuclideanRBF(in_features, num_classes) if self.head_kind == "rbf" else nn.Linear(in_features, num_classes)

    @torch.no_grad()
    def reset_parameters_paper(self) -> None:
        """Appendix C: every weight and bias uniform in [-2.4 / F_i, 2.4 / F_i], F_i the fan-in of
        the unit it feeds (C3's maps have fan-ins 75, 100 and 150)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                w_fan = b_fan = m.weight[0].numel()
            elif isinstance(m, nn.Linear):
                w_fan = b_fan = m.in_features
            elif isinstance(m, TrainableSubsample):
                w_fan = b_fan = m.fan_in
            elif isinstance(m, PartialConv2d):
                b_fan = torch.tensor([len(t) * m.kernel_size ** 2 for t in m.table], device=m.bias.device)
                w_fan = b_fan[[j for j, _ in m.pairs]].view(-1, 1, 1)  # fan-in of each kernel's map
            else:
                continue
            for p, fan in ((m.weight, w_fan), (m.bias, b_fan)):
                p.uniform_(-1.0, 1.0).mul_(2.4 / fan)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> C5's output (N, 120 * width, H', W'), 1x1 at the minimum size."""
        return self.c5(self.s4(self.c3(self.s2(self.c1(x)))))

    def stem_and_stages(self) -> tuple[list[str], list[list[str]]]:
        """No stem; three stages, C1 + S2, C3 + S4 and C5 (Sec. II.B). F6 is backbone too:
        ``--freeze backbone`` trains the output layer only."""
        return [], [["c1", "s2"], ["c3", "s4"], ["c5"]]

    def forward_pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """C5 maps (N, C, h, w) -> F6's output (N, num_features), what the output layer reads."""
        return self.f6(torch.flatten(self.pool(x), 1))

    def reset_classifier(self, num_classes: int) -> None:
        """New output layer of the same kind (RBF or linear) with ``num_classes`` units (``0``:
        ``nn.Identity``, so ``forward`` returns F6's (N, num_features))."""
        self.output = self._make_output(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes


@register_model(family="lenet", paper=_PAPER, year=1998, ilsvrc=None, default_input_size=(1, 32, 32), num_classes=10,
                notes="The paper's network (Sec. II.B): scaled tanh, trainable 2x2 subsampling, C3 partial "
                      "connections of Table I, Appendix C init. Output: head='rbf' (default; -squared "
                      "distance to fixed random +1/-1 codes instead of the paper's 7x12 character bitmaps) or "
                      "head='linear'; the RBF logits want a ~10x smaller learning rate. Needs 32x32 inputs: pad 28x28 MNIST by 2, as the paper did. "
                      "Adaptive average pool before F6 for larger inputs.")
def lenet5(num_classes: int = 10, in_chans: int = 1, width: float = 1.0, head: str = "rbf", **kwargs) -> LeNet5:
    """LeNet-5 as in the 1998 paper (Sec. II.B, Fig. 2); 60,000 trainable parameters with
    ``in_chans=1`` and the RBF head (any ``num_classes``: its codes are fixed). Input (N, in_chans, H, W), H, W >= 32; see :class:`LeNet5`."""
    return LeNet5(num_classes, in_chans, width=width, paper=True, head=head, **kwargs)


@register_model(family="lenet", paper=_PAPER, year=1998, ilsvrc=None, default_input_size=(1, 28, 28), num_classes=10,
                notes="Modern LeNet-5 (as in d2l.ai and most tutorials): ReLU, 2x2 max pooling, dense C3, "
                      "padding 2 on C1 so 28x28 MNIST fits, linear output; norm=True adds BatchNorm after "
                      "C1, C3 and C5. Not in the paper.")
def lenet5_modern(num_classes: int = 10, in_chans: int = 1, width: float = 1.0, norm: bool = False,
                  **kwargs) -> LeNet5:
    """LeNet-5's topology with modern parts; input (N, in_chans, H, W), H, W >= 28; see :class:`LeNet5`."""
    return LeNet5(num_classes, in_chans, width=width, paper=False, head="linear", norm=norm, **kwargs)
