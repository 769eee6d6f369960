"""Fidelity of AlexNet (Krizhevsky et al. 2012, Sec. 3, Fig. 2; the lecture's L3-L10), torchvision's
AlexNet, ZFNet (Zeiler & Fergus 2013, Fig. 3) and the lecture's ZFNet (L11), and the two-device
AlexNet."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.models.alexnet import AlexNetTwoTower, GroupedLRN
from cnnzoo.errors import ModelConfigError


def _meta(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kw)


def _weighted(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _conv_shapes(model: nn.Module, size: int) -> list[tuple[str, tuple[int, ...]]]:
    """(layer kind, (C, H, W)) after every conv, pool and norm of ``features``, on the meta device."""
    h, out = torch.empty(1, 3, size, size, device="meta"), []
    for layer in model.features:
        h = layer(h)
        if not isinstance(layer, nn.ReLU):
            out.append((type(layer).__name__[:4], tuple(h.shape[1:])))
    return out


def test_alexnet_paper_parameters_per_layer():
    model = _meta("alexnet_paper")
    counts = [sum(p.numel() for p in m.parameters()) for m in _weighted(model)]
    # Hand derivation, (kernel volume seen by one filter) * filters + biases; CONV2, 4, 5 see only the
    # 48/128/192 maps of their own GPU (Sec. 3.2, Fig. 2):
    assert counts == [
        11 * 11 * 3 * 96 + 96,          # CONV1 34,944 (the lecture's L5: "(11*11*3)*96 = 35K")
        5 * 5 * 48 * 256 + 256,         # CONV2 307,456
        3 * 3 * 256 * 384 + 384,        # CONV3 885,120 (connects to all maps, Sec. 3.2)
        3 * 3 * 192 * 384 + 384,        # CONV4 663,936
        3 * 3 * 192 * 256 + 256,        # CONV5 442,624
        6 * 6 * 256 * 4096 + 4096,      # FC6 37,752,832
        4096 * 4096 + 4096,             # FC7 16,781,312
        4096 * 1000 + 1000,             # FC8 4,097,000
    ]
    # Abstract: "60 million parameters"; lecture L10: about 60M.
    assert round(sum(counts) / 1e6) == 61 and 60e6 < sum(counts) < 61e6


def test_alexnet_paper_shapes_follow_the_lecture():
    # Lecture L4, L6, L8 at 227x227: (227-11)/4+1 = 55, (55-3)/2+1 = 27, ..., (13-3)/2+1 = 6.
    assert _conv_shapes(_meta("alexnet_paper"), 227) == [
        ("Conv", (96, 55, 55)), ("Grou", (96, 55, 55)), ("MaxP", (96, 27, 27)),
        ("Conv", (256, 27, 27)), ("Grou", (256, 27, 27)), ("MaxP", (256, 13, 13)),
        ("Conv", (384, 13, 13)), ("Conv", (384, 13, 13)), ("Conv", (256, 13, 13)), ("MaxP", (256, 6, 6))]
    model = _meta("alexnet_paper")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    # Sec. 3.2: CONV2, CONV4, CONV5 are split across the GPUs, CONV3 is not.
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    # Sec. 3.4: overlapping pooling, z = 3, s = 2.
    assert all((p.kernel_size, p.stride) == (3, 2) for p in model.modules() if isinstance(p, nn.MaxPool2d))
    # Sec. 4.2: dropout on the outputs of the first two FC layers, p = 0.5.
    kinds = [type(m).__name__ for m in model.classifier]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert all(m.p == 0.5 for m in model.classifier if isinstance(m, nn.Dropout))


def test_lrn_is_the_papers_formula_within_each_gpu():
    torch.manual_seed(0)
    a = torch.randn(1, 8, 2, 2) * 20
    lrn = GroupedLRN(groups=2)  # Sec. 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75
    b = lrn(a)
    # Hand formula of Sec. 3.3, b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta,
    # applied to each GPU's 4 maps separately (N = 4).
    expected = torch.empty_like(a)
    for g in range(2):
        for i in range(4):
            js = [g * 4 + j for j in range(max(0, i - 2), min(3, i + 2) + 1)]
            expected[:, g * 4 + i] = a[:, g * 4 + i] / (2 + 1e-4 * (a[:, js] ** 2).sum(1)) ** 0.75
    torch.testing.assert_close(b, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(GroupedLRN(groups=1)(a), expected)  # normalising across the GPUs differs


def test_alexnet_paper_init():
    torch.manual_seed(0)
    model = cnnzoo.create_model("alexnet_paper", width=0.5)
    layers = _weighted(model)
    # Sec. 5: biases 1 in CONV2, CONV4, CONV5 and FC6, FC7; 0 in CONV1, CONV3 and FC8.
    assert [m.bias.unique().tolist() for m in layers] == [[0.0], [1.0], [0.0], [1.0], [1.0], [1.0], [1.0], [0.0]]
    # Weights from N(0, 0.01).
    fc6 = layers[5].weight
    assert abs(fc6.std().item() - 0.01) < 2e-4 and abs(fc6.mean().item()) < 2e-4


def test_alexnet_is_torchvisions_variant():
    with torch.device("meta"):
        tv_model = pytest.importorskip("torchvision").models.alexnet(num_classes=1000)
    ours = _meta("alexnet")
    # Independent source: torchvision's own module (61,100,840 parameters).
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in tv_model.state_dict().items()}
    assert not any(isinstance(m, GroupedLRN) for m in ours.modules())
    assert all(m.groups == 1 for m in ours.modules() if isinstance(m, nn.Conv2d))
    assert [type(m).__name__ for m in ours.classifier][:2] == ["Dropout", "Linear"]  # dropout before FC6


def test_zfnet_shapes_follow_figure_3():
    # Fig. 3 at 224x224: 110 (conv1), 55 (pool1), 26 (conv2), 13 (pool2), 13, 13, 13 (conv3-5), 6 (pool5).
    assert _conv_shapes(_meta("zfnet"), 224) == [
        ("Conv", (96, 110, 110)), ("MaxP", (96, 55, 55)), ("Grou", (96, 55, 55)),
        ("Conv", (256, 26, 26)), ("MaxP", (256, 13, 13)), ("Grou", (256, 13, 13)),
        ("Conv", (384, 13, 13)), ("Conv", (384, 13, 13)), ("Conv", (256, 13, 13)), ("MaxP", (256, 6, 6))]
    convs = [m for m in _meta("zfnet").features if isinstance(m, nn.Conv2d)]
    # Fig. 3: 7x7 stride 2 then 5x5 stride 2; one GPU, so no groups (Sec. 3).
    assert [(c.kernel_size[0], c.stride[0], c.groups) for c in convs] == [(7, 2, 1), (5, 2, 1)] + [(3, 1, 1)] * 3


def test_zfnet_lecture_widens_conv3_to_5():
    paper, lecture = _meta("zfnet"), _meta("zfnet_lecture")
    # Lecture L11 / ZF Table 2 model (b): CONV3, 4, 5 of 512, 1024, 512 instead of 384, 384, 256.
    assert [c.out_channels for c in _weighted(lecture)[:5]] == [96, 256, 512, 1024, 512]
    assert [c.out_channels for c in _weighted(paper)[:5]] == [96, 256, 384, 384, 256]
    assert _conv_shapes(lecture, 224)[-1] == ("MaxP", (512, 6, 6))
    # Hand count of the difference: conv3..5 and FC6's input grow.
    extra = (3 * 3 * 256 * 512 + 512 + 3 * 3 * 512 * 1024 + 1024 + 3 * 3 * 1024 * 512 + 512 + 36 * 512 * 4096) - (
        3 * 3 * 256 * 384 + 384 + 3 * 3 * 384 * 384 + 384 + 3 * 3 * 384 * 256 + 256 + 36 * 256 * 4096)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(lecture) - n(paper) == extra


def test_width_keeps_groups_valid():
    model = cnnzoo.create_model("alexnet_paper", num_classes=10, width=0.3).eval()
    convs = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
    assert all(c % 2 == 0 for c in convs)  # every map count even: the two GPUs share them equally
    with torch.no_grad():
        assert model(torch.randn(1, 3, 99, 99)).shape == (1, 10)


def test_two_tower_equals_grouped_model_and_trains():
    torch.manual_seed(0)
    model = cnnzoo.create_model("alexnet_paper", num_classes=11, width=0.25).eval()
    towers = AlexNetTwoTower(model, devices=("cpu", "cpu")).eval()
    x = torch.randn(2, 3, 99, 99)
    with torch.no_grad():
        torch.testing.assert_close(towers(x), model(x), rtol=0, atol=1e-5)
    # Each device holds half of every layer: the two towers together have the model's parameters.
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(towers.tower0) + n(towers.tower1) == n(model)
    conv_in = [c.in_channels for c in towers.tower0 if isinstance(c, nn.Conv2d)]
    # CONV2, 4, 5 read their own device's maps (12, 48, 48 at width 1/4); CONV3 reads both (64).
    assert conv_in == [3, 12, 64, 48, 48]
    fc = [m for m in towers.tower0 if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in fc] == [(64 * 36, 512), (1024, 512), (1024, 6)]
    towers.train()
    towers(x).sum().backward()
    assert all(p.grad is not None for p in towers.parameters())


def test_two_tower_errors():
    with pytest.raises(ModelConfigError, match="splits an AlexNet"):
        AlexNetTwoTower(nn.Linear(2, 2))
    towers = AlexNetTwoTower(cnnzoo.create_model("alexnet_paper", num_classes=3, width=0.25))
    with pytest.raises(cnnzoo.InputShapeError, match="expects 3 input channel"):
        towers(torch.zeros(1, 1, 99, 99))


def test_init_kwarg_keeps_pytorch_default_init():
    torch.manual_seed(0)
    paper = cnnzoo.create_model("alexnet_paper", num_classes=10, width=0.25)
    torch.manual_seed(0)
    default = cnnzoo.create_model("alexnet_paper", num_classes=10, width=0.25, init="torch")
    # Paper (Sec. 5): N(0, 0.01) weights and bias 1 in CONV2; PyTorch's default: uniform with
    # bound 1/sqrt(fan_in) = 1/sqrt(11*11*3) ~ 0.052 for CONV1 (std = bound/sqrt(3) ~ 0.030).
    assert abs(paper.features[0].weight.std().item() - 0.01) < 1e-3
    assert abs(default.features[0].weight.std().item() - 1 / (363 ** 0.5 * 3 ** 0.5)) < 3e-3
    assert torch.all(paper.features[4].bias == 1) and not torch.all(default.features[4].bias == 1)
    with pytest.raises(ModelConfigError, match="init must be 'paper' or 'torch'"):
        cnnzoo.create_model("alexnet_paper", init="xavier")
