"""cnnzoo.profile: every expected figure comes from an independent source named in a comment
(hand arithmetic written here, torchvision's published weight metadata, torch.utils.flop_counter,
Araujo et al. 2019)."""
from __future__ import annotations

import collections

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis import ModelForwardError, ProfileOptionError, profile
from cnnzoo.errors import CnnzooError, InputShapeError, InputTooSmallError


def tv(name, **kw):
    """A torchvision model built on the meta device (no memory, instant)."""
    with torch.device("meta"):
        return torchvision.models.get_model(name, **kw)


def zoo(name):
    if name not in cnnzoo.list_models():
        pytest.skip(f"{name} not registered yet")
    with torch.device("meta"):
        return cnnzoo.create_model(name)


# ---------------------------------------------------------------- hand arithmetic (lecture layers)

def test_alexnet_conv1_and_pool1_by_hand():
    m = nn.Sequential(nn.Conv2d(3, 96, 11, stride=4), nn.MaxPool2d(3, 2))
    p = profile(m, (3, 227, 227))
    conv, pool = p.layer("0"), p.layer("1")
    assert conv.output_shape == (1, 96, 55, 55)            # (227 - 11) / 4 + 1 = 55
    assert conv.params == 11 * 11 * 3 * 96 + 96 == 34_944   # weights + biases (lecture L5: ~35K)
    assert conv.macs == 55 * 55 * 96 * (11 * 11 * 3) == 105_415_200
    assert conv.flops == 2 * conv.macs
    assert (conv.kernel, conv.stride, conv.padding) == ((11, 11), (4, 4), (0, 0))
    assert pool.output_shape == (1, 96, 27, 27) and pool.params == 0   # (55 - 3) / 2 + 1 = 27
    # RF: r = 11, j = 4 after conv1; pool adds (3 - 1) * 4 = 8 -> 19, j = 8
    assert conv.rf.size == (11, 11) and conv.rf.stride == (4, 4)
    assert pool.rf.size == (19, 19) and pool.rf.stride == (8, 8)
    assert p.depth == 1 and p.totals.params == 34_944


class _Inception(nn.Module):
    """Lecture L20 (naive) and L23 (bottleneck) modules on a 28x28x256 input."""

    def __init__(self, reduce: bool):
        super().__init__()
        r = 64 if reduce else 256
        seq = lambda *ms: nn.Sequential(*ms)  # noqa: E731
        self.b1 = nn.Conv2d(256, 128, 1)
        self.b3 = seq(*([nn.Conv2d(256, 64, 1)] if reduce else []), nn.Conv2d(r, 192, 3, padding=1))
        self.b5 = seq(*([nn.Conv2d(256, 64, 1)] if reduce else []), nn.Conv2d(r, 96, 5, padding=2))
        self.bp = seq(nn.MaxPool2d(3, 1, padding=1), *([nn.Conv2d(256, 64, 1)] if reduce else []))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def test_naive_inception_module_854M():
    p = profile(_Inception(reduce=False), (256, 28, 28))
    assert p.output_shapes == [(1, 672, 28, 28)]   # 128 + 192 + 96 + 256 (L20)
    # 28*28*128*1*1*256 + 28*28*192*3*3*256 + 28*28*96*5*5*256 (lecture L21: 854M)
    assert p.totals.macs == 25_690_112 + 346_816_512 + 481_689_600 == 854_196_224
    assert p.layer("cat").output_shape == (1, 672, 28, 28)


def test_bottleneck_inception_module():
    p = profile(_Inception(reduce=True), (256, 28, 28))
    assert p.output_shapes == [(1, 480, 28, 28)]   # 128 + 192 + 96 + 64 (L23)
    # three 1x1 convs to 64: 3 * 28*28*64*256; 1x1 to 128: 28*28*128*256;
    # 3x3 192 on 64: 28*28*192*9*64; 5x5 96 on 64: 28*28*96*25*64.  (The slide's "358M" does not add up.)
    assert p.totals.macs == 3 * 12_845_056 + 25_690_112 + 86_704_128 + 120_422_400 == 271_351_808
    assert p.depth == 2   # 1x1 reduce -> 3x3 on the longest path


