"""Readers of the raw data-set files, with every failure turned into a one-line
:class:`~cnnzoo.errors.DataFileError` that names the file.

* IDX (MNIST, Fashion-MNIST): ``*-idx3-ubyte`` images and ``*-idx1-ubyte`` labels, raw or
  gzip-compressed. Format: LeCun et al., http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS"):
  a big-endian header (two zero bytes, a type code, the number of dimensions, then one
  uint32 size per dimension) followed by the data.
* CIFAR-10 python pickles (``data_batch_1`` ... ``test_batch``): a dict with ``b"data"``
  (N, 3072) uint8 in CHW order and ``b"labels"``; Krizhevsky, https://www.cs.toronto.edu/~kriz/cifar.html
* Image files and folders (one sub-folder per class), read with Pillow as an image viewer shows
  them (:func:`open_image`); docs/data.md states the rules.
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .._text import plural
from ..errors import DataFileError

#: IDX type codes -> numpy dtype (big-endian), from the IDX format description.
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz`` or it starts with gzip's magic.

    Raises:
        DataFileError: the file is missing, unreadable or not valid gzip.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b" else raw
    except FileNotFoundError:
        raise DataFileError(f"missing data file {path}") from None
    except (OSError, EOFError, zlib.error) as err:
        raise DataFileError(f"corrupt or truncated gzip file {path}: {err}") from None


def md5sum(path: Path) -> str:
    """Hex MD5 of a file (the checksum torchvision publishes for the standard data sets)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_md5(path: Path, expected: str, data: bytes | None = None) -> None:
    """Raises :class:`DataFileError` unless ``path`` (or its already-read, decompressed
    ``data``) has the MD5 ``expected``."""
    got = hashlib.md5(data).hexdigest() if data is not None else md5sum(path)
    if got != expected:
        raise DataFileError(f"checksum mismatch for {path}: md5 {got}, expected {expected} "
                            "(the file is corrupt or not the official release; delete it and provide it again)")


def read_idx(path: Path, expect_dims: int | None = None, md5: str | None = None) -> torch.Tensor:
    """Read an IDX file (optionally ``.gz``) into a tensor of its stored shape.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.
        expect_dims: 3 for images (N, H, W), 1 for labels (N,); ``None`` accepts any.
        md5: expected MD5 of the uncompressed content, or ``None`` to skip the check.

    Returns:
        A tensor of the file's shape; uint8 files give ``torch.uint8``.

    Raises:
        DataFileError: missing file, bad gzip, bad magic number, wrong number of
            dimensions, a length that does not match the header, or a checksum mismatch.
    """
    buf = read_bytes(path)
    if md5 is not None:
        verify_md5(path, md5, buf)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _IDX_TYPES:
        raise DataFileError(f"{path} is not an IDX file (bad magic number {buf[:4].hex() or 'empty'})")
    ndim = buf[3]
    if expect_dims is not None and ndim != expect_dims:
        raise DataFileError(f"{path}: IDX file has {plural(ndim, 'dimension')}, expected {expect_dims}")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataFileError(f"{path} is truncated: {len(buf)} bytes, shorter than its IDX header")
    shape = tuple(int(d) for d in np.frombuffer(buf, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[buf[2]])
    want = header + int(np.prod(shape)) * dtype.itemsize
    if len(buf) != want:
        raise DataFileError(f"{path} has the wrong length: {len(buf)} bytes, its header {shape} "
                            f"implies {want} (truncated or corrupt)")
    arr = np.frombuffer(buf, dtype, offset=header).reshape(shape)
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))


def read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one CIFAR-10 python pickle batch.

    Returns:
        images (N, 3, 32, 32) uint8 and labels (N,) int64.

    Raises:
        DataFileError: missing, unpicklable, or without the expected keys and sizes.
    """
    buf = read_bytes(path)
    try:
        d = pickle.loads(buf, encoding="bytes")
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d.get(b"labels", d.get(b"fine_labels")), dtype=np.int64)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a corrupt file
        raise DataFileError(f"{path} is not a CIFAR python batch ({type(err).__name__}: {err})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataFileError(f"{path}: CIFAR batch has data {data.shape} and {len(labels)} labels, "
                            "expected (N, 3072) and N labels")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def read_cifar_meta(path: Path) -> list[str]:
    """Class names from CIFAR-10's ``batches.meta``."""
    try:
        d = pickle.loads(read_bytes(path), encoding="bytes")
        return [n.decode() for n in d[b"label_names"]]
    except DataFileError:
        raise
    except Exception as err:  # noqa: BLE001
        raise DataFileError(f"{path} is not a CIFAR meta file ({type(err).__name__})") from None


