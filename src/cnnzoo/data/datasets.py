"""Named data sets held in memory as uint8 tensors: Fashion-MNIST (the default), MNIST,
CIFAR-10 and image folders.

Where the files are looked for: in the ``data_dir`` argument (``--data-dir``) when one is given,
else in the ``CNNZOO_DATA`` environment variable's folder when it is set, and only when neither
names a folder in the system location of the Debian package (``/usr/share/datasets/fashion-mnist``
for Fashion-MNIST). A folder the user names is used or refused (one line naming it and what it
lacks), never silently replaced by another. Inside that folder, the files may sit directly, in a
sub-folder named after the data set, or in torchvision's download layout (``FashionMNIST/raw``).
``download=True`` fetches missing files with torchvision's downloader.

Every data set's labels are checked against its classes at load time. Image folders: see
:func:`cnnzoo.data.readers.list_image_folder` and :func:`cnnzoo.data.readers.read_images`, and
docs/data.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataFileError
from .._text import plural
from . import readers, splits
from .labels import read_labels_csv

#: MD5 of the *uncompressed* official Fashion-MNIST IDX files, so that any gzip of them passes
#: (the Debian package dataset-fashion-mnist 0.0~git20200523 recompressed the .gz files, whose
#: MD5s then differ from torchvision's). Source: the checksum lists published with public
#: Fashion-MNIST loaders ("raw_data" tables) and tutorials that verify after ``gunzip``.
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
#: CIFAR-10 python batches and their MD5s as torchvision publishes them (``CIFAR10.train_list``
#: etc.); kept here because importing torchvision costs seconds.
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
#: Class names, index = label: Zalando's Fashion-MNIST README ("Labels") and the digits.
CLASSES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "mnist": [str(d) for d in range(10)],
}
#: torchvision's folder names, to find files where torchvision's downloader put them.
_TV_FOLDER = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "cifar10": "cifar-10-batches-py"}
SYSTEM_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}  # where the Debian package puts it


@dataclass
class ImageData:
    """A classification data set in memory.

    Attributes:
        name: data-set name, e.g. ``"fashion-mnist"``.
        train_x, test_x: (N, C, H, W) uint8 images.
        train_y, test_y: (N,) int64 labels in ``[0, num_classes)``.
        classes: class names, index = label.
        mean, std: per-channel statistics of ``train_x`` scaled to [0, 1] (computed, never typed in).
        source: where the files were read from.
        notes: one line per thing the user should know about how the files were read (skipped
            entries, channel conversion, resizing); printed by ``cnnzoo train``, kept in metrics.json.
        val_x, val_y: a validation set like the test set (a ``val/`` folder beside ``train/`` and
            ``test/``, a split of class folders, or :func:`hold_out`), or ``None``.
        split: how the parts were made, for the run's record (layout, fractions, seed, images per
            class and part, and which files or indices each held-out part got), or ``None``.
        skipped: [(file, why unreadable), ...] of the image files left out (``skip_bad``).
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    notes: tuple[str, ...] = ()
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None
    split: dict | None = None
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def native_size(self) -> int:
        return int(self.train_x.shape[-1])


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W) scaled to [0, 1],
    computed exactly from a 256-bin histogram per channel. A constant channel (std 0, e.g. the
    blue of red and green drawings) gets std 1, so normalising only centres it."""
    v = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        h = torch.bincount(x[:, c].reshape(-1), minlength=256).double()
        m = (h * v).sum() / h.sum()
        means.append(float(m))
        s = float(((h * (v - m) ** 2).sum() / h.sum()).sqrt())
        stds.append(s if s > 0 else 1.0)
    return tuple(means), tuple(stds)


def _how_to_provide(name: str) -> str:
    apt = ("install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist), "
           if name == "fashion-mnist" else "")
    return (f"provide it in one of three ways: {apt}pass --data-dir DIR or set CNNZOO_DATA=DIR "
            "to a folder that holds it, or let torchvision fetch it (cnnzoo train --download, or "
            "download=True in the API; needs a network)")


def user_root(data_dir: str | os.PathLike | None) -> tuple[Path, str] | None:
    """The folder the user named, ``(path, how it was named)``: ``data_dir`` (``--data-dir``), else
    ``$CNNZOO_DATA``; ``None`` when neither is set.

    Raises:
        DataFileError: the named folder does not exist or is not a folder.
    """
    root, how = (data_dir, "--data-dir") if data_dir else (os.environ.get("CNNZOO_DATA"), "CNNZOO_DATA")
    if not root:
        return None
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"data folder {root} (given as {how}) {'is not a folder' if root.exists() else 'does not exist'}; "
                            f"pass the folder that holds the data set's files")
    return root, how


def _find(name: str, files: list[str], data_dir, tv_folder: str) -> Path:
    """The first candidate directory holding ``files`` (each also accepted without ``.gz``): the
    user's folder (:func:`user_root`) or else the system location, each directly, in ``name/``
    or in torchvision's layout."""
    named = user_root(data_dir)
    roots = [named[0]] if named else [Path(SYSTEM_DIRS[name])] if name in SYSTEM_DIRS else []
    cands = [d for r in roots for d in (r, r / name, r / tv_folder / "raw", r / tv_folder)]
    for d in cands:
        if all((d / f).exists() or (d / f.removesuffix(".gz")).exists() for f in files):
            return d
    if not cands:   # nothing to look in: no --data-dir, no CNNZOO_DATA, no system location
        raise DataFileError(f"no {name} data: no --data-dir given, CNNZOO_DATA is not set and {name} has no "
                            f"system location; {_how_to_provide(name)}")
    missing = next((f for f in files if not (cands[0] / f).exists()), files[0])
    where = ", ".join(str(c) for c in cands)
    if named:
        raise DataFileError(f"missing data file {missing} for {name} in {named[0]} (given as {named[1]}; looked in "
                            f"{where}); put the files there, or {_how_to_provide(name)}")
    raise DataFileError(f"missing data file {missing} for {name} (looked in {where}); {_how_to_provide(name)}")


