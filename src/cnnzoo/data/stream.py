"""Image files read as they are needed: a :class:`StreamSource` decodes each batch in ``DataLoader``
worker processes, so memory holds a few batches whatever the number of images (ImageNet's 1.28
million included), and the first step comes after the file listing, not after decoding everything.

Views (:mod:`cnnzoo.data.decode`, JPEGs decoded at reduced scale where the size allows):

* training, when the recipe crops (``pad`` > 0): the ImageNet-style random-resized crop (8%-100%
  of the area, aspect ratio 3/4-4/3; Szegedy et al. 2015, Sec. 6, as torchvision's
  ``RandomResizedCrop``) to ``size`` x ``size`` in place of the padded crop, which needs the whole
  photo; without crops (``pad`` 0) the evaluation view; then a horizontal flip with probability
  0.5 when the recipe flips. Every draw comes from a seed of the image's place in the batch and the
  batch's seed, so an epoch is a pure function of (seed, epoch) as in memory; random erasing, when
  the recipe has it, on the decoded batch (:func:`~cnnzoo.data.augment.random_erase`);
* evaluation: the shorter side to ``resize`` (default ``size``), the centre ``size`` x ``size``
  crop (torchvision's ``Resize`` + ``CenterCrop``; :func:`~cnnzoo.data.readers.fit`).

A file that cannot be decoded is left out of its batch, and kept in :attr:`StreamSource.skipped`
(named once); the epoch goes on.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataFileError
from ..numerics import usable_cores
from . import decode
from .augment import Augment, random_erase
from .source import ImageSource, Plan


def default_workers() -> int:
    """Decoding processes when ``--workers`` is not given: the cores this process may use, divided
    among the processes torchrun started on this node (``LOCAL_WORLD_SIZE``), at most 8
    (torchvision's ImageNet reference trains with 16 per GPU on machines with more)."""
    return max(1, min(8, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def sample_seed(batch_seed: int, j: int) -> int:
    """Seed of every random draw of the ``j``-th image of a batch seeded ``batch_seed``."""
    return (batch_seed * 1_000_003 + j) % (1 << 63)


class _Files(torch.utils.data.Dataset):
    """The map-style data set the workers index by key ``(i, seed, view)``: image ``i``'s evaluation
    view (``view`` None) or its training view drawn from ``seed`` (``view``: (crop, flip), the
    random-resized crop or the evaluation view, flipped or not).
    File names are held in one numpy array of bytes (no Python object per file, so forked workers
    do not copy them page by page as reference counts change; one byte per character)."""

    def __init__(self, root: str, names: np.ndarray, size: int, resize: int | None, channels: int):
        self.root, self.names, self.size, self.resize, self.channels = root, names, size, resize, channels

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: tuple[int, int, tuple[bool, bool] | None]):
        i, seed, view = key
        path = os.path.join(self.root, os.fsdecode(self.names[i]))
        try:
            if view is not None and view[0]:
                return decode.decode_crop(path, self.size, seed, view[1], self.channels), i, None
            x = decode.decode_fit(path, self.size, self.resize, self.channels)
            if view is not None and view[1] and torch.rand(1, generator=torch.Generator().manual_seed(seed)) < 0.5:
                x = x.flip(-1)
            return x, i, None
        except DataFileError as err:
            return None, i, getattr(err, "why", str(err))


def _collate(items):
    """(images (B, C, S, S) uint8, indices kept (B,), [(index, why), ...] of the images left out)."""
    good = [(x, i) for x, i, _ in items if x is not None]
    bad = [(i, why) for x, i, why in items if x is None]
    x = torch.stack([x for x, _ in good]) if good else None
    return x, torch.tensor([i for _, i in good], dtype=torch.int64), bad


class StreamSource(ImageSource):
    """Image files decoded by ``workers`` ``DataLoader`` processes as batches are asked for.

    Args:
        root: the folder the files lie under.
        files: their paths (absolute, or relative to ``root``).
        labels: (N,) int64.
        size: the side of every image read (pixels).
        resize: the evaluation view's shorter side before the centre crop (``None``: ``size``).
        channels: 1 (grey, ITU-R 601-2 luma) or 3 (RGB, grey replicated).
        workers: decoding processes (0: in this process).
    """

    def __init__(self, root: str | os.PathLike, files, labels: torch.Tensor, size: int, resize: int | None = None,
                 channels: int = 3, workers: int | None = None):
        self.root = str(root)
        names = [os.path.relpath(f, self.root) if os.path.isabs(f) else f for f in map(os.fsdecode, files)]
        self.names = np.array([os.fsencode(n) for n in names], dtype=bytes)
        self.labels = labels
        self.size, self.resize, self.channels = size, resize, channels
        self.workers = default_workers() if workers is None else workers
        self._skipped: dict[str, str] = {}

    @property
    def in_chans(self) -> int:
        return self.channels

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return list(self._skipped.items())

    def path(self, i: int) -> Path:
        return Path(self.root) / os.fsdecode(self.names[i])

    def subset(self, idx: torch.Tensor) -> "StreamSource":
        idx = torch.as_tensor(idx, dtype=torch.int64)
        s = StreamSource.__new__(StreamSource)
        s.__dict__.update(self.__dict__, names=self.names[idx.numpy()], labels=self.labels[idx], _skipped={})
        return s

    def empty(self) -> torch.Tensor:
        return torch.zeros(0, self.channels, self.size, self.size, dtype=torch.uint8)

    def describe(self) -> str:
        if not self.workers:
            return "streamed from disk, decoded in the training process (--workers 0)"
        per = " in each of the torchrun processes" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        return f"streamed from disk by {self.workers} worker process{'es' if self.workers != 1 else ''}{per}"

    def batches(self, plan: Plan, aug: Augment | None = None):
        plan = list(plan)
        view = None if aug is None else (aug.pad > 0, bool(aug.flip))
        keys = [[(int(i), sample_seed(seed, j), view) for j, i in enumerate(idx.tolist())] for idx, seed in plan]
        workers = min(self.workers, len(keys))
        loader = torch.utils.data.DataLoader(
            _Files(self.root, self.names, self.size, self.resize, self.channels), batch_sampler=keys,
            num_workers=workers, collate_fn=_collate, prefetch_factor=4 if workers else None)
        for (_, seed), (x, kept, bad) in zip(plan, loader):
            for i, why in bad:
                self._skipped.setdefault(str(self.path(i)), why)
            if x is None:
                x = self.empty()
            elif aug is not None and aug.erase:
                x = random_erase(x, aug.erase, torch.Generator().manual_seed(seed))
            yield x, self.labels[kept]