def check_labels(labels: torch.Tensor, num_classes: int, path: Path | str) -> None:
    """Raises :class:`DataFileError` naming ``path``, the first bad index and its value unless every
    label of ``labels`` (N,) lies in ``[0, num_classes)``."""
    bad = ((labels < 0) | (labels >= num_classes)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise DataFileError(f"{path}: label {int(labels[i])} at index {i} is outside the {num_classes} classes "
                            f"0-{num_classes - 1} ({len(bad)} such label(s)); fix or remove those entries")


# -- image files ----------------------------------------------------------------------------
#: Suffixes read as images in folder data sets: torchvision's ``IMG_EXTENSIONS`` plus GIF, JFIF and
#: the other netpbm kinds (case-insensitive). Any other file in a class folder is ignored, and said.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                  ".ppm", ".pgm", ".pbm", ".pnm")
#: What transparent pixels are composited on: white, as a viewer shows an image on a page.
BACKGROUND = (255, 255, 255)
#: What Pillow raises for a file it cannot read as an image (besides FileNotFoundError).
_UNREADABLE = (OSError, ValueError, SyntaxError)          # UnidentifiedImageError is an OSError
#: How many unreadable files a refusal names before it gives the count of the rest.
SHOW_BAD = 5
#: Names that operating systems, file managers and archivers leave in folders (besides hidden
#: ``.names`` such as Jupyter's ``.ipynb_checkpoints``, ``.DS_Store`` and macOS's ``._`` files):
#: never classes, never images.
SYSTEM_NAMES = frozenset({"__MACOSX", "Thumbs.db", "ehthumbs.db", "desktop.ini", "$RECYCLE.BIN",
                          "System Volume Information", "lost+found", "@eaDir", "__pycache__"})
_GREY_MODES = ("1", "L", "LA", "La", "I", "F")            # and "I;16", "I;16B", ...


def is_stray(path: Path) -> bool:
    """True for hidden files and folders and for operating-system artefacts (:data:`SYSTEM_NAMES`)."""
    return path.name.startswith(".") or path.name in SYSTEM_NAMES


def _is_grey(im) -> bool:
    if im.mode in _GREY_MODES or im.mode.startswith("I;16"):
        return True
    if im.mode in ("P", "PA"):                           # a palette of greys only
        pal = im.getpalette("RGB") or []
        return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal), 3))
    return False


def as_viewed(im, background: tuple[int, int, int] = BACKGROUND):
    """A Pillow image in mode ``"L"`` (grey modes) or ``"RGB"`` (all others), with its values
    mapped from the mode's real range:

    * ``1`` (1-bit): 0 and 255; ``P``/``PA`` (palette): the palette's colours (grey when the
      palette holds only greys); ``CMYK``, ``YCbCr``, ``LAB``: Pillow's conversion to RGB.
    * ``I;16*`` and ``I`` (16-bit data; Pillow reads 16-bit PNG, TIFF and PGM/PPM files with a
      maxval above 255 into these, scaled to 0-65535): ``round(v / 65535 * 255)``, ``v`` clipped to 0-65535.
    * ``F`` (32-bit float): ``round(v * 255)``, clipped to [0, 1] (the float image convention).
    * an alpha band (``LA``, ``RGBA``, ``PA``, premultiplied ``La``/``RGBa``) or a transparent
      colour key (``transparency``): composited over ``background`` (white by default), as
      :func:`PIL.Image.alpha_composite` does.

    An ``"L"`` or ``"RGB"`` image without a transparent colour is returned as it is (not copied).

    Raises:
        ValueError: Pillow cannot convert the mode to RGB.
    """
    from PIL import Image

    if im.mode in ("L", "RGB") and "transparency" not in im.info:
        return im
    grey = _is_grey(im)
    if im.mode == "F" or im.mode == "I" or im.mode.startswith("I;16"):
        a = np.asarray(im, dtype=np.float64) / (1.0 if im.mode == "F" else 65535.0)
        return Image.fromarray(np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8))
    if im.mode in ("LA", "La", "RGBA", "RGBa", "PA") or "transparency" in im.info:
        bg = Image.new("RGBA", im.size, (*background, 255))
        im = Image.alpha_composite(bg, im.convert("RGBA"))
    return im.convert("L" if grey else "RGB")


