"""Parity with torchvision: same parameter count, strict state_dict loading, same logits.

The expected values come from torchvision itself (an independent implementation).
"""
from __future__ import annotations

import pytest
import torch
import torchvision

import cnnzoo

TV_MODELS = [n for n in cnnzoo.list_models() if cnnzoo.model_info(n).torchvision]


def _tv_model(name: str) -> torch.nn.Module:
    tv_name = cnnzoo.model_info(name).torchvision
    kwargs = {"aux_logits": False, "init_weights": True} if tv_name == "googlenet" else {}
    torch.manual_seed(0)
    return torchvision.models.get_model(tv_name, weights=None, num_classes=10, **kwargs).eval()


def test_every_torchvision_family_is_covered():
    tv = {cnnzoo.model_info(n).torchvision for n in TV_MODELS}
    expected = {"alexnet", "googlenet", *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
                *(f"resnet{d}" for d in (18, 34, 50, 101, 152))}
    assert expected <= tv


@pytest.mark.parametrize("name", TV_MODELS)
def test_state_dict_loads_strictly_and_logits_match(name):
    tv = _tv_model(name)
    with torch.device("meta"):
        ours = cnnzoo.create_model(name, num_classes=10)
    # Same tensors, same shapes, same keys: strict loading, then identical outputs.
    ours.load_state_dict(tv.state_dict(), strict=True, assign=True)
    ours.eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())
    size = max(64, cnnzoo.model_info(name).min_input_size)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=0, atol=1e-5)


def test_load_torchvision_weight_file(tmp_path):
    tv = _tv_model("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    model = cnnzoo.load_torchvision_weights("resnet18", path)
    assert model.get_classifier().out_features == 10
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv(x), rtol=0, atol=1e-5)


def test_load_torchvision_weights_bad_files(tmp_path):
    with pytest.raises(cnnzoo.DataFileError, match="weight file not found: .*nope.pth"):
        cnnzoo.load_torchvision_weights("resnet18", tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(cnnzoo.DataFileError, match="bad.pth is not a readable PyTorch weight file"):
        cnnzoo.load_torchvision_weights("resnet18", bad)
    other = tmp_path / "alexnet.pth"
    torch.save(_tv_model("alexnet").state_dict(), other)
    with pytest.raises(cnnzoo.CnnzooError, match="does not fit ResNet") as exc:
        cnnzoo.load_torchvision_weights("resnet18", other)
    # torchvision's AlexNet: 5 convs + 3 FCs, a weight and a bias each = 16 tensors, none in ResNet-18
    assert "16 in the file that ResNet lacks" in str(exc.value)
    assert "likely cause: another architecture: the file's keys are those of alexnet" in str(exc.value)


def _save_wrapped(state: dict, path, prefix: str) -> None:
    torch.save({prefix + k: v for k, v in state.items()}, path)


@pytest.mark.parametrize("prefix, wrapper", [("module.", "DataParallel"), ("_orig_mod.", "torch.compile"),
                                             ("module._orig_mod.", "torch.compile")])
def test_wrapper_prefixes_are_stripped_with_a_notice(tmp_path, caplog, prefix, wrapper):
    tv = _tv_model("resnet18")
    path = tmp_path / "wrapped.pth"
    _save_wrapped(tv.state_dict(), path, prefix)
    with caplog.at_level("WARNING", logger="cnnzoo"):
        model = cnnzoo.load_torchvision_weights("resnet18", path)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == prefix.count(".")                       # one line per prefix removed
    assert any(f"removed the '{prefix.split('.')[-2]}.' prefix" in n and wrapper in n for n in notes)
    assert all("\n" not in n and str(path) in n for n in notes)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv(x), rtol=0, atol=1e-5)


def test_real_dataparallel_state_dict_loads(tmp_path):
    # the prefix as nn.DataParallel itself writes it (not typed in by the test)
    tv = _tv_model("resnet18")
    path = tmp_path / "dp.pth"
    torch.save(torch.nn.DataParallel(tv).state_dict(), path)
    assert next(iter(torch.load(path))).startswith("module.")
    model = cnnzoo.load_torchvision_weights("resnet18", path)
    assert model.get_classifier().out_features == 10


