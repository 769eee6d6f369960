"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (arXiv:1409.1556).

The configurations of the paper's Table 1 are data (:data:`CFGS`): a list per configuration,
where an ``int`` is a 3x3 conv (stride 1, pad 1) with that many output channels followed by ReLU,
a ``(channels, 1)`` pair is configuration C's 1x1 conv, and ``"M"`` is a 2x2 max pool, stride 2
(Sec. 2.1). The classifier is FC-4096, FC-4096, FC-num_classes with dropout 0.5 after the first
two (Sec. 3.1).

Differences from the paper, shared with torchvision (so ``state_dict`` keys and shapes equal
torchvision's ``vgg11/13/16/19(_bn)``):

* an ``AdaptiveAvgPool2d((7, 7))`` before FC6, so any input from 32x32 up works; at 224x224 the
  map is already 7x7 and the pool is the identity, as in the paper's training network (at test
  time the paper turned the FC layers into convolutions instead, Sec. 3.2);
* ``*_bn``: BatchNorm after every conv (Ioffe & Szegedy 2015; not in the paper);
* init: torchvision's (Kaiming-normal convs, N(0, 0.01) linears, zero biases). The paper
  initialised configuration A from N(0, 0.01) and the deeper nets from A's trained layers
  (Sec. 3.1), which a builder cannot reproduce.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..registry import register_model
from ._base import ZooModel, scale_channels, split_stages

_PAPER = ("K. Simonyan, A. Zisserman. Very Deep Convolutional Networks for Large-Scale Image "
          "Recognition. ICLR 2015 (arXiv:1409.1556)")
_ILSVRC = "ILSVRC 2014: 2nd in classification (7.3% top-5 test error), 1st in localization"

#: Table 1 of the paper, one list per configuration: ``int`` = 3x3 conv, ``(c, 1)`` = 1x1 conv, "M" = max pool.
CFGS: dict[str, list] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],                      # 11 weight layers
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],             # 13
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],                                                             # 16, with 1x1 convs
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # 16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],                                                             # 19
}



def make_features(cfg: list, in_chans: int = 3, batch_norm: bool = False, width: float = 1.0) -> nn.Sequential:
    """The conv/pool stack of one configuration as a flat ``nn.Sequential`` (torchvision's indices).

    Each conv is ``Conv2d -> [BatchNorm2d] -> ReLU``; ``"M"`` is ``MaxPool2d(2, 2)``.
    Shape: (N, in_chans, H, W) -> (N, 512*width, H/32, W/32) (floor at every pool).
    """
    layers: list[nn.Module] = []
    c_in = in_chans
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        c_out, k = item if isinstance(item, tuple) else (item, 3)
        c_out = scale_channels(c_out, width)
        layers.append(nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2))
        layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
        c_in = c_out
    return nn.Sequential(*layers)


class VGG(ZooModel):
    """A VGG network: ``features`` (conv stack) -> ``avgpool`` (7x7) -> ``classifier`` (3 FC layers).

    Args:
        cfg: a layer list as in :data:`CFGS`.
        num_classes: outputs of the last FC layer.
        in_chans: input channels.
        batch_norm: BatchNorm after every conv (torchvision's ``*_bn``; not in the paper).
        width: channel multiplier for convs and the two hidden FC layers (1.0 = the paper).
        dropout: dropout probability after FC6 and FC7 (0.5, Sec. 3.1).

    Shapes: (N, in_chans, H, W), H, W >= 32 -> features (N, 512*width, H/32, W/32) -> logits (N, num_classes).

    Raises:
        ModelConfigError: ``width`` is not positive.
    """

    classifier_attr = "classifier.6"

    def __init__(self, cfg: list, num_classes: int = 1000, in_chans: int = 3, batch_norm: bool = False,
                 width: float = 1.0, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224)
        self.features = make_features(cfg, in_chans, batch_norm, width)
        c_last = [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels
        hidden = self.num_features = scale_channels(4096, width)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c_last * 7 * 7, hidden),  # FC6
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),  # FC7
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),  # FC8
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> last conv block's pooled map (N, 512*width, H/32, W/32)."""
        return self.features(x)

    def stem_and_stages(self) -> tuple[list[str], list[list[str]]]:
        """No stem; five stages, the conv blocks of Table 1 that each end in a max pool."""
        return [], split_stages("features", self.features, lambda m, prev: isinstance(prev, nn.MaxPool2d))

    def forward_pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, C, h, w) -> 7x7 adaptive average pool -> FC6, FC7 -> (N, num_features),
        what FC8 reads."""
        x = torch.flatten(self.avgpool(x), 1)
        for layer in list(self.classifier)[:-1]:
            x = layer(x)
        return x

    def forward_fc7(self, x: torch.Tensor) -> torch.Tensor:
        """The FC7 features after its ReLU, (N, in_chans, H, W) -> (N, 4096*width).

        The lecture's generic transferable representation (LECTURE L17; the paper's Sec. 4 and
        Appendix B use the penultimate layer as an image descriptor). Dropout runs in training
        mode only, so call ``model.eval()`` for deterministic features.

        Raises:
            InputShapeError / InputTooSmallError: as :meth:`forward`.
        """
        def fc7(t: torch.Tensor) -> torch.Tensor:              # features, pool, FC6, ReLU, dropout, FC7, ReLU
            return self.classifier[:5](torch.flatten(self.avgpool(self.forward_features(t)), 1))

        return self.checked_call(fc7, x)


# ---- registered variants: one thin builder per configuration of Table 1 ---------------------------

_register = functools.partial(register_model, family="vgg", paper=_PAPER, year=2014, ilsvrc=_ILSVRC)
_BN = "; BatchNorm after every conv (torchvision's addition, not in the paper)"


def _notes(cfg: str, batch_norm: bool = False) -> str:
    return (f"configuration {cfg} of Table 1{_BN if batch_norm else ''}; 7x7 adaptive average pool before FC6 as "
            "torchvision (the identity at 224x224)")


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_chans: int, **kwargs) -> VGG:
    return VGG(CFGS[cfg], num_classes=num_classes, in_chans=in_chans, batch_norm=batch_norm, **kwargs)


@_register(torchvision="vgg11", notes=_notes("A"))
def vgg11(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-11, configuration A of Table 1 (133M parameters in Table 2). Same state_dict as
    torchvision.models.vgg11; ``**kwargs``: ``width``, ``dropout`` (see :class:`VGG`)."""
    return _vgg("A", False, num_classes, in_chans, **kwargs)