def open_image(path: Path, background: tuple[int, int, int] = BACKGROUND):
    """The first frame of an image file as an image viewer shows it: the EXIF orientation applied
    (:func:`PIL.ImageOps.exif_transpose`) and the mode mapped by :func:`as_viewed` to ``"L"``
    (grey) or ``"RGB"``.

    Raises:
        DataFileError: the file is missing, not an image Pillow can read, or of a mode it cannot convert.
    """
    with image_errors(path):
        return _open(path, background)


@contextmanager
def image_errors(path: Path):
    """Turns Pillow's errors on reading ``path`` into a one-line :class:`DataFileError` naming it."""
    try:
        yield
    except FileNotFoundError:
        raise _unreadable(f"missing image file {path}", "missing") from None
    except _UNREADABLE as err:
        raise _unreadable(f"cannot read image {path}: {err}; replace or remove the file",
                          _why_unreadable(path, err)) from None


def _unreadable(message: str, why: str) -> DataFileError:
    """A :class:`DataFileError` with ``why``: the reason in a few words without the path (what a
    stream records of a file it skips, as :func:`read_image_set` does)."""
    err = DataFileError(message)
    err.why = why
    return err


def _open(path: Path, background: tuple[int, int, int]):
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.seek(0)                                   # the first frame of an animated file
        return as_viewed(ImageOps.exif_transpose(im), background)


def _why_unreadable(path: Path, err: Exception) -> str:
    """Why Pillow could not read ``path``, in a few words (without the path)."""
    from PIL import UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):
        return "not an image Pillow can read"
    return str(err).replace(f"'{path}'", "").replace(str(path), "").strip(" :") or type(err).__name__


def fit(im, size: int, resize: int | None = None, box: tuple[float, float, float, float] | None = None):
    """Resize the shorter side of a Pillow image to ``resize`` (default ``size``; bilinear,
    antialiased) and cut the centre ``size`` x ``size`` square: torchvision's inference rule
    ``Resize(resize)`` + ``CenterCrop(size)`` on a PIL image (its ImageNet weights: 256 and 224),
    with its rounding (longer side ``int(resize * long / short)``, offsets ``round((side - size) / 2)``),
    written in Pillow calls so that torchvision is not imported. A square image is resized whole
    when ``resize`` is ``size``; the aspect ratio is never changed.

    ``box``: the region (left, top, right, bottom) of ``im`` that stands for the whole image (a JPEG
    decoded at reduced scale: :mod:`cnnzoo.data.decode`); the rule is applied to that region's size."""
    from PIL import Image

    full = (0, 0, *im.size)
    x0, y0, x1, y1 = box or full
    w, h = x1 - x0, y1 - y0
    r = resize or size
    nw, nh = (r, int(r * h / w)) if w <= h else (int(r * w / h), r)
    if (nw, nh) != im.size or tuple(box or full) != full:
        im = im.resize((nw, nh), Image.Resampling.BILINEAR, box=box)
    left, top = round((nw - size) / 2), round((nh - size) / 2)
    return im.crop((left, top, left + size, top + size))


def image_tensor(im) -> torch.Tensor:
    """A Pillow ``"L"`` or ``"RGB"`` image as (C, H, W) uint8."""
    t = torch.from_numpy(np.array(im, dtype=np.uint8))
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def check_channels(channels: int | None) -> None:
    if channels not in (None, 1, 3):
        raise DataFileError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")


def as_channels(im, channels: int | None):
    """A viewed (``"L"`` or ``"RGB"``) Pillow image with ``channels``: 1 (ITU-R 601-2 luma), 3 (grey
    replicated), ``None`` (as it is)."""
    return im.convert({1: "L", 3: "RGB"}[channels]) if channels else im