def _download(name: str, data_dir) -> Path:
    import torchvision.datasets as tvd

    root = Path(data_dir or os.environ.get("CNNZOO_DATA") or Path.home() / ".cache" / "cnnzoo")
    cls = {"fashion-mnist": tvd.FashionMNIST, "mnist": tvd.MNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as err:  # noqa: BLE001 - network failures come in many types
        raise DataFileError(f"download of {name} into {root} failed: {err}") from None
    return root


def _idx_dataset(name: str, data_dir, verify: bool) -> ImageData:
    d = _find(name, list(IDX_FILES), data_dir, _TV_FOLDER[name])
    md5 = FASHION_MNIST_MD5 if verify and name == "fashion-mnist" else {}

    def read(f: str, dims: int) -> torch.Tensor:
        path = d / f if (d / f).exists() else d / f.removesuffix(".gz")
        return readers.read_idx(path, dims, md5.get(f.removesuffix(".gz")))

    tx, ty = read("train-images-idx3-ubyte.gz", 3), read("train-labels-idx1-ubyte.gz", 1)
    vx, vy = read("t10k-images-idx3-ubyte.gz", 3), read("t10k-labels-idx1-ubyte.gz", 1)
    for x, y, split in ((tx, ty, "train"), (vx, vy, "t10k")):
        if len(x) != len(y):
            raise DataFileError(f"{d}: {split} has {len(x)} images but {len(y)} labels")
        readers.check_labels(y, len(CLASSES[name]), d / f"{split}-labels-idx1-ubyte")
    return _make(name, tx[:, None], ty.long(), vx[:, None], vy.long(), CLASSES[name], str(d))


def _cifar10(data_dir, verify: bool) -> ImageData:
    d = _find("cifar10", list(CIFAR10_MD5), data_dir, _TV_FOLDER["cifar10"])
    if verify:
        for f, md5 in CIFAR10_MD5.items():
            readers.verify_md5(d / f, md5)
    train = [readers.read_cifar_batch(d / f"data_batch_{k}") for k in range(1, 6)]
    vx, vy = readers.read_cifar_batch(d / "test_batch")
    tx, ty = torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])
    classes = readers.read_cifar_meta(d / "batches.meta")
    for k, (_, y) in enumerate(train):
        readers.check_labels(y, len(classes), d / f"data_batch_{k + 1}")
    readers.check_labels(vy, len(classes), d / "test_batch")
    return _make("cifar10", tx, ty, vx, vy, classes, str(d))


