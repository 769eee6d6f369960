"""The trainer on a tiny synthetic MNIST-format data set the tests write (lenet5_modern)."""
import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.data import TTA_VIEWS, tta_views
from cnnzoo.data import datasets as ds
from cnnzoo.errors import CnnzooError
from cnnzoo.training import (CheckpointError, TrainConfig, Trainer, TrainingDivergedError, evaluate,
                             evaluate_model, load_checkpoint, load_model, lr_at, results_table, train)
from cnnzoo.deploy import predict
from test_data import write_idx

TINY = dict(dataset="mnist", epochs=2, batch_size=32, lr=0.1, input_size=28, seed=3, amp="fp32", flip=False,
            pad=1, erase=0.25, warmup_epochs=0.0, label_smoothing=0.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """160 train / 64 test 28x28 images: class k is a bright 6x6 square at one of 10 places + noise."""
    root = tmp_path_factory.mktemp("tinymnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", 160), ("t10k", 64)):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 60, (n, 28, 28))
        for i, k in enumerate(y):
            r, c = 3 + 8 * (k // 4), 2 + 6 * (k % 4)
            x[i, r:r + 6, c:c + 6] = 255
        write_idx(root / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", y)
    return str(root)


def run(data_dir, out, **kw):
    return train("lenet5_modern", out=out, progress=False, data_dir=data_dir, **{**TINY, **kw})


def test_lr_schedule():
    # warm-up reaches the peak linearly; cosine ends near zero, halfway is half the peak
    assert lr_at(0, 100, 1.0, 10, "cosine") == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10, "cosine") == pytest.approx(1.0)
    assert lr_at(55, 100, 1.0, 10, "cosine") == pytest.approx(0.5)
    assert lr_at(99, 100, 1.0, 10, "linear") == pytest.approx(1 / 90)


def test_tiny_run_reduces_loss_and_writes_metrics(data_dir, tmp_path):
    r = run(data_dir, tmp_path / "a", epochs=5)
    losses = [h["train_loss"] for h in r.history]
    assert losses[-1] < losses[0] * 0.8
    assert r.final["test_acc"] > 0.3  # chance is 0.1
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["status"] == "complete" and m["seed"] == 3 and m["input_size"] == 28 and m["width"] == 1.0
    assert m["versions"]["torch"] == torch.__version__ and m["hardware"]["cpu_count"] >= 1
    csv_lines = (tmp_path / "a" / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 6 and csv_lines[0].startswith("epoch,")  # header + 5 epochs
    assert not list((tmp_path / "a").glob(".*tmp*"))  # atomic writes leave no temp files
    # a finished run with the same config is reused, another config is refused
    assert run(data_dir, tmp_path / "a", epochs=5).reused
    with pytest.raises(CnnzooError, match=r"finished run with other options: --epochs 6 \(the run has 5\)"):
        run(data_dir, tmp_path / "a", epochs=6)
    # a run saved before the ema option existed trained without it: reused as such, refused with it
    mpath = tmp_path / "a" / "metrics.json"
    m = json.loads(mpath.read_text())
    del m["config"]["ema"]
    mpath.write_text(json.dumps(m))
    assert run(data_dir, tmp_path / "a", epochs=5).reused
    with pytest.raises(CnnzooError, match=r"finished run with other options: --ema 0.9 \(the run has 0.0\)"):
        run(data_dir, tmp_path / "a", epochs=5, ema=0.9)


def _final_state(out):
    ck = load_checkpoint(out / "checkpoint.pt")
    return ck["state_dict"], ck["history"][-1]


def _assert_same_run(a, b):
    (sa, ha), (sb, hb) = _final_state(a), _final_state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert ha[key] == hb[key], key


def _run_killed_mid_epoch_2(data_dir, out, monkeypatch, **kw):
    """A run that dies as under kill -9 at step 3 of epoch 2: nothing is saved after epoch 1."""
    real_step = Trainer.train_step

    def dying_step(self, x, y):
        if self.epoch == 1 and self.step == 2:
            raise SystemExit("killed")
        return real_step(self, x, y)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "train_step", dying_step)
        with pytest.raises(SystemExit):
            run(data_dir, out, **kw)


def test_resume_after_kill_equals_uninterrupted(data_dir, tmp_path, monkeypatch):
    run(data_dir, tmp_path / "ref", flip=True)
    _run_killed_mid_epoch_2(data_dir, tmp_path / "killed", monkeypatch, flip=True)
    assert load_checkpoint(tmp_path / "killed")["epoch"] == 1
    with pytest.raises(CnnzooError, match="--resume"):
        run(data_dir, tmp_path / "killed", flip=True)
    # --tta on resume is taken (it changes no training step): same run, the final epoch gains its TTA figure
    r = run(data_dir, tmp_path / "killed", resume=True, tta="flip", flip=True)
    _assert_same_run(tmp_path / "ref", tmp_path / "killed")
    assert "test_acc_tta" in r.final and "test_acc_tta" not in r.history[0]
    # a finished run is not re-scored by train(): the error names the command that does it
    with pytest.raises(CnnzooError, match="cnnzoo eval .* --tta 10crop"):
        run(data_dir, tmp_path / "killed", resume=True, tta="10crop", flip=True)


def test_ctrl_c_saves_mid_epoch_and_resume_equals_uninterrupted(data_dir, tmp_path, monkeypatch):
    run(data_dir, tmp_path / "ref")
    real_step = Trainer.train_step

    def ctrl_c_step(self, x, y):
        out = real_step(self, x, y)
        if self.epoch == 1 and self.step == 1:
            self._stop_requested = True  # what the SIGINT handler does
        return out

    monkeypatch.setattr(Trainer, "train_step", ctrl_c_step)
    with pytest.raises(KeyboardInterrupt):
        run(data_dir, tmp_path / "int")
    ck = load_checkpoint(tmp_path / "int")
    assert (ck["epoch"], ck["step"]) == (1, 2)
    assert json.loads((tmp_path / "int" / "metrics.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(Trainer, "train_step", real_step)
    run(data_dir, tmp_path / "int", resume=True)
    _assert_same_run(tmp_path / "ref", tmp_path / "int")


def test_ema_is_the_running_average_of_the_trained_weights_and_buffers(data_dir, tmp_path):
    t = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, ema=0.75, **TINY), tmp_path, progress=False)
    expected = None
    for step, _, x, y in t.train_batches(0):
        if step == 3:
            break
        t.train_step(x, y)
        now = {k: v.clone() for k, v in t.model.state_dict().items() if v.is_floating_point()}
        # by hand: the first step copies the weights, later ones move 1/4 of the way to them
        expected = now if expected is None else {k: 0.75 * expected[k] + 0.25 * now[k] for k in now}
    ema, model = t.ema.module.state_dict(), t.model.state_dict()
    assert any("running_mean" in k for k in expected)         # BatchNorm statistics are averaged too
    for k, v in expected.items():
        torch.testing.assert_close(ema[k], v)
    assert any(not torch.equal(ema[k], model[k]) for k in expected)
    counters = [k for k in model if not model[k].is_floating_point()]    # num_batches_tracked: copied
    assert counters and all(int(ema[k]) == int(model[k]) == 3 for k in counters)


def test_ema_run_evaluates_and_saves_the_average_and_resumes_exactly(data_dir, tmp_path, monkeypatch):
    r = run(data_dir, tmp_path / "ref", ema=0.9)
    ck = load_checkpoint(tmp_path / "ref")
    trained, averaged = ck["train_state_dict"], ck["state_dict"]
    assert ck["ema_updates"] == 2 * 5 and any(not torch.equal(trained[k], averaged[k]) for k in trained)
    # cnnzoo eval scores the saved weights: the average the run reported (fp32 run, same numerics)
    assert evaluate(tmp_path / "ref", data_dir=data_dir)["top1"] == pytest.approx(r.final["test_acc"])
    _run_killed_mid_epoch_2(data_dir, tmp_path / "killed", monkeypatch, ema=0.9)
    run(data_dir, tmp_path / "killed", ema=0.9, resume=True)
    _assert_same_run(tmp_path / "ref", tmp_path / "killed")
    resumed = load_checkpoint(tmp_path / "killed")
    assert all(torch.equal(trained[k], resumed["train_state_dict"][k]) for k in trained)
    assert resumed["ema_updates"] == ck["ema_updates"]
    table = results_table(tmp_path)                           # the decay in its own column
    assert "| EMA |" in table and "| 0.9 |" in table


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
    real_step = Trainer.train_step

    def poisoned(self, x, y):
        if self.epoch == 1:
            x = x * float("nan")
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    with pytest.raises(TrainingDivergedError, match="nan") as e:
        run(data_dir, tmp_path / "nan")
    assert "checkpoint" in str(e.value)
    ck = load_checkpoint(tmp_path / "nan")
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["state_dict"].values() if v.is_floating_point())
    assert json.loads((tmp_path / "nan" / "metrics.json").read_text())["status"] == "diverged"


