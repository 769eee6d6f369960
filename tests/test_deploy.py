"""Deploy: verified export round trips, refusals, inference paths and ``bench --format json``."""
import json

import onnxruntime as ort
import pytest
import torch
from PIL import Image
from torch import nn

from cnnzoo import create_model
from cnnzoo.cli import main
from cnnzoo.deploy import (ExportError, Source, bench, export_model, fastest_validated_path,
                           fold_batchnorm)
from cnnzoo.models.alexnet import AlexNetTwoTower
from cnnzoo.deploy import predict
from cnnzoo.training import train
from test_train import TINY, data_dir  # noqa: F401  (the tiny synthetic MNIST fixture)

LOADERS = {  # each format's own runtime, independent of cnnzoo.deploy's loaders
    "onnx": lambda p: (lambda x, s=ort.InferenceSession(p): torch.from_numpy(s.run(None, {"input": x.numpy()})[0])),
    "torchscript": lambda p: torch.jit.load(p),
    "exported-program": lambda p: torch.export.load(p).module(),
}


class DataDependentBranch(nn.Module):
    """Chooses its output by a tensor's value: no graph capture can keep both branches."""

    def forward(self, x):
        return x if x.mean() > 0 else -x


@pytest.fixture(scope="module")
def tiny_run(data_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("runs") / "lenet"
    train("lenet5_modern", out=out, progress=False, data_dir=data_dir, **{**TINY, "epochs": 1})
    return out


def _lenet():
    torch.manual_seed(0)
    return create_model("lenet5_modern", num_classes=10, in_chans=1).eval()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "exported-program"])
def test_export_round_trip_every_format(tmp_path, fmt):
    model = _lenet()
    out = tmp_path / f"lenet.{fmt}"
    r = export_model(model, fmt, out, input_shape=(1, 28, 28))
    assert r.max_abs_diff <= r.tolerance and r.tolerance >= 1e-4 and r.notes == []
    assert json.loads((tmp_path / f"lenet.{fmt}.json").read_text())["max_abs_diff"] == r.max_abs_diff
    x = torch.randn(5, 1, 28, 28)                           # a batch size it was not checked at
    with torch.no_grad():
        assert torch.allclose(LOADERS[fmt](str(out))(x), model(x), atol=r.tolerance, rtol=0)


def test_fixed_batch_and_bf16_exports(tmp_path):
    model = _lenet()
    r = export_model(model, "exported-program", tmp_path / "b4.pt2", input_shape=(1, 28, 28), batch=4, dtype="bf16")
    assert r.batch == 4 and r.dtype == "bf16" and r.checks[0]["batch_size"] == 4
    ep = torch.export.load(str(tmp_path / "b4.pt2")).module()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert ep(x.bfloat16()).dtype == torch.bfloat16
        assert (ep(x.bfloat16()).float() - model(x)).abs().max() < 0.1 * model(x).abs().max()


def test_checkpoint_export_checks_real_test_images(tiny_run, data_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run.onnx"
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(out), "--data-dir", data_dir]) == 0
    printed = capsys.readouterr().out
    assert "64 test images" in printed and "tolerance" in printed
    rep = json.loads(out.with_name("run.onnx.json").read_text())
    real = [c for c in rep["checks"] if c["inputs"] == "test images"]
    assert real[0]["images"] == 64 and real[0]["agreement"] == 1.0 and rep["max_abs_diff"] <= rep["tolerance"]


def test_lrn_two_tower_alexnet_and_googlenet_aux_export(tmp_path):
    two = AlexNetTwoTower(create_model("alexnet_paper", num_classes=10, width=0.25).eval())  # grouped convs, LRN
    r = export_model(two, "torchscript", tmp_path / "two.pt", input_shape=(3, 67, 67), batch=2)
    assert r.max_abs_diff <= r.tolerance and "AlexNetTwoTower" in r.notes[0]
    g = create_model("googlenet_paper", num_classes=10, width=0.25).eval()     # LRN in the stem, aux heads
    r = export_model(g, "onnx", tmp_path / "g.onnx", input_shape=(3, 31, 31), batch=2)
    assert r.max_abs_diff <= r.tolerance and "auxiliary classifiers" in r.notes[0]


