"""The CLI as a new user meets it: --help and --version, quiet output, the registry listing's cache,
and the messages of train, eval, results and visualize (the trainer tests' tiny data sets)."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo import registry
from cnnzoo.cli import build_parser, main
from cnnzoo.training import Trainer, train
from test_train import data_dir  # noqa: F401  (tiny learnable MNIST-format data set)

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "verb")
    return list(sub.choices)


def test_help_lists_every_command_on_one_line_in_the_readmes_order(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "``" not in out
    listed = [m.group(1) for m in re.finditer(r"^    (\S+)\s{2,}\S", out, re.M)]
    assert listed == _commands()                       # every command, one line each (help on the same line)
    block = out[out.index("  COMMAND\n") + len("  COMMAND\n"):].split("\n\n")[0].splitlines()
    assert len(block) == len(listed)                   # no help text wrapped onto a second line
    assert all(len(line) <= 80 for line in out.splitlines())
    readme = ROOT.joinpath("README.md").read_text()
    usage = readme[readme.index("## Usage"):readme.index("\n## ", readme.index("## Usage") + 1)]
    in_readme = list(dict.fromkeys(re.findall(r"cnnzoo ([a-z]+)\b", usage)))
    assert len(in_readme) >= 9 and in_readme == [c for c in listed if c in in_readme]


def test_version(capsys):
    from cnnzoo import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith(f"cnnzoo {__version__} ")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty figures cache in tmp_path, read afresh by this process."""
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path))
    registry._cached_figures.cache_clear()
    registry.model_info.cache_clear()
    yield tmp_path
    registry._cached_figures.cache_clear()
    registry.model_info.cache_clear()


def test_list_computes_figures_once_then_reads_them_from_the_cache(cache, capsys, monkeypatch):
    assert main(["list", "lenet5"]) == 0
    fresh = capsys.readouterr().out
    stored = json.loads((cache / "registry-figures.json").read_text())
    # LeNet-5's min side by hand (LeCun et al. 1998, Sec. II.B): 32 -C1 5x5-> 28 -S2-> 14 -C3 5x5-> 10 -S4-> 5
    # -C5 5x5-> 1, while 31 gives 27, 13, 9, 4, where C5's 5x5 kernel no longer fits.
    params = sum(p.numel() for p in registry.create_model("lenet5", num_classes=10, in_chans=1).parameters())
    assert stored["models"]["lenet5"] == [params, 32] and " 32 " in fresh
    registry._cached_figures.cache_clear()
    registry.model_info.cache_clear()
    import cnnzoo.shapes
    monkeypatch.setattr(cnnzoo.shapes, "min_input_size", lambda *a: pytest.fail("probed again"))
    assert main(["list", "lenet5"]) == 0 and capsys.readouterr().out == fresh


def test_figures_of_another_source_version_are_not_used(cache):
    (cache / "registry-figures.json").write_text(json.dumps({"key": "other", "models": {"lenet5": [1, 2]}}))
    assert registry.model_figures("lenet5")[1] == 32