def _listing(root: Path, labels) -> tuple[dict[str, list[tuple[Path, int]]], list[str], list[str], str]:
    """The labelled image files of a folder data set, per part as laid out on disk: ``{"train":
    ..., "val": ..., "test": ...}`` (train/, test/ and val/ folders: val/ is the test set when there
    is no test/) or ``{"all": ...}`` (class folders without train/, or a flat folder with ``labels``),
    the class names, notes, and the layout in words."""
    if labels:
        files, classes, note = read_labels_csv(labels, root)
        return {"all": files}, classes, [note], f"a flat folder labelled by {Path(labels).name}"
    if not (root / "train").is_dir():
        if (root / "test").is_dir() or (root / "val").is_dir():
            raise DataFileError(f"{root} has {'test/' if (root / 'test').is_dir() else 'val/'} but no train/ folder; "
                                "add DIR/train/CLASS/IMAGE, or give a folder of class folders to split")
        files, classes, note = readers.list_image_folder(root)
        return {"all": files}, classes, [note] if note else [], "class folders without train/ and test/"
    dirs = {"train": root / "train"}
    if (root / "test").is_dir():
        dirs["test"] = root / "test"
        if (root / "val").is_dir():
            dirs["val"] = root / "val"
    else:
        dirs["test"] = root / "val" if (root / "val").is_dir() else root / "test"
    listed = {part: readers.list_image_folder(d) for part, d in dirs.items()}
    classes = listed["train"][1]
    for part, (_, other, _) in listed.items():
        if other != classes:
            only = [f"only in {d}: {', '.join(sorted(set(a) - set(b)))}" for d, a, b in
                    ((dirs["train"], classes, other), (dirs[part], other, classes)) if set(a) - set(b)]
            raise DataFileError(f"class folders differ between {dirs['train']} and {dirs[part]} ({'; '.join(only)}); "
                                "give every split the same class folders")
    layout = " + ".join(f"{d.name}/" for d in dirs.values()) + (" (val/ is the test set)" if dirs["test"].name == "val"
                                                                 else "")
    return ({part: files for part, (files, _, _) in listed.items()}, classes,
            [note for _, _, note in listed.values() if note], layout)


def _folder(data_dir, channels: int | None, size: int | None, resize: int | None = None, split=None,
            seed: int = 0, labels=None, skip_bad: bool = False) -> ImageData:
    if not data_dir:
        raise DataFileError("the folder data set needs --data-dir DIR holding train/ and test/ (or val/) sub-folders "
                            "each with one folder per class, or one folder per class to split, or images and --labels")
    root = user_root(data_dir)[0]
    parts, classes, notes, layout = _listing(root, labels)
    if split is not None and "all" not in parts:
        raise splits.SplitError(f"--split applies to a folder of class folders without train/ and test/ (or with "
                                f"--labels); {root} has {layout}: drop --split, or use --val-split for validation")
    if len(classes) < 2:           # nothing to tell apart: every model scores 100%
        where = root / "train" if "train" in parts else root
        raise DataFileError(f"{where} has {len(classes)} class folder ({', '.join(classes)}); a classifier needs at "
                            "least 2: put each class's images in its own folder")
    order = [(part, f, k) for part, files in parts.items() for f, k in files]
    x, kept, bad, how = readers.read_image_set([f for _, f, _ in order], channels, size, resize=resize,
                                               skip_bad=skip_bad)
    order = [order[i] for i in kept]                                   # one channel rule for all parts
    y = torch.tensor([k for _, _, k in order], dtype=torch.int64)
    names = [f.relative_to(root).as_posix() for _, f, _ in order]
    part_of = [p for p, _, _ in order]
    if "all" in parts:                       # split it: stratified, seeded, recorded
        fractions = splits.parse_split(split)
        idx = dict(zip(splits.PARTS, splits.stratified_parts(y, fractions, seed)))
        for part, f in zip(("val", "test"), fractions[1:]):
            if f > 0 and not len(idx[part]):
                raise splits.SplitError(f"--split {','.join(f'{v:g}' for v in fractions)} leaves the {part} set of "
                                        f"{plural(len(y), 'image')} empty; give it a larger fraction or add images")
        how_split = f"split {'/'.join(f'{v:g}' for v in fractions)} (stratified, seed {seed})"
    else:
        idx = {part: torch.tensor([i for i, p in enumerate(part_of) if p == part], dtype=torch.int64) for part in parts}
        how_split, fractions = "as the folders hold them", None
    idx = {part: i for part, i in idx.items() if len(i) or part != "val"}
    record = {"layout": layout, "how": how_split, "fractions": fractions, "seed": seed if fractions else None,
              "counts": {part: splits.counts_by_class(y[i], classes) for part, i in idx.items()},
              "files": {part: [names[j] for j in i.tolist()] for part, i in idx.items()}}
    if bad:
        notes.append(f"skipped {plural(len(bad), 'unreadable image file')} (--skip-bad-images): "
                     + "; ".join(f"{p} ({why})" for p, why in bad))
    sizes = " / ".join(f"{len(i)} {part}" for part, i in idx.items())
    notes.insert(0, f"folder {root} ({layout}): {sizes} images, {len(classes)} classes, {how_split}; {how}")
    val = idx.get("val")
    return _make("folder", x[idx["train"]], y[idx["train"]], x[idx["test"]], y[idx["test"]], classes, str(root),
                 notes, val_x=None if val is None else x[val], val_y=None if val is None else y[val],
                 split=record, skipped=tuple(bad))


