"""Fidelity of LeNet-5 to LeCun et al. 1998 ("Gradient-based learning applied to document
recognition", Sec. II.B, Table I), and the differences of the modern variant."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.errors import ModelConfigError
from cnnzoo.models.lenet import EuclideanRBF, LeNet5, ScaledTanh, TrainableSubsample

LAYERS = ("c1", "s2", "c3", "s4", "c5", "f6", "output")

# Table I of the paper, as printed: row i = S2 map i, column j = C3 map j, X = connected.
TABLE_I = (
    "X   XXX  XXXX XX",
    "XX   XXX  XXXX X",
    "XXX   XXX  X XXX",
    " XXX  XXXX  X XX",
    "  XXX  XXXX XX X",
    "   XXX  XXXX XXX",
)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _layer_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    outs = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, a, o, n=n: outs.__setitem__(n, o)) for n in LAYERS]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outs


def test_trainable_parameters_per_layer_match_the_paper():
    model = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1)
    # Sec. II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164; the RBF output units are
    # fixed by hand (0 trainable); "60,000 trainable free parameters" in all.
    expected = {"c1": 156, "s2": 12, "c3": 1_516, "s4": 32, "c5": 48_120, "f6": 10_164, "output": 0}
    assert {n: _params(getattr(model, n)) for n in LAYERS} == expected
    assert _params(model) == 60_000


def test_layer_shapes_and_connections_match_the_paper():
    model = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1).eval()
    outs = _layer_outputs(model, torch.zeros(1, 1, 32, 32))
    # Sec. II.B / Fig. 2: 6@28x28, 6@14x14, 16@10x10, 16@5x5, 120 (1x1), 84, 10.
    shapes = {n: tuple(o.shape[1:]) for n, o in outs.items()}
    assert shapes == {"c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5),
                      "c5": (120, 1, 1), "f6": (84,), "output": (10,)}
    # Connections: a shared weight is one connection per output position; a subsampling unit has
    # its 4 inputs and its bias; an RBF unit one connection per F6 unit.
    conns = {n: _params(getattr(model, n)) * outs[n][0, 0].numel() for n in ("c1", "c3", "c5", "f6")}
    for n in ("s2", "s4"):
        conns[n] = outs[n].numel() * (getattr(model, n)[0].fan_in + 1)
    conns["output"] = model.output.centers.numel()
    # Sec. II.B: C1 122,304, S2 5,880, C3 151,600, S4 2,000, C5 48,120, F6 10,164; 340,908 in all.
    assert conns == {"c1": 122_304, "s2": 5_880, "c3": 151_600, "s4": 2_000, "c5": 48_120, "f6": 10_164,
                     "output": 840}
    assert sum(conns.values()) == 340_908


def test_c3_connectivity_is_table_one():
    c3 = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1).c3[0]
    base = c3(torch.zeros(1, 6, 5, 5))
    seen = []
    for i in range(6):  # perturb S2 map i alone and see which C3 maps move
        x = torch.zeros(1, 6, 5, 5)
        x[0, i] = 1.0
        moved = (c3(x) - base)[0].abs().flatten(1).amax(1)  # (16,) largest change per C3 map
        seen.append("".join("X" if m > 0 else " " for m in moved.tolist()))
    assert tuple(seen) == TABLE_I


def test_scaled_tanh_and_trainable_subsampling():
    f = ScaledTanh()
    # Appendix A: A = 1.7159, S = 2/3 are chosen so that f(1) = 1 and f(-1) = -1.
    torch.testing.assert_close(f(torch.tensor([1.0, -1.0])), torch.tensor([1.0, -1.0]), atol=1e-4, rtol=0)
    s = TrainableSubsample(2)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([0.5, -2.0]))
        s.bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.arange(32.0).view(1, 2, 4, 4)
    # Hand derivation: top-left window of map 0 holds 0, 1, 4, 5 -> sum 10 -> 0.5 * 10 + 1 = 6;
    # bottom-right window of map 1 holds 26, 27, 30, 31 -> sum 114 -> -2 * 114 = -228.
    y = s(x)
    assert y.shape == (1, 2, 2, 2)
    assert y[0, 0, 0, 0].item() == 6.0 and y[0, 1, 1, 1].item() == -228.0


def test_rbf_output_is_minus_squared_distance_to_fixed_codes():
    model = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1)
    rbf = model.output
    assert isinstance(rbf, EuclideanRBF) and not list(rbf.parameters())
    assert set(rbf.centers.unique().tolist()) == {-1.0, 1.0}
    x = torch.randn(3, 84)
    torch.testing.assert_close(rbf(x), -torch.cdist(x, rbf.centers) ** 2, rtol=1e-4, atol=1e-4)
    # The codes are fixed by a seed: two builds agree, so a saved state_dict is not needed to reproduce them.
    assert torch.equal(cnnzoo.create_model("lenet5", num_classes=10).output.centers, rbf.centers)
    model.reset_classifier(5)
    assert isinstance(model.output, EuclideanRBF) and model.output.out_features == 5


def test_linear_head_and_paper_init():
    model = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1, head="linear")
    assert isinstance(model.output, nn.Linear) and _params(model) == 60_000 + 84 * 10 + 10
    # Appendix C: weights uniform in [-2.4/F, 2.4/F], F = fan-in (C1: 25, C5: 400, F6: 120).
    for layer, fan_in in ((model.c1[0], 25), (model.c5[0], 400), (model.f6[0], 120)):
        assert layer.weight.abs().max().item() <= 2.4 / fan_in
        assert layer.weight.abs().max().item() > 0.8 * 2.4 / fan_in  # the whole interval is used
    # C3 map 0 sees 3 maps (F = 75), map 15 all 6 (F = 150): their kernels get their own bounds.
    c3 = model.c3[0].dense_weight()
    assert 0.8 * 2.4 / 75 < c3[0].abs().max().item() <= 2.4 / 75
    assert 0.8 * 2.4 / 150 < c3[15].abs().max().item() <= 2.4 / 150


def test_paper_lenet_needs_32x32_and_modern_takes_28x28():
    paper = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1).eval()
    with pytest.raises(cnnzoo.InputTooSmallError, match="32x32"):
        paper(torch.zeros(1, 1, 28, 28))
    # The paper padded MNIST's 28x28 digits to 32x32: the same model then runs.
    assert paper(nn.functional.pad(torch.zeros(1, 1, 28, 28), (2, 2, 2, 2))).shape == (1, 10)
    modern = cnnzoo.create_model("lenet5_modern", num_classes=10, in_chans=1).eval()
    outs = _layer_outputs(modern, torch.zeros(1, 1, 28, 28))
    assert {n: tuple(o.shape[1:]) for n, o in outs.items()} == {
        "c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5),
        "c5": (120, 1, 1), "f6": (84,), "output": (10,)}


def test_modern_variant_differences():
    modern = cnnzoo.create_model("lenet5_modern", num_classes=10, in_chans=1)
    kinds = {type(m) for m in modern.modules()}
    assert nn.ReLU in kinds and nn.MaxPool2d in kinds
    assert not kinds & {ScaledTanh, TrainableSubsample, EuclideanRBF, nn.BatchNorm2d}
    # Hand count: C1 6*25+6, dense C3 16*6*25+16, C5 120*400+120, F6 84*120+84, output 10*84+10.
    assert _params(modern) == 156 + 2_416 + 48_120 + 10_164 + 850
    normed = cnnzoo.create_model("lenet5_modern", num_classes=10, in_chans=1, norm=True)
    bns = [m.num_features for m in normed.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns == [6, 16, 120]
    # BN makes the conv biases redundant: 142 biases out, 2 * 142 BN parameters in.
    assert _params(normed) == _params(modern) - 142 + 2 * 142


def test_width_scales_channels_and_keeps_the_table_shape():
    model = cnnzoo.create_model("lenet5", num_classes=10, in_chans=1, width=2.0)
    assert (model.c1[0].out_channels, model.c5[0].out_channels, model.f6[0].out_features) == (12, 240, 168)
    # Each connection of Table I becomes a 2x2 block: C3 map j sees twice the paper's fan-in.
    paper_fan_in = [sum(row[j] == "X" for row in TABLE_I) for j in range(16)]  # 3 x6, 4 x9, 6
    assert [len(t) for t in model.c3[0].table] == [2 * paper_fan_in[j // 2] for j in range(32)]


@pytest.mark.parametrize("kwargs", [{"head": "softmax"}, {"width": 0}, {"norm": True}])
def test_bad_arguments_are_clear_errors(kwargs):
    with pytest.raises(ModelConfigError):
        LeNet5(10, 1, **kwargs)
    assert issubclass(ModelConfigError, cnnzoo.CnnzooError)
