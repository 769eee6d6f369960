"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842).

* :class:`Inception` — the module of Sec. 4 / Figure 2, as a reusable block: the naive form
  (Fig. 2a; LECTURE L20: 1x1, 3x3, 5x5 convs and a 3x3 max pool, concatenated) and the form
  with dimension reductions (Fig. 2b; L23: 1x1 convs before the 3x3 and 5x5 convs and after
  the pool).
* :data:`INCEPTION_TABLE` — Table 1's inception rows as data.
* :class:`GoogLeNet` — one class, two variants (:data:`PAPER`, :data:`TORCHVISION`):

  ``googlenet_paper``: Table 1 and Sec. 5 — stem conv 7x7/2, max pool 3x3/2, LRN, conv 1x1 64,
  conv 3x3 192, LRN, max pool 3x3/2; true 5x5 convs; max pool 3x3/2 after 4e; global average
  pool, dropout 40%, linear; two auxiliary classifiers on 4a and 4d (avg pool 5x5/3, conv 1x1
  128, FC 1024, dropout 70%, linear) whose losses are weighted by :attr:`GoogLeNet.aux_weight`
  = 0.3 (Sec. 5).

  ``googlenet``: torchvision's variant, ``state_dict``-compatible with
  ``torchvision.models.googlenet``: BatchNorm (eps 1e-3) after every conv and no LRN, a 3x3
  conv in the "5x5" branch (torchvision issue #906), max pool 2x2/2 after 4e, dropout 20%,
  aux heads pooled adaptively to 4x4 and BatchNorm in their 1x1 conv.

Both end with a global (adaptive) average pool, so any input from the minimum size up works;
the paper used a 7x7 average pool on the 7x7 map of a 224x224 input (the same there).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelConfigError
from ..registry import register_model
from ._base import ZooModel, scale_channels

_PAPER = ("C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke, "
          "A. Rabinovich. Going Deeper with Convolutions. CVPR 2015 (arXiv:1409.4842)")
_ILSVRC = "ILSVRC 2014 classification winner: 6.67% top-5 test error (ensemble of 7 models, 144 crops)"

#: Table 1, inception rows: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
#: A max pool 3x3/2 precedes 4a and 5a (the one before 5a is 2x2/2 in torchvision's variant).
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),      # 28x28x192 -> 28x28x256
    "3b": (128, 128, 192, 32, 96, 64),    # 28x28x256 -> 28x28x480
    "4a": (192, 96, 208, 16, 48, 64),     # 14x14x480 -> 14x14x512
    "4b": (160, 112, 224, 24, 64, 64),    # -> 14x14x512
    "4c": (128, 128, 256, 24, 64, 64),    # -> 14x14x512
    "4d": (112, 144, 288, 32, 64, 64),    # -> 14x14x528
    "4e": (256, 160, 320, 32, 128, 128),  # -> 14x14x832
    "5a": (256, 160, 320, 32, 128, 128),  # 7x7x832 -> 7x7x832
    "5b": (384, 192, 384, 48, 128, 128),  # -> 7x7x1024
}
#: The auxiliary classifiers sit on the outputs of these modules (Sec. 5).
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}



