"""The data and selection side of fine-tuning (issue 23, points 4-7): stratified splits, validation
and model selection, early stopping, class imbalance, per-class scores, labels from a CSV,
unreadable images. Tiny synthetic image folders the tests write (PIL), lenet5_modern, a few images."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.data import load_dataset
from cnnzoo.data.splits import (SplitError, balanced_class_weights, balanced_order, imbalance_notice, parse_split,
                                stratified_parts)
from cnnzoo.errors import CnnzooError, DataFileError
from cnnzoo.training import TrainConfig, Trainer, evaluate, load_checkpoint, train
from cnnzoo.training.scores import class_scores
from cnnzoo.training.selection import Selection, best_epoch
from test_train import TINY, data_dir, run  # noqa: F401 - the tiny MNIST fixture

FOLDER = dict(dataset="folder", epochs=2, batch_size=8, lr=0.05, input_size=28, seed=0, amp="fp32", flip=False,
              pad=0, warmup_epochs=0.0, label_smoothing=0.0, channels_last=False)


def write_images(root, counts: dict, size=12, start=0):
    """``counts[c]`` PNGs per class ``c`` in ``root/c/``: class k a bright square at one place + noise."""
    rng = np.random.default_rng(len(counts))
    for k, (c, n) in enumerate(counts.items()):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + n):
            a = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            a[2 + 3 * k:5 + 3 * k, 2:8] = 255
            Image.fromarray(a).save(root / c / f"{c}{i:03d}.png")


# -- stratified splits ---------------------------------------------------------------------------
def test_stratified_split_gives_each_part_its_rounded_share_of_every_class():
    labels = torch.tensor([0] * 10 + [1] * 20 + [2] * 5)[torch.randperm(35, generator=torch.Generator().manual_seed(1))]
    tr, va, te = stratified_parts(labels, (0.8, 0.1, 0.1), seed=0)
    # by hand: val and test get round_half_up(0.1 * n_c): 1, 2, 1 (0.5 rounds up); train the rest: 8, 16, 3
    for part, want in ((tr, [8, 16, 3]), (va, [1, 2, 1]), (te, [1, 2, 1])):
        assert torch.bincount(labels[part], minlength=3).tolist() == want
    assert sorted(torch.cat([tr, va, te]).tolist()) == list(range(35))          # disjoint and complete
    assert all(torch.equal(a, b) for a, b in zip((tr, va, te), stratified_parts(labels, (0.8, 0.1, 0.1), seed=0)))
    assert not torch.equal(va, stratified_parts(labels, (0.8, 0.1, 0.1), seed=1)[1])
    # a class of one image stays in train: the held-out parts never take a class's last image
    tr, va = stratified_parts(torch.tensor([0, 0, 0, 0, 1]), (0.5, 0.5), seed=0)
    assert torch.bincount(torch.tensor([0, 0, 0, 0, 1])[tr]).tolist() == [2, 1] and len(va) == 2


@pytest.mark.parametrize("text, why", [("0.8,0.1,0.2", "sum to 1"), ("0.8,0.2", "three fractions"),
                                       ("1,0,0", "sum to 1"), ("a,b,c", "three fractions")])
def test_a_bad_split_is_one_line(text, why):
    with pytest.raises(SplitError, match=why):
        parse_split(text)
    assert parse_split("0.7, 0.1 ,0.2") == (0.7, 0.1, 0.2) and parse_split(None) == (0.8, 0.1, 0.1)


# -- imbalance ------------------------------------------------------------------------------------
def test_balanced_class_weights_and_sampler():
    y = torch.tensor([0] * 6 + [1] * 2 + [2] * 4)
    # n / (k * n_c) by hand: 12 / (3 * 6), 12 / (3 * 2), 12 / (3 * 4)
    assert balanced_class_weights(y, 3).tolist() == pytest.approx([2 / 3, 2.0, 1.0])
    assert balanced_class_weights(torch.tensor([0, 1, 1]), 3).tolist() == pytest.approx([1.0, 0.5, 0.0])
    y = torch.tensor([0] * 900 + [1] * 100)
    a, b = balanced_order(y, 2, seed=5, epoch=3), balanced_order(y, 2, seed=5, epoch=3)
    assert torch.equal(a, b) and not torch.equal(a, balanced_order(y, 2, seed=5, epoch=4))
    assert len(a) == 1000 and abs(int((y[a] == 1).sum()) - 500) < 80           # binomial(1000, 1/2): sd 16
    assert "bag has 30 training images, cat 9 (3.3x)" in imbalance_notice(torch.tensor([0] * 30 + [1] * 9), ["bag", "cat"])
    assert imbalance_notice(torch.tensor([0] * 30 + [1] * 10), ["bag", "cat"]) is None   # exactly 3x: no notice


def test_class_scores_from_a_hand_made_confusion_matrix():
    conf = torch.tensor([[8, 2, 0, 0], [1, 3, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0]])   # row = true; class d absent
    s = class_scores(conf, ["a", "b", "c", "d"])
    # by hand: tp 8, 3, 0; fp (column - tp) 1, 4, 1; fn (row - tp) 2, 2, 2; F1 = 2tp / (2tp + fp + fn)
    assert s["top1"] == pytest.approx(11 / 17)
    assert [s["per_class"][c]["precision"] for c in "abc"] == pytest.approx([8 / 9, 3 / 7, 0.0])
    assert [s["per_class"][c]["recall"] for c in "abc"] == pytest.approx([8 / 10, 3 / 5, 0.0])
    assert [s["per_class"][c]["f1"] for c in "abc"] == pytest.approx([16 / 19, 6 / 12, 0.0])
    assert [s["per_class"][c]["support"] for c in "abcd"] == [10, 5, 2, 0]
    assert s["balanced_accuracy"] == pytest.approx((0.8 + 0.6 + 0.0) / 3)           # d has no test image
    assert s["macro_f1"] == pytest.approx((16 / 19 + 0.5 + 0.0) / 3)


# -- selection ------------------------------------------------------------------------------------
def test_selection_keeps_the_earlier_best_and_stops_after_patience():
    s, m = Selection.for_run(None, 2, has_val=True), torch.nn.Linear(1, 1)
    for e, v in enumerate([0.5, 0.7, 0.7, 0.6], start=1):
        s.update(e, v, m)
    assert (s.select, s.best_epoch, s.stopped_after) == ("best", 2, 4)              # the tie at 3 keeps 2
    assert best_epoch([0.5, 0.7, 0.7, 0.6]) == 2
    assert Selection.for_run(None, None, has_val=False).select == "last"
    with pytest.raises(CnnzooError, match="--early-stop 3 needs validation data: add --val-split"):
        Selection.for_run(None, 3, has_val=False)
    with pytest.raises(CnnzooError, match="--select best needs validation data"):
        Selection.for_run("best", None, has_val=False)


def _scripted_val(monkeypatch, accs):
    """Trainer.evaluate with the validation top-1 of epoch e set to ``accs[e - 1]``; returns the list of
    (split, weights) of every call (weights: a copy of the evaluated model's state)."""
    calls, real = [], Trainer.evaluate

    def evaluate(self, tta=None, split="test"):
        calls.append((split, {k: v.clone() for k, v in self.eval_model.state_dict().items()}))
        m = real(self, tta, split)
        if split == "val":
            m["top1"] = accs[len([c for c in calls if c[0] == "val"]) - 1]
        return m

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    return calls


def test_val_split_keeps_the_best_epoch_stops_early_and_scores_the_test_set_once(data_dir, tmp_path, monkeypatch):
    calls = _scripted_val(monkeypatch, [0.5, 0.8, 0.8, 0.6, 0.7, 0.9])
    r = run(data_dir, tmp_path / "a", epochs=6, val_split=0.25, early_stop=2)
    # epoch 2 is best (the tie at 3 keeps the earlier); epochs 3 and 4 bring no gain: stop after 4
    assert [h["val_acc"] for h in r.history] == [0.5, 0.8, 0.8, 0.6] and "test_acc" not in r.history[0]
    assert [c[0] for c in calls] == ["val"] * 4 + ["test"]                        # the test set once, at the end
    sel = r.summary["selection"]
    assert sel["kept_epoch"] == 2 == best_epoch([h["val_acc"] for h in r.history]) and r.final["kept_epoch"] == 2
    assert sel["early_stop"]["stopped_after_epoch"] == 4 and "early stop after epoch 4 of 6" in sel["why"]
    ck = load_checkpoint(tmp_path / "a")
    assert all(torch.equal(ck["state_dict"][k], calls[1][1][k]) for k in calls[1][1])   # epoch 2's weights
    assert all(torch.equal(calls[-1][1][k], calls[1][1][k]) for k in calls[1][1])       # ... are what the test scored
    assert r.final["test_acc"] > 0.2 and r.summary["status"] == "complete"
    # the held-out images: stratified by hand from the labels of the 160 training images, recorded
    labels = ds_labels(data_dir)
    split = json.loads((tmp_path / "a" / "split.json").read_text())
    want_val = [int(np.floor(0.25 * n + 0.5)) for n in np.bincount(labels, minlength=10)]
    assert np.bincount(labels[split["val_indices"]], minlength=10).tolist() == want_val
    assert r.summary["data"]["images"] == {"train": 160 - sum(want_val), "val": sum(want_val), "test": 64}


def ds_labels(data_dir):
    return load_dataset("mnist", data_dir).train.labels.numpy()


def test_resume_of_a_validated_run_keeps_its_best_weights(data_dir, tmp_path, monkeypatch):
    accs = [0.5, 0.8, 0.6, 0.7]
    with monkeypatch.context() as m:
        _scripted_val(m, accs)
        ref = run(data_dir, tmp_path / "ref", epochs=4, val_split=0.25)
    real_step = Trainer.train_step

    def dying_step(self, x, y):
        if self.epoch == 2 and self.step == 1:                                  # killed in epoch 3
            raise SystemExit("killed")
        return real_step(self, x, y)

    with monkeypatch.context() as m:
        _scripted_val(m, accs)
        m.setattr(Trainer, "train_step", dying_step)
        with pytest.raises(SystemExit):
            run(data_dir, tmp_path / "b", epochs=4, val_split=0.25)
    ck = load_checkpoint(tmp_path / "b")
    assert ck["epoch"] == 2 and ck["selection"]["best_epoch"] == 2 and ck["selection"]["best_state_dict"]
    with monkeypatch.context() as m:
        _scripted_val(m, accs[2:])                                               # epochs 3 and 4 after the resume
        r = run(data_dir, tmp_path / "b", epochs=4, val_split=0.25, resume=True)
    assert r.final["kept_epoch"] == ref.final["kept_epoch"] == 2
    a, b = load_checkpoint(tmp_path / "ref")["state_dict"], load_checkpoint(tmp_path / "b")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a) and r.final["test_acc"] == ref.final["test_acc"]


