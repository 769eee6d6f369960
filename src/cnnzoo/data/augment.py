"""Whole-batch augmentation on tensors: no per-sample Python in the training loop.

Every function takes a batch (N, C, H, W) and, where random, an explicit
``torch.Generator`` so that a run is a pure function of its seed (resume == uninterrupted).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import CnnzooError

#: Multi-view test kinds of :func:`tta_views` (views per image).
TTA_VIEWS = {"flip": 2, "10crop": 10}


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation of a recipe.

    Attributes:
        pad: random crop with this zero padding, in pixels (0 = no crop), as in
            He et al. 2015, Sec. 4.2 (CIFAR-10: pad 4, random 32x32 crop).
        flip: random horizontal flip with probability 0.5.
        erase: probability of random erasing (Zhong et al. 2020, Sec. 3.1, Alg. 1; 0 = off).
    """

    pad: int = 0
    flip: bool = False
    erase: float = 0.0


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad (N, C, H, W) by ``pad`` pixels and crop each image back to H x W at a
    random offset in ``[0, 2 * pad]`` (one gather for the whole batch; dtype kept)."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad)).flatten(2)                       # (N, C, (H+2p)(W+2p))
    oy, ox = torch.randint(0, 2 * pad + 1, (2, n, 1, 1), generator=gen)   # (N, 1, 1) each
    idx = (oy + torch.arange(h)[:, None]) * (w + 2 * pad) + ox + torch.arange(w)  # (N, H, W)
    return xp.gather(2, idx.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flip each image of (N, C, H, W) left-right with probability 0.5."""
    mask = torch.rand(x.shape[0], generator=gen) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def random_erase(x: torch.Tensor, p: float, gen: torch.Generator, area: tuple[float, float] = (0.02, 0.4),
                 ratio: float = 0.3, attempts: int = 10) -> torch.Tensor:
    """Random erasing (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020, Alg. 1) of a
    uint8 batch (N, C, H, W), all images at once; shape and dtype kept.

    With probability ``p`` an image gets one rectangle of area ``S_e ~ U(area) * H * W`` and
    aspect ratio ``r_e ~ U(ratio, 1 / ratio)`` (the paper's s_l, s_h, r_1: 0.02, 0.4, 0.3), its
    pixels replaced by random values in [0, 255]. The paper redraws a rectangle that does not fit
    until one does; here each image gets ``attempts`` draws and keeps the first that fits
    (torchvision's ``RandomErasing`` rule), or is left unerased if none does.
    """
    if p <= 0:
        return x
    n, _, h, w = x.shape
    s_e = torch.empty(n, attempts).uniform_(*area, generator=gen) * (h * w)
    r_e = torch.empty(n, attempts).uniform_(ratio, 1.0 / ratio, generator=gen)
    he, we = (s_e * r_e).sqrt().round().long(), (s_e / r_e).sqrt().round().long()   # (N, attempts)
    fits = (he < h) & (we < w)
    first = fits.int().argmax(1, keepdim=True)                                    # first fitting draw
    he, we = he.gather(1, first).squeeze(1), we.gather(1, first).squeeze(1)       # (N,)
    on = fits.any(1) & (torch.rand(n, generator=gen) < p)
    u = torch.rand(2, n, generator=gen)
    y0, x0 = (u[0] * (h - he + 1)).long(), (u[1] * (w - we + 1)).long()           # top-left corner
    rows = (torch.arange(h) >= y0[:, None]) & (torch.arange(h) < (y0 + he)[:, None])  # (N, H)
    cols = (torch.arange(w) >= x0[:, None]) & (torch.arange(w) < (x0 + we)[:, None])  # (N, W)
    box = (rows[:, :, None] & cols[:, None, :] & on[:, None, None])[:, None]          # (N, 1, H, W)
    noise = torch.randint(0, 256, x.shape, generator=gen, dtype=torch.uint8)
    return torch.where(box, noise.to(x.dtype), x)


def check_tta(kind: str | None, pad: int, flip: bool = True) -> None:
    """Raise :class:`~cnnzoo.errors.CnnzooError` unless ``kind`` is None or a :data:`TTA_VIEWS`
    kind that suits a model trained with crop padding ``pad`` and random flips ``flip``: every
    kind scores mirror images, which a model trained without flips has not learned from, and
    "10crop" takes its corner crops from the training crop's padding (``pad`` >= 1)."""
    if kind is None:
        return
    if kind not in TTA_VIEWS:
        raise CnnzooError(f"test-time augmentation must be one of {', '.join(TTA_VIEWS)}; got {kind!r}")
    if not flip:
        raise CnnzooError(f"{kind} test-time augmentation scores mirror images, and this model trains without "
                          "random horizontal flips: its mirror views would be unlike any image it learned from")
    if kind == "10crop" and pad < 1:
        raise CnnzooError("10crop test-time augmentation takes its corner crops from the training crop's padding, "
                          "and this model trains without random crops (pad 0): use flip")


def tta_views(x: torch.Tensor, kind: str, pad: int = 0) -> list[torch.Tensor]:
    """The views of multi-view testing of a uint8 batch (N, C, H, W), besides the batch itself
    (which is always the first view); each (N, C, H, W), dtype kept.

    ``"flip"``: the mirror image (2 views in all). ``"10crop"``: the 10-crop test of
    Krizhevsky et al. 2012, Sec. 4.1 (the four corner patches and the centre patch, and their
    reflections; He et al. 2016, Sec. 3.4, test the same way), cut to this training's geometry:
    the corner crops are the extreme offsets of :func:`random_crop` with padding ``pad`` and the
    centre crop is the image itself.

    Raises:
        CnnzooError: as :func:`check_tta`.
    """
    check_tta(kind, pad)
    views = [x.flip(-1)]
    if kind == "10crop":
        h, w = x.shape[-2:]
        xp = F.pad(x, (pad, pad, pad, pad))                                   # (N, C, H+2p, W+2p)
        corners = [xp[..., oy:oy + h, ox:ox + w] for oy in (0, 2 * pad) for ox in (0, 2 * pad)]
        views += corners + [c.flip(-1) for c in corners]
    return views


def augment(x: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """Apply a recipe's :class:`Augment` to a uint8 batch (N, C, H, W): crop, flip, then
    erasing (the paper's order, Sec. 3.1); shape and dtype kept."""
    x = random_crop(x, aug.pad, gen)
    x = random_flip(x, gen) if aug.flip else x
    return random_erase(x, aug.erase, gen)


def to_input(x: torch.Tensor, size: int, mean, std, channels_last: bool = False) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> normalised float32 (N, C, size, size) for the model.

    Resizes bilinearly (antialiased when shrinking) and normalises with the per-channel
    ``mean`` and ``std`` of the [0, 1]-scaled training images.
    """
    x = x.float()
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < x.shape[-1])
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, -1, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)]).view(1, -1, 1, 1)
    x = x * scale - shift
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The sample order of one epoch, a pure function of (seed, epoch): (n,) int64."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def per_class_indices(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of at most ``n`` samples of each class, a seeded stratified subset (as few-shot
    transfer studies draw one): per class, the first ``n`` of a random order of its samples drawn
    from ``seed``; a class with ``n`` or fewer samples keeps them all.

    Args:
        labels: (N,) int64 class labels.

    Returns:
        (M,) int64 indices into ``labels``, ascending (the data set's own order is kept).
    """
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    ranked = labels[order]
    keep = [order[ranked == c][:n] for c in ranked.unique()]
    return torch.cat(keep).sort().values if keep else torch.zeros(0, dtype=torch.int64)


def batch_slices(n: int, batch_size: int, drop_last: bool = False, start: int = 0,
                 rank: int = 0, world_size: int = 1) -> Iterator[tuple[int, slice]]:
    """(step, slice) pairs over an epoch of ``n`` samples, from step ``start``.

    With ``world_size > 1`` each global batch of ``batch_size * world_size`` samples is split
    and rank ``rank`` gets its contiguous share (the seam for distributed training); a short
    last global batch of ``m`` samples is split evenly (shares differ by at most one), so the
    ranks' slices are disjoint and their union is the one-process epoch.
    """
    gb = batch_size * world_size
    steps = n // gb if drop_last else -(-n // gb)
    for step in range(start, steps):
        lo, m = step * gb, min(gb, n - step * gb)      # m: samples in this global batch
        yield step, slice(lo + rank * m // world_size, lo + (rank + 1) * m // world_size)


def num_steps(n: int, batch_size: int, drop_last: bool = False, world_size: int = 1) -> int:
    """Number of steps :func:`batch_slices` yields for a full epoch."""
    gb = batch_size * world_size
    return n // gb if drop_last else -(-n // gb)
