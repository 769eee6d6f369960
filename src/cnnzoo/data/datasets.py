"""Named data sets: Fashion-MNIST (the default), MNIST and CIFAR-10 held in memory as uint8
tensors, and image folders in memory or streamed from disk (:func:`choose_mode`); each part is an
:class:`~cnnzoo.data.source.ImageSource`.

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
from .index import list_folder
from .labels import read_labels_csv
from .source import ImageSource, TensorSource
from .stream import StreamSource

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
    """A classification data set: its parts as :class:`~cnnzoo.data.source.ImageSource` s (in memory
    or streamed from disk) and what every reader of it needs.

    Attributes:
        name: data-set name, e.g. ``"fashion-mnist"``.
        train, test: the training and test images (:class:`~cnnzoo.data.source.ImageSource`).
        classes: class names, index = label.
        mean, std: per-channel statistics of the training images scaled to [0, 1] (computed, never
            typed in: exactly in memory, on a seeded sample of :data:`STATS_SAMPLE` images when streamed).
        source: where the files were read from.
        notes: one line per thing the user should know about how the files were read (skipped
            entries, channel conversion, resizing, the data mode); printed by ``cnnzoo train``, kept
            in metrics.json.
        val: a validation set like the test set (a ``val/`` folder beside ``train/`` and ``test/``, a
            split of class folders, or :func:`hold_out`), or ``None``.
        split: how the parts were made, for the run's record (layout, fractions, seed, images per
            class and part, and which files or indices each held-out part got), or ``None``.
        skipped: [(file, why unreadable), ...] of the image files left out when the data were read
            (``skip_bad``; a stream also skips, and lists in its sources, the files it meets mid-epoch).
        mode: ``"memory"`` or ``"stream"``; mode_reason: why, in words (:func:`choose_mode`).
    """

    name: str
    train: ImageSource
    test: ImageSource
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    notes: tuple[str, ...] = ()
    val: ImageSource | None = None
    split: dict | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    mode: str = "memory"
    mode_reason: str = "the data set's files hold decoded images"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self.train.in_chans)

    def parts(self) -> dict[str, ImageSource]:
        """``{"train": ..., "val": ..., "test": ...}`` (no ``"val"`` without a validation set)."""
        return {"train": self.train, **({"val": self.val} if self.val is not None else {}), "test": self.test}


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
    return _make(name, TensorSource(tx[:, None], ty.long()), TensorSource(vx[:, None], vy.long()), CLASSES[name],
                 str(d))


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
    return _make("cifar10", TensorSource(tx, ty), TensorSource(vx, vy), classes, str(d))


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
        files, classes, note, _ = list_folder(root)
        return {"all": files}, classes, [note] if note else [], "class folders without train/ and test/"
    dirs = {"train": root / "train"}
    if (root / "test").is_dir():
        dirs["test"] = root / "test"
        if (root / "val").is_dir():
            dirs["val"] = root / "val"
    else:
        dirs["test"] = root / "val" if (root / "val").is_dir() else root / "test"
    listed = {part: list_folder(d)[:3] for part, d in dirs.items()}
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


#: The fraction of the available memory a folder's decoded images may take in ``--data-mode auto``.
MEMORY_FRACTION = 0.25
#: The longest decoding of a whole folder before the first step that ``--data-mode auto`` accepts, seconds.
LOAD_SECONDS = 20.0
#: Images the statistics (and, with ``channels=None``, the channel count) of a streamed folder are estimated on.
STATS_SAMPLE = 256
#: Files ``--data-mode auto`` times to estimate a whole folder's decoding.
TIMED_FILES = 8
DATA_MODES = ("auto", "memory", "stream")


def available_memory() -> int:
    """Bytes of memory available to a new process (Linux's ``MemAvailable``; elsewhere half the
    physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def choose_mode(mode: str, files: list[Path], channels: int | None, size: int | None,
                resize: int | None = None) -> tuple[str, str]:
    """Whether a folder of ``files`` is decoded into memory or streamed, and why (one phrase).

    ``"memory"`` and ``"stream"`` are taken as asked. ``"auto"`` keeps the images in memory when,
    decoded at ``size`` x ``size`` (uint8), they fit in :data:`MEMORY_FRACTION` of the available
    memory (:func:`available_memory`) and decoding them all before the first step takes at most
    :data:`LOAD_SECONDS` (timed on :data:`TIMED_FILES` of them, spread over the folder); else it
    streams them. Without a ``size`` (images kept at their own size) the folder is read into memory.

    Raises:
        DataFileError: an unknown ``mode``; ``"stream"`` without a ``size``.
    """
    if mode not in DATA_MODES:
        raise DataFileError(f"--data-mode {mode}: choose one of {', '.join(DATA_MODES)}")
    if mode == "stream" and not size:
        raise DataFileError("--data-mode stream needs an input size (--input-size S): streamed images are resized "
                            "to one size as they are read")
    if mode != "auto":
        return mode, f"--data-mode {mode}"
    if not size:
        return "memory", "no input size to stream at: the images are kept at their own size"
    import time
    from .decode import decode_fit

    need, avail = len(files) * (channels or 3) * size * size, available_memory()
    mb = lambda b: f"{b / 2 ** 30:.1f} GiB" if b >= 2 ** 30 else f"{b / 2 ** 20:.{0 if b >= 2 ** 24 else 1}f} MiB"  # noqa: E731
    if need > MEMORY_FRACTION * avail:
        return "stream", (f"auto: {len(files):,} images decoded at {size}x{size} would take {mb(need)}, more than "
                          f"{MEMORY_FRACTION:.0%} of the {mb(avail)} available")
    timed = [files[i * len(files) // TIMED_FILES] for i in range(min(TIMED_FILES, len(files)))]
    t0 = time.perf_counter()
    for f in timed:
        try:
            decode_fit(f, size, resize, channels)
        except DataFileError:
            pass
    per = (time.perf_counter() - t0) / max(1, len(timed))
    load = per * len(files)
    if load > LOAD_SECONDS:
        return "stream", (f"auto: decoding all {len(files):,} images before the first step would take about "
                          f"{load:.0f} s ({len(timed)} of them took {per * 1e3:.1f} ms each), more than "
                          f"{LOAD_SECONDS:g} s")
    return "memory", (f"auto: {len(files):,} images take {mb(need)} decoded at {size}x{size} "
                      f"({need / avail:.1%} of the {mb(avail)} available) and about {load:.1f} s to decode")


def sample_channels(paths: list[Path]) -> int:
    """3 if any of ``paths`` (a sample of a folder) is a colour image, else 1; read from the files'
    headers (the rule :func:`~cnnzoo.data.readers.read_images` applies to every image in memory)."""
    from PIL import Image

    for p in paths:
        try:
            with Image.open(p) as im:
                if not readers._is_grey(im):
                    return 3
        except (OSError, ValueError, SyntaxError):
            continue
    return 1


def _sample(n: int, k: int, seed: int) -> torch.Tensor:
    """A seeded sample of ``min(n, k)`` indices of ``range(n)``, ascending."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


def _folder(data_dir, channels: int | None, size: int | None, resize: int | None = None, split=None,
            seed: int = 0, labels=None, skip_bad: bool = False, mode: str = "auto",
            workers: int | None = None) -> ImageData:
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
    mode, why_mode = choose_mode(mode, [f for _, f, _ in order], channels, size, resize)
    if mode == "memory":                     # one channel rule for all parts
        x, kept, bad, how = readers.read_image_set([f for _, f, _ in order], channels, size, resize=resize,
                                                   skip_bad=skip_bad)
    else:
        bad = []
        files = [f for _, f, _ in order]
        c = channels or sample_channels([files[i] for i in _sample(len(files), STATS_SAMPLE, seed)])
        whence = "as asked" if channels else f"from {min(len(files), STATS_SAMPLE)} sampled files"
        how = (f"{c} channel{'s' if c == 3 else ''} ({whence}); evaluation views: shorter side to {resize or size}, "
               f"centre {size}x{size} crop (training views: the augmentation line)")
    y = torch.tensor([k for _, _, k in order], dtype=torch.int64)
    names = [f.relative_to(root).as_posix() for _, f, _ in order]
    part_of = [p for p, _, _ in order]
    # the parts are made of the listed files, in either mode (a stream meets unreadable files only when it
    # reads them), so a folder splits the same in memory and streamed; in memory those left out are then
    # dropped from their parts
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
    src_idx = idx                            # indices into the source holding the images
    if mode == "memory":
        at = torch.full((len(order),), -1, dtype=torch.int64)
        at[kept] = torch.arange(len(kept))
        idx = {part: i[at[i] >= 0] for part, i in idx.items()}
        src_idx = {part: at[i] for part, i in idx.items()}
    idx = {part: i for part, i in idx.items() if len(i) or part != "val"}
    record = {"layout": layout, "how": how_split, "fractions": fractions, "seed": seed if fractions else None,
              "counts": {part: splits.counts_by_class(y[i], classes) for part, i in idx.items()},
              "files": {part: [names[j] for j in i.tolist()] for part, i in idx.items()}}
    if bad:
        notes.append(f"skipped {plural(len(bad), 'unreadable image file')} (--skip-bad-images): "
                     + "; ".join(f"{p} ({why})" for p, why in bad))
    whole = (TensorSource(x, y[kept]) if mode == "memory" else
             StreamSource(root, [f for _, f, _ in order], y, size, resize, c, workers))
    sizes = " / ".join(f"{len(i)} {part}" for part, i in idx.items())
    notes.insert(0, f"folder {root} ({layout}): {sizes} images, {len(classes)} classes, {how_split}; {how}")
    notes.append(f"data: {'in memory' if mode == 'memory' else whole.describe()} ({why_mode})"
                 + (f"; --workers {workers} applies to a stream only" if mode == "memory" and workers is not None else ""))
    val = idx.get("val")
    return _make("folder", whole.subset(src_idx["train"]), whole.subset(src_idx["test"]), classes, str(root), notes,
                 val=None if val is None else whole.subset(src_idx["val"]), split=record, skipped=tuple(bad),
                 mode=mode, mode_reason=why_mode, seed=seed)


def hold_out(data: ImageData, fraction: float, seed: int, limit: int | None = None) -> ImageData:
    """``data`` with a stratified, seeded ``fraction`` of its first ``limit`` training images (all
    with ``None``) moved to a validation set (``--val-split``; :func:`~cnnzoo.data.splits.stratified_parts`
    with fractions ``(1 - fraction, fraction)``), mean and std recomputed on the images left for training.

    Raises:
        SplitError: ``data`` already has a validation set; ``fraction`` not in (0, 1); it leaves no
            validation image.
    """
    if data.val is not None:
        raise splits.SplitError(f"--val-split {fraction:g}: {data.name} already has a validation set "
                                f"({data.split['layout'] if data.split else 'val/'}); drop --val-split, or give "
                                "the validation fraction in --split")
    if not 0 < fraction < 1:
        raise splits.SplitError(f"--val-split {fraction:g}: give a fraction in (0, 1), e.g. 0.1")
    src = data.train.head(limit)
    y = src.labels
    tr, va = splits.stratified_parts(y, (1 - fraction, fraction), seed)
    if not len(va):
        raise splits.SplitError(f"--val-split {fraction:g} of {plural(len(y), 'training image')} holds out none; "
                                "give a larger fraction")
    files = (data.split or {}).get("files", {}).get("train")
    record = {**(data.split or {"layout": data.name}), "how": f"--val-split {fraction:g} of the training images "
              f"(stratified, seed {seed})", "val_split": fraction, "seed": seed,
              "counts": {**(data.split or {}).get("counts", {}), "train": splits.counts_by_class(y[tr], data.classes),
                         "val": splits.counts_by_class(y[va], data.classes),
                         "test": splits.counts_by_class(data.test.labels, data.classes)},
              "val_indices": va.tolist()}
    if files and len(files) >= len(y):
        record["files"] = {**record.get("files", {}), "train": [files[i] for i in tr.tolist()],
                           "val": [files[i] for i in va.tolist()]}
    note = f"--val-split {fraction:g}: {len(tr)} train / {len(va)} val images (stratified, seed {seed})"
    return _make(data.name, src.subset(tr), data.test, data.classes, data.source, (*data.notes, note),
                 val=src.subset(va), split=record, skipped=data.skipped, mode=data.mode, mode_reason=data.mode_reason,
                 seed=seed)


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
    conv = lambda s: TensorSource(convert_channels(s.x, channels), s.labels)  # noqa: E731
    return _make(d.name, conv(d.train), conv(d.test), d.classes, d.source, (*d.notes, note))


def source_stats(src: ImageSource, seed: int = 0) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """(mean, std, how): :func:`channel_stats` of every image of an in-memory source, or of a seeded
    sample of :data:`STATS_SAMPLE` evaluation views of a streamed one."""
    if isinstance(src, TensorSource):
        return (*channel_stats(src.x), "")
    pick = _sample(len(src), STATS_SAMPLE, seed)
    return (*channel_stats(src.read(pick)), f"mean and std estimated on {len(pick)} training images (seed {seed})")


def _make(name, train: ImageSource, test: ImageSource, classes, source, notes=(), seed: int = 0,
          **extra) -> ImageData:
    """An :class:`ImageData` with mean and std computed on ``train`` (:func:`source_stats`);
    ``extra``: the optional fields (``val``, ``split``, ``skipped``, ``mode``, ``mode_reason``)."""
    mean, std, how = source_stats(train, seed)
    notes = [n for n in notes if not n.startswith("mean and std estimated")] + ([how] if how else [])
    return ImageData(name, train, test, classes, mean, std, source, tuple(notes), **extra)


DATASETS = ("fashion-mnist", "mnist", "cifar10", "folder")
_CACHE: dict[tuple, ImageData] = {}


def load_dataset(name: str = "fashion-mnist", data_dir: str | os.PathLike | None = None,
                 download: bool = False, verify: bool = True, channels: int | None = None,
                 size: int | None = None, resize: int | None = None, split=None, seed: int = 0,
                 labels: str | os.PathLike | None = None, skip_bad: bool = False, mode: str = "auto",
                 workers: int | None = None) -> ImageData:
    """Load a data set: in memory as uint8 tensors, or an image folder streamed from disk (cached per process).

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
            ``skipped``) instead of refusing them (a stream always leaves them out as it meets them).
        mode: ``"memory"``, ``"stream"`` (folders only) or ``"auto"`` (:func:`choose_mode`); the choice
            and its reason are in ``mode``, ``mode_reason`` and ``notes``.
        workers: decoding processes of a stream (``None``: :func:`~cnnzoo.data.stream.default_workers`).

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
        if mode not in DATA_MODES or mode == "stream":
            raise DataFileError(f"--data-mode {mode}: {name} is read into memory from its own files (a few MB of "
                                f"decoded images); streaming is for image folders (--dataset folder)"
                                if mode == "stream" else f"--data-mode {mode}: choose one of {', '.join(DATA_MODES)}")
        if labels is not None or split is not None:
            raise DataFileError(f"{'--labels' if labels is not None else '--split'} applies to --dataset folder only; "
                                f"{name} has its own train and test sets (use --val-split for validation)")
        if channels is not None:                       # the cached native data, converted
            return _with_channels(load_dataset(name, data_dir, download, verify), channels)
    folder = (size, resize, None if split is None else splits.parse_split(split), seed, str(labels), skip_bad, mode,
              workers)
    key = (name, str(data_dir), os.environ.get("CNNZOO_DATA"), verify, channels, folder if name == "folder" else None)
    if key not in _CACHE:
        if name == "folder":
            _CACHE[key] = _folder(data_dir, channels, size, resize, split, seed, labels, skip_bad, mode, workers)
        else:
            if download:
                data_dir = _download(name, data_dir)
            _CACHE[key] = _cifar10(data_dir, verify) if name == "cifar10" else _idx_dataset(name, data_dir, verify)
    return _CACHE[key]