def test_a_budget_run_with_validation(data_dir, tmp_path):
    r = run(data_dir, tmp_path / "a", epochs=None, budget_minutes=0.05, val_split=0.25)
    assert r.summary["status"] == "complete" and "val_acc" in r.history[-1] and "test_acc" in r.final
    assert r.final["kept_epoch"] == best_epoch([h["val_acc"] for h in r.history])
    # the budget keeps time for the one test pass at the end: test images / val images x one val pass
    t = Trainer(TrainConfig(model="lenet5_modern", data_dir=data_dir, val_split=0.25, **TINY), tmp_path / "b", progress=False)
    assert t.tta_reserve(2.0) == pytest.approx(2.0 * 64 / r.summary["data"]["images"]["val"])


# -- folders: split, val/, labels CSV, unreadable images ------------------------------------------
def test_class_folders_without_train_and_test_are_split_and_the_split_is_recorded(tmp_path, capsys):
    write_images(tmp_path / "photos", {"bird": 10, "cat": 20, "dog": 5})
    d = load_dataset("folder", tmp_path / "photos", size=12)
    # by hand, as in the stratified test: val and test 1, 2, 1 (round half up), train 8, 16, 3
    assert torch.bincount(d.train.labels).tolist() == [8, 16, 3] and torch.bincount(d.val.labels).tolist() == [1, 2, 1]
    assert torch.bincount(d.test.labels).tolist() == [1, 2, 1]
    files = d.split["files"]
    assert sorted(files["train"] + files["val"] + files["test"]) == sorted(
        p.relative_to(tmp_path / "photos").as_posix() for p in (tmp_path / "photos").rglob("*.png"))
    assert d.split["counts"]["test"] == {"bird": 1, "cat": 2, "dog": 1}
    # through train: printed, recorded, and eval scores the same 4 test images
    r = train("lenet5_modern", out=tmp_path / "run", progress=True, data_dir=tmp_path / "photos", **FOLDER)
    out = capsys.readouterr().out
    assert "27 train / 4 val / 4 test images, 3 classes, split 0.8/0.1/0.1 (stratified, seed 0)" in out
    assert json.loads((tmp_path / "run" / "split.json").read_text())["files"]["test"] == files["test"]
    assert r.summary["selection"]["select"] == "best" and evaluate(tmp_path / "run")["n"] == 4


