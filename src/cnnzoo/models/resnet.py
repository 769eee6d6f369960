"""ResNet: He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
(arXiv:1512.03385). ILSVRC 2015 classification winner.

A residual block learns F(x) = H(x) - x and outputs relu(F(x) + x) (Sec 3.1, Eq. 1); the
identity shortcut has no parameters. One :class:`ResNet` class, configured by data, builds
every variant:

========================  ==========================================================================
name                      what it is
========================  ==========================================================================
resnet18, resnet34        Table 1, BasicBlock (two 3x3 convs). Paper and torchvision coincide.
resnet50/101/152          Table 1, Bottleneck (1x1, 3x3, 1x1). torchvision's "v1.5": the stride 2 of
                          conv3_1, conv4_1, conv5_1 sits on the 3x3 conv. state_dict compatible.
resnet50/101/152_v1       The paper's / released Caffe model's placement: stride 2 on the first 1x1
                          conv of conv3_1, conv4_1, conv5_1 (Table 1 note). Same parameters as v1.5,
                          fewer MACs, since the 3x3 conv runs on the downsampled map.
plain18, plain34          Sec 4.1 "plain networks": resnet18/34 without any shortcut.
cifar_resnet{20..110}     Sec 4.2: 6n+2 layers, 3x3 conv 16 stem, three stages of n BasicBlocks at
                          16/32/64 filters on 32/16/8 maps, global average pool, FC. shortcut="A"
                          (zero-padding, parameter-free, the paper's choice) or "B" (projection).
cifar_plain{20..110}      The same without shortcuts.
========================  ==========================================================================

Shortcuts (Sec 3.3, Table 3): ``"A"`` identity, zero-padded channels and stride-2 subsampling
when dimensions grow (no parameters); ``"B"`` identity, 1x1 conv + BN projection when dimensions
change (the ImageNet default, as in torchvision); ``"C"`` projection on every block; ``None`` no
shortcut at all (plain network).

Every builder takes ``num_classes``, ``in_chans``, ``width`` (channel multiplier, 1.0 = paper)
and ``zero_init_residual`` (torchvision's option: the last BN of each block starts at zero, so
each residual block starts as the identity). Init: He et al. 2015 [13 in the paper], as
torchvision does it (``kaiming_normal_``, fan_out, ReLU gain); BN weight 1, bias 0.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelConfigError
from ..registry import register_model
from ._base import ZooModel, scale_channels

_PAPER = ("He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition, CVPR 2016 "
          "(arXiv:1512.03385)")
_ILSVRC = "ILSVRC 2015 classification winner: 3.57% top-5 test error (ensemble, Table 5)"
SHORTCUTS = ("A", "B", "C", None)


def conv3x3(in_chans: int, out_chans: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (BN follows, Sec 3.4)."""
    return nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_chans: int, out_chans: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (BN follows, Sec 3.4)."""
    return nn.Conv2d(in_chans, out_chans, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (Sec 3.3): identity with stride-``stride`` subsampling and zero channels
    appended for the extra dimensions. No parameters.

    Shapes: (N, in_chans, H, W) -> (N, out_chans, ceil(H/stride), ceil(W/stride)), the same
    spatial size as a 3x3 conv with padding 1 and that stride.
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1):
        super().__init__()
        if out_chans < in_chans:
            raise ModelConfigError(f"zero-padding shortcut cannot shrink {in_chans} to {out_chans} channels")
        self.in_chans, self.out_chans, self.stride = in_chans, out_chans, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]  # (N, C_in, ceil(H/s), ceil(W/s))
        return F.pad(x, (0, 0, 0, 0, 0, self.out_chans - self.in_chans))  # (N, C_out, ., .)

    def extra_repr(self) -> str:
        return f"{self.in_chans}, {self.out_chans}, stride={self.stride}"


class _ResidualBlock(nn.Module):
    """Shared shortcut and forward of :class:`BasicBlock` and :class:`Bottleneck`:
    ``relu(F(x) + shortcut(x))`` (Sec 3.2, Eq. 1 and 2), or ``relu(F(x))`` when plain.

    Subclasses build their convs, then call :meth:`_init_shortcut`, define ``residual``
    (F(x), up to and including the last BN) and name that BN in ``last_bn_name``.
    """

    expansion = 1
    last_bn_name = "bn2"

    def _init_shortcut(self, in_chans: int, out_chans: int, stride: int, shortcut: str | None) -> None:
        if shortcut not in SHORTCUTS:
            raise ModelConfigError(f"unknown shortcut {shortcut!r}; choose 'A', 'B', 'C' or None (plain)")
        self.shortcut = shortcut
        changes = stride != 1 or in_chans != out_chans
        self.downsample: nn.Module | None = None  # None: identity shortcut (or none, if plain)
        if shortcut == "C" or (shortcut == "B" and changes):  # Eq. 2: y = F(x) + W_s x
            self.downsample = nn.Sequential(conv1x1(in_chans, out_chans, stride), nn.BatchNorm2d(out_chans))
        elif shortcut == "A" and changes:
            self.downsample = ZeroPadShortcut(in_chans, out_chans, stride)
        self.relu = nn.ReLU(inplace=True)

    def residual(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN ending F(x); ``zero_init_residual`` zeroes its weight."""
        return getattr(self, self.last_bn_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> (N, planes * expansion, ceil(H/stride), ceil(W/stride))."""
        out = self.residual(x)
        if self.shortcut is not None:
            out = out + (x if self.downsample is None else self.downsample(x))  # F(x) + x
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs with BN and ReLU (Fig. 2 / Fig. 5 left; ResNet-18/34 and the CIFAR nets).

    Args:
        in_chans: input channels.
        planes: output channels (``expansion = 1``).
        stride: stride of the first 3x3 conv (2 at the first block of conv3_x..conv5_x).
        shortcut: ``"A"``, ``"B"``, ``"C"`` or ``None`` (plain), see the module docstring.

    ``BasicBlock(64, 64)`` is the lecture's residual block: an identity shortcut without parameters.
    Shapes: (N, in_chans, H, W) -> (N, planes, ceil(H/stride), ceil(W/stride)).
    """

    expansion = 1

    def __init__(self, in_chans: int, planes: int, stride: int = 1, shortcut: str | None = "B"):
        super().__init__()
        self.conv1 = conv3x3(in_chans, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self._init_shortcut(in_chans, planes, stride, shortcut)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, planes, H/s, W/s)
        return self.bn2(self.conv2(out))


class Bottleneck(_ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand (x4) with BN and ReLU (Fig. 5 right; ResNet-50/101/152).

    torchvision's "v1.5" stride placement: the stride sits on the 3x3 conv. :class:`BottleneckV1`
    puts it on the first 1x1 conv as the paper's released models do.

    Args:
        in_chans: input channels.
        planes: channels of the 1x1 and 3x3 convs; the output has ``planes * 4``.
        stride: 2 at the first block of conv3_x, conv4_x, conv5_x.
        shortcut: ``"A"``, ``"B"``, ``"C"`` or ``None`` (plain), see the module docstring.

    ``Bottleneck(256, 64)`` on a (N, 256, 28, 28) input is the lecture's bottleneck:
    1x1 conv 64 -> 3x3 conv 64 -> 1x1 conv 256, with an identity shortcut.
    Shapes: (N, in_chans, H, W) -> (N, 4 * planes, ceil(H/stride), ceil(W/stride)).
    """

    expansion = 4
    last_bn_name = "bn3"
    stride_in_1x1 = False

    def __init__(self, in_chans: int, planes: int, stride: int = 1, shortcut: str | None = "B"):
        super().__init__()
        s1, s3 = (stride, 1) if self.stride_in_1x1 else (1, stride)
        out_chans = planes * self.expansion
        self.conv1 = conv1x1(in_chans, planes, s1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, s3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_chans)
        self.bn3 = nn.BatchNorm2d(out_chans)
        self._init_shortcut(in_chans, out_chans, stride, shortcut)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, planes, H/s1, W/s1)
        out = self.relu(self.bn2(self.conv2(out)))  # (N, planes, H/s, W/s)
        return self.bn3(self.conv3(out))  # (N, 4 * planes, H/s, W/s)


class BottleneckV1(Bottleneck):
    """:class:`Bottleneck` with the paper's stride placement: stride 2 on the first 1x1 conv
    ("downsampling is performed by conv3_1, conv4_1, and conv5_1 with a stride of 2", Table 1;
    the released Caffe ResNet-50/101/152 put it on res3a_branch2a, the 1x1 conv)."""

    stride_in_1x1 = True


class ResNet(ZooModel):
    """A residual (or plain) network: stem, stages of blocks, global average pool, FC.

    Args:
        block: :class:`BasicBlock`, :class:`Bottleneck` or :class:`BottleneckV1`.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50 (Table 1) or ``(n, n, n)``
            for the CIFAR nets (Sec 4.2). Stage ``i > 0`` starts with a stride-2 block.
        num_classes: size of the logits.
        in_chans: input channels.
        planes: ``planes`` of each stage before ``width``; the stem has ``planes[0]`` channels.
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max pool, Table 1 conv1) or ``"cifar"``
            (one 3x3/1 conv, Sec 4.2).
        shortcut: ``"A"``, ``"B"``, ``"C"`` or ``None`` (plain network), Sec 3.3.
        width: channel multiplier of every conv (1.0 = paper); topology is unchanged.
        zero_init_residual: start each block's last BN weight at 0 (torchvision's option).

    ``forward_features``: (N, in_chans, H, W) -> last stage's map (N, planes[-1] * expansion,
    H/32, W/32) for the ImageNet stem, (N, 64, H/4, W/4) for the CIFAR nets (ceil at each stride).
    ``forward``: -> logits (N, num_classes). The paper also ends with global average pooling.
    Submodule names are torchvision's (conv1, bn1, maxpool, layer1..layer4, avgpool, fc).

    Raises:
        ModelConfigError: unknown ``stem`` / ``shortcut``, ``width <= 0``, or
            ``zero_init_residual`` on a plain network.
    """

    def __init__(self, block: type[_ResidualBlock], layers: Sequence[int], num_classes: int = 1000,
                 in_chans: int = 3, *, planes: Sequence[int] = (64, 128, 256, 512), stem: str = "imagenet",
                 shortcut: str | None = "B", width: float = 1.0, zero_init_residual: bool = False):
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ModelConfigError(f"unknown stem {stem!r}; choose 'imagenet' or 'cifar'")
        if zero_init_residual and shortcut is None:
            raise ModelConfigError("zero_init_residual needs shortcuts: a plain network would output zeros")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224) if stem == "imagenet" else (in_chans, 32, 32)
        chans = scale_channels(planes[0], width)
        if stem == "imagenet":  # Table 1 conv1: 7x7, 64, stride 2, then 3x3 max pool, stride 2
            self.conv1 = nn.Conv2d(in_chans, chans, 7, stride=2, padding=3, bias=False)  # (N, 64, H/2, W/2)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)  # (N, 64, H/4, W/4)
        else:  # Sec 4.2: "The first layer is 3x3 convolutions"
            self.conv1 = conv3x3(in_chans, chans)  # (N, 16, H, W)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(chans)
        self.relu = nn.ReLU(inplace=True)
        self.stage_names: list[str] = []
        for i, (n, p) in enumerate(zip(layers, planes)):
            p = scale_channels(p, width)
            blocks = [block(chans, p, 1 if i == 0 else 2, shortcut)]  # stage i > 0 halves H, W
            chans = p * block.expansion
            blocks += [block(chans, p, 1, shortcut) for _ in range(n - 1)]
            self.stage_names.append(f"layer{i + 1}")
            self.add_module(self.stage_names[-1], nn.Sequential(*blocks))
        self.num_features = chans
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chans, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. 2015, as torchvision
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:  # a second pass: modules() visits a block before its BNs
            for m in self.modules():
                if isinstance(m, _ResidualBlock):
                    nn.init.zeros_(m.last_bn.weight)  # F(x) = 0: each block starts as the identity

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> (N, num_features, h, w), the last stage's feature map."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # stem
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def stem_and_stages(self) -> tuple[list[str], list[list[str]]]:
        """Stem: conv1 (+ BN, ReLU and, on ImageNet, the max pool; Table 1's conv1 row); stages:
        ``layer1``..``layer4`` (Table 1's conv2_x..conv5_x; 3 stages for the CIFAR nets, Sec. 4.2)."""
        return ["conv1", "bn1", "relu", "maxpool"], [[name] for name in self.stage_names]

    def forward_pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_features, h, w) -> global average pool -> (N, num_features), what the FC reads."""
        return torch.flatten(self.avgpool(x), 1)


# ---- registered variants: configuration as data --------------------------------------------------

#: Table 1: block type and blocks per stage (conv2_x, conv3_x, conv4_x, conv5_x).
IMAGENET_DEPTHS: dict[int, tuple[type[_ResidualBlock], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
#: Sec 4.2: 6n + 2 layers on CIFAR-10, Table 6.
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def cifar_layers(depth: int) -> tuple[int, int, int]:
    """Blocks per stage (n, n, n) of the 6n+2-layer CIFAR net (Sec 4.2).

    Raises:
        ModelConfigError: ``depth`` is not of the form 6n + 2.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ModelConfigError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110, ...), got {depth}")
    n = (depth - 2) // 6
    return n, n, n


