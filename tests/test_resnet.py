"""Fidelity of the ResNet family to He et al. 2015 (arXiv:1512.03385) and to torchvision.

Expected numbers come from the paper's tables, torchvision's published weight metadata, or a
hand derivation written next to them. Heavy networks run on the meta device (shapes only).
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.errors import ModelConfigError
from cnnzoo.models.resnet import BasicBlock, Bottleneck, BottleneckV1, ResNet, ZeroPadShortcut, cifar_layers


def _meta(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kw).eval()


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Conv + FC multiply-adds: FlopCounterMode reports FLOPs = 2 x MACs."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(shape, device=next(model.parameters()).device))
    return counter.get_total_flops() // 2


def _output_shapes(model: nn.Module, names: list[str], shape: tuple[int, ...]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for n in names:
        model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: out.__setitem__(n, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.empty(shape, device="meta"))
    return out


def _weight_layers(model: nn.Module) -> int:
    """Depth as the paper counts it: conv and FC layers, projection shortcuts excluded."""
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) and ".downsample." not in f".{n}."
               for n, m in model.named_modules())


# ---- ImageNet networks (Table 1) ------------------------------------------------------------------

# torchvision's weight metadata (ResNetXX_Weights.IMAGENET1K_V1.meta["num_params"]), an independent count.
TV_PARAMS = {18: torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["num_params"],
             34: torchvision.models.ResNet34_Weights.IMAGENET1K_V1.meta["num_params"],
             50: torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["num_params"],
             101: torchvision.models.ResNet101_Weights.IMAGENET1K_V1.meta["num_params"],
             152: torchvision.models.ResNet152_Weights.IMAGENET1K_V1.meta["num_params"]}


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_imagenet_params_and_depth(depth):
    # ~11.7M, 21.8M, 25.6M, 44.5M, 60.2M (torchvision docs).
    assert TV_PARAMS[depth] == pytest.approx({18: 11.7e6, 34: 21.8e6, 50: 25.6e6, 101: 44.5e6, 152: 60.2e6}[depth],
                                             rel=0.005)
    model = _meta(f"resnet{depth}")
    assert _params(model) == TV_PARAMS[depth]
    assert _weight_layers(model) == depth  # Table 1's "18-layer" ... "152-layer"
    if depth >= 50:  # v1 moves a stride, not a weight
        assert _params(_meta(f"resnet{depth}_v1")) == TV_PARAMS[depth]


@pytest.mark.parametrize("depth", [18, 34])
def test_plain_nets_drop_only_the_projection_shortcuts(depth):
    # Hand derivation: 3 projections (1x1 conv + BN) 64->128, 128->256, 256->512.
    projections = sum(c * 2 * c + 2 * (2 * c) for c in (64, 128, 256))  # = 173,824
    plain = _meta(f"plain{depth}")
    assert _params(plain) == TV_PARAMS[depth] - projections
    assert _weight_layers(plain) == depth
    assert not any(getattr(m, "downsample", None) for m in plain.modules())
    assert all(m.shortcut is None for m in plain.modules() if isinstance(m, BasicBlock))
    # Table 3's ResNet-34 A (zero-padding shortcuts) has the plain net's parameters; C has more than B.
    assert _params(_meta(f"resnet{depth}", shortcut="A")) == _params(plain)
    assert _params(_meta(f"resnet{depth}", shortcut="C")) > TV_PARAMS[depth]


@pytest.mark.parametrize("name, widths", [
    ("resnet18", (64, 64, 128, 256, 512)),  # Table 1, 18-layer column
    ("resnet50", (64, 256, 512, 1024, 2048)),  # Table 1, 50-layer column (x4 bottleneck expansion)
    ("resnet50_v1", (64, 256, 512, 1024, 2048)),
])
def test_table1_output_sizes(name, widths):
    # Table 1 "output size": conv1 112, conv2_x 56, conv3_x 28, conv4_x 14, conv5_x 7 (224 input).
    stages = ["maxpool", "layer1", "layer2", "layer3", "layer4"]
    shapes = _output_shapes(_meta(name), ["conv1", *stages], (1, 3, 224, 224))
    assert shapes["conv1"] == (64, 112, 112)
    assert [shapes[s] for s in stages] == [(c, s, s) for c, s in zip(widths, (56, 56, 28, 14, 7))]
    feats = _meta(name).forward_features(torch.empty(2, 3, 224, 224, device="meta"))
    assert feats.shape == (2, widths[-1], 7, 7)


@pytest.mark.parametrize("stage", ["layer2", "layer3", "layer4"])
def test_v1_and_v15_place_the_stride_differently(stage):
    v15, v1 = _meta("resnet50"), _meta("resnet50_v1")
    first15, first1 = v15.get_submodule(f"{stage}.0"), v1.get_submodule(f"{stage}.0")
    assert (first15.conv1.stride, first15.conv2.stride) == ((1, 1), (2, 2))  # torchvision v1.5
    assert (first1.conv1.stride, first1.conv2.stride) == ((2, 2), (1, 1))  # paper: conv3_1 etc. stride 2
    assert first15.downsample[0].stride == first1.downsample[0].stride == (2, 2)
    assert type(first1) is BottleneckV1 and type(first15) is Bottleneck
    # Which map the first 1x1 conv produces: full size in v1.5, halved in v1 (224 input).
    side = {"layer2": 56, "layer3": 28, "layer4": 14}[stage]
    c = first15.conv1.out_channels
    assert _output_shapes(v15, [f"{stage}.0.conv1"], (1, 3, 224, 224))[f"{stage}.0.conv1"] == (c, side, side)
    assert _output_shapes(v1, [f"{stage}.0.conv1"], (1, 3, 224, 224))[f"{stage}.0.conv1"] == (c, side // 2, side // 2)


# Table 1 "FLOPs" row, which the paper counts as multiply-adds: 1.8, 3.6, 3.8, 7.6, 11.3 x 10^9.
# The paper's figures are rounded (we count 3.66 for 34 layers and 3.86 for 50): 2.5% tolerance.
TABLE1_MACS = {"resnet18": 1.8e9, "resnet34": 3.6e9, "resnet50_v1": 3.8e9, "resnet101_v1": 7.6e9,
               "resnet152_v1": 11.3e9}


@pytest.mark.parametrize("name", TABLE1_MACS)
def test_table1_multiply_adds(name):
    assert _macs(_meta(name), (1, 3, 224, 224)) == pytest.approx(TABLE1_MACS[name], rel=0.025)


def test_v15_costs_more_than_the_paper_counts():
    # v1.5 runs the strided 3x3 at the input resolution: ResNet-50 4.1 GMACs, not Table 1's 3.8.
    v15, v1 = _macs(_meta("resnet50"), (1, 3, 224, 224)), _macs(_meta("resnet50_v1"), (1, 3, 224, 224))
    assert v15 > v1 * 1.05
    assert v15 != pytest.approx(TABLE1_MACS["resnet50_v1"], rel=0.05)


# ---- CIFAR-10 networks (Sec 4.2, Table 6) ---------------------------------------------------------

# Table 6 "# params": 0.27M, 0.46M, 0.66M, 0.85M, 1.7M (printed to 2 digits, 1.7M to 2 significant).
TABLE6_PARAMS = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


def _cifar_params_by_hand(depth: int, num_classes: int = 10) -> int:
    """Count of Sec 4.2's net, option A: every 3x3 conv has 9 c_in c_out weights and a BN (2 c_out)."""
    n = (depth - 2) // 6
    convs = [(3, 16)]  # the first 3x3 conv
    for c_in, c in ((16, 16), (16, 32), (32, 64)):  # three stages of 2n convs
        convs += [(c_in, c)] + [(c, c)] * (2 * n - 1)
    return sum(9 * a * b + 2 * b for a, b in convs) + 64 * num_classes + num_classes


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_table6_param_counts(depth):
    model = cnnzoo.create_model(f"cifar_resnet{depth}", num_classes=10)
    count = _params(model)
    assert count == _cifar_params_by_hand(depth)
    assert round(count / 1e6, 2 if depth < 110 else 1) == TABLE6_PARAMS[depth]
    assert _weight_layers(model) == depth == 6 * cifar_layers(depth)[0] + 2
    plain = cnnzoo.create_model(f"cifar_plain{depth}", num_classes=10)
    assert _params(plain) == count  # option A shortcuts are parameter-free
    assert _params(cnnzoo.create_model(f"cifar_resnet{depth}", num_classes=10, shortcut="B")) > count