def test_a_val_folder_beside_train_and_test_is_the_validation_set(tmp_path):
    for part, n in (("train", 4), ("val", 2), ("test", 3)):
        write_images(tmp_path / part, {"a": n, "b": n})
    d = load_dataset("folder", tmp_path, size=12)
    assert (len(d.train.labels), len(d.val.labels), len(d.test.labels)) == (8, 4, 6)
    with pytest.raises(SplitError, match="already has a validation set"):
        train("lenet5_modern", out=tmp_path / "r", progress=False, data_dir=tmp_path, val_split=0.2, **FOLDER)
    with pytest.raises(SplitError, match="--split applies to a folder of class folders without train/"):
        load_dataset("folder", tmp_path, size=12, split="0.6,0.2,0.2")


def _flat(root, names_labels):
    root.mkdir()
    for name, k in names_labels:
        a = np.full((10, 10, 3), 40 + 100 * k, np.uint8)
        Image.fromarray(a).save(root / name)


def test_labels_from_a_csv(tmp_path):
    imgs = tmp_path / "imgs"
    _flat(imgs, [(f"{i:02d}.png", i % 2) for i in range(20)])
    rows = "\n".join(f"{i:02d}{'.png' if i % 3 else ''},{'cat' if i % 2 else 'bird'}" for i in range(20))
    (tmp_path / "labels.csv").write_text(f"Image , Category,notes\n{rows}\n")      # ids without suffix, any case
    d = load_dataset("folder", imgs, size=10, labels=tmp_path / "labels.csv")
    assert d.classes == ["bird", "cat"] and len(d.train.labels) + len(d.val.labels) + len(d.test.labels) == 20
    assert torch.bincount(d.test.labels).tolist() == [1, 1]
    assert "filename column 'Image', label column 'Category'; 20 rows, 2 classes (names)" in d.notes[1]
    x = torch.cat([d.train.x, d.val.x, d.test.x])[:, 0, 0, 0]
    y = torch.cat([d.train.labels, d.val.labels, d.test.labels])
    assert torch.equal(x > 90, y == 1)                                     # each image got its row's label
    # integers as labels: classes in numeric order
    (tmp_path / "int.csv").write_text("id,label\n" + "\n".join(f"{i:02d},{10 if i % 2 else 2}" for i in range(20)))
    assert load_dataset("folder", imgs, size=10, labels=tmp_path / "int.csv").classes == ["2", "10"]