def test_checkpoint_round_trip_eval_and_predict(data_dir, tmp_path):
    r = run(data_dir, tmp_path / "c", epochs=1)
    ck = torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)  # plain data + tensors only
    assert ck["model"] == "lenet5_modern" and ck["input_size"] == 28 and ck["classes"][0] == "0"
    model, meta = load_model(tmp_path / "c")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ck["state_dict"].items())
    res = evaluate(tmp_path / "c", data_dir=data_dir)
    assert res["top1"] == pytest.approx(r.final["test_acc"])
    assert sum(map(sum, res["confusion"])) == 64 and len(res["per_class"]) == 10
    assert (tmp_path / "c" / "confusion.png").stat().st_size > 1000
    img = tmp_path / "shirt.png"
    Image.new("RGBA", (50, 37), (200, 30, 30, 255)).save(img)  # any size and mode
    [p] = predict(tmp_path / "c", [img], topk=3)
    assert len(p["top"]) == 3 and p["top"][0][1] >= p["top"][1][1]
    assert 0 < sum(q for _, q in p["top"]) <= 1 + 1e-6 and p["top"][0][0] in meta["classes"]
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "bad.pt")


def test_cli_train_eval_predict_results(data_dir, tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert main(["train", "lenet5_modern", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "1",
                 "--batch-size", "64", "--input-size", "28", "--erase", "0.5", "--out", out, "--quiet"]) == 0
    assert "test top-1" in capsys.readouterr().out
    assert main(["eval", out, "--data-dir", data_dir]) == 0
    assert main(["results", str(tmp_path), "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert "| lenet5_modern | mnist | 28x28 |" in table
    assert "| erase 0.5 |" in table          # lenet5_modern's recipe: no crop, no flip; --erase on
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- cnnzoo-results:begin -->\nold\n<!-- cnnzoo-results:end -->\nrest\n")
    assert main(["results", str(tmp_path), "--readme", str(readme)]) == 0
    text = readme.read_text()
    rows = [ln for ln in table.splitlines() if ln.startswith("|")]
    assert len(rows) == 3 and "\n".join(rows) in text and "old" not in text and text.startswith("intro") and text.rstrip().endswith("rest")
    capsys.readouterr()
    assert main(["train", "lenet5_modern", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert f"data folder {tmp_path / 'none'} (given as --data-dir) does not exist" in capsys.readouterr().err


class _Linear(torch.nn.Module):
    """A model that sees left from right: logits = W @ flattened image."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _assert_scores(res, p, y):
    """``res`` (one view's metrics) against the hand-averaged probabilities ``p`` (N, K)."""
    assert res["top1"] == pytest.approx((p.argmax(1) == y).float().mean().item())
    assert res["loss"] == pytest.approx(-p[torch.arange(len(y)), y].log().mean().item(), rel=1e-5)


def test_multi_view_tta_scores_the_mean_softmax_of_the_views():
    torch.manual_seed(0)
    x, y = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (50,))
    model = _Linear()
    norm = (lambda v: (v.float() / 255 - 0.5) / 0.25)
    prob = (lambda v: model(norm(v)).softmax(1))
    res = evaluate_model(model, x, y, 28, [0.5], [0.25], 10, batch_size=16, tta="flip")
    with torch.no_grad():                               # by hand: the image and its mirror, averaged
        _assert_scores(res["tta"], (prob(x) + prob(x.flip(-1))) / 2, y)
    assert res["tta"]["top1"] != res["top1"] or res["tta"]["loss"] != pytest.approx(res["loss"])
    # the single view is unchanged by asking for TTA
    single = evaluate_model(model, x, y, 28, [0.5], [0.25], 10, batch_size=16)
    assert "tta" not in single and single["top1"] == res["top1"] and single["loss"] == pytest.approx(res["loss"])
    # 10-crop with crop padding 2: the image shifted 2 px towards each corner (zeros enter), and the mirrors.
    # F.pad with negative amounts crops: (2, -2, 2, -2) shifts right and down = the crop at offset (0, 0).
    res10 = evaluate_model(model, x, y, 28, [0.5], [0.25], 10, batch_size=16, tta="10crop", pad=2)
    shifts = [(0, 0, 0, 0)] + [(sx, -sx, sy, -sy) for sy in (2, -2) for sx in (2, -2)]
    views = [torch.nn.functional.pad(x, s) for s in shifts]
    # the view counts the budget reserve and the CLI read (TTA_VIEWS) are the views tta_views makes
    assert {k: 1 + len(tta_views(x, k, 2)) for k in TTA_VIEWS} == {"flip": 2, "10crop": 10} == TTA_VIEWS
    with torch.no_grad():
        _assert_scores(res10["tta"], sum(prob(v) + prob(v.flip(-1)) for v in views) / 10, y)
    # a mirror-symmetric model gains nothing from flips: both views give the same probabilities
    with torch.no_grad():
        w = model.fc.weight.view(10, 28, 28)
        model.fc.weight.copy_(((w + w.flip(-1)) / 2).view(10, -1))
    sym = evaluate_model(model, x, y, 28, [0.5], [0.25], 10, tta="flip")
    assert sym["tta"]["top1"] == sym["top1"] and sym["tta"]["loss"] == pytest.approx(sym["loss"], rel=1e-5)
    # unknown kind; mirror views of a model trained without flips; corner crops need training's padding
    for kind, pad, flip, why in (("5crop", 2, True, "one of"), ("flip", 2, False, "without random horizontal"),
                                 ("10crop", 0, True, "pad 0")):
        with pytest.raises(CnnzooError, match=why):
            evaluate_model(model, x, y, 28, [0.5], [0.25], 10, tta=kind, pad=pad, flip=flip)


def test_tta_run_reports_the_final_epoch_with_both_views(data_dir, tmp_path, capsys):
    out = tmp_path / "tta"
    r = run(data_dir, out, tta="10crop", flip=True)       # TINY crops with padding 1
    first, last = r.history
    assert "test_acc_tta" not in first and 0.0 <= last["test_acc_tta"] <= 1.0
    ev = evaluate(out, data_dir=data_dir, tta="10crop")     # fp32 run: the same figures from the checkpoint
    assert ev["tta"]["top1"] == pytest.approx(last["test_acc_tta"]) and ev["top1"] == pytest.approx(last["test_acc"])
    assert ev["seconds"] > 0 and json.loads((out / "eval.json").read_text())["seconds"] == ev["seconds"]
    header, row1, row2 = (out / "metrics.csv").read_text().splitlines()
    assert "test_acc_tta" in header.split(",") and row1.count(",") == row2.count(",") == header.count(",")
    assert main(["results", str(tmp_path), "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert "top-1 TTA %" in table and f"| {100 * last['test_acc_tta']:.2f} (10crop) |" in table
    assert main(["eval", str(out), "--data-dir", data_dir, "--tta", "10crop"]) == 0
    assert f"10crop test-time augmentation (10 views): top-1 {last['test_acc_tta']:.2%}" in capsys.readouterr().out
    with pytest.raises(CnnzooError, match="pad 0"):
        run(data_dir, tmp_path / "nocrop", pad=0, flip=True, tta="10crop")
    with pytest.raises(CnnzooError, match="without random horizontal flips"):   # TINY trains without flips
        run(data_dir, tmp_path / "noflip", tta="flip")
    # the CLI's augmentation and weight-decay options reach the run's config
    assert main(["train", "lenet5_modern", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "1",
                 "--limit-train", "64", "--pad", "1", "--no-flip", "--weight-decay", "0.001", "--tta", "flip",
                 "--out", str(tmp_path / "cli"), "--quiet"]) == 2            # flip views, flips off: refused
    assert "without random horizontal flips" in capsys.readouterr().err
    assert main(["train", "lenet5_modern", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "1",
                 "--limit-train", "64", "--pad", "1", "--flip", "--weight-decay", "0.001", "--tta", "flip", "--ema", "0.5",
                 "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    cfg = json.loads((tmp_path / "cli" / "metrics.json").read_text())["config"]
    assert (cfg["pad"], cfg["flip"], cfg["weight_decay"], cfg["tta"], cfg["ema"]) == (1, True, 0.001, "flip", 0.5)


def test_budget_minutes_estimates_epochs(data_dir, tmp_path):
    t = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, budget_minutes=0.05,
                            **{k: v for k, v in TINY.items() if k != "epochs"}), tmp_path, progress=False)
    assert t.cfg.epochs is None
    n = t.estimate_epochs(3.0)
    assert n >= 1 and t.epoch == 0


def test_budget_run_refits_its_plan_to_the_measured_epochs(data_dir, tmp_path):
    tiny = {k: v for k, v in TINY.items() if k != "epochs"}
    t = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, budget_minutes=1.0, **tiny), tmp_path, progress=False)
    t.cfg.epochs, t.epoch, t.elapsed = 10, 1, 6.0
    assert t.replan_for_budget(3.0) and t.cfg.epochs == 19      # after epoch 1: 54 s left hold 18 of 3 s
    t.epoch, t.elapsed = 2, 20.0
    assert t.replan_for_budget(1.0) and t.cfg.epochs == 42      # faster epochs lengthen it: 40 s hold 40 of 1 s
    assert not t.replan_for_budget(0.98) and t.cfg.epochs == 42  # 40 s left hold 40 more of 0.98 s: as planned
    assert t.replan_for_budget(15.0) and t.cfg.epochs == 4      # 40 s left hold 2 more epochs of 15 s
    assert [(r["after_epoch"], r["from_epochs"], r["to_epochs"]) for r in t.replans] == [(1, 10, 19), (2, 19, 42),
                                                                                         (2, 42, 4)]
    t.elapsed = 70.0                                            # already over: one more epoch, to anneal
    assert t.replan_for_budget(15.0) and t.cfg.epochs == 3
    fixed = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, **TINY), tmp_path / "fixed", progress=False)
    fixed.epoch, fixed.elapsed = 1, 1e6
    assert not fixed.replan_for_budget(1e6) and fixed.cfg.epochs == 2  # an --epochs run keeps its length
    # a 10crop run keeps 9 more evaluations of the test set for its final epoch: 60 - 6 - 9 x 0.5 s hold 16 of 3 s
    crops = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, budget_minutes=1.0, tta="10crop",
                                **{**tiny, "flip": True}),
                    tmp_path / "crops", progress=False)
    crops.cfg.epochs, crops.epoch, crops.elapsed = 10, 1, 6.0
    assert crops.tta_reserve(0.5) == 4.5 and crops.replan_for_budget(3.0, 0.5) and crops.cfg.epochs == 1 + 16

    # a whole run: the estimate planned 50 epochs, the budget (6 ms) is spent by the first
    run = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, budget_minutes=1e-4, **tiny), tmp_path / "run",
                  progress=False)
    run.estimate_epochs = lambda budget_s: 50
    summary = run.fit()
    assert summary["status"] == "complete" and summary["epochs"] == 2 and len(summary["history"]) == 2
    assert [(r["after_epoch"], r["from_epochs"], r["to_epochs"]) for r in summary["budget_replans"]] == [(1, 50, 2)]
    # the last step ran at the end of the cut cosine, not mid-way through the 50-epoch one (which
    # would still be at 0.99 of the peak): epoch 1 did 1/50 of the decay (no warm-up), and the
    # second epoch's S steps did the rest, S - 1 of them before the last step
    S = run.steps_per_epoch
    assert run.total_steps == 2 * S
    done = 1 / 50 + (49 / 50) * (S - 1) / S
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(TINY["lr"] * 0.5 * (1 + math.cos(math.pi * done)))
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["replans"] == summary["budget_replans"]