def test_cifar_feature_maps_32_16_8():
    # Sec 4.2: feature maps of sizes {32, 16, 8} with {16, 32, 64} filters.
    model = _meta("cifar_resnet20", num_classes=10)
    shapes = _output_shapes(model, ["conv1", "layer1", "layer2", "layer3"], (1, 3, 32, 32))
    assert list(shapes.values()) == [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert model.default_input_size == (3, 32, 32)
    assert isinstance(model.maxpool, nn.Identity)  # no max pool in the CIFAR stem


@pytest.mark.parametrize("shortcut, projections", [("A", 0), ("B", 2), ("C", 9)])
def test_cifar_shortcut_options(shortcut, projections):
    # Sec 3.3: A zero-pads (no parameters), B projects where dims change (2 places in a 3-stage net),
    # C projects on every block (3n = 9 blocks for n = 3).
    model = cnnzoo.create_model("cifar_resnet20", num_classes=10, shortcut=shortcut)
    downs = [m.downsample for m in model.modules() if isinstance(m, BasicBlock) and m.downsample is not None]
    assert sum(isinstance(d, nn.Sequential) for d in downs) == projections
    if shortcut == "A":
        assert len(downs) == 2 and all(isinstance(d, ZeroPadShortcut) for d in downs)


def test_zero_pad_shortcut_is_identity_plus_zeros():
    x = torch.randn(2, 16, 9, 9)
    y = ZeroPadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 5, 5)  # ceil(9 / 2), as a 3x3 stride-2 conv with padding 1 gives
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert not y[:, 16:].any()
    assert list(ZeroPadShortcut(16, 32, 2).parameters()) == []


