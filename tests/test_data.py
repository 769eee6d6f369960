"""Data readers, file checks and batched augmentation, on small files the tests write."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.data import Augment, augment, channel_stats, load_dataset, random_crop, random_erase, read_cifar_batch, read_idx, to_input
from cnnzoo.data import datasets as ds
from cnnzoo.errors import CnnzooError, DataFileError


def write_idx(path, arr: np.ndarray, gz: bool = True) -> None:
    """IDX as in LeCun's format description: 0, 0, type 0x08 (uint8), ndim, big-endian sizes, data."""
    raw = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def write_mnist(root, n_train=64, n_test=32, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))


@pytest.fixture(autouse=True)
def no_system_dirs(monkeypatch):
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {})
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    ds._CACHE.clear()


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x", arr, gz=gz)
    t = read_idx(tmp_path / "x", 3)
    assert t.dtype == torch.uint8 and t.shape == (2, 3, 4)
    assert torch.equal(t, torch.from_numpy(arr))


def test_idx_corrupt_files_are_clear_errors(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    write_idx(tmp_path / "good", arr, gz=False)
    good = (tmp_path / "good").read_bytes()
    (tmp_path / "magic").write_bytes(b"\x12\x34" + good[2:])
    (tmp_path / "short").write_bytes(good[:-10])
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(good)[:2000])
    for name, words in [("magic", "magic number"), ("short", "wrong length"), ("bad.gz", "gzip"),
                        ("cut.gz", "gzip"), ("missing", "missing")]:
        with pytest.raises(DataFileError, match=words) as e:
            read_idx(tmp_path / name)
        assert name in str(e.value)
    with pytest.raises(DataFileError, match="dimension"):
        read_idx(tmp_path / "good", expect_dims=1)


def test_missing_file_names_file_and_three_ways(tmp_path):
    with pytest.raises(DataFileError) as e:
        load_dataset("fashion-mnist", tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "dataset-fashion-mnist" in msg
    assert "--data-dir" in msg and "CNNZOO_DATA" in msg and "--download" in msg


def test_fashion_mnist_checksum_is_verified(tmp_path):
    write_mnist(tmp_path)  # right format, wrong content
    with pytest.raises(DataFileError, match="checksum"):
        load_dataset("fashion-mnist", tmp_path)
    d = load_dataset("fashion-mnist", tmp_path, verify=False)
    assert d.train.x.shape == (64, 1, 28, 28) and d.test.labels.shape == (32,) and d.num_classes == 10


def test_mnist_from_dir_and_env(tmp_path, monkeypatch):
    sub = tmp_path / "mnist"
    sub.mkdir()
    write_mnist(sub)
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path))
    d = load_dataset("mnist")
    assert d.train.x.dtype == torch.uint8 and d.train.labels.dtype == torch.int64 and d.classes[3] == "3"


def write_cifar(root, n=20, seed=0):
    rng = np.random.default_rng(seed)
    for f in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        (root / f).write_bytes(pickle.dumps(d))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))


def test_cifar_reader_layout_and_errors(tmp_path):
    write_cifar(tmp_path)
    x, y = read_cifar_batch(tmp_path / "data_batch_1")
    raw = pickle.loads((tmp_path / "data_batch_1").read_bytes())[b"data"]
    assert x.shape == (20, 3, 32, 32) and y.dtype == torch.int64
    # CIFAR rows are 1024 red, 1024 green, 1024 blue values, row-major (the data set's web page)
    assert x[0, 1, 0, 5] == raw[0, 1024 + 5] and x[0, 2, 31, 31] == raw[0, 3071]
    d = load_dataset("cifar10", tmp_path, verify=False)
    assert d.train.x.shape == (100, 3, 32, 32) and d.classes[0] == "c0" and len(d.mean) == 3
    with pytest.raises(DataFileError, match="checksum"):
        load_dataset("cifar10", tmp_path, verify=True)
    (tmp_path / "bad").write_bytes(b"garbage")
    with pytest.raises(DataFileError, match="not a CIFAR"):
        read_cifar_batch(tmp_path / "bad")


