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