class BasicConv2d(nn.Module):
    """Conv -> [BatchNorm (eps 1e-3)] -> ReLU. Without BatchNorm the conv has a bias.

    Shape: (N, in_ch, H, W) -> (N, out_ch, H', W') with the usual conv arithmetic.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """The Inception module (Sec. 4, Figure 2): four parallel branches concatenated along channels.

    With reductions (``naive=False``, Fig. 2b)::

        branch1: 1x1 conv c1
        branch2: 1x1 conv c3r -> 3x3 conv c3 (pad 1)
        branch3: 1x1 conv c5r -> k5 x k5 conv c5 (pad k5 // 2)
        branch4: 3x3 max pool (stride 1, pad 1) -> 1x1 conv pool_proj
        output channels: c1 + c3 + c5 + pool_proj

    Naive (``naive=True``, Fig. 2a): the 1x1 reductions and the pool projection are absent
    (pass ``None`` or 0 for ``c3r``, ``c5r``, ``pool_proj``), so the pool branch keeps all
    ``in_ch`` channels: output channels ``c1 + c3 + c5 + in_ch`` — depth grows at every module
    (LECTURE L22).

    Args:
        in_ch: input channels.
        c1, c3r, c3, c5r, c5, pool_proj: Table 1's columns #1x1 ... pool proj.
        naive: the naive form.
        k5: kernel of the "5x5" branch (5 in the paper; torchvision's variant uses 3).
        batch_norm: BatchNorm after every conv (torchvision's variant; not in the paper).

    Shape: (N, in_ch, H, W) -> (N, out_channels, H, W).

    Raises:
        ModelConfigError: ``naive=True`` with reduction sizes given.
    """

    def __init__(self, in_ch: int, c1: int, c3r: int | None, c3: int, c5r: int | None, c5: int,
                 pool_proj: int | None, naive: bool = False, k5: int = 5, batch_norm: bool = False) -> None:
        super().__init__()
        if naive and any((c3r, c5r, pool_proj)):
            raise ModelConfigError("the naive Inception module has no 1x1 reductions: pass c3r=c5r=pool_proj=None")

        def conv(cin: int, cout: int, k: int) -> BasicConv2d:
            return BasicConv2d(cin, cout, k, padding=k // 2, batch_norm=batch_norm)

        def reduced(c_red: int | None, c_out: int, k: int) -> nn.Sequential:
            return nn.Sequential(conv(in_ch, c_out, k)) if naive else nn.Sequential(conv(in_ch, c_red, 1),
                                                                                     conv(c_red, c_out, k))

        self.branch1 = conv(in_ch, c1, 1)
        self.branch2 = reduced(c3r, c3, 3)
        self.branch3 = reduced(c5r, c5, k5)
        pool = nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True)
        self.branch4 = nn.Sequential(pool) if naive else nn.Sequential(pool, conv(in_ch, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + (in_ch if naive else pool_proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, in_ch, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W)
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (Sec. 5): avg pool -> 1x1 conv 128 -> FC 1024 + ReLU -> dropout 70% -> linear.

    ``paper_pool=True``: the paper's 5x5 average pool, stride 3 (14x14 -> 4x4 on a 224 input),
    then an adaptive pool to 4x4 that is the identity at 224 and lets other input sizes reach
    the 2048-input FC (maps smaller than 5x5 skip the 5x5 pool). ``paper_pool=False``:
    torchvision's adaptive 4x4 average pool only.

    Shape: (N, in_ch, h, w) -> (N, num_classes).
    """

    def __init__(self, in_ch: int, num_classes: int, batch_norm: bool = False, paper_pool: bool = True,
                 width: float = 1.0, dropout: float = 0.7) -> None:
        super().__init__()
        self.paper_pool = paper_pool
        c = scale_channels(128, width)
        self.conv = BasicConv2d(in_ch, c, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(c * 4 * 4, scale_channels(1024, width))
        self.fc2 = nn.Linear(self.fc1.out_features, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.paper_pool and min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, kernel_size=5, stride=3)  # (N, C, 14, 14) -> (N, C, 4, 4)
        x = self.conv(F.adaptive_avg_pool2d(x, 4))  # (N, 128, 4, 4)
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1)), inplace=True))  # (N, 1024)
        return self.fc2(x)  # (N, num_classes)


@dataclass(frozen=True)
class Variant:
    """What distinguishes the paper's GoogLeNet from torchvision's."""

    batch_norm: bool  # BatchNorm after every conv (torchvision) instead of two LRNs in the stem (paper)
    k5: int           # kernel of the "5x5" branch: 5 (paper) or 3 (torchvision)
    pool4: int        # kernel of the max pool between 4e and 5a: 3 (Table 1) or 2 (torchvision)
    dropout: float    # before the final linear layer: 0.4 (Table 1) or 0.2 (torchvision)
    aux_paper_pool: bool  # aux heads: 5x5/3 average pool (Sec. 5) or adaptive 4x4 (torchvision)


PAPER = Variant(batch_norm=False, k5=5, pool4=3, dropout=0.4, aux_paper_pool=True)
TORCHVISION = Variant(batch_norm=True, k5=3, pool4=2, dropout=0.2, aux_paper_pool=False)