def hold_out(data: ImageData, fraction: float, seed: int, limit: int | None = None) -> ImageData:
    """``data`` with a stratified, seeded ``fraction`` of its first ``limit`` training images (all
    with ``None``) moved to a validation set (``--val-split``; :func:`~cnnzoo.data.splits.stratified_parts`
    with fractions ``(1 - fraction, fraction)``), mean and std recomputed on the images left for training.

    Raises:
        SplitError: ``data`` already has a validation set; ``fraction`` not in (0, 1); it leaves no
            validation image.
    """
    if data.val_x is not None:
        raise splits.SplitError(f"--val-split {fraction:g}: {data.name} already has a validation set "
                                f"({data.split['layout'] if data.split else 'val/'}); drop --val-split, or give "
                                "the validation fraction in --split")
    if not 0 < fraction < 1:
        raise splits.SplitError(f"--val-split {fraction:g}: give a fraction in (0, 1), e.g. 0.1")
    x, y = data.train_x[:limit], data.train_y[:limit]
    tr, va = splits.stratified_parts(y, (1 - fraction, fraction), seed)
    if not len(va):
        raise splits.SplitError(f"--val-split {fraction:g} of {plural(len(y), 'training image')} holds out none; "
                                "give a larger fraction")
    files = (data.split or {}).get("files", {}).get("train")
    record = {**(data.split or {"layout": data.name}), "how": f"--val-split {fraction:g} of the training images "
              f"(stratified, seed {seed})", "val_split": fraction, "seed": seed,
              "counts": {**(data.split or {}).get("counts", {}), "train": splits.counts_by_class(y[tr], data.classes),
                         "val": splits.counts_by_class(y[va], data.classes),
                         "test": splits.counts_by_class(data.test_y, data.classes)},
              "val_indices": va.tolist()}
    if files and len(files) >= len(y):
        record["files"] = {**record.get("files", {}), "train": [files[i] for i in tr.tolist()],
                           "val": [files[i] for i in va.tolist()]}
    note = f"--val-split {fraction:g}: {len(tr)} train / {len(va)} val images (stratified, seed {seed})"
    return _make(data.name, x[tr], y[tr], data.test_x, data.test_y, data.classes, data.source, (*data.notes, note),
                 val_x=x[va], val_y=y[va], split=record, skipped=data.skipped)