def test_three_3x3_convs_see_7x7_with_fewer_weights():
    c = 64
    three = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(3)])
    one = nn.Conv2d(c, c, 7, padding=3, bias=False)
    p3, p1 = profile(three, (c, 32, 32)), profile(one, (c, 32, 32))
    assert p3.receptive_field.size == p1.receptive_field.size == (7, 7)   # L13: 1 + 3 * 2 = 7
    assert p3.totals.params == 3 * 9 * c * c and p1.totals.params == 49 * c * c   # L14
    assert p3.depth == 3 and p1.depth == 1


# ---------------------------------------------------------------- torchvision's published figures

# torchvision.models.get_model_weights(name).DEFAULT.meta: "_ops" (GFLOPs as torchvision counts
# them: conv + linear multiply-adds, 3 decimals) and "num_params"; depth as the papers count it.
@pytest.mark.parametrize("name,depth", [("alexnet", 8), ("vgg16", 16), ("googlenet", 22),
                                        ("resnet18", 18), ("resnet50", 50), ("vgg11_bn", 11)])
def test_torchvision_ops_params_depth(name, depth):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    kw = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    p = profile(tv(name, **kw), (3, 224, 224))
    assert round(p.totals.macs / 1e9, 3) == meta["_ops"]
    assert p.totals.params == p.totals.params_executed == meta["num_params"]
    assert p.depth == depth


def test_flop_counter_agrees_on_bias_free_resnet18():
    # torch.utils.flop_counter counts conv + mm as 2 FLOPs per multiply-add.
    m = tv("resnet18")
    with FlopCounterMode(display=False) as fc:
        m(torch.empty(2, 3, 96, 96, device="meta"))
    assert profile(m, (2, 3, 96, 96)).totals.flops == fc.get_total_flops()


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_every_registry_model_matches_flop_counter(name):
    with torch.device("meta"):
        m = cnnzoo.create_model(name).eval()
    size = m.default_input_size
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(torch.empty(1, *size, device="meta"))
    p = profile(m, size)
    assert p.totals.flops == fc.get_total_flops() == 2 * p.totals.macs
    assert p.totals.params == sum(t.numel() for t in m.parameters())


# ---------------------------------------------------------------- receptive fields

def _to_v1(m):
    """torchvision ResNet (v1.5: stride on the 3x3) -> the paper's v1 (stride on the first 1x1)."""
    for layer in (m.layer2, m.layer3, m.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    return m


# Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019,
# Table 1: AlexNet 195, VGG-16 212, ResNet-50 483, ResNet-101 1027, ResNet-152 1507 (ResNet v1).
@pytest.mark.parametrize("name,rf", [("alexnet", 195), ("vgg16", 212), ("resnet50", 483),
                                     ("resnet101", 1027), ("resnet152", 1507)])
def test_published_receptive_fields(name, rf):
    m = tv(name)
    p = profile(_to_v1(m) if name.startswith("resnet") else m, (3, 224, 224))
    assert p.receptive_field.size == (rf, rf) and p.receptive_field.stride == (32, 32)
    assert p.output_receptive_field.is_global


@pytest.mark.parametrize("name,rf", [("resnet50_v1", 483), ("resnet101_v1", 1027), ("resnet152_v1", 1507)])
def test_zoo_resnet_v1_receptive_fields(name, rf):
    assert profile(zoo(name), (3, 224, 224)).receptive_field.size == (rf, rf)   # Araujo et al. Table 1


def test_resnet50_v15_receptive_field_by_hand():
    # stem 7/2 -> 7 (j2); maxpool 3/2 -> 11 (j4); layer1 3 blocks x 2*4 -> 35; layer2: 3x3/2 +2*4 -> 43 (j8),
    # 3 blocks x 2*8 -> 91; layer3: +2*8 -> 107 (j16), 5 x 2*16 -> 267; layer4: +2*16 -> 299 (j32), 2 x 64 -> 427
    assert profile(tv("resnet50"), (3, 224, 224)).receptive_field.size == (427, 427)


class _Branches(nn.Module):
    def __init__(self, combine):
        super().__init__()
        self.a, self.b, self.combine = nn.Conv2d(4, 4, 1), nn.Sequential(nn.Conv2d(4, 4, 3, padding=1),
                                                                          nn.Conv2d(4, 4, 3, padding=1)), combine

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1) if self.combine == "cat" else self.a(x) + self.b(x)