def test_a_budget_replan_stretches_or_compresses_the_rest_of_the_schedule_without_a_jump(data_dir, tmp_path):
    tiny = {k: v for k, v in TINY.items() if k != "epochs"}
    t = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, budget_minutes=1.0, **{**tiny, "warmup_epochs": 0.5}),
                tmp_path, progress=False)
    S, lr = t.steps_per_epoch, TINY["lr"]
    w = round(0.5 * S)

    def cosine(done):                                         # lr after the fraction `done` of the decay
        return lr * 0.5 * (1 + math.cos(math.pi * done))

    t.cfg.epochs = 10
    before = t.set_lr(2, 0)                                   # first step of epoch 3 on the 10-epoch plan
    done = (2 * S - w) / (10 * S - w)
    assert before == pytest.approx(cosine(done))
    for to in (4, 20):                                        # a cut, and a plan grown on a faster machine
        t.cfg.epochs, t.replans = to, [{"after_epoch": 2, "from_epochs": 10, "to_epochs": to, "rule": "stretch"}]
        assert t.set_lr(2, 0) == pytest.approx(before)         # no jump at the re-plan
        # the rest of the decay spreads over the new plan's remaining (to - 2) x S steps
        assert t.set_lr(to - 1, S - 1) == pytest.approx(cosine(done + (1 - done) * ((to - 2) * S - 1) / ((to - 2) * S)))
    # a re-plan before warm-up ends (warm-up 1.5 epochs, re-plan after 1) leaves the new plan's plain schedule
    t.cfg.warmup_epochs, t.cfg.epochs = 1.5, 4
    t.replans = [{"after_epoch": 1, "from_epochs": 10, "to_epochs": 4, "rule": "stretch"}]
    for epoch, step in ((1, 0), (2, 3), (3, S - 1)):
        assert t.set_lr(epoch, step) == pytest.approx(lr_at(epoch * S + step, 4 * S, lr, round(1.5 * S), "cosine"))
    # a re-plan saved by the older rule (no "rule" key; an unfinished run resumed) keeps that rule: the
    # plain schedule of the current plan, so the resumed run goes on as it would have
    t.cfg.warmup_epochs, t.replans = 0.5, [{"after_epoch": 2, "from_epochs": 10, "to_epochs": 4}]
    assert t.set_lr(3, 1) == pytest.approx(lr_at(3 * S + 1, 4 * S, lr, w, "cosine"))