def read_image(path: Path, channels: int | None = None, size: int | None = None,
               background: tuple[int, int, int] = BACKGROUND, resize: int | None = None) -> torch.Tensor:
    """One image file as the model sees it: (C, H, W) uint8.

    Read by :func:`open_image` (as a viewer shows it), resized by :func:`fit` when ``size`` is
    given (shorter side to ``size``, centre crop; then H = W = ``size``; a large JPEG decoded at
    reduced scale: :func:`cnnzoo.data.decode.decode_fit`), converted to
    ``channels`` (1: Pillow's ITU-R 601-2 luma; 3: grey replicated) or, with ``None``, kept as
    the file has them (1 for grey modes, 3 for the others). ``resize``: the shorter side before the
    centre crop, as in :func:`fit`.

    Raises:
        DataFileError: as :func:`open_image`; ``channels`` not 1, 3 or None.
    """
    if size:
        from .decode import decode_fit

        return decode_fit(path, size, resize, channels, background)
    check_channels(channels)
    return image_tensor(as_channels(open_image(Path(path), background), channels))


def _examples(paths: list[Path], root: Path, k: int = 3) -> str:
    names = [p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in paths[:k]]
    return ", ".join(names) + (", ..." if len(paths) > k else "")


def list_image_folder(root: Path, walked: list[str] | None = None) -> tuple[list[tuple[Path, int]], list[str], str | None]:
    """The images of a folder with one sub-folder per class (torchvision's ``ImageFolder`` layout;
    images may sit in sub-folders of a class folder).

    Hidden files and folders and operating-system artefacts (:func:`is_stray`) are neither classes
    nor images; files whose suffix is not in :data:`IMAGE_SUFFIXES`, and files directly in
    ``root``, are not images. All of them are skipped and counted in the returned note.

    Args:
        walked: a list that gets every directory listed (``root`` first), for
            :func:`cnnzoo.data.index.list_folder`'s check.

    Returns:
        ([(image path, label), ...] sorted by class then path, class names (sorted folder names),
        a one-line note of what was skipped or ``None``).

    Raises:
        DataFileError: ``root`` missing; no class folders; class folders with no images (all named).
    """
    import os

    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"missing image folder {root} (a folder data set holds DIR/train/CLASS/IMAGE "
                            "and DIR/test/CLASS/IMAGE, or val/ for test/)")
    skipped = [p for p in sorted(root.iterdir()) if is_stray(p) or not p.is_dir()]
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_stray(p))
    if not classes:
        raise DataFileError(f"{root} has no class folders; put each class's images in ROOT/CLASS/ "
                            f"(found {_examples(skipped, root) or 'nothing'})")
    files, empty = [], []
    walked = [] if walked is None else walked
    walked.append(str(root))
    for k, c in enumerate(classes):
        found = []
        for d, dirs, names in os.walk(root / c, followlinks=True):
            walked.append(d)
            d = Path(d)
            skipped += [d / n for n in sorted(dirs) if is_stray(d / n)]
            dirs[:] = sorted(n for n in dirs if not is_stray(d / n))
            for n in sorted(names):
                ok = not is_stray(d / n) and (d / n).suffix.lower() in IMAGE_SUFFIXES
                (found if ok else skipped).append(d / n)
        files += [(f, k) for f in found]
        if not found:
            empty.append(str(root / c))
    if empty:
        raise DataFileError(f"class folder(s) with no image files: {', '.join(empty)}; add images "
                            f"({', '.join(IMAGE_SUFFIXES)}) or remove the folder(s)")
    note = (f"{root}: skipped {len(skipped)} hidden, system or non-image entries "
            f"({_examples(skipped, root)})") if skipped else None
    return files, classes, note


def read_images(paths: list[Path], channels: int | None = None, size: int | None = None,
                background: tuple[int, int, int] = BACKGROUND, resize: int | None = None) -> tuple[torch.Tensor, str]:
    """Image files (:func:`open_image`) stacked as (N, C, size, size) uint8, each resized by
    :func:`fit` (shorter side to ``size``, centre crop); ``size=None`` keeps them as they are,
    which needs one size for all; ``resize``: the shorter side before the centre crop (:func:`fit`).

    ``channels``: 1 or 3, or ``None`` for the files' own: 3 (RGB) if any file is in colour, else 1
    (grey). Colour images become grey by Pillow's ITU-R 601-2 luma, grey ones RGB by replication.

    Returns:
        (images, a one-line note of the channels and the resize rule).

    Raises:
        DataFileError: every unreadable file named in one line (:func:`read_image_set`); mixed
            sizes with ``size=None`` (naming two files).
    """
    x, _, _, note = read_image_set(paths, channels, size, background, resize=resize)
    return x, note