# ---- the lecture's blocks (L28, L30) --------------------------------------------------------------

def test_l28_residual_block_outputs_f_plus_x_with_a_parameter_free_shortcut():
    block = BasicBlock(64, 64).eval()
    assert block.downsample is None
    assert _params(block) == 2 * (9 * 64 * 64 + 2 * 64)  # only the two 3x3 convs and their BNs
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        f = block.residual(x)
        torch.testing.assert_close(block(x), torch.relu(f + x))
        nn.init.zeros_(block.bn2.weight)  # F(x) = 0: the block is the identity (after ReLU)
        torch.testing.assert_close(block(x.relu()), x.relu())
    plain = BasicBlock(64, 64, shortcut=None).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(x), torch.relu(plain.residual(x)))


def test_l30_bottleneck_on_28x28x256():
    block = Bottleneck(256, 64).eval()
    convs = [(m.in_channels, m.kernel_size, m.out_channels) for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(256, (1, 1), 64), (64, (3, 3), 64), (64, (1, 1), 256)]  # 1x1 64 -> 3x3 64 -> 1x1 256
    assert block.downsample is None  # identity shortcut: 256 in, 256 out
    x = torch.randn(1, 256, 28, 28)
    assert block(x).shape == (1, 256, 28, 28)
    # Hand count: 28*28*(256*64 + 9*64*64 + 64*256) = 54.6M MACs; two 3x3 convs at 256 channels
    # (a basic block at that width) cost 28*28*2*9*256*256 = 924.8M, ~17x more.
    assert _macs(block, (1, 256, 28, 28)) == 28 * 28 * (256 * 64 + 9 * 64 * 64 + 64 * 256)
    assert _macs(BasicBlock(256, 256).eval(), (1, 256, 28, 28)) > 16 * _macs(block, (1, 256, 28, 28))


# ---- options and errors ---------------------------------------------------------------------------