@_register(torchvision="vgg11_bn", notes=_notes("A", batch_norm=True))
def vgg11_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-11 (configuration A of Table 1) with BatchNorm after every conv (torchvision's addition,
    not in the paper). Same state_dict as torchvision.models.vgg11_bn; ``**kwargs``: ``width``,
    ``dropout`` (see :class:`VGG`)."""
    return _vgg("A", True, num_classes, in_chans, **kwargs)


@_register(torchvision="vgg13", notes=_notes("B"))
def vgg13(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-13, configuration B of Table 1 (133M parameters in Table 2). Same state_dict as
    torchvision.models.vgg13; ``**kwargs``: ``width``, ``dropout`` (see :class:`VGG`)."""
    return _vgg("B", False, num_classes, in_chans, **kwargs)


@_register(torchvision="vgg13_bn", notes=_notes("B", batch_norm=True))
def vgg13_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-13 (configuration B of Table 1) with BatchNorm after every conv (torchvision's addition,
    not in the paper). Same state_dict as torchvision.models.vgg13_bn; ``**kwargs``: ``width``,
    ``dropout`` (see :class:`VGG`)."""
    return _vgg("B", True, num_classes, in_chans, **kwargs)


@_register(notes=_notes("C"))
def vgg16_c(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-16, configuration C of Table 1 (134M parameters in Table 2): B plus a 1x1 conv in blocks
    3, 4 and 5. Not in torchvision; ``**kwargs``: ``width``, ``dropout`` (see :class:`VGG`)."""
    return _vgg("C", False, num_classes, in_chans, **kwargs)


@_register(torchvision="vgg16", notes=_notes("D"))
def vgg16(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-16, configuration D of Table 1 (138M parameters in Table 2). Same state_dict as
    torchvision.models.vgg16; ``**kwargs``: ``width``, ``dropout`` (see :class:`VGG`)."""
    return _vgg("D", False, num_classes, in_chans, **kwargs)


@_register(torchvision="vgg16_bn", notes=_notes("D", batch_norm=True))
def vgg16_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-16 (configuration D of Table 1) with BatchNorm after every conv (torchvision's addition,
    not in the paper). Same state_dict as torchvision.models.vgg16_bn; ``**kwargs``: ``width``,
    ``dropout`` (see :class:`VGG`)."""
    return _vgg("D", True, num_classes, in_chans, **kwargs)


@_register(torchvision="vgg19", notes=_notes("E"))
def vgg19(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-19, configuration E of Table 1 (144M parameters in Table 2). Same state_dict as
    torchvision.models.vgg19; ``**kwargs``: ``width``, ``dropout`` (see :class:`VGG`)."""
    return _vgg("E", False, num_classes, in_chans, **kwargs)


@_register(torchvision="vgg19_bn", notes=_notes("E", batch_norm=True))
def vgg19_bn(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> VGG:
    """VGG-19 (configuration E of Table 1) with BatchNorm after every conv (torchvision's addition,
    not in the paper). Same state_dict as torchvision.models.vgg19_bn; ``**kwargs``: ``width``,
    ``dropout`` (see :class:`VGG`)."""
    return _vgg("E", True, num_classes, in_chans, **kwargs)