def _register(name: str, summary: str, notes: str, defaults: dict, fixed: dict, *,
              default_input_size=(3, 224, 224), torchvision: str | None = None, ilsvrc: str | None = None):
    """Define, register and export the builder ``name(num_classes=1000 or 10 for CIFAR, in_chans=3, **kwargs)``.

    ``defaults`` are ResNet kwargs the user may override; ``fixed`` define the variant.
    """
    allowed = sorted({"width", "zero_init_residual", *defaults})
    paper_classes = 10 if default_input_size[1] == 32 else 1000     # CIFAR-10 or ImageNet

    def builder(num_classes: int = paper_classes, in_chans: int = 3, **kwargs) -> ResNet:
        for key in sorted(kwargs):
            if key in fixed:
                raise ModelConfigError(f"{name} fixes {key}={fixed[key]!r}; pick another model instead")
            if key not in allowed:
                raise ModelConfigError(f"{name} takes no argument {key!r}; it accepts {', '.join(allowed)}")
        return ResNet(num_classes=num_classes, in_chans=in_chans, **{**defaults, **kwargs, **fixed})

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (f"{summary}\n\n{notes}\n\nSource: {_PAPER}.\n"
                       f"Returns a :class:`ResNet`; keyword arguments: {', '.join(allowed)}.")
    globals()[name] = register_model(family="resnet", paper=_PAPER, year=2015, ilsvrc=ilsvrc,
                                     default_input_size=default_input_size, notes=notes,
                                     torchvision=torchvision, name=name,
                                     num_classes=paper_classes)(builder)
    __all__.append(name)


