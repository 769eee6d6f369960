"""The contract every registered model must honour (torchvision's and timm's test_models style).

One parametrized test per property, over the whole registry. Real-tensor checks run at each
model's minimum input size with ``width=0.25`` so the whole set stays fast on 2 CPU cores;
the default input size is checked on the meta device, at full width.
"""
from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo import InputShapeError, InputTooSmallError, UnknownModelError

MODELS = cnnzoo.list_models()
NUM_CLASSES = 7


def _small(name: str, in_chans: int | None = None, **kw) -> torch.nn.Module:
    info = cnnzoo.model_info(name)
    torch.manual_seed(0)
    return cnnzoo.create_model(name, num_classes=NUM_CLASSES,
                               in_chans=in_chans or info.default_input_size[0], width=0.25, **kw)


def _input(name: str, batch: int = 2, in_chans: int | None = None, size: int | None = None) -> torch.Tensor:
    info = cnnzoo.model_info(name)
    s = size or info.min_input_size
    return torch.randn(batch, in_chans or info.default_input_size[0], s, s, generator=torch.Generator().manual_seed(1))


def test_registry_covers_the_lecture():
    # LECTURE.md names these networks; each must be registered.
    for name in ["lenet5", "alexnet_paper", "alexnet", "zfnet", "vgg16", "googlenet_paper", "googlenet",
                 "resnet18", "resnet50", "resnet152", "cifar_resnet20", "cifar_plain56"]:
        assert name in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_default_size_forward_shape_on_meta(name):
    info = cnnzoo.model_info(name)
    with torch.device("meta"):
        model = cnnzoo.create_model(name, num_classes=1000, in_chans=info.default_input_size[0])
        out = model.eval()(torch.empty(2, *info.default_input_size))
    assert out.shape == (2, 1000)


@pytest.mark.parametrize("name", MODELS)
def test_min_size_is_tight(name):
    info = cnnzoo.model_info(name)
    assert 1 <= info.min_input_size <= max(info.default_input_size[1:])
    model = _small(name).eval()
    with torch.no_grad():
        assert model(_input(name)).shape == (2, NUM_CLASSES)
    if info.min_input_size > 1:
        with pytest.raises(InputTooSmallError) as exc:
            model(_input(name, size=info.min_input_size - 1))
        assert exc.value.min_size == info.min_input_size
        assert exc.value.layer and exc.value.layer in str(exc.value)
        assert f"{info.min_input_size}x{info.min_input_size}" in str(exc.value)


@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_every_parameter(name):
    model = _small(name).train()
    x = _input(name)
    if hasattr(model, "forward_with_aux"):
        logits, aux = model.forward_with_aux(x)
        loss = logits.sum() + sum(a.sum() for a in aux)
    else:
        loss = model(x).sum()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reaches {missing[:5]}"


@pytest.mark.parametrize("name", MODELS)
def test_trace_and_eval_determinism(name):
    model = _small(name).eval()
    x = _input(name, batch=1)
    with torch.no_grad():
        y1, y2 = model(x), model(x)
        traced = torch.jit.trace(model, x, check_trace=False)
        y3 = traced(x)
    assert torch.equal(y1, y2)
    torch.testing.assert_close(y3, y1, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_in_chans_1_and_features_and_reset_classifier(name):
    model = _small(name, in_chans=1).eval()
    x = _input(name, in_chans=1)
    with torch.no_grad():
        assert model(x).shape == (2, NUM_CLASSES)
        feats = model.forward_features(x)
        assert feats.dim() == 4 and feats.shape[0] == 2
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)
        assert model.get_classifier().out_features == 3
    with pytest.raises(InputShapeError, match=r"expects 1 input channel, got 3"):
        model(_input(name, in_chans=3))


@pytest.mark.parametrize("name", MODELS)
def test_defaults_build_the_papers_model(name):
    # create_model(name) with no options: the class count and input channels that `cnnzoo list`
    # and model_info give, so the paper's input (LeNet-5: one 32x32 grey image) runs through it.
    info = cnnzoo.model_info(name)
    with torch.device("meta"):
        model = cnnzoo.create_model(name).eval()
        out = model(torch.empty(1, *info.default_input_size))
    assert (model.num_classes, model.in_chans) == (info.num_classes, info.default_input_size[0])
    assert out.shape == (1, info.num_classes)


def test_lenet5_default_is_the_1998_network():
    # LeCun et al. 1998, Sec. II.B: 32x32 grey input, 10 outputs; the builder called directly
    # gives the same network as create_model.
    from cnnzoo.models.lenet import lenet5

    for model in (cnnzoo.create_model("lenet5"), lenet5()):
        assert (model.in_chans, model.num_classes) == (1, 10)
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", MODELS)
def test_timm_interface(name):
    # timm's contract: num_classes, num_features, get_classifier(), reset_classifier(0) -> the
    # (N, num_features) pre-logits, forward_head(features, pre_logits=True) -> the same vector.
    model = _small(name).eval()
    x = _input(name)
    head = model.get_classifier()
    assert model.num_classes == NUM_CLASSES and head.out_features == NUM_CLASSES
    assert isinstance(model.num_features, int) and head.in_features == model.num_features
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        assert pre.shape == (2, model.num_features)
        torch.testing.assert_close(head(pre), model(x))      # the classifier on the pre-logits gives the logits
        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), torch.nn.Identity) and model.num_classes == 0
        torch.testing.assert_close(model(x), pre)
        model.reset_classifier(5)                              # and back from 0
        assert model(x).shape == (2, 5) and model.get_classifier().in_features == model.num_features


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownModelError, match="did you mean.*resnet50"):
        cnnzoo.create_model("resnet05")


def test_wrong_rank_is_a_clear_error():
    model = _small("resnet18")
    with pytest.raises(InputShapeError, match=r"4-D input \(N, C, H, W\)"):
        model(torch.randn(3, 64, 64))


def test_cli_list_prints_the_registry_table(capsys):
    from cnnzoo.cli import main

    assert main(["list", "cifar_resnet2*"]) == 0
    out = capsys.readouterr().out
    header, _, row = out.splitlines()[:3]
    assert header.split()[:4] == ["name", "family", "year", "classes"]
    # He et al. 2015, Table 6: ResNet-20 on CIFAR-10 has 0.27M parameters (10 classes, option A);
    # 269,722 is the exact count that rounds to it (hand count in tests/test_resnet.py).
    assert row.split()[:5] == ["cifar_resnet20", "resnet", "2015", "10", "269,722"]
    assert "3x32x32" in row


def test_families_come_in_the_lectures_order():
    """registry.families() (the colours of compare's ImageNet chart) follows the lecture's sections."""
    from cnnzoo.lecture import CLAIMS, FAMILY_SECTIONS
    from cnnzoo.registry import families

    sections = list(dict.fromkeys(c.section for c in CLAIMS))
    assert set(families()) == set(FAMILY_SECTIONS)
    assert families() == sorted(FAMILY_SECTIONS, key=lambda f: sections.index(FAMILY_SECTIONS[f]))