def test_device_resolution():
    from cnnzoo.training.config import TrainConfigError
    from cnnzoo.training.environment import resolve_device

    if torch.cuda.is_available():
        assert resolve_device(None).type == "cuda"
    else:
        assert resolve_device(None) == torch.device("cpu")
        with pytest.raises(TrainConfigError, match="no CUDA device is available here; use --device cpu"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(TrainConfigError, match="--device tpu"):
        resolve_device("tpu")


def test_out_of_range_options_are_config_errors_naming_each_flag(tmp_path):
    from cnnzoo.training.config import TrainConfigError

    # each bad option is named as its CLI flag, with its value and its range; edges of each range by hand
    cases = [({"erase": 1.5}, "--erase 1.5 (a probability in [0, 1])"), ({"erase": -0.1}, "--erase -0.1 ("),
             ({"label_smoothing": 1.0}, "--label-smoothing 1.0 (in [0, 1))"), ({"ema": 1.0}, "--ema 1.0 ("),
             ({"epochs": 0}, "--epochs 0 (at least 1)"), ({"batch_size": 0}, "--batch-size 0 (at least 1)"),
             ({"lr": -1.0}, "--lr -1.0 (above 0)"), ({"lr": 0.0}, "--lr 0.0 (above 0)"),
             ({"limit_train": -5}, "--limit-train -5 (at least 1 image)"), ({"pad": -1}, "--pad -1 (0 or more)"),
             ({"budget_minutes": 0.0}, "--budget-minutes 0.0 (above 0)"),
             ({"weight_decay": -1.0}, "--weight-decay -1.0 (0 or more)")]
    for bad, words in cases:
        with pytest.raises(TrainConfigError, match=re.escape(words)):
            Trainer(TrainConfig("lenet5_modern", **bad), tmp_path / "x", progress=False)
    with pytest.raises(TrainConfigError) as err:
        TrainConfig("lenet5_modern", epochs=0, ema=2.0).check()
    assert str(err.value) == "out of range: --epochs 0 (at least 1); --ema 2.0 (a decay in [0, 1))"
    TrainConfig("lenet5_modern", erase=1.0, label_smoothing=0.0, ema=0.0, pad=0, weight_decay=0.0).check()  # edges in


def test_train_refuses_an_option_out_of_range_before_writing_anything(tmp_path):
    from cnnzoo.cli import main

    for args in (["--epochs", "0"], ["--limit-train", "0"], ["--batch-size", "0"], ["--lr", "-1"]):
        assert main(["train", "lenet5_modern", "--out", str(tmp_path / "run"), *args, "--quiet"]) == 2
        assert not (tmp_path / "run").exists()


def test_a_model_file_whose_forward_fails_is_one_line_naming_the_layer(data_dir, tmp_path, capsys):
    f = tmp_path / "broken.py"
    # conv 3x3 on 28x28 gives 4 maps of 26x26 = 2,704 features; the Linear expects 5
    f.write_text("from torch import nn\n\ndef build(num_classes=10, in_chans=1):\n"
                 "    return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.Flatten(), nn.Linear(5, num_classes))\n")
    code = main(["train", f"{f}:build", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "1",
                 "--input-size", "28", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "in layer '2' (Linear)" in err and "2704" in err
    assert not (tmp_path / "run" / "metrics.json").exists()


# ------------------------------------------------------------ resuming with changed options

def _interrupt_at(monkeypatch, epoch: int, step: int):
    """Make the next run stop (as after Ctrl-C) once it has done ``step`` steps of epoch ``epoch`` (0-based)."""
    real_step = Trainer.train_step

    def ctrl_c_step(self, x, y):
        out = real_step(self, x, y)
        if (self.epoch, self.step) == (epoch, step - 1):
            self._stop_requested = True
        return out

    monkeypatch.setattr(Trainer, "train_step", ctrl_c_step)
    return real_step


def test_resume_applies_a_new_lr_and_epochs_and_says_so(data_dir, tmp_path, monkeypatch, capsys):
    # The case: --epochs 4 --lr 0.01, Ctrl-C in epoch 2, then --resume --lr 0.5 --epochs 2.
    opts = dict(schedule="cosine", warmup_epochs=0.0)
    real_step = _interrupt_at(monkeypatch, 1, 2)
    with pytest.raises(KeyboardInterrupt):
        run(data_dir, tmp_path / "r", epochs=4, lr=0.01, **opts)
    lrs = []

    def recording_step(self, x, y):
        lrs.append(self.optimizer.param_groups[0]["lr"])
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", recording_step)
    capsys.readouterr()
    r = run(data_dir, tmp_path / "r", resume=True, epochs=2, lr=0.5, **opts)
    out = capsys.readouterr().out
    assert "at epoch 2, step 2 with --epochs 2 (was 4; the rest of the schedule compressed to end there); " \
           "--lr 0.5 (was 0.01; the schedule continues with this peak)" in out
    assert len(r.history) == 2 and r.summary["config"]["epochs"] == 2 and r.summary["config"]["lr"] == 0.5
    assert [(c["option"], c["from"], c["to"]) for c in r.summary["resume_changes"]] == [("epochs", 4, 2), ("lr", 0.01, 0.5)]
    # By hand: 160 images / batch 32 = 5 steps per epoch; the run stopped after global step 7 of
    # 20 (epoch 1.4), 35% of the cosine decay done. The rest (65%) now spans steps 7..10 of the new
    # plan of 10 steps, at the new peak 0.5: lr(s) = 0.5 * (1 + cos(pi * (0.35 + 0.65 (s - 7) / 3))) / 2.
    want = [0.5 * 0.5 * (1 + math.cos(math.pi * (0.35 + 0.65 * (s - 7) / 3))) for s in (7, 8, 9)]
    assert lrs == pytest.approx(want, rel=1e-12)
    # without the changes the lr at step 7 would have been 0.01 * (1 + cos(0.35 pi)) / 2 = 0.00727
    assert lrs[0] == pytest.approx(0.5 * 0.5 * (1 + math.cos(0.35 * math.pi)))


def test_resume_refuses_other_changes_in_one_line_before_any_work(data_dir, tmp_path, monkeypatch):
    _interrupt_at(monkeypatch, 1, 2)
    with pytest.raises(KeyboardInterrupt):
        run(data_dir, tmp_path / "r", epochs=3)
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(Trainer, "train_step", lambda *a: pytest.fail("no step may run"))
    with pytest.raises(CnnzooError) as exc:
        run(data_dir, tmp_path / "r", resume=True, batch_size=64, seed=4, lr=0.2)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("cannot resume with --batch-size 64 (the run has 32), --seed 4 (the run has 3):")
    assert "--lr" not in msg.split(":")[0]              # lr alone would be applied
    with pytest.raises(CnnzooError, match=r"--epochs 1 \(the run has 3\).*must exceed the 1 epoch"):
        run(data_dir, tmp_path / "r", resume=True, epochs=1)
    with pytest.raises(CnnzooError, match=r"model resnet18 \(the run has lenet5_modern\)"):
        train("resnet18", out=tmp_path / "r", resume=True, progress=False, data_dir=data_dir, **TINY)
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before


def test_a_run_as_the_model_argument(data_dir, tmp_path, monkeypatch, capsys):
    _interrupt_at(monkeypatch, 0, 2)
    with pytest.raises(KeyboardInterrupt):
        run(data_dir, tmp_path / "r")
    with pytest.raises(CnnzooError, match="is a trained run: to continue it add --resume; to train its model anew "
                                          "give the model \\(lenet5_modern\\)"):
        train(str(tmp_path / "r"), progress=False, data_dir=data_dir)
    monkeypatch.undo()
    r = train(str(tmp_path / "r"), resume=True, progress=False, data_dir=data_dir)      # the run's own options
    assert r.out_dir == tmp_path / "r" and len(r.history) == TINY["epochs"]
    with pytest.raises(CheckpointError, match="resnet18 is a model, not a trained run"):
        evaluate("resnet18")


def test_eval_of_a_checkpoint_saved_from_a_wrapped_model(data_dir, tmp_path, caplog):
    run(data_dir, tmp_path / "c", epochs=1)
    ck = load_checkpoint(tmp_path / "c")
    ck["state_dict"] = {f"module.{k}": v for k, v in ck["state_dict"].items()}     # as DataParallel saves it
    from cnnzoo.training import save_checkpoint

    save_checkpoint({k: v for k, v in ck.items() if k != "format"}, tmp_path / "dp" / "checkpoint.pt")
    with caplog.at_level("WARNING", logger="cnnzoo"):
        res = evaluate(tmp_path / "dp", data_dir=data_dir)
    assert res["top1"] == evaluate(tmp_path / "c", data_dir=data_dir)["top1"]
    assert [r.getMessage().split(": ", 2)[-1] for r in caplog.records] == [
        "removed the 'module.' prefix that nn.DataParallel / DistributedDataParallel adds to every key"]


MODEL_FILE = '''
from torch import nn
from parts import stem            # a module beside this file


def build(num_classes, in_chans):
    return nn.Sequential(stem(in_chans), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
'''


def test_train_eval_predict_a_model_file_that_imports_a_sibling(data_dir, tmp_path, monkeypatch, capsys):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "parts.py").write_text("from torch import nn\n\ndef stem(c):\n"
                                "    return nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU())\n")
    (d / "net.py").write_text(MODEL_FILE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    assert main(["train", "mine/net.py:build", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "1",
                 "--batch-size", "32", "--quiet"]) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "net-build-mnist-seed0"                 # the default folder names file and factory
    assert "net-build on mnist" in out and run_dir.is_dir()
    # the configuration it used: the data set's classes and channels, the default recipe's 32x32 input
    assert "mine/net.py:build (model file): 10 classes, 1 input channel, width 1, input 1x32x32" in out
    ck = load_checkpoint(run_dir)
    assert ck["model"] == f"{d / 'net.py'}:build" and ck["num_classes"] == 10 and ck["in_chans"] == 1
    monkeypatch.chdir(d)                                                  # evaluated from elsewhere
    assert main(["eval", str(run_dir), "--data-dir", data_dir]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"model: {run_dir} (run of net-build on mnist, 1 of 1 epochs): 10 classes, 1 input channel")
    json_meta = json.loads((run_dir / "metrics.json").read_text())
    # conv 1*8*9+8 = 80, fc 8*10+10 = 90 (hand count)
    assert json_meta["params"] == 170 and "(model file): 10 classes, 1 input channel" in json_meta["model_description"]


def test_per_class_is_a_seeded_stratified_subset(data_dir, tmp_path):  # noqa: F811
    from cnnzoo.data import per_class_indices

    y = torch.tensor([0, 1, 0, 2, 0, 1, 0, 2, 2, 0])      # class 0: 5 samples, 1: 2, 2: 3
    idx = per_class_indices(y, 2, seed=7)
    # at most 2 of each class; class 1 has exactly 2, so both of its samples (indices 1 and 5)
    assert torch.bincount(y[idx]).tolist() == [2, 2, 2] and {1, 5} <= set(idx.tolist())
    assert idx.tolist() == sorted(idx.tolist()) and len(set(idx.tolist())) == 6
    assert torch.equal(per_class_indices(y, 2, seed=7), idx)                     # a pure function of the seed
    assert any(not torch.equal(per_class_indices(y, 2, seed=s), idx) for s in range(8, 20))
    assert per_class_indices(y, 10, seed=0).tolist() == list(range(10))          # n above every class: all
    t = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, per_class=3, classes=[2, 5, 7], **TINY),
                tmp_path, progress=False)
    assert torch.bincount(t.train.labels).tolist() == [3, 3, 3]
    full = Trainer(TrainConfig("lenet5_modern", data_dir=data_dir, classes=[2, 5, 7], **TINY), tmp_path, progress=False)
    # the kept images are training images of their class (rows of the class-selected set)
    rows = {tuple(x.flatten().tolist()): int(c) for x, c in zip(full.train.x, full.train.labels)}
    assert all(rows[tuple(x.flatten().tolist())] == int(c) for x, c in zip(t.train.x, t.train.labels))
    assert main(["train", "lenet5_modern", "--per-class", "0", "--out", str(tmp_path / "z")]) == 2