@pytest.mark.parametrize("combine", ["cat", "add"])
def test_rf_is_max_over_paths(combine):
    p = profile(_Branches(combine), (4, 16, 16))
    assert p.receptive_field.size == (5, 5)   # 1x1 path: 1; 3x3-3x3 path: 1 + 2 + 2 = 5
    assert p.receptive_field.padding == (2, 2)   # 1 + 1 * 1
    assert p.depth == 2


def test_rf_dilation_asymmetric_kernels_and_strides():
    dil = profile(nn.Conv2d(1, 1, 3, dilation=2), (1, 16, 16))
    assert dil.receptive_field.size == (5, 5)   # d(k - 1) + 1 = 5
    asym = profile(nn.Sequential(nn.Conv2d(1, 1, (1, 7)), nn.Conv2d(1, 1, (7, 1))), (1, 16, 16))
    assert asym.receptive_field.size == (7, 7)
    st = profile(nn.Sequential(nn.Conv2d(1, 1, 3, stride=(1, 2)), nn.Conv2d(1, 1, 3)), (1, 16, 16))
    assert st.receptive_field.size == (5, 7) and st.receptive_field.stride == (1, 2)   # 3 + 2*1, 3 + 2*2


def test_transposed_and_grouped_and_depthwise_convs():
    g = profile(nn.Conv2d(32, 64, 3, padding=1, groups=4), (32, 16, 16))
    assert g.totals.macs == 16 * 16 * 64 * (32 // 4) * 9 and g.totals.params == 64 * 8 * 9 + 64
    dw = profile(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), (32, 16, 16))
    assert dw.totals.macs == 16 * 16 * 32 * 9 and dw.totals.params == 32 * 9
    m = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
    t = profile(m, (16, 8, 8))
    assert t.output_shapes == [(1, 8, 16, 16)]
    assert t.totals.macs == (16 * 8 * 8) * (8 * 4 * 4)   # each input element meets C_out * k * k weights
    with FlopCounterMode(display=False) as fc:
        m(torch.zeros(1, 16, 8, 8))
    assert t.totals.flops == fc.get_total_flops()
    assert t.receptive_field.stride == (0.5, 0.5)


# ---------------------------------------------------------------- the ways analyzers go wrong

class _Shared(nn.Module):
    def __init__(self):
        super().__init__()
        shared = nn.Linear(8, 8)
        self.a, self.b = nn.Sequential(shared, nn.ReLU()), nn.Sequential(shared)
        self.conv = nn.Linear(8, 8, bias=False)

    def forward(self, x):
        return self.conv(self.conv(self.b(self.a(x))))


def test_shared_module_and_module_called_twice():
    p = profile(_Shared(), (8,))
    assert p.totals.params == p.totals.params_executed == 72 + 64   # each tensor once
    assert p.totals.macs == 4 * 64   # four calls of an 8x8 linear, counted per call
    assert p.layer("conv").params == 64 and p.layer("conv", call=2).params == 0
    assert p.layer("conv", call=2).macs == 64


class _DirectParams(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(8, 4))
        self.scale = nn.Parameter(torch.ones(1), requires_grad=False)

    def forward(self, x):
        return (x @ self.weight) * self.scale


def test_parameters_registered_directly():
    p = profile(_DirectParams(), (3, 8))
    assert p.totals.params == p.totals.params_executed == 33
    assert p.totals.params_trainable == 32 and p.totals.params_frozen == 1
    assert p.totals.macs == 3 * 4 * 8   # (1, 3, 8) @ (8, 4): 12 outputs x K = 8
    assert p.depth == 1


