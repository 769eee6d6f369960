"""cnnzoo explain: the maps find the only evidence there is, the sanity check sees randomisation,
and the CLI refuses bad input in one line."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from cnnzoo.cli import main
from cnnzoo.explain import FLAG_RHO, attribution, auto_layer, explain, sanity_check
from test_train import TINY, data_dir  # noqa: F401  (the tiny synthetic MNIST fixture)

SIDE, BOX = 24, 6          # image side and the side of the only class evidence (pixels)


def _synthetic(n: int, seed: int):
    """Grey noise images (N, 1, 24, 24) in [0, 1] with one 6x6 striped patch at a random place:
    horizontal stripes for class 0, vertical for class 1; the patch is the only class evidence."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, SIDE, SIDE, generator=g) * 0.5
    y = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(0, SIDE - BOX + 1, (n, 2), generator=g)
    stripes = (torch.arange(BOX) % 2).float()
    for i in range(n):
        r, c = pos[i].tolist()
        x[i, 0, r:r + BOX, c:c + BOX] = stripes[:, None].expand(BOX, BOX) if y[i] == 0 else stripes[None, :].expand(BOX, BOX)
    return (x - 0.5) / 0.5, y, pos


class Tiny(nn.Module):
    """Three 3x3 convs (one 2x2 max pool), global average pooling, one linear layer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))      # (N, 2)


@pytest.fixture(scope="module")
def trained():
    """Tiny trained on 400 synthetic images (a few seconds on one thread); 40 test images."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Tiny()
    x, y, _ = _synthetic(400, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(12):
        for i in range(0, 400, 32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32]).backward()
            opt.step()
    model.eval()
    tx, ty, tpos = _synthetic(40, seed=2)
    with torch.no_grad():
        acc = (model(tx).argmax(1) == ty).float().mean().item()
    assert acc >= 0.9, f"the tiny network did not learn the task ({acc:.2f})"
    return model, tx, ty, tpos


def _on_patch(m: torch.Tensor, pos) -> bool:
    r, c = divmod(int(m.argmax()), SIDE)
    return pos[0] <= r < pos[0] + BOX and pos[1] <= c < pos[1] + BOX


@pytest.mark.parametrize("method, kwargs", [("occlusion", {"patch": 4, "stride": 2}), ("gradcam", {})])
def test_the_peak_falls_on_the_only_evidence(trained, method, kwargs):
    model, tx, ty, tpos = trained
    hits = [_on_patch(attribution(model, tx[i:i + 1], method, int(ty[i]), **kwargs), tpos[i]) for i in range(len(tx))]
    assert np.mean(hits) >= 0.8, f"{method}: peak on the patch for {np.mean(hits):.0%} of the images"


def test_auto_layer_is_the_last_map_before_global_pooling(trained):
    model, tx, _, _ = trained
    assert auto_layer(model, tx[:1]) == ("features",)


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_sanity_check_sees_the_randomised_model(trained, method):
    model, tx, ty, _ = trained
    rhos = []
    for i in range(5):
        x, t = tx[i:i + 1], int(ty[i])
        m = attribution(model, x, method, t)
        chk = sanity_check(model, x, method, t, m)
        assert [s["stage"] for s in chk["stages"]] == ["classifier", "all layers"]
        assert not chk["flagged"]
        rhos.append(chk["stages"][-1]["rho"])
    assert np.mean(rhos) < FLAG_RHO / 2, rhos


def test_sanity_check_flags_a_map_that_ignores_the_weights(trained, monkeypatch):
    """A "method" that returns the image's own brightness explains nothing: flagged (rho 1)."""
    maps = importlib.import_module("cnnzoo.explain.maps")     # cnnzoo.explain is also the function

    model, tx, ty, _ = trained
    monkeypatch.setattr(maps, "attribution", lambda model, x, method, target, **kw: x[0, 0])
    chk = sanity_check(model, tx[:1], "edge", 0, tx[0, 0])
    assert chk["flagged"] and chk["stages"][-1]["rho"] == pytest.approx(1.0)