def read_image_set(paths: list[Path], channels: int | None = None, size: int | None = None,
                   background: tuple[int, int, int] = BACKGROUND, skip_bad: bool = False,
                   resize: int | None = None) -> tuple[torch.Tensor, list[int], list[tuple[str, str]], str]:
    """:func:`read_images` that opens every file before it judges any, so that all unreadable
    files are known at once.

    Each image is fitted (:func:`cnnzoo.data.decode.fit_image`: a large JPEG decoded at reduced
    scale) as soon as it is read and copied into the result (one (N, C, S, S) tensor allocated
    before the first read), so memory holds the result and one image, never the full-size images
    nor a second copy. Without ``channels`` the result is filled as RGB and cut to 1 channel at the
    end if no image was in colour.

    Args:
        skip_bad: leave unreadable files out (else refuse them all in one line).
        resize: the shorter side before the centre ``size`` crop (:func:`fit`; ``None``: ``size``).

    Returns:
        (images (N_read, C, S, S) uint8, the indices into ``paths`` of the images read, [(path,
        why unreadable), ...] of the files left out, a one-line note).

    Raises:
        DataFileError: without ``skip_bad``, one line naming the unreadable files (the first
            :data:`SHOW_BAD` and the count of the rest) and the flag ``--skip-bad-images``; a
            missing file; mixed sizes with ``size=None``; no readable image at all.
    """
    from .decode import fit_image

    check_channels(channels)
    ims, kept, bad, modes = [], [], [], []
    x = torch.empty((len(paths), channels or 3, size, size), dtype=torch.uint8) if size else None  # (N, C, S, S)
    for i, p in enumerate(paths):
        try:
            im = fit_image(p, size, resize, background) if size else _open(p, background)
            if x is None:
                ims.append(im)
            else:
                x[len(kept)] = image_tensor(as_channels(im, channels or 3))
            modes.append(im.mode)
            kept.append(i)
        except FileNotFoundError:
            raise DataFileError(f"missing image file {p}") from None
        except _UNREADABLE as err:
            bad.append((str(p), _why_unreadable(p, err)))
    if bad and not skip_bad:
        shown = "; ".join(f"{p} ({why})" for p, why in bad[:SHOW_BAD])
        more = f"; and {len(bad) - SHOW_BAD} more" if len(bad) > SHOW_BAD else ""
        raise DataFileError(f"{plural(len(bad), 'unreadable image file')}: {shown}{more}; replace or remove "
                            f"{'it' if len(bad) == 1 else 'them'}, or add --skip-bad-images to train without "
                            f"{'it' if len(bad) == 1 else 'them'} (a folder read with --data-mode stream skips "
                            "unreadable files as it meets them)")
    if not kept:
        raise DataFileError(f"none of the {plural(len(paths), 'image file')} could be read (e.g. {bad[0][0]}: "
                            f"{bad[0][1]})")
    kept_paths = [paths[i] for i in kept]
    if not size and len({im.size for im in ims}) > 1:
        j = next(i for i, im in enumerate(ims) if im.size != ims[0].size)
        raise DataFileError(f"images differ in size ({kept_paths[0]} is {ims[0].width}x{ims[0].height}, "
                            f"{kept_paths[j]} {ims[j].width}x{ims[j].height}); pass a size to resize them")
    n_colour = modes.count("RGB")
    c = channels or (3 if n_colour else 1)
    how = "as asked" if channels else "the images' own"
    n_other = len(kept) - n_colour if c == 3 else n_colour         # images whose channels change
    note = f"3 channels (RGB, {how})" if c == 3 else f"1 channel (grey, {how})"
    if n_other:
        note += (f"; {n_other} grey image(s) replicated to RGB" if c == 3 else
                 f"; {n_other} colour image(s) converted by ITU-R 601-2 luma")
    if size:
        note += f"; each resized to {size}x{size} (shorter side to {resize or size}, centre crop)"
    if x is not None:                          # grey images, filled as RGB: one channel of the images read
        return (x[:len(kept), :c].contiguous() if c < x.shape[1] or len(kept) < len(x) else x), kept, bad, note
    x = torch.empty((len(ims), c, ims[0].height, ims[0].width), dtype=torch.uint8)   # (N, C, H, W)
    for i in range(len(ims)):                  # filled one by one, each image let go once copied
        x[i] = image_tensor(as_channels(ims[i], c))
        ims[i] = None
    return x, kept, bad, note