def test_zero_init_residual_makes_each_block_start_as_identity():
    model = cnnzoo.create_model("resnet18", zero_init_residual=True).eval()
    assert all(not m.bn2.weight.any() for m in model.modules() if isinstance(m, BasicBlock))
    assert all(m.bn1.weight.eq(1).all() for m in model.modules() if isinstance(m, BasicBlock))
    x = torch.rand(1, 64, 8, 8)  # non-negative, as after the stem's ReLU
    with torch.no_grad():
        torch.testing.assert_close(model.layer1(x), x)
    assert cnnzoo.create_model("resnet50", zero_init_residual=True, width=0.125).layer4[2].bn3.weight.abs().sum() == 0
    assert cnnzoo.create_model("resnet50", width=0.125).layer4[2].bn3.weight.eq(1).all()


def test_width_scales_channels_not_topology():
    full, half = _meta("resnet50"), _meta("resnet50", width=0.5)
    assert half.fc.in_features == 1024 and half.conv1.out_channels == 32
    assert _weight_layers(half) == _weight_layers(full) == 50
    strides = lambda m: [c.stride for c in m.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert strides(half) == strides(full)
    tiny = cnnzoo.create_model("cifar_resnet20", num_classes=10, width=0.01)  # rounds to 1 channel at least
    assert tiny.conv1.out_channels == 1 and tiny(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_forward_features_is_the_last_stage_map():
    model = cnnzoo.create_model("resnet18", num_classes=5, width=0.25).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 128, 2, 2)  # 512 * 0.25 channels, 64 / 32 pixels
        torch.testing.assert_close(model.forward_head(feats), model(x))


def test_registry_metadata():
    assert cnnzoo.list_models(family="resnet") == sorted(
        [f"resnet{d}" for d in (18, 34, 50, 101, 152)] + [f"resnet{d}_v1" for d in (50, 101, 152)]
        + ["plain18", "plain34"] + [f"cifar_{k}{d}" for k in ("resnet", "plain") for d in (20, 32, 44, 56, 110)])
    # A sample (model_info probes the minimum input size, ~1 s each on 2 busy cores).
    infos = {n: cnnzoo.model_info(n) for n in ("resnet18", "resnet50", "resnet50_v1", "plain18", "cifar_resnet20")}
    assert {n: i.torchvision for n, i in infos.items()} == {
        "resnet18": "resnet18", "resnet50": "resnet50", "resnet50_v1": None, "plain18": None, "cifar_resnet20": None}
    assert [i.default_input_size for i in infos.values()] == [(3, 224, 224)] * 4 + [(3, 32, 32)]
    # Every conv pads (3x3 pad 1, 7x7 pad 3, 1x1 stride s gives ceil(H/s)): no map ever collapses.
    assert {i.min_input_size for i in infos.values()} == {1}
    assert "resnet18_v1" not in cnnzoo.list_models()  # v1 = v1.5 for basic blocks: no duplicate
    assert cnnzoo.models.resnet.resnet50.__doc__.startswith("ResNet-50")


@pytest.mark.parametrize("call, match", [
    (lambda: cnnzoo.create_model("cifar_resnet20", shortcut="D"), "unknown shortcut 'D'"),
    (lambda: cnnzoo.create_model("cifar_plain20", shortcut="A"), "cifar_plain20 fixes shortcut=None"),
    (lambda: cnnzoo.create_model("resnet18", width=0), "width must be > 0"),
    (lambda: cnnzoo.create_model("plain18", zero_init_residual=True), "zero_init_residual needs shortcuts"),
    (lambda: cnnzoo.create_model("resnet50", widht=0.5), "resnet50 takes no argument 'widht'; it accepts shortcut"),
    (lambda: cnnzoo.create_model("resnet50", block=BasicBlock), "resnet50 fixes block="),
    (lambda: cifar_layers(21), "6n\\+2"),
    (lambda: ResNet(BasicBlock, (1, 1), stem="vgg"), "unknown stem 'vgg'"),
    (lambda: ZeroPadShortcut(32, 16), "cannot shrink"),
])
def test_configuration_mistakes_are_clear_errors(call, match):
    with pytest.raises(ModelConfigError, match=match) as exc:
        call()
    assert isinstance(exc.value, cnnzoo.CnnzooError)
