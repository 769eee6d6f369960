"""Fidelity of the VGG family to Simonyan & Zisserman, ICLR 2015 (Tables 1 and 2, Sec. 2.1, 3.1).

Full-width networks are built on the meta device (no memory, no init cost); real tensors only
at a small width.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.models.vgg import VGG


def _meta(name: str, **kw) -> VGG:
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kw)


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


# Table 2 of the paper, "Number of parameters (in millions)": A 133, B 133, C 134, D 138, E 144.
TABLE2_MILLIONS = {"vgg11": 133, "vgg13": 133, "vgg16_c": 134, "vgg16": 138, "vgg19": 144}


@pytest.mark.parametrize("name,millions", TABLE2_MILLIONS.items())
def test_parameter_count_matches_table2_up_to_rounding(name, millions):
    n = sum(p.numel() for p in _meta(name).parameters())  # weights and biases, 1000 classes
    # The paper gives whole millions; ours rounds to the same figure, i.e. is within half a million.
    assert round(n / 1e6) == millions
    assert abs(n - millions * 1e6) < 0.5e6


def test_vgg16_exact_count_and_fc_share():
    model = _meta("vgg16")
    n = sum(p.numel() for p in model.parameters())
    # Hand derivation: conv weights sum_i 9*c_in*c_out plus biases, for D's 13 convs ...
    chans = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    conv = sum(9 * a * b + b for a, b in zip(chans, chans[1:]))
    # ... and FC6 (7*7*512 -> 4096), FC7 (4096 -> 4096), FC8 (4096 -> 1000) with biases.
    fc = (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert conv == 14_714_688 and fc == 123_642_856
    # torchvision's VGG16_Weights metadata publishes num_params = 138,357,544.
    assert n == conv + fc == 138_357_544
    # LECTURE L17: most parameters sit in the FC layers (89% here).
    fc_ours = sum(p.numel() for p in model.classifier.parameters())
    assert fc_ours == fc and fc_ours / n > 0.89


# Table 1: weight layers per configuration (conv + 3 FC) and which convs are 1x1 (only C has them).
@pytest.mark.parametrize("name,convs,one_by_one", [("vgg11", 8, 0), ("vgg13", 10, 0), ("vgg16_c", 13, 3),
                                                   ("vgg16", 13, 0), ("vgg19", 16, 0)])
def test_table1_layers(name, convs, one_by_one):
    model = _meta(name)
    cs = _convs(model)
    assert len(cs) == convs and len([m for m in model.modules() if isinstance(m, nn.Linear)]) == 3
    # Sec. 2.1: 3x3 receptive fields, stride 1, padding 1 pixel (C: 1x1, stride 1, padding 0).
    assert sum(c.kernel_size == (1, 1) and c.padding == (0, 0) for c in cs) == one_by_one
    assert sum(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in cs) == convs - one_by_one
    assert all(c.stride == (1, 1) for c in cs)
    # Sec. 2.1: five max-pooling layers, 2x2 window, stride 2.
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    # Sec. 3.1: dropout 0.5 on the first two FC layers.
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def test_config_c_differs_from_d_only_in_three_kernels():
    c, d = _convs(_meta("vgg16_c")), _convs(_meta("vgg16"))
    assert [m.out_channels for m in c] == [m.out_channels for m in d]
    diff = [i for i, (a, b) in enumerate(zip(c, d)) if a.kernel_size != b.kernel_size]
    # Table 1: the last conv of blocks 3, 4 and 5 (conv indices 6, 9, 12) is 1x1 in C, 3x3 in D.
    assert diff == [6, 9, 12]


def test_vgg16_per_block_shapes_at_224():
    model = _meta("vgg16").eval()
    shapes = []
    for m in model.features:
        if isinstance(m, nn.MaxPool2d):
            m.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape[1:])))
    with torch.no_grad():
        out = model(torch.empty(2, 3, 224, 224, device="meta"))
    # Table 1 / Sec. 2.1: widths 64, 128, 256, 512, 512; each pool halves 224 down to 7 (7x7x512 into FC6).
    assert shapes == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]
    assert out.shape == (2, 1000)


def test_bn_variant_adds_batchnorm_after_every_conv_only():
    plain, bn = _meta("vgg19"), _meta("vgg19_bn")
    seq = [type(m).__name__ for m in bn.features]
    n_conv = len(_convs(bn))
    assert seq.count("BatchNorm2d") == n_conv == 16
    assert all(seq[i + 1] == "BatchNorm2d" for i, t in enumerate(seq) if t == "Conv2d")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    # Same convs and FCs otherwise: the difference is exactly BN's weight and bias per channel.
    extra = sum(p.numel() for p in bn.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == 2 * sum(c.out_channels for c in _convs(plain))


def test_min_input_size_is_32():
    # Five 2x2/2 pools with floor: 32 -> 16 -> 8 -> 4 -> 2 -> 1; 31 collapses at the fifth pool.
    assert cnnzoo.model_info("vgg16").min_input_size == 32


def test_forward_fc7_is_fc7_after_relu():
    torch.manual_seed(0)
    model = cnnzoo.create_model("vgg11", num_classes=5, width=0.125).eval()
    x = torch.randn(2, 3, 40, 48)  # any size >= 32, not square
    captured = {}
    model.classifier[4].register_forward_hook(lambda m, i, o: captured.update(fc7=o.clone()))
    with torch.no_grad():
        logits = model(x)
        fc7 = model.forward_fc7(x)
    assert logits.shape == (2, 5) and fc7.shape == (2, 512)  # 4096 * 0.125
    torch.testing.assert_close(fc7, captured["fc7"])
    assert (fc7 >= 0).all() and (fc7 > 0).any()
    with torch.device("meta"):  # the full network gives the paper's 4096-d descriptor
        full = cnnzoo.create_model("vgg16").eval()
        assert full.forward_fc7(torch.empty(3, 3, 224, 224)).shape == (3, 4096)


def test_forward_fc7_checks_the_input_as_forward_does():
    from cnnzoo.errors import InputShapeError, InputTooSmallError

    model = cnnzoo.create_model("vgg11", num_classes=5, width=0.125).eval()
    # five 2x2/2 max pools: the last map is 1x1 from a 32x32 input (2**5) and empty below it
    with pytest.raises(InputTooSmallError) as exc:
        model.forward_fc7(torch.zeros(1, 3, 16, 16))
    assert exc.value.min_size == 32
    with pytest.raises(InputShapeError, match="expects 3 input channels, got 1"):
        model.forward_fc7(torch.zeros(1, 1, 32, 32))


def test_width_scales_channels_not_topology():
    full, half = _meta("vgg13"), _meta("vgg13", width=0.5)
    assert [c.out_channels // 2 for c in _convs(full)] == [c.out_channels for c in _convs(half)]
    assert [c.kernel_size for c in _convs(full)] == [c.kernel_size for c in _convs(half)]
    assert half.classifier[0].in_features == 256 * 7 * 7 and half.classifier[3].out_features == 2048
    with pytest.raises(CnnzooError, match="width must be > 0"):
        cnnzoo.create_model("vgg11", width=0)