class GoogLeNet(ZooModel):
    """GoogLeNet: stem, nine Inception modules (Table 1), global average pool, dropout, linear.

    ``forward(x)`` returns the main logits only, in every mode. The auxiliary classifiers are
    reached through :meth:`forward_with_aux`; train with
    ``loss = ce(logits) + model.aux_weight * sum(ce(a) for a in aux)`` (Sec. 5).

    Args:
        num_classes: outputs of the linear classifier (and of the aux heads).
        in_chans: input channels.
        variant: :data:`PAPER` or :data:`TORCHVISION`.
        aux_logits: build the two auxiliary classifiers ``aux1`` (on 4a) and ``aux2`` (on 4d).
        transform_input: re-normalise an input normalised with ImageNet's mean/std to
            (x - 0.5) / 0.5 per channel, as torchvision's flag does (its pretrained weights
            expect it); needs ``in_chans=3``.
        width: channel multiplier for every conv and the aux FC layers (1.0 = the paper).
        dropout: before the final linear layer; ``None`` takes the variant's.
        dropout_aux: in the aux heads (0.7, Sec. 5).

    Shapes: (N, in_chans, H, W) -> features (N, 1024*width, H/32, W/32) -> logits (N, num_classes).

    Raises:
        ModelConfigError: ``width`` is not positive, or ``transform_input`` with ``in_chans != 3``.
    """

    #: Weight of each auxiliary loss in the total training loss (Sec. 5: "weighted by 0.3").
    aux_weight: float = 0.3

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, variant: Variant = PAPER,
                 aux_logits: bool = True, transform_input: bool = False, width: float = 1.0,
                 dropout: float | None = None, dropout_aux: float = 0.7) -> None:
        super().__init__()
        if transform_input and in_chans != 3:
            raise ModelConfigError(f"transform_input re-normalises 3 RGB channels; in_chans is {in_chans}")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.default_input_size = (in_chans, 224, 224)
        self.variant, self.aux_logits, self.transform_input = variant, aux_logits, transform_input
        bn = variant.batch_norm

        def lrn() -> nn.Module:  # LRN as in the BVLC Caffe reproduction (size 5, alpha 1e-4, beta 0.75)
            return nn.Identity() if bn else nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

        c64, c192 = scale_channels(64, width), scale_channels(192, width)
        self.conv1 = BasicConv2d(in_chans, c64, 7, stride=2, padding=3, batch_norm=bn)  # -> 112x112x64
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                    # -> 56x56x64
        self.lrn1 = lrn()
        self.conv2 = BasicConv2d(c64, c64, 1, batch_norm=bn)                         # 3x3 reduce
        self.conv3 = BasicConv2d(c64, c192, 3, padding=1, batch_norm=bn)             # -> 56x56x192
        self.lrn2 = lrn()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)                    # -> 28x28x192
        self._body = ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"]
        c_in, stage = c192, "3"
        for name, row in INCEPTION_TABLE.items():
            if name[0] != stage:  # a max pool halves the map between stages: 28 -> 14 -> 7
                k = 3 if stage == "3" else variant.pool4
                self.add_module(f"maxpool{stage}", nn.MaxPool2d(k, stride=2, ceil_mode=True))
                self._body.append(f"maxpool{stage}")
                stage = name[0]
            block = Inception(c_in, *(scale_channels(c, width) for c in row), k5=variant.k5, batch_norm=bn)
            self.add_module(f"inception{name}", block)
            self._body.append(f"inception{name}")
            c_in = block.out_channels
        self.aux1 = self.aux2 = None
        if aux_logits:
            for tap, aux in AUX_TAPS.items():
                setattr(self, aux, InceptionAux(getattr(self, tap).out_channels, num_classes, bn,
                                                variant.aux_paper_pool, width, dropout_aux))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=variant.dropout if dropout is None else dropout)
        self.fc = nn.Linear(c_in, num_classes)
        self.num_features = c_in
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's init for its variant (truncated N(0, 0.01)); the paper states none
        (DistBelief), so the paper variant takes the BVLC Caffe reproduction's: Xavier weights,
        conv biases 0.2."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if self.variant.batch_norm:
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                else:
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        if not self.transform_input:
            return x
        # x * std / 0.5 + (mean - 0.5) / 0.5 per channel, in torchvision's arithmetic (bitwise parity)
        scale = x.new_tensor([0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5]).view(1, 3, 1, 1)
        shift = x.new_tensor([(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5]).view(1, 3, 1, 1)
        return x * scale + shift

    def _run_body(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self._transform(x)
        aux: list[torch.Tensor] = []
        for name in self._body:
            x = getattr(self, name)(x)
            if with_aux and name in AUX_TAPS:
                aux.append(getattr(self, AUX_TAPS[name])(x))
        return x, aux

    def stem_and_stages(self) -> tuple[list[str], list[list[str]]]:
        """Stem: the layers before inception 3a ("traditional convolutional fashion", Szegedy et al.
        2014, Sec. 5 and Table 1); stages: inception 3a-3b, 4a-4e and 5a-5b, each with the max pool
        after it."""
        first = self._body.index("inception3a")
        stages: dict[str, list[str]] = {}
        for name in self._body[first:]:
            stages.setdefault(name[-2] if name.startswith("inception") else name[-1], []).append(name)
        return self._body[:first], list(stages.values())

    def head_names(self) -> list[str]:
        """The final FC and, when built, the auxiliary classifiers (Sec. 5)."""
        return [self.classifier_attr] + [aux for aux in AUX_TAPS.values() if getattr(self, aux) is not None]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> output of inception 5b, (N, 1024*width, H/32, W/32) (7x7 at 224)."""
        return self._run_body(x, with_aux=False)[0]

    def forward_pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, C, h, w) -> global average pool -> dropout -> (N, num_features), what the FC reads."""
        return self.dropout(torch.flatten(self.avgpool(x), 1))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Main and auxiliary logits: ``(logits, [aux1, aux2])``, each (N, num_classes).

        The aux heads run only in training mode and only if built (``aux_logits=True``);
        otherwise the list is empty: ``(logits, [])``.

        Raises:
            InputShapeError / InputTooSmallError: as :meth:`forward`.
        """
        def run(t: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
            feats, aux = self._run_body(t, with_aux=self.training and self.aux1 is not None)
            return self.forward_head(feats), aux

        return self.checked_call(run, x)


@register_model(family="googlenet", paper=_PAPER, year=2014, ilsvrc=_ILSVRC, default_input_size=(3, 224, 224),
                torchvision=None,
                notes="Table 1 and Sec. 5: LRN in the stem, true 5x5 convs, max pool 3x3/2 after 4e, dropout 40%, "
                      "aux heads (avg pool 5x5/3, 1x1 conv 128, FC 1024, dropout 70%) on 4a and 4d with loss "
                      "weight 0.3; global average pool made adaptive (any input size)")
def googlenet_paper(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True, **kwargs) -> GoogLeNet:
    """GoogLeNet as in the paper (Table 1, Sec. 5), with the aux classifiers by default
    (the paper trains with them and discards them at inference). ``**kwargs``: see :class:`GoogLeNet`."""
    return GoogLeNet(num_classes, in_chans, PAPER, aux_logits=aux_logits, **kwargs)


@register_model(family="googlenet", paper=_PAPER, year=2014, ilsvrc=_ILSVRC, default_input_size=(3, 224, 224),
                torchvision="googlenet",
                notes="torchvision's variant: BatchNorm after every conv, no LRN, 3x3 conv in the '5x5' branch, "
                      "max pool 2x2/2 after 4e, dropout 20%, adaptive 4x4 pool in the aux heads; aux heads off "
                      "by default (aux_logits=True adds them)")
def googlenet(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, transform_input: bool = False,
              **kwargs) -> GoogLeNet:
    """torchvision's GoogLeNet, ``state_dict``-compatible with ``torchvision.models.googlenet``.

    ``aux_logits=False`` (default) matches the model torchvision returns with its pretrained
    weights (``googlenet(weights=...)`` deletes the aux heads, which were never trained) and its
    published 6,624,904 parameters. torchvision's weight file itself still holds ``aux1.*`` and
    ``aux2.*`` (torchvision loads it with ``aux_logits=True``): load it with ``aux_logits=True``,
    or with :func:`cnnzoo.load_torchvision_weights`, which detects them.
    ``transform_input=False`` is torchvision's class default; its pretrained weights were used
    with ``True``. ``**kwargs``: see :class:`GoogLeNet`.
    """
    return GoogLeNet(num_classes, in_chans, TORCHVISION, aux_logits=aux_logits, transform_input=transform_input,
                     **kwargs)