def test_bare_layer_as_model():
    p = profile(nn.Conv2d(3, 8, 3), (3, 32, 32))
    assert [r.name for r in p.layers] == ["(model)"]
    assert p.totals.macs == 30 * 30 * 8 * 27 and p.totals.params == 8 * 27 + 8 and p.depth == 1


class _PermutedMLP(nn.Module):   # ConvNeXt's pattern: Linear layers on an (N, H, W, C) view
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)


@pytest.mark.parametrize("real", [False, True])
def test_linear_on_a_view_allocates_its_output(real):
    # F.linear on a 4-D input returns a view of its own matmul output: new memory all the same.
    # By hand, input (1, 4, 5, 5): fc1 25 x 8, GELU 25 x 8, fc2 25 x 4 elements; the permutes are views.
    p = profile(_PermutedMLP(), (4, 5, 5), real=real)
    assert p.totals.activation_elems == 25 * 8 + 25 * 8 + 25 * 4
    assert p.layer("fc2").activation_bytes == 25 * 4 * 4


@pytest.mark.parametrize("inplace", [True, False])
def test_inplace_relu_adds_no_activation_memory(inplace):
    p = profile(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace)), (3, 8, 8))
    assert p.layer("0").activation_bytes == 8 * 8 * 8 * 4
    assert p.layer("1").activation_bytes == (0 if inplace else 8 * 8 * 8 * 4)


def test_vgg16_forward_activations_by_hand():
    # conv outputs (ReLU in place), max pools, adaptive pool 7x7x512, fc 4096 + 4096 + 1000; flatten and
    # eval dropout allocate nothing.
    conv = 224**2 * 64 * 2 + 112**2 * 128 * 2 + 56**2 * 256 * 3 + 28**2 * 512 * 3 + 14**2 * 512 * 3
    pool = 112**2 * 64 + 56**2 * 128 + 28**2 * 256 + 14**2 * 512 + 7**2 * 512
    p = profile(tv("vgg16"), (3, 224, 224), batch_size=2)
    assert p.totals.activation_elems == 2 * (conv + pool + 7 * 7 * 512 + 4096 * 2 + 1000)
    assert p.totals.activation_bytes == 4 * p.totals.activation_elems
    assert p.totals.train_bytes_per_image == 2 * p.totals.activation_bytes // 2
    assert p.totals.param_bytes == 4 * 138_357_544   # torchvision num_params, float32


def test_googlenet_aux_heads_declared_vs_executed():
    m = tv("googlenet", aux_logits=True, init_weights=False)
    ev = profile(m, (3, 224, 224))
    assert ev.totals.params_executed == 6_624_904 < ev.totals.params   # torchvision num_params (no aux)
    tr = profile(m, (3, 224, 224), train=True)
    assert tr.totals.params_executed == tr.totals.params
    assert tr.output_shapes == [(1, 1000)] * 3   # GoogLeNetOutputs(logits, aux_logits2, aux_logits1)
    assert tr.totals.macs > ev.totals.macs and m.training   # the model keeps its own mode


class _Outputs(nn.Module):
    Out = collections.namedtuple("Out", "logits features")

    def __init__(self, kind):
        super().__init__()
        self.conv, self.fc, self.kind = nn.Conv2d(3, 4, 3), nn.Linear(4, 2), kind

    def forward(self, x):
        f = self.conv(x)
        y = self.fc(f.mean((2, 3)))
        return {"tuple": (y, f), "dict": {"logits": y, "features": f}, "named": self.Out(y, f)}[self.kind]


@pytest.mark.parametrize("kind", ["tuple", "dict", "named"])
def test_tuple_dict_namedtuple_outputs(kind):
    p = profile(_Outputs(kind), (1, 3, 10, 10))
    assert p.output_shapes == [(1, 2), (1, 4, 8, 8)]
    assert p.totals.macs == 8 * 8 * 4 * 27 + 4 * 2 and p.depth == 2
    assert p.receptive_field.size == (3, 3) and p.output_receptive_field.is_global


