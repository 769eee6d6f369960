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
    other = tmp_path / "vgg.pth"
    torch.save(_tv_model("alexnet").state_dict(), other)
    with pytest.raises(cnnzoo.CnnzooError, match="does not match"):
        cnnzoo.load_torchvision_weights("resnet18", other)
