"""The data contract and the streaming source (issue 24): a folder streamed from disk reads as the
same images, labels and splits as in memory; its training views are a pure function of the seed
(whatever the number of workers); --data-mode says its choice; a file that cannot be decoded
mid-epoch is skipped, named once and counted; the file index is cached; a run killed with
SIGKILL and resumed ends with the metrics of an uninterrupted one; under torchrun each rank reads
only its share of every epoch.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.data import Augment, StreamSource, TensorSource, datasets, epoch_order, load_dataset
from cnnzoo.data.index import list_folder
from cnnzoo.training import TrainConfig, Trainer, evaluate, evaluate_model, train

CLASSES = ("dark", "light")


def _photo(path: Path, k: int, i: int, size=(40, 30)) -> None:
    """A JPEG whose brightness tells its class (dark / light) under noise and a shape."""
    rng = np.random.default_rng(1000 * k + i)
    a = rng.integers(0, 90, (size[1], size[0], 3)) + (120 if k else 0)
    a[5 + i % 7:15 + i % 7, 4:14] = 255 - a[5 + i % 7:15 + i % 7, 4:14]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a.astype(np.uint8)).save(path, quality=90)


def _folder(root: Path, train: int = 24, test: int = 8) -> Path:
    for part, n in (("train", train), ("test", test)):
        for k, c in enumerate(CLASSES):
            for i in range(n // 2):
                _photo(root / part / c / f"{i:03d}.jpg", k, i)
    return root


def _age(root: Path, seconds: float = 60) -> None:
    """Date every folder under root back, as a folder listed long ago."""
    t = time.time() - seconds
    for d, _, _ in os.walk(root):
        os.utime(d, (t, t))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("photos"))


def _load(root, mode, **kw):
    datasets._CACHE.clear()
    return load_dataset("folder", root, size=24, mode=mode, **kw)


def test_a_streamed_folder_reads_as_the_same_data_as_in_memory(photos):
    mem, st = _load(photos, "memory"), _load(photos, "stream", workers=0)
    assert isinstance(mem.train, TensorSource) and isinstance(st.train, StreamSource)
    assert (mem.mode, st.mode) == ("memory", "stream")
    assert mem.classes == st.classes == list(CLASSES) and st.in_chans == mem.in_chans == 3
    for a, b in ((mem.train, st.train), (mem.test, st.test)):
        assert len(a) == len(b) and torch.equal(a.labels, b.labels)
    # the evaluation views are the memory images: shorter side to 24, centre crop, decoded alike
    assert torch.equal(st.test.read(), mem.test.x)
    assert st.split["files"] == mem.split["files"]
    # the stream's statistics are estimated on a sample (here all 24 images): the exact ones
    assert st.mean == pytest.approx(mem.mean, abs=1e-9) and st.std == pytest.approx(mem.std, abs=1e-9)
    assert "data: streamed from disk, decoded in the training process (--workers 0) (--data-mode stream)" in st.notes


def test_training_views_are_a_pure_function_of_the_seed_for_any_number_of_workers(photos):
    st = _load(photos, "stream", workers=0)
    plan = [(torch.tensor([3, 1, 4, 1, 5]), 11), (torch.tensor([9, 2, 6]), 12)]
    aug = Augment(pad=2, flip=True, erase=0.5)         # a recipe that crops: the random-resized crop
    one = list(st.train.batches(plan, aug))
    two = list(StreamSource(st.train.root, st.train.names, st.train.labels, 24, workers=2).batches(plan, aug))
    assert [x.shape for x, _ in one] == [(5, 3, 24, 24), (3, 3, 24, 24)]
    for (x1, y1), (x2, y2) in zip(one, two):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    # the same image (index 1, twice in the first batch) gets its own crop at each place
    assert not torch.equal(one[0][0][1], one[0][0][3])
    other = list(st.train.batches([(torch.tensor([3, 1, 4, 1, 5]), 99)], aug))
    assert not torch.equal(other[0][0], one[0][0])
    # a recipe without crops (pad 0): the evaluation view, flipped or not by the image's seed
    mem = _load(photos, "memory").train.x
    plain = next(st.train.batches([(torch.arange(12), 7)], Augment(pad=0, flip=True)))[0]
    flipped = [not torch.equal(v, m) for v, m in zip(plain, mem[:12])]
    assert all(torch.equal(v, m.flip(-1)) for v, m, f in zip(plain, mem[:12], flipped) if f)
    assert 0 < sum(flipped) < 12
    # the evaluation view of a stream is the memory image, whatever the plan's seed
    ev = next(st.test.batches([(torch.tensor([0, 5]), 123)]))[0]
    assert torch.equal(ev, _load(photos, "memory").test.x[[0, 5]])


def test_evaluate_model_scores_a_stream_as_the_same_images_in_memory(photos):
    mem, st = _load(photos, "memory"), _load(photos, "stream", workers=1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    a = evaluate_model(model, mem.test, None, 24, mem.mean, mem.std, 2, batch_size=3)
    b = evaluate_model(model, st.test, None, 24, mem.mean, mem.std, 2, batch_size=3)
    assert a["n"] == b["n"] == 8 and torch.equal(a["confusion"], b["confusion"]) and a["loss"] == b["loss"]


def test_auto_mode_says_why(photos, monkeypatch):
    d = _load(photos, "auto")
    assert d.mode == "memory" and d.mode_reason.startswith("auto: 32 images take")
    monkeypatch.setattr(datasets, "available_memory", lambda: 100_000)       # 32 x 3 x 24 x 24 = 55,296 bytes
    d = _load(photos, "auto")
    assert d.mode == "stream" and "more than 25% of the 0.1 MiB available" in d.mode_reason
    monkeypatch.undo()
    monkeypatch.setattr(datasets, "LOAD_SECONDS", 0.0)
    d = _load(photos, "auto")
    assert d.mode == "stream" and "decoding all 32 images before the first step would take" in d.mode_reason
    with pytest.raises(datasets.DataFileError, match="--data-mode stream needs an input size"):
        datasets._CACHE.clear()
        load_dataset("folder", photos, mode="stream")
    with pytest.raises(datasets.DataFileError, match="streaming is for image folders"):
        load_dataset("mnist", photos, mode="stream")


def test_a_folder_with_an_unreadable_file_splits_the_same_in_memory_and_streamed(tmp_path):
    root = tmp_path / "flat"
    for k, c in enumerate(CLASSES):
        for i in range(10):
            _photo(root / c / f"{i:03d}.jpg", k, i)
    (root / "light" / "004.jpg").write_bytes(b"broken")
    datasets._CACHE.clear()
    mem = load_dataset("folder", root, size=24, mode="memory", skip_bad=True)
    st = _load(root, "stream", workers=0)
    drop = "light/004.jpg"
    assert any(drop in f for f in st.split["files"].values())
    for part, files in st.split["files"].items():      # the same parts; in memory the unreadable file left out
        assert mem.split["files"][part] == [f for f in files if f != drop], part
    assert [len(p) for p in mem.parts().values()] == [len(f) for f in mem.split["files"].values()]


def test_the_file_index_is_cached_until_a_folder_changes(tmp_path):
    root = _folder(tmp_path / "f", train=4, test=2)
    _age(root)
    files, classes, _, reused = list_folder(root / "train")
    assert not reused and classes == list(CLASSES) and len(files) == 4
    again = list_folder(root / "train")
    assert again[3] and again[:3] == (files, classes, None)
    _photo(root / "train" / "dark" / "new.jpg", 0, 9)                   # the class folder's mtime changes
    files2, _, _, reused = list_folder(root / "train")
    assert not reused and len(files2) == 5 and root / "train" / "dark" / "new.jpg" in [f for f, _ in files2]
    # a folder changed just now is not trusted: listed every time until it is older than RACY_SECONDS
    assert not list_folder(root / "train")[3]


def test_an_unreadable_file_mid_epoch_is_skipped_named_once_and_counted(tmp_path, capsys):
    root = _folder(tmp_path / "f", train=16, test=4)
    bad = root / "train" / "light" / "zz-broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    bad_test = root / "test" / "dark" / "zz-broken.png"
    bad_test.write_bytes(b"not a png")
    r = train("lenet5_modern", out=tmp_path / "run", data_dir=str(root), dataset="folder", data_mode="stream",
              workers=1, epochs=2, batch_size=8, input_size=28, amp="fp32", progress=True)
    summary = r.summary
    assert summary["data"]["mode"] == "stream" and summary["config"]["data_mode"] == "stream"
    assert summary["data"]["images"]["train"] == 17 and summary["data"]["images"]["test"] == 5
    skipped = {s["file"]: s["error"] for s in summary["data"]["skipped_images"]}
    assert skipped == {str(bad): "not an image Pillow can read", str(bad_test): "not an image Pillow can read"}
    out = capsys.readouterr().out
    for f in (bad, bad_test):                     # a training and a test file: 2 epochs, each named once
        assert out.count(f"skipped an unreadable image file: {f} (not an image Pillow can read)") == 1
    # by hand: each epoch's batches hold 8, 8 and 1 of the 17 files in the seeded order; the unreadable file
    # (index 16, the last listed) is left out of its batch, and a batch of one image makes no step
    # (BatchNorm cannot normalise one image): 16 images trained if it was the last batch's, else 15
    for h in r.history:
        alone = int(epoch_order(17, 0, h["epoch"] - 1)[16]) == 16
        assert h["epoch_images"] == (16 if alone else 15)
    # cnnzoo eval reads the run's test set as it trained: streamed, the same 4 images and score
    from cnnzoo.resolve import load_run, run_data

    assert run_data(load_run(r.out_dir).checkpoint).mode == "stream"
    ev = evaluate(r.out_dir, workers=0)
    assert ev["n"] == 4 and ev["top1"] == r.final["test_acc"]
    assert ev["skipped_images"] == [{"file": str(bad_test), "error": "not an image Pillow can read"}]


def test_a_file_left_out_in_memory_is_named_once_in_the_notes(tmp_path, capsys):
    root = _folder(tmp_path / "f", train=16, test=4)
    bad = root / "train" / "light" / "zz-broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    r = train("lenet5_modern", out=tmp_path / "run", data_dir=str(root), dataset="folder", data_mode="memory",
              skip_bad_images=True, epochs=1, batch_size=8, input_size=28, amp="fp32", progress=True)
    assert [s["file"] for s in r.summary["data"]["skipped_images"]] == [str(bad)]
    out = capsys.readouterr().out
    assert out.count(str(bad)) == 1 and "skipped an unreadable image file" not in out


KILLED = r'''
import sys
from cnnzoo.training import api
api.train("lenet5_modern", out=sys.argv[1], progress=False, dataset="folder", data_dir=sys.argv[2],
          data_mode="stream", workers=1, epochs=3, batch_size=8, input_size=28, amp="fp32", seed=5, erase=0.5,
          resume=len(sys.argv) > 3)
'''


def test_a_stream_run_killed_and_resumed_ends_as_an_uninterrupted_one(tmp_path):
    root = _folder(tmp_path / "f", train=48, test=8)
    (tmp_path / "run.py").write_text(KILLED)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(tmp_path / "run.py")]
    subprocess.run([*cmd, str(tmp_path / "whole"), str(root)], check=True, env=env, timeout=300)
    proc = subprocess.Popen([*cmd, str(tmp_path / "killed"), str(root)], env=env, start_new_session=True)
    metrics = tmp_path / "killed" / "metrics.json"              # written after epoch 1's checkpoint
    deadline = time.time() + 240
    while not metrics.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)                          # the trainer and its decoding workers
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert killed["status"] == "running" and len(killed["history"]) < 3
    subprocess.run([*cmd, str(tmp_path / "killed"), str(root), "resume"], check=True, env=env, timeout=300)
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert resumed["status"] == whole["status"] == "complete"
    for got, want in zip(resumed["history"], whole["history"], strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "test_top5"):
            assert got[key] == want[key], (got["epoch"], key)


RANKS = r'''
import json, os, sys
from cnnzoo.data import datasets, stream
from cnnzoo.training import api
get = stream._Files.__getitem__
datasets.STATS_SAMPLE = 2                    # so that only the training streams meet the unreadable files

def record(self, key):                       # runs in the decoding workers: one file per rank and process
    if key[2] is not None:                   # a training view
        with open(os.path.join(sys.argv[3], f"rank{os.environ['RANK']}-{os.getpid()}.txt"), "a") as f:
            f.write(f"{os.fsdecode(self.names[key[0]])}\n")
    return get(self, key)

stream._Files.__getitem__ = record
api.train("lenet5_modern", out=sys.argv[1], progress=False, dataset="folder", data_dir=sys.argv[2],
          data_mode="stream", workers=1, epochs=1, batch_size=5, input_size=28, amp="fp32")
'''


def test_under_torchrun_each_rank_reads_only_its_share_of_the_epoch(tmp_path):
    root = _folder(tmp_path / "f", train=30, test=4)
    bad = ["train/dark/015.jpg", "train/light/000a.jpg"]       # listed 16th and 18th of the 32
    for f in bad:
        (root / f).write_bytes(b"broken")
    assert not {15, 17} & set(datasets._sample(32, 2, 0).tolist())    # not in the statistics' sample (below)
    (tmp_path / "w.py").write_text(RANKS)
    (tmp_path / "seen").mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(tmp_path / "w.py"),
           str(tmp_path / "run"), str(root), str(tmp_path / "seen")]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    read = {r: [line for p in (tmp_path / "seen").glob(f"rank{r}-*.txt") for line in p.read_text().split()]
            for r in (0, 1)}
    assert len(read[0]) == len(set(read[0])) == 16 and len(read[1]) == len(set(read[1])) == 16
    assert not set(read[0]) & set(read[1])
    listed = {f"train/{c}/{i:03d}.jpg" for c in CLASSES for i in range(15)} | set(bad)
    assert set(read[0]) | set(read[1]) == listed
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["world_size"] == 2 and summary["data"]["mode"] == "stream"
    # rank 0 records both unreadable files, whichever process's stream met them
    assert {s["file"] for s in summary["data"]["skipped_images"]} == {str(root / f) for f in bad}


def test_trainer_reads_a_stream_and_records_the_choice(photos, tmp_path):
    datasets._CACHE.clear()
    t = Trainer(TrainConfig("lenet5_modern", dataset="folder", data_dir=str(photos), data_mode="stream", workers=0,
                            epochs=1, batch_size=10, input_size=28, amp="fp32"), tmp_path, progress=False)
    assert t.cfg.data_mode == "stream" and t.steps_per_epoch == 3
    steps = [(step, x.shape, len(y)) for step, _, x, y in t.train_batches(0, start=1)]
    assert steps == [(1, (10, 3, 28, 28), 10), (2, (4, 3, 28, 28), 4)]
    rec = t.data_record()
    assert rec["mode"] == "stream" and rec["workers"] == 0 and rec["mode_reason"] == "--data-mode stream"