def test_a_model_that_cannot_export_names_its_layer(tmp_path, monkeypatch, capsys):
    bad = nn.Sequential(nn.Identity(), nn.Sequential(nn.Identity(), DataDependentBranch())).eval()
    for fmt in ("torchscript", "exported-program"):
        with pytest.raises(ExportError, match=r"layer 1\.1 \(DataDependentBranch\)") as err:
            export_model(bad, fmt, tmp_path / "bad.out", input_shape=(1, 8, 8))
        assert err.value.layer == "1.1"
    assert not (tmp_path / "bad.out").exists() and list(tmp_path.iterdir()) == []   # nothing left behind
    monkeypatch.setattr("cnnzoo.deploy.export.resolve_model", lambda *a: Source(bad, "bad", (1, 8, 8)))
    assert main(["export", "bad", "--format", "onnx", "--out", str(tmp_path / "bad.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "layer 1.1 (DataDependentBranch)" in err


@pytest.mark.parametrize("args, words", [
    (["--format", "tflite"], "unknown --format 'tflite'"),
    (["--format", "onnx", "--dtype", "bf16"], "ONNX's Conv has no bfloat16"),
    (["--format", "onnx", "--batch", "0"], "--batch '0'"),
    (["--format", "onnx", "--input", "2x1x28x28"], "--input 2x1x28x28: give one image's size"),
])
def test_cli_refusals_are_one_line_exit_2(tmp_path, capsys, args, words):
    assert main(["export", "lenet5_modern", "--out", str(tmp_path / "m.onnx"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_unwritable_out_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["export", "lenet5_modern", "--format", "onnx", "--out", str(tmp_path / "file" / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write --out" in err


def test_fold_batchnorm_removes_bn_and_keeps_outputs():
    torch.manual_seed(0)
    model = create_model("cifar_resnet20", num_classes=10).eval()
    for m in model.modules():                               # non-trivial statistics to fold
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        assert torch.allclose(folded(x), ref, atol=1e-4 * ref.abs().max().item(), rtol=0)


def test_bench_json_untrained_every_field(capsys):
    paths = "channels_last,bn_folded,ort_fp32"
    assert main(["bench", "lenet5_modern", "--batch-size", "4", "--rounds", "1", "--paths", paths,
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in rows] == ["eager", *paths.split(",")]
    for r in rows:
        assert {"path", "batch_size", "images_per_s", "median_ms", "top1", "agreement", "max_abs_diff"} <= set(r)
        assert r["batch_size"] == 4 and r["images_per_s"] == pytest.approx(4000 / r["median_ms"])
        assert r["top1"] is None and r["agreement"] is None and r["max_abs_diff"] < 1e-4
        assert r["validated"] == (r["path"] == "eager")


def test_bench_validates_a_run_and_predict_uses_the_fastest_validated_path(tiny_run, data_dir, tmp_path, monkeypatch):  # noqa: F811
    rows = bench(str(tiny_run), batch_size=8, paths="bn_folded,ort_fp32,ort_int8", data_dir=data_dir, rounds=1)
    by = {r.path: r for r in rows}
    assert by["eager"].agreement == 1.0 and by["bn_folded"].agreement == 1.0
    assert by["ort_fp32"].top1 == by["eager"].top1 and 0 <= by["ort_int8"].agreement <= 1
    name, why = fastest_validated_path(tiny_run)
    best = max((r for r in rows if r.validated), key=lambda r: r.images_per_s)
    assert name == best.path and "agreement" in why
    img = tmp_path / "x.png"
    Image.new("L", (28, 28), 128).save(img)
    monkeypatch.setenv("CNNZOO_DATA", data_dir)             # int8 paths recalibrate on the run's images
    [p] = predict(tiny_run, [img], topk=2)
    assert p["path"] == name
    assert fastest_validated_path(tmp_path)[0] == "eager"    # never benchmarked



def test_export_and_bench_take_summarys_input_forms_and_positive_counts(tmp_path, capsys):
    # a side S is SxS with the model's own channel count (lenet5_modern: 1 grey channel)
    assert main(["export", "lenet5_modern", "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
                 "--input", "32"]) == 0
    assert "input (N=dynamic, 1, 32, 32)" in capsys.readouterr().out
    for argv in (["bench", "lenet5_modern", "--rounds", "0"], ["bench", "lenet5_modern", "--batch-size", "-1"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and "argument --" in capsys.readouterr().err