# ---------------------------------------------------------------- switches, uncounted ops, modes

def test_count_switches_by_hand():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
    n = 4 * 8 * 8   # conv output elements
    base = profile(m, (3, 8, 8))
    assert base.totals.macs == n * 27 and base.totals.flops == 2 * n * 27
    full = profile(m, (3, 8, 8), count="all")
    # + bias: 1 add per output; BN folded: 1 MAC per element; ReLU: 1 op; pool: 4 reads per output
    assert full.totals.macs == n * 27 + n
    assert full.totals.flops == 2 * (n * 27 + n) + n + n + (n // 4) * 4
    with pytest.raises(ProfileOptionError, match="unknown cost categories"):
        profile(m, (3, 8, 8), count=("conv", "bogus"))


class _Fancy(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, 1) + torch.nn.functional.interpolate(x, scale_factor=2)[..., ::2, ::2]


def test_uncounted_ops_are_listed_by_name():
    p = profile(_Fancy(), (2, 4, 4))
    assert p.uncounted == ["(model):cumsum"]   # interpolate, slicing and add have rules
    assert p.layer("(model)").uncounted == ["cumsum"]
    text = p.to_text()   # the row and the totals say so
    assert "0 + uncounted cumsum" in text and "1 not in MACs/FLOPs: (model):cumsum" in text
    assert "without 1 uncounted ops" in text


def test_real_tensors_give_the_same_figures():
    m = torchvision.models.resnet18(num_classes=10)
    m.bn1.eval()   # a mixed-mode model must come back exactly as it was
    a, b = profile(m, (3, 64, 64)), profile(m, (3, 64, 64), real=True)
    assert a.device == "meta" and b.device == "cpu"
    assert (a.totals.macs, a.totals.activation_bytes, a.totals.params, a.depth) == \
           (b.totals.macs, b.totals.activation_bytes, b.totals.params, b.depth)
    assert a.receptive_field == b.receptive_field
    assert next(m.parameters()).device.type == "cpu" and m.training and not m.bn1.training


def test_input_size_forms():
    m = nn.Conv2d(3, 4, 3)
    assert profile(m, (2, 3, 8, 8)).input_shape == profile(m, "3x8x8", batch_size=2).input_shape == (2, 3, 8, 8)
    assert profile(m, (3, 8, 8), 2).totals.macs == 2 * profile(m, (3, 8, 8)).totals.macs
    with pytest.raises(ProfileOptionError):
        profile(m, "3 by 8")
    with pytest.raises(ProfileOptionError):
        profile(m, (4, 3, 8, 8), batch_size=2)


def test_resnet152_totals():
    # Speed is benchmarks/profile_speed.py's business; here only the figures.
    p = profile(tv("resnet152"), (3, 224, 224))
    assert p.depth == 152 and round(p.totals.macs / 1e9, 3) == 11.514   # torchvision resnet152 "_ops"


@pytest.mark.parametrize("d,cin,cout,k,stride,padding,dilation,groups", [
    (2, 3, 8, 3, 1, 1, 1, 1), (2, 8, 8, (1, 7), (2, 1), (0, 3), 1, 2), (2, 16, 16, 3, 2, 2, 2, 16),
    (1, 4, 6, 5, 3, 0, 1, 2), (3, 2, 4, 3, (1, 2, 2), 1, (1, 1, 2), 1), (2, 3, 5, 11, 4, 0, 1, 1)])
def test_conv_output_shape_fast_path_equals_torch(d, cin, cout, k, stride, padding, dilation, groups):
    """The meta run's shortcut for convolutions gives torch's own output shape (oracle: the real op)."""
    from cnnzoo.analysis import ops
    conv = getattr(nn, f"Conv{d}d")(cin, cout, k, stride, padding, dilation, groups)
    x = torch.zeros(2, cin, *([13] * d))
    args = (x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    assert ops.conv_output_shape(f"conv{d}d", args, {}) == tuple(conv(x).shape)
    size = tuple(x.shape[1:]) if d == 1 else tuple(x.shape)   # a 3-tuple would read as (C, H, W)
    assert profile(conv, size, batch_size=2).output_shapes == [tuple(conv(x).shape)]


def test_conv_output_shape_leaves_bad_calls_to_torch():
    from cnnzoo.analysis import ops
    w = torch.zeros(8, 3, 5, 5)
    assert ops.conv_output_shape("conv2d", (torch.zeros(1, 4, 9, 9), w), {}) is None        # channels
    assert ops.conv_output_shape("conv2d", (torch.zeros(1, 3, 4, 4), w), {}) is None        # collapses
    assert ops.conv_output_shape("conv2d", (torch.zeros(1, 3, 9, 9), w), {"padding": "same"}) is None
    assert ops.conv_output_shape("conv2d", (torch.zeros(3, 9, 9), w), {}) is None           # unbatched
    assert ops.conv_output_shape("linear", (torch.zeros(1, 3), torch.zeros(2, 3)), {}) is None


class _MakesModulesInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return nn.ReLU()(self.conv(x)) + 1   # a module that is not part of the model


def test_module_created_inside_forward_is_charged_to_its_caller():
    p = profile(_MakesModulesInForward(), (3, 8, 8))
    assert [r.name for r in p.layers] == ["conv", "relu", "add"]   # ops of the root: bare names
    assert p.totals.macs == 6 * 6 * 4 * 27


@pytest.mark.parametrize("name,depth", [("alexnet", 8), ("vgg16", 16), ("vgg19", 19), ("googlenet", 22),
                                        ("resnet50", 50), ("resnet152", 152), ("plain34", 34),
                                        ("cifar_resnet56", 56)])
def test_zoo_depth_as_papers_count(name, depth):
    m = zoo(name)
    assert profile(m, m.default_input_size).depth == depth


def test_layer_lookup_and_grouping():
    p = profile(tv("alexnet"), (3, 224, 224))
    f0 = p.layer("features.0")
    assert f0.output_shape == (1, 64, 55, 55) and f0.kernel == (11, 11) and f0.padding == (2, 2)
    with pytest.raises(KeyError, match="features.0"):
        p.layer("features.00")
    groups = p.rows(depth=1)
    assert [r.name for r in groups] == ["features", "avgpool", "flatten", "classifier"]
    assert sum(r.macs for r in groups) == p.totals.macs and sum(r.params for r in groups) == p.totals.params


# ---------------------------------------------------------------- bad input

def test_input_too_small_names_the_layer():
    with pytest.raises(InputTooSmallError, match="features"):
        profile(tv("alexnet"), (3, 16, 16))


def test_wrong_channel_count_names_the_layer():
    with pytest.raises(InputShapeError, match="conv1"):
        profile(tv("resnet18"), (4, 64, 64))


class _Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Conv2d(3, 3, 1), _Raiser()

    def forward(self, x):
        return self.head(self.body(x))


class _Raiser(nn.Module):
    def forward(self, x):
        raise ValueError("boom\nsecond line")


def test_model_raising_inside_forward():
    with pytest.raises(ModelForwardError, match=r"ValueError in layer 'head' \(_Raiser\): boom$") as e:
        profile(_Broken(), (3, 4, 4))
    assert isinstance(e.value, CnnzooError)


class _Elementwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = self.conv(x)
        z = y * x + x            # new tensors
        z += y                   # in place: no new memory
        return torch.maximum(z, x) / x - torch.arange(3).view(1, 3, 1, 1)   # int tensor broadcast


def test_elementwise_meta_shortcuts_equal_the_real_run():
    rows = [[(r.name, r.flops, r.activation_bytes, r.output_shape) for r in profile(_Elementwise(), (3, 4, 4),
             count="all", real=real).layers] for real in (False, True)]
    assert rows[0] == rows[1]
    assert dict((n, b) for n, _, b, _ in rows[0])["add_"] == 0   # ops of the root: bare names
