"""Your own data (issue 15): image files read as a viewer shows them, image folders with what file
managers leave behind, labels outside the classes, named data folders, mixed sizes, colour, and
the aspect-ratio rule of predict. Expected pixels are built with numpy, not with cnnzoo's reader."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.data import datasets as ds
from cnnzoo.data import load_dataset, open_image, read_image
from cnnzoo.errors import DataFileError
from cnnzoo.deploy import predict
from test_data import write_cifar, write_idx, write_mnist

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def no_system_dirs(monkeypatch):
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {})
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    ds._CACHE.clear()


def pixels(path, **kw) -> np.ndarray:
    """cnnzoo's reading as (H, W) or (H, W, 3) numpy."""
    t = read_image(path, **kw)
    return t[0].numpy() if t.shape[0] == 1 else t.permute(1, 2, 0).numpy()


# -- 1. every image as a viewer shows it --------------------------------------------------------
def test_exif_orientation_6_is_applied(tmp_path):
    # stored 56 wide x 28 tall; Orientation 6 = "rotate 90 degrees clockwise to display" (EXIF 2.32, Table 7)
    stored = np.zeros((28, 56, 3), np.uint8)
    stored[:, :28] = (250, 20, 20)                # left half red, right half blue
    stored[:, 28:] = (20, 20, 250)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", quality=100, exif=exif.tobytes())
    got = pixels(tmp_path / "phone.jpg")
    assert got.shape == (56, 28, 3)                       # 28 wide, 56 tall, as displayed
    want = np.rot90(stored, k=-1)                         # clockwise: the stored left half goes on top
    assert np.abs(got.astype(int) - want).mean() < 4     # JPEG at quality 100
    assert got[:28, :, 0].mean() > 200 and got[28:, :, 2].mean() > 200


def test_modes_are_read_with_their_real_range(tmp_path):
    h, w = 4, 6
    bits = RNG.integers(0, 2, (h, w)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "one.png")                            # mode "1"
    assert np.array_equal(pixels(tmp_path / "one.png"), bits * np.uint8(255))

    v16 = RNG.integers(0, 65536, (h, w)).astype(np.uint16)
    Image.fromarray(v16).save(tmp_path / "grey16.png")                          # 16-bit PNG: I;16
    want16 = np.rint(v16 / 65535 * 255).astype(np.uint8)
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    assert np.array_equal(pixels(tmp_path / "grey16.png"), want16)

    # a 16-bit PGM (maxval 65535), which Pillow opens in the 32-bit integer mode "I"
    (tmp_path / "grey16.pgm").write_bytes(f"P5\n{w} {h}\n65535\n".encode() + v16.astype(">u2").tobytes())
    assert Image.open(tmp_path / "grey16.pgm").mode == "I"
    assert np.array_equal(pixels(tmp_path / "grey16.pgm"), want16)

    f = RNG.uniform(-0.5, 1.5, (h, w)).astype(np.float32)
    Image.fromarray(f).save(tmp_path / "float.tif")                             # mode "F": [0, 1] -> 0..255
    assert np.array_equal(pixels(tmp_path / "float.tif"), np.rint(np.clip(f, 0, 1) * 255).astype(np.uint8))

    cmyk = RNG.integers(0, 256, (h, w, 4)).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.tif")
    c, k = cmyk[..., :3].astype(float), cmyk[..., 3:].astype(float)
    want = (255 - c) * (255 - k) / 255                                          # R = (1 - C)(1 - K)
    assert np.abs(pixels(tmp_path / "cmyk.tif").astype(float) - want).max() <= 1


