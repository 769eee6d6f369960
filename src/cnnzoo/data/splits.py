"""Stratified, seeded splits of a labelled set, and class balance.

* :func:`stratified_parts`: the indices of each part (train / val / test) of a labelled set, the
  same fraction of every class in each part (scikit-learn's ``train_test_split(stratify=y)``
  idea, with a rule simple enough to check by hand: see its docstring).
* :func:`hold_out`: an :class:`~cnnzoo.data.ImageData` whose training images lose a stratified
  fraction to a validation set (``--val-split``).
* :func:`balanced_order`: an epoch's sample order drawn with replacement, each class equally
  likely (torch's ``WeightedRandomSampler`` with weights ``1 / n_c``), a pure function of
  ``(seed, epoch)`` as :func:`~cnnzoo.data.epoch_order` is.
* :func:`class_counts`, :func:`balanced_class_weights`, :func:`imbalance_notice`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import CnnzooError

#: The train / val / test fractions of a class-folder tree without train/ and test/ (``--split``).
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
PARTS = ("train", "val", "test")
#: A largest class more than this many times the smallest gets a notice at the start of training.
IMBALANCE_RATIO = 3.0


class SplitError(CnnzooError, ValueError):
    """An impossible split (fractions that do not sum to 1, a part left empty, ...)."""


def parse_split(split: str | Sequence[float] | None) -> tuple[float, float, float]:
    """The train, val, test fractions of ``--split`` (``"0.8,0.1,0.1"`` or a sequence of three
    numbers); ``None`` gives :data:`DEFAULT_SPLIT`.

    Raises:
        SplitError: not three numbers, train or test not above 0, val below 0, or a sum other than 1.
    """
    if split is None:
        return DEFAULT_SPLIT
    words = split.split(",") if isinstance(split, str) else list(split)
    try:
        f = tuple(float(w) for w in words)
    except (TypeError, ValueError):
        f = ()
    if len(f) != 3:
        raise SplitError(f"--split {_show(split)}: give three fractions TRAIN,VAL,TEST, e.g. --split 0.8,0.1,0.1")
    if not (f[0] > 0 and f[2] > 0 and f[1] >= 0) or abs(sum(f) - 1.0) > 1e-6:
        raise SplitError(f"--split {_show(split)}: the train, val and test fractions must sum to 1 (these sum to "
                         f"{sum(f):g}), train and test above 0, val 0 or more; e.g. --split 0.8,0.1,0.1")
    return f


def _show(split) -> str:
    return split if isinstance(split, str) else ",".join(f"{v:g}" if isinstance(v, (int, float)) else str(v)
                                                         for v in split)


def _held_out(fraction: float, n: int) -> int:
    """Images of a class of ``n`` that a part of ``fraction`` gets: ``n * fraction`` rounded half up."""
    return math.floor(fraction * n + 0.5 + 1e-9)


def stratified_parts(labels: torch.Tensor, fractions: Sequence[float], seed: int) -> list[torch.Tensor]:
    """Indices of each part of a stratified split of ``labels`` (N,) int64.

    Rule, per class of ``n_c`` images: each part after the first (val, test) gets
    ``round_half_up(n_c * fraction)`` images, the last part first, never leaving the first part
    (train) with fewer than one image of the class; the first part gets the rest. Which images go
    where is a seeded permutation of the class's images (generator seed ``seed``, classes in label
    order), so a split is a pure function of (labels, fractions, seed).

    Returns:
        one (n_part,) int64 tensor of indices into ``labels`` per part, ascending.
    """
    gen = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in fractions]
    for c in torch.unique(labels).tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        lo = len(idx)
        for p in range(len(fractions) - 1, 0, -1):            # test, then val: from the end of the permutation
            k = min(_held_out(fractions[p], len(idx)), lo - 1)
            parts[p].append(idx[lo - k:lo])
            lo -= k
        parts[0].append(idx[:lo])
    return [torch.cat(p).sort().values if p else torch.zeros(0, dtype=torch.int64) for p in parts]


def class_counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    """Images per class of ``labels`` (N,): a list of ``num_classes`` ints."""
    return torch.bincount(labels, minlength=num_classes).tolist()


def counts_by_class(labels: torch.Tensor, classes: Sequence[str]) -> dict[str, int]:
    """{class name: images} of ``labels`` (N,)."""
    return dict(zip(classes, class_counts(labels, len(classes))))


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Loss weights ``n / (k * n_c)`` (scikit-learn's ``compute_class_weight("balanced")``, Keras's
    ``class_weight`` recipe): (k,) float32, 1 for every class of a balanced set. A class with no
    training image gets weight 0 (it contributes no loss anyway)."""
    n_c = torch.bincount(labels, minlength=num_classes).double()
    w = len(labels) / (num_classes * n_c)
    return torch.where(n_c > 0, w, torch.zeros_like(w)).float()


def balanced_order(labels: torch.Tensor, num_classes: int, seed: int, epoch: int) -> torch.Tensor:
    """An epoch of ``len(labels)`` sample indices drawn with replacement, each image with
    probability proportional to ``1 / n_c`` of its class (so each class is drawn equally often on
    average): torch's ``WeightedRandomSampler`` rule, with the generator seeded by ``(seed, epoch)``
    exactly as :func:`~cnnzoo.data.epoch_order` seeds its permutation. Returns (N,) int64."""
    n_c = torch.bincount(labels, minlength=num_classes).double()
    w = 1.0 / n_c[labels]
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.multinomial(w, len(labels), replacement=True, generator=gen)


def imbalance_notice(labels: torch.Tensor, classes: Sequence[str], class_weights: str | None = None,
                     sampler: str | None = None) -> str | None:
    """One line when the largest class of ``labels`` has more than :data:`IMBALANCE_RATIO` times
    the images of the smallest (naming both, and the remedy that is on or the flags that help), else ``None``."""
    counts = class_counts(labels, len(classes))
    big, small = max(range(len(counts)), key=counts.__getitem__), min(range(len(counts)), key=counts.__getitem__)
    if counts[big] <= IMBALANCE_RATIO * counts[small]:
        return None
    ratio = f"{counts[big] / counts[small]:.1f}x" if counts[small] else "no images in the smallest"
    on = [f"--{flag} balanced" for flag, v in (("class-weights", class_weights), ("sampler", sampler)) if v]
    remedy = f"{' and '.join(on)} {'is' if len(on) == 1 else 'are'} on" if on else \
        "consider --class-weights balanced or --sampler balanced"
    return (f"imbalanced classes: {classes[big]} has {counts[big]} training images, {classes[small]} {counts[small]} "
            f"({ratio}); {remedy}, and judge the run by cnnzoo eval's balanced accuracy and macro-F1, not top-1 alone")
