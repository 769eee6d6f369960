"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), torchvision's AlexNet, and ZFNet (Zeiler &
Fergus, 2013): five convolutions and three fully connected layers, one configurable class.

Each network is a table of conv rows (channels, kernel, stride, padding, groups, the
operations after the conv, the paper's bias init) plus a classifier of two hidden FC layers
and the output FC. Shapes of ``alexnet_paper`` at its 227x227 input (the lecture's L8)::

    CONV1 96 11x11/4 pad 0   (N, 96, 55, 55)  -> ReLU -> LRN -> MAXPOOL 3x3/2 (N, 96, 27, 27)
    CONV2 256 5x5/1 pad 2    (N, 256, 27, 27) -> ReLU -> LRN -> MAXPOOL 3x3/2 (N, 256, 13, 13)
    CONV3 384 3x3/1 pad 1    (N, 384, 13, 13) -> ReLU
    CONV4 384 3x3/1 pad 1    (N, 384, 13, 13) -> ReLU
    CONV5 256 3x3/1 pad 1    (N, 256, 13, 13) -> ReLU -> MAXPOOL 3x3/2 (N, 256, 6, 6)
    FC6 4096 -> FC7 4096 -> FC8 num_classes

:class:`AlexNetTwoTower` runs an ``alexnet_paper`` model split across two devices, as the
paper's two GPUs did (Sec. 3.2).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import register_model
from ..errors import ModelConfigError
from ._base import ZooModel, scale_channels, split_stages

_ALEXNET_PAPER = ("A. Krizhevsky, I. Sutskever, G. E. Hinton, \"ImageNet Classification with Deep "
                  "Convolutional Neural Networks\", NeurIPS 2012")
_ALEXNET_ILSVRC = ("ILSVRC 2012 winner: 15.3% top-5 test error (7 CNNs, extra ImageNet 2011 data); "
                   "16.4% with 5 CNNs; 18.2% top-5 val for 1 CNN (paper Table 2)")
_WEIRD_TRICK = "A. Krizhevsky, \"One weird trick for parallelizing convolutional neural networks\", arXiv:1404.5997, 2014"
_ZFNET_PAPER = ("M. D. Zeiler, R. Fergus, \"Visualizing and Understanding Convolutional Networks\", "
                "ECCV 2014 (arXiv:1311.2901, 2013)")
_ZFNET_ILSVRC = ("ILSVRC 2013 classification winner (Clarifai entry); paper Table 2: 16.5% top-5 test for 1 convnet "
                 "as per Fig. 3, 14.8% for 6 convnets")


@dataclass(frozen=True)
class ConvRow:
    """One convolution of the layer table and what follows it."""

    out: int            # output channels at width 1
    kernel: int
    stride: int
    padding: int
    groups: int = 1     # 2 = the paper's two GPUs, each conv group on its own GPU (Sec. 3.2)
    post: str = "R"     # operations after the conv, in order: R = ReLU, N = LRN, P = 3x3/2 max pool
    bias: float = 0.0   # the paper's bias init (used when AlexNetConfig.weight_std is set)


@dataclass(frozen=True)
class AlexNetConfig:
    """A whole network as data."""

    convs: tuple[ConvRow, ...]
    hidden: int = 4096               # units in FC6 and FC7
    dropout_after: bool = True       # paper: dropout on the outputs of FC6 and FC7; torchvision: on their inputs
    weight_std: float | None = 0.01  # N(0, std) init of every weight; None: PyTorch's default init (torchvision)
    hidden_bias: float = 0.0         # the bias init of FC6 and FC7
    lrn_groups: int = 1              # LRN within each of this many channel groups (the two GPUs)
    pool_ceil: bool = False          # ceil_mode of the max pools
    pool_size: int = 6               # side of the adaptive average pool before FC6


ALEXNET_PAPER = AlexNetConfig(
    # Sec. 3.5 and Fig. 2; biases 1 in conv2, conv4, conv5 and FC6, FC7 (Sec. 5).
    convs=(ConvRow(96, 11, 4, 0, 1, "RNP", 0.0),
           ConvRow(256, 5, 1, 2, 2, "RNP", 1.0),
           ConvRow(384, 3, 1, 1, 1, "R", 0.0),
           ConvRow(384, 3, 1, 1, 2, "R", 1.0),
           ConvRow(256, 3, 1, 1, 2, "RP", 1.0)),
    hidden_bias=1.0, lrn_groups=2)

ALEXNET_TORCHVISION = AlexNetConfig(
    # torchvision.models.alexnet (the "one weird trick" column layout, 1404.5997).
    convs=(ConvRow(64, 11, 4, 2, post="RP"),
           ConvRow(192, 5, 1, 2, post="RP"),
           ConvRow(384, 3, 1, 1),
           ConvRow(256, 3, 1, 1),
           ConvRow(256, 3, 1, 1, post="RP")),
    dropout_after=False, weight_std=None)


def _zfnet(conv345: tuple[int, int, int]) -> AlexNetConfig:
    # ZF Fig. 3: conv -> ReLU -> 3x3/2 max pool -> contrast norm; paddings and ceil-mode pools give
    # the figure's 110, 55, 26, 13, 13, 13, 6 at 224x224 (Fig. 2 in arXiv v1). Sec. 3.1: "All weights
    # are initialized to 10^-2 and biases are set to 0", read as N(0, 0.01) weights.
    c3, c4, c5 = conv345
    return AlexNetConfig(
        convs=(ConvRow(96, 7, 2, 1, post="RPN"),
               ConvRow(256, 5, 2, 0, post="RPN"),
               ConvRow(c3, 3, 1, 1),
               ConvRow(c4, 3, 1, 1),
               ConvRow(c5, 3, 1, 1, post="RP")),
        pool_ceil=True)


ZFNET = _zfnet((384, 384, 256))
ZFNET_LECTURE = _zfnet((512, 1024, 512))


class GroupedLRN(nn.Module):
    """Local response normalisation (AlexNet Sec. 3.3) applied within each of ``groups`` channel groups.

    ``b^i = a^i / (k + alpha * sum_j (a^j)^2)^beta``, the sum over the ``size`` maps centred on
    ``i`` inside the group (each GPU normalised its own maps). The paper's formula has ``alpha``
    times the sum; ``nn.LocalResponseNorm`` uses ``alpha / size`` times it, so it is given
    ``alpha * size``. (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, groups: int = 1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.groups = size, alpha, beta, k, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = nn.functional.local_response_norm
        return torch.cat([f(part, self.size, self.alpha * self.size, self.beta, self.k)
                          for part in x.chunk(self.groups, dim=1)], dim=1)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, groups={self.groups}"


class AlexNet(ZooModel):
    """Five convolutions and three FC layers built from an :class:`AlexNetConfig`.

    ``features`` is one ``nn.Sequential`` (conv, ReLU, [LRN], [max pool] per row), then
    ``avgpool`` (adaptive, to ``pool_size`` x ``pool_size``) and ``classifier`` (FC6, FC7, FC8
    with ReLU and dropout 0.5); the output FC is ``classifier.6`` in every variant, so the
    torchvision variant has torchvision's exact ``state_dict``.

    The papers took fixed-size crops (227 or 224) and had no average pool: at those sizes
    the pool is the identity. Input (N, in_chans, H, W) -> logits (N, num_classes).
    """

    classifier_attr = "classifier.6"

    def __init__(self, cfg: AlexNetConfig, num_classes: int = 1000, in_chans: int = 3, width: float = 1.0,
                 dropout: float = 0.5, default_input_size: tuple[int, int, int] = (3, 224, 224),
                 init: str = "paper"):
        super().__init__()
        if init not in ("paper", "torch"):
            raise ModelConfigError(f"init must be 'paper' or 'torch', got {init!r}")
        self.cfg, self.num_classes, self.in_chans = cfg, num_classes, in_chans
        self.default_input_size = (in_chans, *default_input_size[1:])
        divisor = max(r.groups for r in cfg.convs)  # grouped convs need channels divisible by groups
        layers: list[nn.Module] = []
        c = in_chans
        for row in cfg.convs:
            out = scale_channels(row.out, width, divisor)
            layers.append(nn.Conv2d(c, out, row.kernel, row.stride, row.padding, groups=row.groups))
            for op in row.post:
                layers.append({"R": lambda: nn.ReLU(inplace=True),
                               "N": lambda: GroupedLRN(groups=cfg.lrn_groups),
                               "P": lambda: nn.MaxPool2d(3, 2, ceil_mode=cfg.pool_ceil)}[op]())
            c = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(cfg.pool_size)
        hidden = self.num_features = scale_channels(cfg.hidden, width)
        fc6, fc7 = nn.Linear(c * cfg.pool_size ** 2, hidden), nn.Linear(hidden, hidden)
        drop, relu = (lambda: nn.Dropout(dropout)), (lambda: nn.ReLU(inplace=True))
        if cfg.dropout_after:   # FC6 -> ReLU -> drop -> FC7 -> ReLU -> drop -> FC8 (paper Sec. 4.2)
            head = [fc6, relu(), drop(), fc7, relu(), drop()]
        else:                   # drop -> FC6 -> ReLU -> drop -> FC7 -> ReLU -> FC8 (torchvision)
            head = [drop(), fc6, relu(), drop(), fc7, relu()]
        self.classifier = nn.Sequential(*head, nn.Linear(hidden, num_classes))
        if cfg.weight_std is not None and init == "paper":
            self.reset_parameters_paper()

    @torch.no_grad()
    def reset_parameters_paper(self) -> None:
        """Weights N(0, ``weight_std``); conv biases from the table, FC6/FC7 biases ``hidden_bias``,
        FC8 bias 0 (AlexNet Sec. 5; ZFNet Sec. 3.1 with all biases 0)."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        fcs = [m for m in self.classifier if isinstance(m, nn.Linear)]
        biases = [r.bias for r in self.cfg.convs] + [self.cfg.hidden_bias] * 2 + [0.0]
        for m, b in zip(convs + fcs, biases):
            m.weight.normal_(0.0, self.cfg.weight_std)
            m.bias.fill_(b)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> pool5 maps (N, 256 * width, h, w); 6x6 at the default size."""
        return self.features(x)

    def stem_and_stages(self) -> tuple[list[str], list[list[str]]]:
        """No stem; five stages, conv1..conv5 each with its ReLU, normalisation and pooling
        (Krizhevsky et al. 2012, Sec. 3.5; Zeiler and Fergus 2014, Fig. 3)."""
        return [], split_stages("features", self.features, lambda m, prev: isinstance(m, nn.Conv2d))

    def forward_pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """pool5 maps (N, C, h, w) -> FC6, FC7 -> (N, num_features), what FC8 reads."""
        x = torch.flatten(self.avgpool(x), 1)
        for layer in list(self.classifier)[:-1]:
            x = layer(x)
        return x


class AlexNetTwoTower(nn.Module):
    """An AlexNet split across two devices, each holding half of every layer (paper Sec. 3.2, Fig. 2).

    Built from a trained or fresh :class:`AlexNet` (``alexnet_paper``): every conv and FC layer
    is cut in two halves of its output units, one per device. A grouped conv (groups=2: CONV2,
    CONV4, CONV5) reads only its own device's maps; a dense layer (CONV3, FC6, FC7, FC8) reads
    the maps of both devices, so the activations are exchanged there (CONV1 reads the image,
    which both devices get). ReLU, LRN (within each device's maps), pooling and dropout run on
    each device alone. In eval mode the logits equal the source model's.

    Args:
        model: the :class:`AlexNet` to split; its weights are copied, not shared.
        devices: the two devices, e.g. ``("cuda:0", "cuda:1")`` or ``("cpu", "cpu")``.

    Input (N, in_chans, H, W) on any device -> logits (N, num_classes) on ``devices[0]``.

    Raises:
        ModelConfigError: ``model`` is not an :class:`AlexNet`, has groups other than 1 or 2,
            or ``devices`` does not name two devices.
    """

    def __init__(self, model: AlexNet, devices: tuple[str | torch.device, str | torch.device] = ("cpu", "cpu")):
        super().__init__()
        if not isinstance(model, AlexNet):
            raise ModelConfigError(f"AlexNetTwoTower splits an AlexNet, got {type(model).__name__}")
        if len(devices) != 2:
            raise ModelConfigError(f"AlexNetTwoTower needs two devices, got {len(devices)}")
        self.devices = tuple(torch.device(d) for d in devices)
        self.in_chans, self.num_classes = model.in_chans, model.num_classes
        # One plan entry per source layer: (kind, per-device modules); kinds: "dense", "grouped", "local".
        self.kinds: list[str] = []
        towers: list[list[nn.Module]] = [[], []]
        for layer in [*model.features, model.avgpool, nn.Flatten(1), *model.classifier]:
            kind, halves = self._split(layer)
            self.kinds.append(kind)
            for t in range(2):
                towers[t].append(halves[t].to(self.devices[t]))
        self.tower0, self.tower1 = (nn.ModuleList(t) for t in towers)

    @staticmethod
    def _split(layer: nn.Module) -> tuple[str, list[nn.Module]]:
        """Cut ``layer`` in two halves of its output units (or copy a layer without weights)."""
        if isinstance(layer, nn.Conv2d):
            if layer.groups not in (1, 2):
                raise ModelConfigError(f"cannot split a conv with groups={layer.groups} over two devices")
            cin = layer.in_channels // layer.groups
            make = lambda out: nn.Conv2d(cin, out, layer.kernel_size, layer.stride, layer.padding)  # noqa: E731
            kind = "grouped" if layer.groups == 2 else "dense"
        elif isinstance(layer, nn.Linear):
            make = lambda out: nn.Linear(layer.in_features, out)  # noqa: E731
            kind = "dense"
        elif isinstance(layer, GroupedLRN):
            if layer.groups not in (1, 2):
                raise ModelConfigError(f"cannot split an LRN over {layer.groups} groups across two devices")
            half = GroupedLRN(layer.size, layer.alpha, layer.beta, layer.k, groups=1)
            return "local", [half, half]
        else:
            return "local", [layer, layer]  # ReLU, max/avg pool, flatten, dropout: no weights
        halves = []
        for w, b in zip(layer.weight.detach().tensor_split(2), layer.bias.detach().tensor_split(2)):
            half = make(w.shape[0])
            half.weight.data.copy_(w)
            half.bias.data.copy_(b)
            halves.append(half)
        return kind, halves

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ZooModel.check_input(self, x)
        parts: list[torch.Tensor] = [x]  # activations, one per device (the image: one, both read it)
        for kind, layers in zip(self.kinds, zip(self.tower0, self.tower1)):
            if kind == "dense":   # exchange: each device reads every device's maps
                ins = [torch.cat([p.to(d) for p in parts], dim=1) for d in self.devices]
            else:                 # grouped conv or a local op: each device reads its own maps
                ins = parts if len(parts) == 2 else [parts[0].to(d) for d in self.devices]
            parts = [layer(inp) for layer, inp in zip(layers, ins)]
        return torch.cat([parts[0], parts[1].to(self.devices[0])], dim=1)  # (N, num_classes)


def _register(name: str, cfg: AlexNetConfig, size: int, **meta):
    """Register a thin builder ``name(num_classes, in_chans, width, dropout, init)`` for ``cfg``;
    ``init="torch"`` keeps PyTorch's default init instead of the paper's N(0, 0.01) (which needs the
    paper's 90 epochs to get going; the short Fashion-MNIST recipes use it)."""

    def builder(num_classes: int = 1000, in_chans: int = 3, width: float = 1.0, dropout: float = 0.5,
                init: str = "paper") -> AlexNet:
        return AlexNet(cfg, num_classes, in_chans, width=width, dropout=dropout, default_input_size=(3, size, size),
                       init=init)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"{meta['notes']}\n\nInput (N, in_chans, H, W), default {size}x{size} -> logits (N, num_classes)."
    globals()[name] = register_model(default_input_size=(3, size, size), name=name, **meta)(builder)


_register("alexnet_paper", ALEXNET_PAPER, 227, family="alexnet", paper=_ALEXNET_PAPER, year=2012,
          ilsvrc=_ALEXNET_ILSVRC, torchvision=None,
          notes="The 2012 paper (Sec. 3, Fig. 2): convs 96-256-384-384-256; groups=2 on CONV2, CONV4, CONV5 "
                "(the two GPUs, Sec. 3.2); ReLU then LRN (k=2, n=5, alpha=1e-4, beta=0.75, within each GPU's "
                "maps, Sec. 3.3) then 3x3/2 max pool after CONV1 and CONV2 (the lecture puts the pool before "
                "the norm); dropout 0.5 on FC6 and FC7 outputs; N(0, 0.01) weights, biases 1 in CONV2, 4, 5, "
                "FC6, FC7 (Sec. 5). Input 227x227: the paper's text says 224, but 11x11/4 without padding "
                "gives 55x55 only from 227. Adaptive 6x6 average pool before FC6 (identity at 227).")
_register("alexnet", ALEXNET_TORCHVISION, 224, family="alexnet", paper=_WEIRD_TRICK, year=2014,
          ilsvrc=_ALEXNET_ILSVRC, torchvision="alexnet",
          notes="torchvision's AlexNet, from 'One weird trick' (1404.5997): convs 64-192-384-256-256, CONV1 "
                "padding 2, no LRN, no groups (one GPU), dropout before FC6 and FC7, adaptive 6x6 average "
                "pool, PyTorch default init. state_dict-compatible with torchvision.models.alexnet.")
_register("zfnet", ZFNET, 224, family="zfnet", paper=_ZFNET_PAPER, year=2013, ilsvrc=_ZFNET_ILSVRC,
          notes="Zeiler & Fergus Fig. 3: CONV1 96 7x7/2 pad 1, CONV2 256 5x5/2 pad 0, 3x3/2 max pools in "
                "ceil mode (Caffe's rounding), each followed by contrast normalisation across maps (LRN with "
                "AlexNet's constants: the paper gives none), 384-384-256, dense convs (one GPU); these give "
                "Fig. 3's 110, 55, 26, 13, 13, 13, 6 at 224. Dropout 0.5 on FC6, FC7; weights N(0, 1e-2), "
                "biases 0 (Sec. 3.1).")
_register("zfnet_lecture", ZFNET_LECTURE, 224, family="zfnet", paper=_ZFNET_PAPER, year=2013,
          ilsvrc=_ZFNET_ILSVRC,
          notes="The lecture's ZFNet (L11): zfnet with CONV3, CONV4, CONV5 of 512, 1024, 512 filters, the "
                "paper's larger model '(b)' (Table 2: 1 convnet, 16.1% top-5 test error).")