def test_palette_transparency_and_animation(tmp_path):
    idx = RNG.integers(0, 4, (5, 7)).astype(np.uint8)
    pal = np.array([[0, 0, 0], [200, 30, 40], [10, 220, 90], [128, 128, 255]], np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(pal.ravel().tolist())
    im.save(tmp_path / "pal.png")
    assert np.array_equal(pixels(tmp_path / "pal.png"), pal[idx])               # the palette's colours
    im.save(tmp_path / "pal_t.png", transparency=0)                            # index 0 transparent
    assert np.array_equal(pixels(tmp_path / "pal_t.png"), np.where((idx == 0)[..., None], 255, pal[idx]))
    grey = Image.fromarray(idx, "P")
    grey.putpalette([v for i in range(4) for v in (60 * i,) * 3])
    grey.save(tmp_path / "pal_grey.png")
    assert read_image(tmp_path / "pal_grey.png").shape == (1, 5, 7)            # a grey palette is grey

    # transparency composited on white: out = a * v + (1 - a) * 255
    rgba = RNG.integers(0, 256, (5, 7, 4)).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    a = rgba[..., 3:] / 255
    assert np.abs(pixels(tmp_path / "rgba.png") - (a * rgba[..., :3] + (1 - a) * 255)).max() <= 1
    Image.fromarray(idx * 50).save(tmp_path / "key.png", transparency=50)      # grey with a transparent value
    assert np.array_equal(pixels(tmp_path / "key.png"), np.where(idx == 1, 255, idx * 50))
    la = rgba[..., [0, 3]]
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    got = pixels(tmp_path / "la.png")
    assert got.ndim == 2 and np.abs(got - (a[..., 0] * la[..., 0] + (1 - a[..., 0]) * 255)).max() <= 1

    frames = [Image.new("RGB", (8, 8), col) for col in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(tmp_path / "anim.gif").n_frames == 2
    assert (pixels(tmp_path / "anim.gif") == (255, 0, 0)).all()                 # the first frame


def test_unreadable_image_is_one_line_naming_it(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataFileError, match="x.png"):
        open_image(tmp_path / "x.png")


# -- 2. image folders with what file managers and notebooks leave behind ------------------------
def dots(root, split, cls, colour, n=6, sizes=(28,)):
    """``n`` PNGs of a 3x3 dot of ``colour`` on black at random places, sides drawn from ``sizes``."""
    d = root / split / cls
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        s = int(RNG.choice(sizes))
        a = np.zeros((s, s + int(RNG.integers(0, 9)), 3), np.uint8)
        y, x = RNG.integers(s // 4, 3 * s // 4 - 3, 2)
        a[y:y + 3 * s // 14 + 3, x:x + 3 * s // 14 + 3] = colour
        Image.fromarray(a).save(d / f"{i}.png")


def test_hidden_and_system_entries_are_not_classes_or_images(tmp_path):
    for split in ("train", "test"):
        dots(tmp_path, split, "shirt", (255, 255, 255), n=2)
        dots(tmp_path, split, "shoe", (128, 128, 128), n=2)
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()                 # Jupyter, in train only
    (tmp_path / "train" / "__MACOSX").mkdir()
    (tmp_path / "train" / "shirt" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "train" / "shirt" / "._0.png").write_bytes(b"\0")       # macOS AppleDouble
    (tmp_path / "train" / "shirt" / "notes.txt").write_text("x")
    (tmp_path / "test" / ".ipynb_checkpoints").mkdir()
    d = load_dataset("folder", tmp_path, size=28)
    assert d.classes == ["shirt", "shoe"] and d.train.labels.tolist() == [0, 0, 1, 1]
    assert d.in_chans == 3                                 # RGB files, grey-looking: the files' mode decides
    note = next(n for n in d.notes if str(tmp_path / "train") + ":" in n)
    assert "5" in note and ".ipynb_checkpoints/" in note                  # counted and named


def test_empty_class_folder_and_different_classes_are_named(tmp_path):
    for split in ("train", "test"):
        dots(tmp_path, split, "shirt", (255, 255, 255), n=1)
    (tmp_path / "train" / "shoe").mkdir()
    (tmp_path / "train" / "shoe" / "readme.txt").write_text("x")
    with pytest.raises(DataFileError) as e:
        load_dataset("folder", tmp_path)
    assert str(tmp_path / "train" / "shoe") in str(e.value) and "no image files" in str(e.value)
    dots(tmp_path, "train", "shoe", (1, 1, 1), n=1)
    with pytest.raises(DataFileError) as e:
        load_dataset("folder", tmp_path)
    assert f"only in {tmp_path / 'train'}: shoe" in str(e.value)


def test_a_folder_with_one_class_is_refused(tmp_path):
    for split in ("train", "test"):
        dots(tmp_path, split, "shirt", (255, 255, 255), n=2)
    with pytest.raises(DataFileError, match="has 1 class folder \\(shirt\\); a classifier needs at least 2"):
        load_dataset("folder", tmp_path, size=28)


# -- 3. labels outside the classes ---------------------------------------------------------------
def test_label_outside_the_classes_names_file_index_and_value(tmp_path, capsys):
    write_mnist(tmp_path)
    y = RNG.integers(0, 10, 64)
    y[5] = 10
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y)
    with pytest.raises(DataFileError) as e:
        load_dataset("mnist", tmp_path)
    assert "train-labels-idx1-ubyte" in str(e.value) and "label 10 at index 5" in str(e.value)
    assert main(["train", "lenet5_modern", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "label 10 at index 5" in err
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    write_cifar(cifar, n=4)
    batch = pickle.loads((cifar / "data_batch_3").read_bytes())
    batch[b"labels"][2] = -1
    (cifar / "data_batch_3").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataFileError, match="data_batch_3: label -1 at index 2 is outside the 10 classes"):
        load_dataset("cifar10", cifar, verify=False)


# -- 7. a named folder is used or refused ---------------------------------------------------------
def test_named_data_folder_is_never_replaced(tmp_path, monkeypatch, capsys):
    system = tmp_path / "system"
    system.mkdir()
    write_mnist(system)
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {"mnist": str(system)})
    assert load_dataset("mnist").source == str(system)                      # no folder named: the fallback
    with pytest.raises(DataFileError, match="/nonexistent .*does not exist"):
        load_dataset("mnist", "/nonexistent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match=f"in {tmp_path / 'empty'} \\(given as --data-dir"):
        load_dataset("mnist", tmp_path / "empty")
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataFileError, match="given as CNNZOO_DATA"):
        load_dataset("mnist")
    assert main(["train", "lenet5_modern", "--dataset", "mnist", "--data-dir", "/nonexistent", "--quiet",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "/nonexistent" in err and "does not exist" in err


# -- 9, 10, 11: mixed sizes and colour train; eval finds the data; predict keeps the aspect ratio ---
def test_mixed_sizes_are_fitted_shorter_side_and_centre(tmp_path):
    # 60 wide x 20 tall: thirds 0 / 255 / 0. Shorter side already 20 -> the centre 20x20 is the middle third.
    a = np.zeros((20, 60), np.uint8)
    a[:, 20:40] = 255
    Image.fromarray(a).save(tmp_path / "wide.png")
    assert np.array_equal(pixels(tmp_path / "wide.png", size=20), a[:, 20:40])
    # any shape: torchvision's Resize(S) + CenterCrop(S) on the PIL image, pixel for pixel
    import torchvision.transforms.v2.functional as TF

    for (h, w), s in (((60, 100), 30), ((37, 81), 28), ((80, 24), 32), ((24, 24), 32), ((28, 28), 28)):
        b = RNG.integers(0, 256, (h, w, 3)).astype(np.uint8)
        Image.fromarray(b).save(tmp_path / "b.png")
        want = np.asarray(TF.center_crop(TF.resize(Image.fromarray(b), s), s))
        assert np.array_equal(pixels(tmp_path / "b.png", size=s), want)
    assert read_image(tmp_path / "b.png", channels=1, size=30).shape == (1, 30, 30)


def test_colour_is_kept_red_and_green_equal_in_grey(tmp_path):
    # ITU-R 601-2 luma: red 255 -> 0.299 * 255 = 76.2, green 130 -> 0.587 * 130 = 76.3: both 76 in grey
    for split in ("train", "test"):
        dots(tmp_path, split, "green", (0, 130, 0), n=3)
        dots(tmp_path, split, "red", (255, 0, 0), n=3)
    rgb = load_dataset("folder", tmp_path, size=28)
    assert rgb.in_chans == 3 and any("3 channels (RGB" in n for n in rgb.notes)
    assert rgb.train.x[rgb.train.labels == 1, 0].max() == 255 and rgb.train.x[rgb.train.labels == 0, 0].max() == 0
    grey = load_dataset("folder", tmp_path, channels=1, size=28)
    assert grey.in_chans == 1 and any("converted by ITU-R 601-2 luma" in n for n in grey.notes)
    assert grey.train.x[grey.train.labels == 0].max() == grey.train.x[grey.train.labels == 1].max() == 76
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    write_mnist(mnist)
    m3 = load_dataset("mnist", mnist, channels=3)
    assert m3.train.x.shape[1] == 3 and torch.equal(m3.train.x[:, 2], load_dataset("mnist", mnist).train.x[:, 0])


def test_folder_of_photos_trains_evaluates_and_predicts(tmp_path, capsys):
    """Issue 15, items 9-11: differently sized colour PNGs train through the CLI; eval uses the
    recorded folder from another working directory; predict and visualize fit the image."""
    data = tmp_path / "data"
    for split, n in (("train", 16), ("test", 6)):
        dots(data, split, "green", (0, 130, 0), n=n, sizes=(24, 40, 80))
        dots(data, split, "red", (255, 0, 0), n=n, sizes=(24, 40, 80))
    run = tmp_path / "run"
    assert main(["train", "lenet5_modern", "--dataset", "folder", "--data-dir", str(data), "--input-size", "28",
                 "--epochs", "6", "--batch-size", "8", "--lr", "0.05", "--out", str(run), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 channels (RGB" in out and "resized to 28x28 (shorter side to 28, centre crop)" in out
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["in_chans"] == 3 and ck["classes"] == ["green", "red"]
    assert ck["config"]["data_dir"] == str(data)
    assert main(["eval", str(run)]) == 0                                       # no --data-dir: the recorded one
    out = capsys.readouterr().out
    assert "12 test images" in out
    top1 = float(out.split("top-1 ")[1].split("%")[0])
    assert top1 >= 90.0                                # colour alone separates them (chance: 50%)
    wide = np.zeros((28, 84, 3), np.uint8)                                     # 3:1, shorter side = input size
    wide[11:17, 39:45] = (255, 0, 0)                                           # a red dot in the centre
    wide[:, :20] = (0, 130, 0)                                                 # green at the left end
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(wide[:, 28:56]).save(tmp_path / "centre.png")             # its centre square, by hand
    assert main(["predict", str(run), str(tmp_path / "wide.png"), "--topk", "1"]) == 0
    assert "red" in capsys.readouterr().out
    [p_wide, p_centre] = predict(run, [tmp_path / "wide.png", tmp_path / "centre.png"], topk=2)
    assert p_wide["top"] == p_centre["top"]                                    # not stretched: the centre crop
    assert main(["visualize", str(run), str(tmp_path / "wide.png"), "--out", str(tmp_path / "vis")]) == 0
    assert (tmp_path / "vis" / "input.png").exists()