def test_image_folder(tmp_path):
    for split in ("train", "test"):
        for k, c in enumerate(("cat", "dog")):
            (tmp_path / split / c).mkdir(parents=True)
            Image.new("RGB", (40 + k, 30), (k * 200, 10, 10)).save(tmp_path / split / c / "a.png")
    d = load_dataset("folder", tmp_path, channels=3, size=16)
    assert d.classes == ["cat", "dog"] and d.train.x.shape == (2, 3, 16, 16)
    assert d.train.x[1, 0].float().mean() > 150 and d.train.labels.tolist() == [0, 1]
    with pytest.raises(DataFileError, match="differ in size"):
        load_dataset("folder", tmp_path, channels=1)
    with pytest.raises(CnnzooError, match="unknown data set"):
        load_dataset("imagenet")


def test_channel_stats_matches_direct_computation():
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    mean, std = channel_stats(x)
    xf = x.double().transpose(0, 1).reshape(3, -1) / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), xf.mean(1))
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), xf.std(1, unbiased=False))


def test_random_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.randint(1, 256, (64, 2, 10, 12), dtype=torch.uint8)
    y = random_crop(x, 3, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8
    xp = torch.nn.functional.pad(x, (3, 3, 3, 3))
    for i in range(len(x)):  # each output equals one of the 49 windows of its padded input
        assert any(torch.equal(y[i], xp[i, :, dy:dy + 10, dx:dx + 12]) for dy in range(7) for dx in range(7))
    assert (y == 0).any()  # some crops reach into the zero padding


def test_augment_flip_determinism_and_to_input_range():
    x = torch.randint(0, 256, (128, 1, 28, 28), dtype=torch.uint8)
    a = augment(x, Augment(0, True), torch.Generator().manual_seed(1))
    b = augment(x, Augment(0, True), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    flipped = [torch.equal(a[i], x[i].flip(-1)) for i in range(128)]
    kept = [torch.equal(a[i], x[i]) for i in range(128)]
    assert all(f or k for f, k in zip(flipped, kept)) and 30 < sum(flipped) < 98
    z = to_input(x, 32, (0.5,), (0.25,))
    assert z.shape == (128, 1, 32, 32) and z.dtype == torch.float32
    # (v / 255 - 0.5) / 0.25 lies in [-2, 2]
    assert z.min() >= -2 - 1e-5 and z.max() <= 2 + 1e-5
    assert to_input(x, 28, (0.5,), (0.25,), channels_last=True).is_contiguous(memory_format=torch.channels_last)


def test_random_erase_puts_one_rectangle_of_the_papers_size_in_about_p_of_the_images():
    # A constant image makes the erased pixels visible (noise hits the constant 1 in 1/256 pixels).
    n, h, w = 2000, 28, 28
    x = torch.full((n, 2, h, w), 7, dtype=torch.uint8)
    y = random_erase(x, 0.5, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8
    assert torch.equal(random_erase(x, 0.5, torch.Generator().manual_seed(0)), y)   # seeded
    assert torch.equal(random_erase(x, 0.0, torch.Generator().manual_seed(0)), x)   # p = 0: off
    changed = (y != x).any(1)                                   # (N, H, W) erased pixels
    hit = changed.flatten(1).any(1)
    assert 900 < int(hit.sum()) < 1100                          # Binomial(2000, 0.5) +- 4.5 sigma
    for i in hit.nonzero().flatten()[:200].tolist():
        r, c = changed[i].any(1).nonzero().flatten(), changed[i].any(0).nonzero().flatten()
        he, we = int(r[-1] - r[0] + 1), int(c[-1] - c[0] + 1)  # bounding box of the erased pixels
        # rows and columns contiguous (one rectangle) and inside the image
        assert len(r) == he and len(c) == we and he < h and we < w
        # area within [0.02, 0.4] of H x W (rounding of the sides: +- one row and one column)
        assert 0.02 * h * w - he - we - 1 <= he * we <= 0.4 * h * w + he + we + 1
        # the two channels are erased over the same rectangle with independent random values
        assert not torch.equal(y[i, 0], y[i, 1])
    z = random_erase(x, 1.0, torch.Generator().manual_seed(1))
    assert (z != x).flatten(1).any(1).float().mean() > 0.97    # p = 1: all but the rare no-fit draws


@pytest.mark.skipif(not (ds.Path("/usr/share/datasets/fashion-mnist") / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {"fashion-mnist": "/usr/share/datasets/fashion-mnist"})
    d = load_dataset()
    assert d.train.x.shape == (60000, 1, 28, 28) and d.test.x.shape == (10000, 1, 28, 28)
    # balanced: 6000 / 1000 images per class (Xiao et al. 2017, Sec. 2)
    assert torch.bincount(d.train.labels).tolist() == [6000] * 10 and torch.bincount(d.test.labels).tolist() == [1000] * 10