def test_wrong_class_count_is_a_short_message(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None, num_classes=10)
    path = tmp_path / "r18-10.pth"
    torch.save(tv.state_dict(), path)
    with pytest.raises(cnnzoo.CnnzooError) as exc:
        cnnzoo.load_torchvision_weights("resnet18", path, num_classes=1000)
    msg = str(exc.value)
    # fc.weight (10, 512) vs (1000, 512) and fc.bias (10,) vs (1000,): two tensors, nothing missing
    assert msg.splitlines()[0].endswith("0 missing from the file, 0 in the file that ResNet lacks, 2 of another shape")
    assert "fc.weight (10, 512) vs (1000, 512)" in msg
    assert "another class count: the file's classifier has 10 outputs, the model 1000; build it with num_classes=10" in msg
    assert len(msg.splitlines()) <= 10 and len(msg) < 1000


def test_wrong_width_is_named(tmp_path):
    path = tmp_path / "r18-half.pth"
    torch.save(cnnzoo.create_model("resnet18", width=0.5).state_dict(), path)
    with pytest.raises(cnnzoo.CnnzooError, match=r"another width: the file's layers have 0.5 x the model's channels"):
        cnnzoo.load_torchvision_weights("resnet18", path)


def test_torchvision_googlenet_file_gives_torchvisions_pretrained_model(tmp_path):
    # torchvision.models.googlenet(weights=...) builds GoogLeNet(transform_input=True, aux_logits=True),
    # loads the file (aux keys included), then drops the aux heads. A random-weight file of the
    # same layout, loaded by cnnzoo, must give the same logits (eval mode).
    torch.manual_seed(0)
    tv = torchvision.models.GoogLeNet(num_classes=1000, aux_logits=True, transform_input=True, init_weights=True)
    with torch.no_grad():        # BN statistics of real activations, so every layer passes the input on
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None                    # cumulative average over the calibration batches
        tv.train()(torch.randn(8, 3, 96, 96, generator=torch.Generator().manual_seed(1)))
    path = tmp_path / "googlenet.pth"
    torch.save(tv.state_dict(), path)
    ours = cnnzoo.load_torchvision_weights("googlenet", path)
    assert ours.transform_input and ours.aux1 is not None
    tv.eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=0, atol=1e-5)
        # and the choice matters: without the input transform the logits differ
        plain = cnnzoo.load_torchvision_weights("googlenet", path, transform_input=False)
        assert (plain(x) - tv(x)).abs().max() > 1e-3


def test_other_causes_are_named():
    from cnnzoo.models._weights import WeightsMismatchError, load_state_dict

    grey = cnnzoo.create_model("resnet18", in_chans=1, num_classes=10).state_dict()
    with pytest.raises(WeightsMismatchError, match="another input channel count: the file's first conv takes 1 "
                                                   r"channel\(s\), the model 3; build it with in_chans=1"):
        load_state_dict(cnnzoo.create_model("resnet18", num_classes=10), grey, "grey.pth")
    lightning = {f"model.{k}": v for k, v in grey.items()}      # a training framework's own prefix: named, not guessed away
    with pytest.raises(WeightsMismatchError, match="every key in the file starts with 'model.'; remove it"):
        load_state_dict(cnnzoo.create_model("resnet18", in_chans=1, num_classes=10), lightning, "pl.ckpt")


def test_a_models_own_module_prefix_is_kept():
    # a model whose real submodule is called "module": its keys are not a DataParallel wrapper's
    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.module = torch.nn.Linear(2, 2)

    from cnnzoo.models._weights import strip_wrapper_prefixes

    state = Wrapper().state_dict()
    assert strip_wrapper_prefixes(state, state.keys()) == (state, [])
    assert list(strip_wrapper_prefixes(state)[0]) == ["weight", "bias"]      # without the model: stripped


def test_torchvision_twins_are_every_registry_name_torchvision_builds(tmp_path):
    """The registry's list of torchvision twins (compare's ImageNet chart, the weight loader's error)
    is every registry name that torchvision also builds."""
    from cnnzoo.registry import torchvision_models

    tv = set(torchvision.models.list_models(module=torchvision.models))
    assert sorted(torchvision_models()) == sorted(n for n in cnnzoo.list_models() if n in tv)
    path = tmp_path / "alexnet.pth"
    torch.save(_tv_model("alexnet").state_dict(), path)
    with pytest.raises(cnnzoo.CnnzooError, match="'lenet5' has no torchvision counterpart; torchvision-compatible "
                                                 "models: alexnet, vgg11, .*, googlenet, resnet18, .*resnet152$"):
        cnnzoo.load_torchvision_weights("lenet5", path)