def convert_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8 images (N, C, H, W) with ``channels`` channels (``None``: as they are): grey to RGB by
    replication, RGB to grey by ITU-R 601-2 luma (torchvision's ``rgb_to_grayscale``, as Pillow's "L")."""
    if channels is None or channels == x.shape[1]:
        return x
    if channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    from torchvision.transforms.v2.functional import rgb_to_grayscale

    return rgb_to_grayscale(x)


def _with_channels(d: ImageData, channels: int | None) -> ImageData:
    if channels is None or channels == d.in_chans:
        return d
    note = (f"{d.name} converted from {d.in_chans} to {channels} channel(s) as asked "
            f"({'grey replicated to RGB' if channels == 3 else 'ITU-R 601-2 luma'})")
    return _make(d.name, convert_channels(d.train_x, channels), d.train_y, convert_channels(d.test_x, channels),
                 d.test_y, d.classes, d.source, (*d.notes, note))


def _make(name, tx, ty, vx, vy, classes, source, notes=(), **extra) -> ImageData:
    """An :class:`ImageData` with mean and std computed on ``tx``; ``extra``: the optional fields
    (``val_x``, ``val_y``, ``split``, ``skipped``)."""
    mean, std = channel_stats(tx)
    if extra.get("val_x") is not None:
        extra["val_x"] = extra["val_x"].contiguous()
    return ImageData(name, tx.contiguous(), ty, vx.contiguous(), vy, classes, mean, std, source, tuple(notes), **extra)


DATASETS = ("fashion-mnist", "mnist", "cifar10", "folder")
_CACHE: dict[tuple, ImageData] = {}


def load_dataset(name: str = "fashion-mnist", data_dir: str | os.PathLike | None = None,
                 download: bool = False, verify: bool = True, channels: int | None = None,
                 size: int | None = None, resize: int | None = None, split=None, seed: int = 0,
                 labels: str | os.PathLike | None = None, skip_bad: bool = False) -> ImageData:
    """Load a data set into memory as uint8 tensors (cached per process).

    Args:
        name: one of :data:`DATASETS`.
        data_dir: directory holding the files (else ``CNNZOO_DATA``; only when neither is set the
            system location). A named folder is never replaced by another.
        download: fetch missing files with torchvision's downloader (Fashion-MNIST, MNIST, CIFAR-10).
        verify: check the MD5s of Fashion-MNIST (of the uncompressed content) and CIFAR-10
            (torchvision's published checksums of the extracted batches).
        channels: 1 (grey) or 3 (RGB), converting where the files differ (grey replicated,
            colour by ITU-R 601-2 luma; said in ``notes``); ``None`` keeps the data set's own
            (a folder is RGB when any image is in colour).
        size: for ``"folder"`` only: the side every image is resized to (shorter side to
            ``size``, then the centre square: :func:`cnnzoo.data.readers.fit`); ``None``: all
            images must share one size. Other data sets keep their native size.
        resize: for ``"folder"`` only: the shorter side before the centre ``size`` crop (the
            resize rule of pretrained weights, e.g. 256 for 224: :mod:`cnnzoo.data.preprocess`);
            ``None``: ``size``.
        split, seed: for a ``"folder"`` of class folders without ``train/`` and ``test/`` (or
            with ``labels``): the train, val, test fractions (``"0.8,0.1,0.1"`` or three numbers;
            ``None``: :data:`~cnnzoo.data.splits.DEFAULT_SPLIT`) of the stratified split seeded by
            ``seed`` (:func:`~cnnzoo.data.splits.stratified_parts`), recorded in ``split``.
        labels: for ``"folder"``: a CSV of filename,label rows labelling the flat folder
            ``data_dir`` (:func:`~cnnzoo.data.labels.read_labels_csv`).
        skip_bad: for ``"folder"``: leave unreadable image files out (all listed in ``notes`` and
            ``skipped``) instead of refusing them.

    Raises:
        DataFileError: unknown name, a named folder that does not exist, missing file (naming
            it and the ways to provide it), corrupt or truncated file, checksum mismatch, a
            label outside the classes (naming the file, index and value), a folder data set
            without images, with empty class folders or with different classes per split,
            unreadable images without ``skip_bad`` (all named in one line), a labels CSV that does
            not fit its folder.
        SplitError: a ``split`` that does not sum to 1 or leaves a part empty, or one given for a
            folder that already has train/ and test/.
    """
    if name not in DATASETS:
        raise DataFileError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    readers.check_channels(channels)
    if name != "folder":
        if labels is not None or split is not None:
            raise DataFileError(f"{'--labels' if labels is not None else '--split'} applies to --dataset folder only; "
                                f"{name} has its own train and test sets (use --val-split for validation)")
        if channels is not None:                       # the cached native data, converted
            return _with_channels(load_dataset(name, data_dir, download, verify), channels)
    folder = (size, resize, None if split is None else splits.parse_split(split), seed, str(labels), skip_bad)
    key = (name, str(data_dir), os.environ.get("CNNZOO_DATA"), verify, channels, folder if name == "folder" else None)
    if key not in _CACHE:
        if name == "folder":
            _CACHE[key] = _folder(data_dir, channels, size, resize, split, seed, labels, skip_bad)
        else:
            if download:
                data_dir = _download(name, data_dir)
            _CACHE[key] = _cifar10(data_dir, verify) if name == "cifar10" else _idx_dataset(name, data_dir, verify)
    return _CACHE[key]
