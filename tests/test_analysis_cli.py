"""`cnnzoo summary`: formats, grouping, user model files, and one-line errors (exit 2)."""
from __future__ import annotations

import csv
import io
import json

import pytest

from cnnzoo.cli import main

USER_FILE = '''
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))

def tiny():
    return Tiny()

def not_a_model():
    return 3

def broken():
    raise RuntimeError("cannot build")
'''


@pytest.fixture
def user_file(tmp_path):
    f = tmp_path / "mymodel.py"
    f.write_text(USER_FILE)
    return f


def run(capsys, *argv):
    code = main(["summary", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_for_a_user_model(capsys, user_file):
    code, out, _ = run(capsys, f"{user_file}:tiny", "--input", "1x10x10", "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["model"] == "Tiny" and d["input_shape"] == [1, 1, 10, 10]
    # conv: 8*8*4 outputs x 9 MACs; fc: 2 outputs x 4 (hand arithmetic)
    assert d["totals"]["macs"] == 8 * 8 * 4 * 9 + 8 and d["totals"]["params"] == 40 + 10
    assert [row["name"] for row in d["layers"]] == ["conv", "mean", "fc"]
    assert d["receptive_field"]["size"] == [3, 3] and d["depth"] == 2


def test_text_markdown_csv_and_depth(capsys, user_file):
    spec = f"{user_file}:tiny"
    code, text, _ = run(capsys, spec, "--input", "1x10x10", "--batch", "2")
    assert code == 0 and "2x4x8x8" in text and "MB = 10^6 bytes, MiB = 2^20 bytes" in text
    _, md, _ = run(capsys, spec, "--input", "1x10x10", "--format", "markdown")
    assert "| conv | Conv2d | 3/1 |" in md
    _, out, _ = run(capsys, spec, "--input", "1x10x10", "--format", "csv", "--count", "all")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["layer"] for r in rows] == ["conv", "mean", "fc"]
    assert int(rows[0]["flops"]) == 2 * 8 * 8 * 4 * 9 + 8 * 8 * 4   # + one bias add per output


def test_registry_model_grouped_by_depth(capsys):
    code, out, _ = run(capsys, "resnet18", "--depth", "1", "--format", "csv")
    names = [r["layer"] for r in csv.DictReader(io.StringIO(out))]
    assert code == 0 and "layer1" in names and not any("." in n for n in names)


@pytest.mark.parametrize("spec,needle", [
    ("{f}:not_a_model", "is not a model"), ("{f}:missing", "has no 'missing'"),
    ("{f}:broken", "cannot build"), ("{d}/nope.py:f", "no such file")])
def test_bad_model_specs_are_one_line_errors(capsys, user_file, spec, needle):
    code, out, err = run(capsys, spec.format(f=user_file, d=user_file.parent))
    assert code == 2 and needle in err and err.count("\n") == 1 and ("mymodel.py" in err or "nope.py" in err)


def test_bad_inputs_are_one_line_errors(capsys, user_file):
    code, _, err = run(capsys, f"{user_file}:tiny", "--input", "3x10x10")
    assert code == 2 and "'conv'" in err and err.count("\n") == 1
    code, _, err = run(capsys, "vgg16", "--input", "3x8x8")
    assert code == 2 and "too small" in err
    code, _, err = run(capsys, "resnet5O")
    assert code == 2 and "unknown model" in err


# ------------------------------------------------- the model argument: registry, file, run

def _params(out: str) -> int:
    line = next(ln for ln in out.splitlines() if ln.startswith("params"))
    return int(line.split()[1].replace(",", ""))


def test_registry_name_is_profiled_with_the_papers_configuration(capsys):
    # LeNet-5 (modern), 1x28x28 -> 10 classes; parameters by hand (weights + biases):
    # c1 1*6*25+6 = 156, c3 6*16*25+16 = 2,416, c5 16*120*25+120 = 48,120, f6 120*84+84 = 10,164,
    # output 84*10+10 = 850: 61,706 (what `cnnzoo list` gives)
    code, out, _ = run(capsys, "lenet5_modern")
    assert code == 0 and _params(out) == 61_706
    assert out.splitlines()[0] == ("model: lenet5_modern (registry): 10 classes, 1 input channel, width 1, "
                                   "input 1x28x28")
    # 3 channels and 1000 classes: c1 gains 2*6*25 = 300, the output 84*990+990 = 84,150 -> 146,156
    code, out, _ = run(capsys, "lenet5_modern", "--in-chans", "3", "--num-classes", "1000")
    assert code == 0 and _params(out) == 146_156
    # width 2: c1 12 maps: 1*12*25+12 = 312, c3 12*32*25+32 = 9,632, c5 32*240*25+240 = 192,240,
    # f6 240*168+168 = 40,488, output 168*10+10 = 1,690 -> 244,362
    code, out, _ = run(capsys, "lenet5_modern", "--width", "2")
    assert code == 0 and _params(out) == 244_362 and "width 2," in out


def _fake_run(folder):
    """A finished run of lenet5_modern with BatchNorm (norm=True), as cnnzoo train saves it."""
    import torch

    import cnnzoo
    from cnnzoo.training import save_checkpoint

    model = cnnzoo.create_model("lenet5_modern", num_classes=10, in_chans=1, norm=True)
    save_checkpoint({"model": "lenet5_modern", "model_kwargs": {"norm": True}, "num_classes": 10, "in_chans": 1,
                     "input_size": 28, "classes": [str(i) for i in range(10)], "mean": [0.3], "std": [0.3],
                     "dataset": "fashion-mnist", "state_dict": model.state_dict(), "config": {"epochs": 5},
                     "epoch": 5, "step": None}, folder / "checkpoint.pt")
    return model


def test_run_folder_and_checkpoint_are_profiled_as_trained(capsys, tmp_path):
    _fake_run(tmp_path / "run")
    # norm=True: c1, c3, c5 lose their biases (6+16+120 = 142) and gain BatchNorm's weight and bias
    # (2*(6+16+120) = 284): 61,706 - 142 + 284 = 61,848
    for arg in (tmp_path / "run", tmp_path / "run" / "checkpoint.pt"):
        code, out, _ = run(capsys, str(arg))
        assert code == 0 and _params(out) == 61_848
        assert "(run of lenet5_modern on fashion-mnist, 5 of 5 epochs): 10 classes, 1 input channel, width 1, " \
               "norm=True, input 1x28x28" in out.splitlines()[0]
    code, _, err = run(capsys, str(tmp_path / "run"), "--num-classes", "5")
    assert code == 2 and "is a trained run: its model is fixed; drop --num-classes" in err and err.count("\n") == 1


SIBLING = '''
from torch import nn
from blocks import block          # a module beside this file, as `python net.py` would import it


def build(num_classes=10, in_chans=1):
    return nn.Sequential(block(in_chans, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
'''
BLOCKS = '''
from torch import nn


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())
'''


@pytest.fixture
def sibling_file(tmp_path):
    d = tmp_path / "mynet"
    d.mkdir()
    (d / "blocks.py").write_text(BLOCKS)
    (d / "net.py").write_text(SIBLING)
    return d / "net.py"


def test_model_file_importing_a_sibling_module(capsys, sibling_file, monkeypatch):
    monkeypatch.chdir(sibling_file.parent.parent)          # not the file's folder, no PYTHONPATH
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    code, out, err = run(capsys, "mynet/net.py:build", "--num-classes", "3", "--input", "1x8x8")
    # conv 1*8*9+8 = 80, fc 8*3+3 = 27
    assert code == 0, err
    assert _params(out) == 107 and "mynet/net.py:build (model file): 3 classes, 1 input channel" in out


def test_model_file_without_factory_names_the_form(capsys, sibling_file):
    code, _, err = run(capsys, str(sibling_file))
    assert code == 2 and err.count("\n") == 1
    assert f"{sibling_file}: name the function or class that builds the model, as {sibling_file}:build" in err
    code, _, err = run(capsys, str(sibling_file.parent / "blocks.py"))
    assert "top-level functions and classes there: block" in err


def test_factory_without_an_option_that_is_needed(capsys, user_file):
    # tiny() takes no arguments and builds 2 classes: asking for 2 is fine, for 5 a one-line error
    code, out, _ = run(capsys, f"{user_file}:tiny", "--num-classes", "2", "--input", "1x10x10")
    assert code == 0
    code, _, err = run(capsys, f"{user_file}:tiny", "--num-classes", "5")
    assert code == 2 and "takes no num_classes argument and builds 2; 5 is needed here: add a num_classes " \
                         "parameter to tiny" in err


@pytest.mark.parametrize("arg", ["224", "224x224", "3x224x224", "1x3x224x224"])
def test_input_forms_side_hxw_chw_nchw(capsys, arg):
    # a side S is SxS and HxW takes the model's channel count: all four give VGG-16 one 3x224x224 image
    code, out, _ = run(capsys, "vgg16", "--input", arg, "--format", "json")
    assert code == 0 and json.loads(out)["input_shape"] == [1, 3, 224, 224]


def test_input_side_takes_the_models_channel_count(capsys):
    # LeNet-5 reads one grey channel (LeCun et al. 1998, Sec. II.B: 32x32 pixel images)
    code, out, _ = run(capsys, "lenet5", "--input", "40", "--format", "json")
    assert code == 0 and json.loads(out)["input_shape"] == [1, 1, 40, 40]


@pytest.mark.parametrize("arg", ["224x", "a", "0x224", "1x2x3x4x5", "3x-1x4"])
def test_a_malformed_input_is_blamed_on_the_argument(capsys, arg):
    with pytest.raises(SystemExit) as exc:
        main(["summary", "vgg16", "--input", arg])
    err = capsys.readouterr().err.splitlines()[-1]
    assert exc.value.code == 2 and "argument --input" in err and "CxHxW" in err and "HxW" in err
    assert "expects" not in err          # never the model's "VGG expects a 4-D input"


def test_googlenet_train_mode_profiles_the_auxiliary_heads(capsys):
    _, ev, _ = run(capsys, "googlenet_paper", "--format", "json")
    _, tr, _ = run(capsys, "googlenet_paper", "--train", "--format", "json")
    ev, tr = json.loads(ev), json.loads(tr)
    aux = [r for r in tr["layers"] if r["name"].startswith(("aux1.", "aux2."))]
    assert aux and not any(r["name"].startswith("aux") for r in ev["layers"])
    # Szegedy et al. 2014, Sec. 5: each head is avg pool 5x5/3 (14x14 -> 4x4), 1x1 conv to 128, FC 1024,
    # FC 1000. By hand: 4*4*128*C_in + 4*4*128*1024 + 1024*1000 MACs, with C_in = 512 (4a) and 528 (4d).
    heads = sum(16 * 128 * c + 2048 * 1024 + 1024 * 1000 for c in (512, 528))
    assert tr["totals"]["macs"] - ev["totals"]["macs"] == heads == sum(r["macs"] for r in aux)
    assert len(tr["output_shapes"]) == 3 and tr["totals"]["params_executed"] == tr["totals"]["params"]
    assert tr["totals"]["train_bytes_per_image"] > ev["totals"]["train_bytes_per_image"]


@pytest.mark.parametrize("dtype,size", [("fp16", 2), ("bf16", 2), ("fp32", 4)])
def test_dtype_casts_the_model_and_the_input_follows(capsys, user_file, dtype, size):
    code, out, _ = run(capsys, f"{user_file}:tiny", "--input", "1x10x10", "--format", "json", "--dtype", dtype)
    t = json.loads(out)["totals"]
    assert code == 0 and t["param_bytes"] == 50 * size and t["input_bytes"] == 100 * size
    # conv 4x8x8, mean 4, fc 2 values (hand count)
    assert t["activation_bytes"] == (256 + 4 + 2) * size and t["macs"] == 8 * 8 * 4 * 9 + 8


def test_an_ambiguous_input_is_a_one_line_error_showing_both_readings(capsys, tmp_path):
    f = tmp_path / "mlp.py"
    f.write_text("from torch import nn\ndef mlp():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))\n")
    code, _, err = run(capsys, f"{f}:mlp", "--input", "3x4x4x4")
    assert code == 2 and err.count("\n") == 1 and "batch of 3 inputs (4, 4, 4)" in err and "--batch 3" in err
    code, out, _ = run(capsys, f"{f}:mlp", "--input", "3x4x4x4", "--batch", "3", "--format", "json")
    assert code == 0 and json.loads(out)["input_shape"] == [3, 4, 4, 4]
