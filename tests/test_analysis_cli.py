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


@pytest.mark.parametrize("arg", ["224", "224x224", "3x224x224", "1x3x224x224"])
def test_input_forms_side_hxw_chw_nchw(capsys, arg):
    # a side S is SxS and HxW takes the model's channel count: all four give VGG-16 one 3x224x224 image
    code, out, _ = run(capsys, "vgg16", "--input", arg, "--format", "json")
    assert code == 0 and json.loads(out)["input_shape"] == [1, 3, 224, 224]


def test_input_side_takes_the_models_channel_count(capsys):
    code, out, _ = run(capsys, "lenet5", "--input", "40", "--format", "json")
    from cnnzoo.analysis.cli import load_model
    assert code == 0 and json.loads(out)["input_shape"] == [1, load_model("lenet5").default_input_size[0], 40, 40]


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