__all__ = ["ResNet", "BasicBlock", "Bottleneck", "BottleneckV1", "ZeroPadShortcut",
           "IMAGENET_DEPTHS", "CIFAR_DEPTHS", "cifar_layers"]

for _d, (_block, _layers) in IMAGENET_DEPTHS.items():
    _cfg = {"block": _block, "layers": _layers}
    _v15 = ("torchvision's v1.5: stride 2 on the bottleneck's 3x3 conv (the paper's models put it on the "
            "first 1x1; see resnet%d_v1)" % _d if _block is Bottleneck else
            "paper = torchvision (v1 and v1.5 coincide for basic blocks: both put stride 2 on the first 3x3)")
    _register(f"resnet{_d}", f"ResNet-{_d} (Table 1, {_layers} blocks per stage).",
              _v15 + "; projection shortcuts (option B) when dimensions change", {"shortcut": "B"}, _cfg,
              torchvision=f"resnet{_d}", ilsvrc=_ILSVRC)
    if _block is Bottleneck:
        _register(f"resnet{_d}_v1", f"ResNet-{_d} v1 (Table 1, {_layers}), the paper's stride placement.",
                  "paper's v1: stride 2 on the first 1x1 conv of conv3_1/conv4_1/conv5_1; same parameters as "
                  f"resnet{_d} (torchvision v1.5), fewer MACs", {"shortcut": "B"}, {**_cfg, "block": BottleneckV1},
                  ilsvrc=_ILSVRC)
    if _block is BasicBlock:
        _register(f"plain{_d}", f"Plain-{_d} (Sec 4.1, Table 2): ResNet-{_d} without shortcuts.",
                  f"resnet{_d} with every shortcut removed (the paper's plain baseline)", {},
                  {**_cfg, "shortcut": None})

for _d in CIFAR_DEPTHS:
    _cfg = {"block": BasicBlock, "layers": cifar_layers(_d), "planes": (16, 32, 64), "stem": "cifar"}
    _register(f"cifar_resnet{_d}", f"CIFAR-10 ResNet-{_d} (Sec 4.2, Table 6), n={(_d - 2) // 6}.",
              "3x3 conv 16 stem, 3 stages of n basic blocks (16/32/64 filters, maps 32/16/8), global "
              "avg pool, FC; shortcut='A' zero-padding (paper) or 'B' projection", {"shortcut": "A"}, _cfg,
              default_input_size=(3, 32, 32))
    _register(f"cifar_plain{_d}", f"CIFAR-10 plain-{_d} (Sec 4.2, Fig. 6 left): cifar_resnet{_d} without shortcuts.",
              f"cifar_resnet{_d} with every shortcut removed (the paper's plain baseline)", {},
              {**_cfg, "shortcut": None}, default_input_size=(3, 32, 32))
