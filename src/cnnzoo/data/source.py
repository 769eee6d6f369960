"""The data contract: what training, evaluation, ``predict``/``export``/``bench`` validation,
``compare`` and the experiments read images through.

An :class:`ImageSource` is one labelled part of a data set (train, val or test): its length, its
labels (known without decoding an image), its channels, and two ways to get images as uint8
(N, C, H, W): :meth:`~ImageSource.read` for a few images, :meth:`~ImageSource.batches` for a
planned sequence of batches (an epoch), optionally augmented, each batch a pure function of its
seed. Two implementations: :class:`TensorSource` (decoded in memory; the built-in data sets and
small folders) and :class:`cnnzoo.data.stream.StreamSource` (image files decoded by ``DataLoader``
workers as the batches are needed; folders larger than memory). docs/data.md says when each is used.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from .augment import Augment, augment

#: One planned batch: (indices into the source (B,) int64, seed of every random draw of the batch).
Plan = Iterable[tuple[torch.Tensor, int]]


class ImageSource:
    """A labelled part of a data set; see the module docstring.

    Attributes:
        labels: (N,) int64 labels in ``[0, num_classes)``.
        in_chans: channels of the images read (1 or 3).
        skipped: [(file, why unreadable), ...] met so far (a stream skips them as it meets them).
    """

    labels: torch.Tensor
    in_chans: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return []

    def subset(self, idx: torch.Tensor) -> "ImageSource":
        """The images ``idx`` (M,) int64 of this source, in that order (a new source)."""
        raise NotImplementedError

    def batches(self, plan: Plan, aug: Augment | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images (B, C, H, W) uint8, labels (B,) int64) for each planned batch, in order; with
        ``aug``, the training view (its random draws seeded by the batch's seed), else the
        evaluation view. A stream leaves out an image it cannot decode (the batch is that image
        shorter, the file is in :attr:`skipped`)."""
        raise NotImplementedError

    def in_batches(self, batch_size: int, idx: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`batches` of the evaluation views of images ``idx`` (all with ``None``), in order,
        ``batch_size`` at a time."""
        idx = torch.arange(len(self)) if idx is None else torch.as_tensor(idx, dtype=torch.int64)
        return self.batches((idx[lo:lo + batch_size], 0) for lo in range(0, len(idx), batch_size))

    def read(self, idx: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """The evaluation views of images ``idx`` (all with ``None``): (M, C, H, W) uint8."""
        return torch.cat([self.empty(), *(x for x, _ in self.in_batches(batch_size, idx))])

    def empty(self) -> torch.Tensor:
        raise NotImplementedError

    def head(self, n: int | None) -> "ImageSource":
        """The first ``n`` images (all with ``None`` or when there are fewer)."""
        return self if n is None or n >= len(self) else self.subset(torch.arange(n))

    def describe(self) -> str:
        """How the images are held, in a few words (for the run's notes)."""
        return "in memory"


class TensorSource(ImageSource):
    """Images decoded in memory: ``x`` (N, C, H, W) uint8 and ``y`` (N,) int64.

    :meth:`batches` slices ``x`` and augments the whole batch on tensors
    (:func:`~cnnzoo.data.augment`, one generator seeded by the batch's seed), as the trainer always
    has: a batch costs one gather.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} labels")
        self.x, self.labels = x, y

    @property
    def in_chans(self) -> int:
        return int(self.x.shape[1])

    def subset(self, idx: torch.Tensor) -> "TensorSource":
        return TensorSource(self.x[idx], self.labels[idx])

    def batches(self, plan: Plan, aug: Augment | None = None):
        for idx, seed in plan:
            xb = self.x[idx]
            yield (augment(xb, aug, torch.Generator().manual_seed(seed)) if aug else xb), self.labels[idx]

    def read(self, idx: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        return self.x if idx is None else self.x[torch.as_tensor(idx, dtype=torch.int64)]

    def empty(self) -> torch.Tensor:
        return self.x[:0]