def _two_class_folder(root: Path) -> Path:
    """A 2-class image folder: bright squares (left vs right half) on noise, 24 train / 8 test images."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for k, name in enumerate(("left", "right")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                x = rng.integers(0, 60, (28, 28)).astype(np.uint8)
                x[10:18, 2 + 16 * k:10 + 16 * k] = 255
                Image.fromarray(x).save(root / split / name / f"{i}.png")
    return root


def test_two_classes_show_no_top5_and_one_epoch_is_singular(tmp_path, capsys):
    data = _two_class_folder(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["train", "lenet5_modern", "--dataset", "folder", "--data-dir", str(data), "--epochs", "1",
                 "--batch-size", "8", "--out", str(out), "--quiet"]) == 0
    text, err = capsys.readouterr()
    assert err == ""                                   # --quiet: no progress bar, no log line
    assert "after 1 epoch," in text and not re.search(r"top-5 \d", text)
    assert "no top-5: with 2 classes" in text
    assert main(["eval", str(out), "--data-dir", str(data)]) == 0
    text = capsys.readouterr().out
    assert "no top-5: with 2 classes" in text and "unfinished" not in text
    assert main(["results", str(tmp_path), "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["test top-5 %"] == "-" and row["params"] == f"{json.loads((out / 'metrics.json').read_text())['params']:,}"


def test_eval_of_an_interrupted_run_says_it_is_unfinished(data_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    real_step = Trainer.train_step

    def ctrl_c_step(self, x, y):
        out = real_step(self, x, y)
        self._stop_requested = self.epoch == 1    # what the SIGINT handler does, in epoch 2
        return out

    monkeypatch.setattr(Trainer, "train_step", ctrl_c_step)
    with pytest.raises(KeyboardInterrupt):
        train("lenet5_modern", out=tmp_path / "int", progress=False, data_dir=data_dir, dataset="mnist",
              epochs=3, batch_size=64, input_size=28)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "int"), "--data-dir", data_dir]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "unfinished run" in first and "epoch 1 of 3" in first and f"cnnzoo train {tmp_path / 'int'} --resume" in first


def test_results_text_table_fits_a_terminal_and_all_gives_every_column(capsys):
    from cnnzoo.training.results import COLUMNS, TEXT_COLUMNS

    assert main(["results", str(ROOT / "results/train")]) == 0
    short = capsys.readouterr().out.splitlines()
    assert short[0].split("  ")[0] == "run" and set(short[1]) == {"-", " "} and "|" not in short[0]
    assert [c for c in COLUMNS if c in short[0]] == list(TEXT_COLUMNS) and len(short[2]) <= 140
    assert main(["results", str(ROOT / "results/train"), "--all"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert all(c in header for c in COLUMNS)


def test_missing_mnist_without_any_directory_says_so(capsys, monkeypatch):
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    assert main(["train", "lenet5", "--dataset", "mnist", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "looked in" not in err and "no --data-dir given" in err and "--download" in err


def test_visualize_refuses_layer_without_image_before_writing_and_lists_partial_conv(data_dir, tmp_path,  # noqa: F811
                                                                                     capsys):
    from cnnzoo.visualize import conv_layers

    run = tmp_path / "lenet5"
    train("lenet5", out=run, progress=False, data_dir=data_dir, dataset="mnist", epochs=1, batch_size=64)
    before = sorted(p.name for p in run.iterdir())
    assert main(["visualize", str(run), "--layer", "c3"]) == 2
    assert "needs an IMAGE" in capsys.readouterr().err and sorted(p.name for p in run.iterdir()) == before
    # LeNet-5 (LeCun et al. 1998, Sec. II.B): convolutions C1, C3 (the partial one, Table I) and C5
    model = registry.create_model("lenet5", num_classes=10, in_chans=1)
    assert conv_layers(model, (1, 1, 32, 32)) == ["c1.0", "c3.0", "c5.0"]
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    assert main(["visualize", str(run), str(img), "--layer", "nope"]) == 2
    assert "c3.0" in capsys.readouterr().err and not (run / "filters.png").exists()
    assert main(["visualize", str(run), str(img), "--layer", "c3"]) == 0 and (run / "feature_maps.png").exists()


@pytest.mark.parametrize("name", ["alexnet_paper", "vgg11_bn", "googlenet"])   # LRN, dropout, batch norm
def test_probes_that_skip_shape_preserving_ops_find_the_same_minimum_input(name, monkeypatch):
    from cnnzoo import shapes

    info = registry._lookup(name)
    with torch.device("meta"):
        model = info.builder(num_classes=10, in_chans=3).eval()
    fast = shapes.min_input_size(model, info.default_input_size)
    monkeypatch.setattr(shapes, "SHAPE_PRESERVING", frozenset())        # every op's meta kernel runs
    assert shapes.min_input_size(model, info.default_input_size) == fast


# ------------------------------------------------------------ a user's mistakes: one line, exit 2
@pytest.mark.parametrize("argv, flag", [
    (["summary", "lenet5", "--depth", "0"], "--depth"), (["summary", "lenet5", "--batch", "-2"], "--batch"),
    (["summary", "lenet5", "--num-classes", "0"], "--num-classes"), (["summary", "lenet5", "--width", "0"], "--width"),
    (["eval", "somewhere", "--batch-size", "-3"], "--batch-size"), (["predict", "run", "a.png", "--topk", "0"], "--topk"),
    (["draw", "lenet5", "--input", "32x"], "--input"),
    (["export", "lenet5", "--out", "m.onnx", "--batch", "0"], "--batch"),
])
def test_counts_and_sizes_below_one_are_refused_by_the_parser(capsys, argv, flag):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.splitlines()[-1]
    assert exc.value.code == 2 and f"argument {flag}" in err


def test_paths_that_are_not_runs_say_so(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "no" / "run")]) == 2
    assert "no such run folder or checkpoint file" in capsys.readouterr().err
    (tmp_path / "metrics.json").write_text("{}")            # a file of a run, not its checkpoint
    assert main(["predict", str(tmp_path / "metrics.json"), "a.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a checkpoint cnnzoo can read" in err and "weights_only=False" not in err


def test_an_os_error_on_a_users_path_is_one_line(capsys, monkeypatch):
    def unwritable(args):
        raise PermissionError(13, "Permission denied", "/read-only/report.md")

    monkeypatch.setattr("cnnzoo.analysis.cli._cmd_summary", unwritable)
    assert main(["summary", "lenet5"]) == 2
    assert capsys.readouterr().err == ("cnnzoo summary: error: /read-only/report.md: Permission denied; "
                                       "choose another path\n")


def test_draw_takes_a_model_files_own_channels_and_summarys_input_forms(tmp_path, capsys):
    f = tmp_path / "grey.py"
    f.write_text("from torch import nn\n\ndef build(num_classes=10, in_chans=1):\n"
                 "    return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
                 "                         nn.Linear(4, num_classes))\n")
    assert main(["draw", f"{f}:build", "--out", str(tmp_path / "g.svg")]) == 0     # 1 channel, 224x224
    assert "1 input channel" in capsys.readouterr().out
    assert main(["draw", "lenet5", "--input", "40", "--out", str(tmp_path / "l.svg")]) == 0
    svg = (tmp_path / "l.svg").read_text()
    assert "input 1x40x40" in svg or "40x40x1" in svg                    # a side S is SxS, LeNet-5's one channel


def test_small_things_a_new_user_trips_on(tmp_path, capsys, monkeypatch):
    assert main(["list", "nope*"]) == 2
    assert "no model matches 'nope*'" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["cnnzoo"])
    assert main() == 0 and "commands:" in capsys.readouterr().out          # bare cnnzoo: the help
    assert main(["draw", "lenet5", "--format", "png", "--out", str(tmp_path / "l.svg")]) == 2
    assert "names a .svg file but --format is png" in capsys.readouterr().err and not (tmp_path / "l.svg").exists()
    assert main(["page", "lenet5", "--out", str(tmp_path / "pages" / "lenet.html")]) == 0
    assert (tmp_path / "pages" / "lenet.html").is_file()                 # the page itself, not a folder


def test_a_wrong_option_is_one_line_not_the_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "lenet5_modern", "--workers", "-1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err == ("cnnzoo train: error: argument --workers: '-1' is not a whole number of at least 0 "
                   "(cnnzoo train --help lists the options)\n")