def test_explain_writes_the_overlay_and_the_raw_map(trained, tmp_path):
    model, tx, ty, _ = trained
    seen = ((tx[:2] * 0.5 + 0.5) * 255).round().to(torch.uint8)         # as the model saw them, uint8
    res = explain(model, list(seen), method="saliency", out=tmp_path, topk=2, target=1, check=True)
    assert [r["class_index"] for r in res] == [1, 1] and len(res[0]["top"]) == 2
    raw = np.load(res[0]["npy"])
    assert raw.shape == (SIDE, SIDE) and np.allclose(raw, res[0]["map"])
    assert open(res[0]["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert [s["stage"] for s in res[0]["check"]["stages"]] == ["classifier", "all layers"]


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("argv, words", [
    (["--layer", "c33"], ["--layer 'c33'", "closest names", "c3"]),
    (["--class", "sandal"], ["--class 'sandal'", "class 0"]),
    (["--class", "10"], ["--class 10", "0..9"]),
])
def test_cli_bad_options_are_one_line_exit_2(argv, words, image, tmp_path, capsys):
    assert main(["explain", "lenet5_modern", str(image), "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "o").exists()                                # nothing written


def test_cli_missing_image_is_one_line_exit_2(image, tmp_path, capsys):
    assert main(["explain", "lenet5_modern", str(image), str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.png" in err and not (tmp_path / "o").exists()


def test_cli_prints_the_layer_its_field_and_the_files(image, tmp_path, capsys):
    assert main(["explain", "lenet5_modern", str(image), "--out", str(tmp_path), "--topk", "3"]) == 0
    out = capsys.readouterr().out
    # the last conv map before S4's pooling: C3 (hand derivation: C1 5x5 pad 2 -> 5 px; S2 2x2/2 -> 6 px,
    # stride 2; C3 5x5 -> 6 + 4 * 2 = 14 px, stride 2, padding 2)
    assert "Grad-CAM layer: c3 (receptive field 14x14 px, effective stride 2 px, padding 2 px)" in out
    assert (tmp_path / "img_gradcam.png").is_file() and np.load(tmp_path / "img_gradcam.npy").shape == (28, 28)
    assert "untrained weights" in out


def test_a_runs_page_shows_one_explained_test_image_per_class(data_dir, tmp_path, capsys):  # noqa: F811
    from test_draw import _browser

    from cnnzoo.training import train

    run = tmp_path / "lenet"
    train("lenet5_modern", out=run, progress=False, data_dir=data_dir, **{**TINY, "epochs": 1})
    assert main(["page", str(run), "--out", str(tmp_path / "page")]) == 0
    assert "explanations: Grad-CAM at c3 of " in capsys.readouterr().out
    text = (tmp_path / "page" / "lenet.html").read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # offline
    from selenium.webdriver.common.by import By
    browser = _browser()
    try:
        browser.get((tmp_path / "page" / "lenet.html").as_uri())
        figures = browser.find_elements(By.CSS_SELECTOR, "#explain figure")
        classes = [f.find_element(By.TAG_NAME, "figcaption").text.splitlines()[0] for f in figures]
        present = sorted({int(k) for k in np.unique(np.asarray(_test_labels(data_dir)))})
        assert classes == [str(k) for k in present]                     # one per class in the test set, in order
        assert all(int(f.find_element(By.TAG_NAME, "img").get_attribute("naturalWidth")) > 0 for f in figures)
        assert "Grad-CAM at c3" in browser.find_element(By.ID, "explain").text
        assert browser.find_elements(By.CSS_SELECTOR, "#rfgrid rect")    # next to the receptive-field viewer
    finally:
        browser.quit()


def _test_labels(data_dir):
    from cnnzoo.data import load_dataset

    return load_dataset("mnist", data_dir).test.labels


def test_weights_load_into_a_registry_name_and_are_refused_with_a_run(image, tmp_path, capsys):
    """--weights FILE: a state_dict of the registry model is what is explained (the logits differ from the
    untrained model's); a weight file given with a model file is one line, exit 2."""
    torch.manual_seed(5)
    from cnnzoo import create_model

    net = create_model("lenet5_modern")
    with torch.no_grad():
        net.output.bias.copy_(torch.arange(10.0) * 3)       # class 9 wins by far
    torch.save(net.state_dict(), tmp_path / "w.pth")
    res = explain("lenet5_modern", [image], weights=tmp_path / "w.pth", write=False)
    assert res[0]["class_index"] == 9 and res[0]["trained"]
    src = tmp_path / "net.py"
    src.write_text("from cnnzoo import create_model\ndef build(num_classes=10, in_chans=1):\n"
                   "    return create_model('lenet5_modern', num_classes=num_classes, in_chans=in_chans)\n")
    assert main(["explain", f"{src}:build", str(image), "--weights", str(tmp_path / "w.pth")]) == 2
    assert "--weights" in capsys.readouterr().err


@pytest.mark.parametrize("name", __import__("cnnzoo").list_models())
def test_auto_layer_of_every_registry_model_is_its_last_conv_map(name):
    """No convolution with a map of more than one position runs after the chosen layer, whose output is a map with
    more than one position; GoogLeNet's is the main head's inception5b (eval mode: no aux heads)."""
    from cnnzoo import create_model

    torch.manual_seed(0)
    try:
        model = create_model(name, width=0.25).eval()
    except TypeError:                                                     # LeNet-5 has no width
        model = create_model(name).eval()
    c, h, _ = model.default_input_size
    x = torch.randn(1, c, min(h, 96), min(h, 96))
    (layer,) = auto_layer(model, x)
    order, outs = [], {}
    mods = dict(model.named_modules())
    def seen(n, o):                                  # a forward hook must return None
        order.append(n)
        outs.setdefault(n, o)

    hooks = [m.register_forward_hook(lambda m, a, o, n=n: seen(n, o))
             for n, m in mods.items() if n and (n == layer or isinstance(m, nn.Conv2d))]
    with torch.no_grad():
        model(x)
    for hk in hooks:
        hk.remove()
    after = [n for n in order[order.index(layer) + 1:]                # convs with a map after it (LeNet-5's C5 is 1x1)
             if isinstance(mods[n], nn.Conv2d) and outs[n].shape[-1] * outs[n].shape[-2] > 1]
    assert after == [] and outs[layer].dim() == 4 and outs[layer].shape[-1] * outs[layer].shape[-2] > 1, (layer, after)
    if name.startswith("googlenet"):
        assert layer == "inception5b"


def test_alexnet_two_towers_give_the_grad_cam_of_the_whole_conv5():
    """AlexNetTwoTower's Grad-CAM over both towers' conv5 halves equals the source AlexNet's at its
    conv5 (``features.12``, the two groups' maps in one tensor)."""
    from cnnzoo import create_model
    from cnnzoo.models.alexnet import AlexNetTwoTower

    torch.manual_seed(0)
    net = create_model("alexnet_paper", width=0.25, num_classes=10).eval()
    towers = AlexNetTwoTower(net).eval()
    x = torch.randn(1, 3, 99, 99)
    assert auto_layer(towers, x) == ("tower0.12", "tower1.12")
    maps = [(attribution(towers, x, "gradcam", k), attribution(net, x, "gradcam", k, layers=("features.12",)))
            for k in range(10)]
    assert any(float(b.max()) > 0 for _, b in maps)                     # not all zeroed by the ReLU
    for a, b in maps:
        torch.testing.assert_close(a, b, atol=1e-5 * max(1.0, float(b.abs().max())), rtol=1e-4)


def test_a_data_set_image_is_resized_to_the_models_input_and_shown_so(trained):
    """A (C, H, W) tensor image of another size is resized to the model's input as training does; the
    map, the image shown beside it and the returned ``seen`` all have the input's size."""
    model, tx, _, _ = trained
    model.default_input_size = (1, 32, 32)
    try:
        seen = ((tx[0] * 0.5 + 0.5) * 255).round().to(torch.uint8)          # (1, 24, 24)
        (res,) = explain(model, [seen], write=False)
    finally:
        del model.default_input_size
    assert res["map"].shape == (32, 32) and tuple(res["seen"].shape) == (1, 32, 32)