def test_a_labels_csv_that_does_not_fit_is_one_line(tmp_path):
    imgs = tmp_path / "imgs"
    _flat(imgs, [(f"{i}.png", 0) for i in range(4)])
    (tmp_path / "a.csv").write_text("name,kind\n0.png,x\n")
    with pytest.raises(DataFileError, match="has the columns name, kind and lacks a filename column and a label column"):
        load_dataset("folder", imgs, labels=tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("file,class\n0.png,x\n1.png,y\ngone.png,x\n2.png,y\n")
    with pytest.raises(DataFileError, match=r"1 row\(s\) name files not in .*line 4: gone.png\); "
                                            r"1 image file\(s\) have no row \(3.png\)"):
        load_dataset("folder", imgs, labels=tmp_path / "b.csv")


def test_unreadable_images_are_all_listed_then_refused_or_skipped(tmp_path, capsys):
    write_images(tmp_path / "photos", {"a": 10, "b": 10})
    for bad in ("a/a003.png", "b/b007.png", "b/zz.jpg"):
        (tmp_path / "photos" / bad).write_bytes(b"not an image")
    with pytest.raises(DataFileError) as err:
        load_dataset("folder", tmp_path / "photos", size=12)
    msg = str(err.value)
    assert msg.startswith("3 unreadable image files: ") and "\n" not in msg and "--skip-bad-images" in msg
    assert all(f in msg for f in ("a003.png", "b007.png", "zz.jpg"))
    d = load_dataset("folder", tmp_path / "photos", size=12, skip_bad=True)
    assert len(d.skipped) == 3 and len(d.train.labels) + len(d.val.labels) + len(d.test.labels) == 20 - 2
    # the CLI: one line and exit 2 without the flag; with it the run lists and records them all
    assert main(["train", "lenet5_modern", "--dataset", "folder", "--data-dir", str(tmp_path / "photos"),
                 "--out", str(tmp_path / "r"), "--epochs", "1", "--quiet"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
    r = train("lenet5_modern", out=tmp_path / "r", progress=True, data_dir=tmp_path / "photos", skip_bad_images=True,
              **{**FOLDER, "epochs": 1})
    assert "skipped 3 unreadable image files (--skip-bad-images)" in capsys.readouterr().out
    assert len(r.summary["data"]["skipped_images"]) == 3


def test_class_weights_sampler_and_the_imbalance_notice(tmp_path, capsys):
    write_images(tmp_path / "photos", {"many": 40, "few": 5})
    opts = dict(out=tmp_path / "a", progress=True, data_dir=tmp_path / "photos", **{**FOLDER, "epochs": 1})
    train("lenet5_modern", **opts)
    assert "imbalanced classes: many has 32 training images, few 3 (10.7x)" in capsys.readouterr().out
    t = Trainer(TrainConfig(model="lenet5_modern", data_dir=str(tmp_path / "photos"),
                class_weights="balanced", sampler="balanced", **{**FOLDER, "epochs": 1}), tmp_path / "b", progress=False)
    # train keeps 32 + 3 images (stratified 0.8/0.1/0.1 of 40 and 5): weights 35 / (2 * n_c), classes sorted (few, many)
    assert t.loss_weight.tolist() == pytest.approx([35 / 6, 35 / 64])
    assert torch.equal(t.sample_order(1), balanced_order(t.train.labels, 2, 0, 1))


@pytest.mark.parametrize("args, words", [
    (["--split", "0.5,0.2,0.2"], "must sum to 1"),
    (["--val-split", "0"], "--val-split 0.0 (a fraction in (0, 1))"),
    (["--val-split", "1"], "--val-split 1.0 (a fraction in (0, 1))"),
    (["--early-stop", "2"], "--early-stop 2 needs validation data"),
    (["--labels", "x.csv"], "--labels applies to --dataset folder only"),
])
def test_bad_options_are_one_line_exit_2_and_write_nothing(data_dir, tmp_path, capsys, args, words):
    out = tmp_path / "r"
    dataset = ["--dataset", "mnist", "--data-dir", data_dir]
    assert main(["train", "lenet5_modern", *dataset, "--out", str(out), "--epochs", "1", "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and not out.exists()


def test_eval_reports_balanced_accuracy_and_per_class_scores(data_dir, tmp_path, capsys):
    run(data_dir, tmp_path / "a", epochs=1)
    assert main(["eval", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    res = json.loads((tmp_path / "a" / "eval.json").read_text())
    s = class_scores(torch.tensor(res["confusion"]), [str(d) for d in range(10)])
    assert res["balanced_accuracy"] == pytest.approx(s["balanced_accuracy"]) and res["macro_f1"] == pytest.approx(s["macro_f1"])
    assert f"balanced accuracy {res['balanced_accuracy']:.2%} (mean per-class recall), macro-F1 {res['macro_f1']:.2%}" in out
    assert "precision  recall      F1 images" in out and set(res["per_class"]["0"]) == {"precision", "recall", "f1", "support"}
