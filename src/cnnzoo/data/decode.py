"""One image file decoded straight to the view a model sees: the evaluation view (shorter side, centre
square) and the ImageNet-style training view (random-resized crop and flip), each (C, S, S) uint8.

    decode_fit(path, size, resize=None, channels=None)            -> (C, size, size) uint8, evaluation view
    decode_crop(path, size, seed, flip=True, channels=None)       -> (C, size, size) uint8, training view
    rrc_params(width, height, gen, scale, ratio)                  -> (top, left, h, w) of a random-resized crop

Both read the file as :func:`cnnzoo.data.readers.open_image` does (first frame, EXIF orientation, modes
mapped by :func:`~cnnzoo.data.readers.as_viewed`), and both decode a JPEG at reduced scale where the
output allows it: libjpeg scales the DCT by 1/2, 1/4 or 1/8 while decoding (Pillow's
:meth:`PIL.Image.Image.draft`), which skips most of the decoding work of a photo much larger than
the model's input. The scale is the largest that keeps at least the output's pixels on both sides of
the region used, so the result is a downscale, never an upscale, of the decoded pixels. A pixel of
the reduced image covers ``s x s`` pixels of the full one, so a region of the full image maps to it
exactly (divided by ``s``; when the EXIF orientation mirrors an axis, counted from the image's far
edge, where libjpeg's partial last block lies). They are what the streaming data source's workers
call per image, and what the in-memory folder reader calls (:func:`cnnzoo.data.readers.read_image_set`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from . import readers

#: EXIF orientations (EXIF 2.32, Table 7, tag 0x0112) that swap width and height for display, and
#: those whose displayed x or y axis runs against the stored one.
_SWAPS, _MIRROR_X, _MIRROR_Y = (5, 6, 7, 8), (2, 3, 6, 7), (3, 4, 7, 8)
#: The DCT scalings of libjpeg that Pillow's ``draft`` offers (1/8, 1/4, 1/2, 1).
_SCALES = (8, 4, 2, 1)
Box = tuple[float, float, float, float]               # (left, top, right, bottom), pixels


def _open_reduced(path: Path, background, plan: Callable[[int, int], tuple[Box, float]]):
    """The first frame of ``path`` as viewed, decoded at reduced scale where ``plan`` allows, and the
    region ``plan`` asked for in that image's coordinates.

    ``plan(W, H)`` gets the displayed (EXIF-turned) full size and returns (a region of the full
    displayed image, the largest factor by which it may be shrunk). Raises Pillow's own errors
    (FileNotFoundError, OSError, ...): the callers turn them into :class:`DataFileError` or collect them.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.seek(0)                                            # the first frame of an animated file
        w0, h0 = im.size                                      # stored
        o = im.getexif().get(0x0112, 1)
        W, H = (h0, w0) if o in _SWAPS else (w0, h0)          # displayed
        box, shrink = plan(W, H)
        s = next(k for k in _SCALES if k <= max(shrink, 1))
        drafted = im.draft(None, (w0 // s, h0 // s)) if s > 1 else None   # None: not a JPEG
        s = round(w0 / drafted[1][2]) if drafted else 1       # the scale libjpeg will decode at
        ImageOps.exif_transpose(im, in_place=True)            # loads (at the drafted scale)
        im = readers.as_viewed(im, background)
    if s != 1:                                                # full displayed x -> (x - ox) / s
        w, h = im.size
        ox, oy = (W - s * w if o in _MIRROR_X else 0), (H - s * h if o in _MIRROR_Y else 0)
        box = ((box[0] - ox) / s, (box[1] - oy) / s, (box[2] - ox) / s, (box[3] - oy) / s)
    return im, box


def fit_image(path: Path, size: int, resize: int | None = None, background=readers.BACKGROUND):
    """:func:`decode_fit` as a Pillow image in its viewed mode (``"L"`` or ``"RGB"``), raising
    Pillow's own errors: what :func:`readers.read_image_set` calls per file."""
    r = resize or size
    im, box = _open_reduced(Path(path), background, lambda w, h: ((0, 0, w, h), min(w, h) / r))
    return readers.fit(im, size, resize, box=box)


def decode_fit(path, size: int, resize: int | None = None, channels: int | None = None,
               background: tuple[int, int, int] = readers.BACKGROUND) -> torch.Tensor:
    """The evaluation view of one image file: (C, size, size) uint8.

    The file read as :func:`cnnzoo.data.readers.open_image` does (first frame, EXIF orientation,
    modes mapped by :func:`~cnnzoo.data.readers.as_viewed`), its shorter side resized to ``resize``
    (default ``size``; bilinear, antialiased) and the centre ``size`` x ``size`` square cut: the
    geometry of :func:`cnnzoo.data.readers.fit`, torchvision's ``Resize(resize)`` +
    ``CenterCrop(size)`` with its rounding (ImageNet's reference: 256 and 224). A JPEG whose
    shorter side is at least twice ``resize`` is decoded at 1/2, 1/4 or 1/8 scale (Pillow's
    ``draft``), the largest that keeps the shorter side >= ``resize``; any other file is pixel for
    pixel torchvision's transform of the full image.

    Args:
        path: the image file.
        size: the output side S, pixels.
        resize: the shorter side before the centre crop, pixels (``None``: ``size``).
        channels: 1 (ITU-R 601-2 luma), 3 (grey replicated) or ``None``: the file's own (1 for
            grey modes, 3 for the others), as :func:`cnnzoo.data.readers.read_image`.
        background: what transparent pixels are composited on (RGB).

    Raises:
        DataFileError: the file is missing or unreadable (the messages of ``open_image``), or
            ``channels`` is not 1, 3 or None.
    """
    readers.check_channels(channels)
    with readers.image_errors(path):
        im = fit_image(path, size, resize, background)
    return readers.image_tensor(readers.as_channels(im, channels))


def rrc_params(width: int, height: int, gen: torch.Generator, scale: tuple[float, float] = (0.08, 1.0),
               ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random-resized crop of a ``width`` x ``height`` image, pixels.

    The augmentation of Szegedy et al. 2015, "Going deeper with convolutions" (GoogLeNet), Sec. 6:
    patches of 8% to 100% of the image area with aspect ratio in [3/4, 4/3]. The algorithm is
    torchvision's ``RandomResizedCrop.get_params``, draw for draw: up to 10 attempts of an area
    ``U(scale) * width * height`` and an aspect ratio log-uniform in ``ratio``, the first that fits
    placed uniformly; else the centre crop of the whole image clamped to ``ratio``. Every draw comes
    from ``gen`` (with ``torch.manual_seed(s)`` and ``Generator().manual_seed(s)`` the same).
    """
    area = width * height
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen)).item()
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, size=(1,), generator=gen).item()
            left = torch.randint(0, width - w + 1, size=(1,), generator=gen).item()
            return top, left, h, w
    in_ratio = width / height                                 # fallback: the centre, clamped to ratio
    w, h = ((width, round(width / min(ratio))) if in_ratio < min(ratio) else
            (round(height * max(ratio)), height) if in_ratio > max(ratio) else (width, height))
    return (height - h) // 2, (width - w) // 2, h, w


def crop_image(path: Path, size: int, seed: int, flip: bool = True, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
               background=readers.BACKGROUND):
    """:func:`decode_crop` as a Pillow image in its viewed mode, raising Pillow's own errors."""
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)

    def plan(w, h):
        top, left, ch, cw = rrc_params(w, h, gen, scale, ratio)
        return (left, top, left + cw, top + ch), min(cw, ch) / size

    im, box = _open_reduced(Path(path), background, plan)
    # one call, no copy of the crop; no reducing_gap: after the draft the box is under 2x the output
    # on some side unless the 1/8 limit is hit, and Pillow's reduce() would then not apply
    out = im.resize((size, size), Image.Resampling.BILINEAR, box=box)
    if flip and torch.rand(1, generator=gen).item() < 0.5:   # torchvision's RandomHorizontalFlip draw
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


def decode_crop(path, size: int, seed: int, flip: bool = True, channels: int | None = None,
                scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                background: tuple[int, int, int] = readers.BACKGROUND) -> torch.Tensor:
    """The ImageNet-style training view of one image file: (C, size, size) uint8, a pure function of
    (file, seed).

    The file read as :func:`decode_fit` reads it; a random-resized crop (:func:`rrc_params` on the
    displayed, EXIF-turned size; Szegedy et al. 2015, Sec. 6) resized to ``size`` x ``size``
    (bilinear, antialiased, Pillow's filter as torchvision's on PIL images), then flipped left-right
    with probability 0.5 when ``flip``; every draw from ``torch.Generator().manual_seed(seed)``, in
    the order of torchvision's ``RandomResizedCrop`` + ``RandomHorizontalFlip``. The crop and the
    resize are one Pillow call (``resize(box=...)``), so the crop's edge pixels are filtered with
    their real neighbours (torchvision crops first and clamps at the crop's edge: the two differ at
    the border only). A JPEG is decoded at the smallest of 1/1-1/8 scale that keeps at least
    ``size`` pixels on both sides of the crop.

    Args:
        path: the image file.
        size: the output side S, pixels (224 for ImageNet).
        seed: the seed of every random draw of this view.
        flip: random horizontal flip with probability 0.5.
        channels: 1, 3 or ``None`` (the file's own), as :func:`decode_fit`.
        scale: the range of the crop's area as a fraction of the image's.
        ratio: the range of the crop's aspect ratio (width / height).
        background: what transparent pixels are composited on (RGB).

    Raises:
        DataFileError: as :func:`decode_fit`.
    """
    readers.check_channels(channels)
    with readers.image_errors(path):
        im = crop_image(path, size, seed, flip, scale, ratio, background)
    return readers.image_tensor(readers.as_channels(im, channels))
