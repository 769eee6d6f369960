"""Readers of the raw data-set files, with every failure turned into a one-line
:class:`~cnnzoo.errors.DataFileError` that names the file.

* IDX (MNIST, Fashion-MNIST): ``*-idx3-ubyte`` images and ``*-idx1-ubyte`` labels, raw or
  gzip-compressed. Format: LeCun et al., http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS"):
  a big-endian header (two zero bytes, a type code, the number of dimensions, then one
  uint32 size per dimension) followed by the data.
* CIFAR-10 python pickles (``data_batch_1`` ... ``test_batch``): a dict with ``b"data"``
  (N, 3072) uint8 in CHW order and ``b"labels"``; Krizhevsky, https://www.cs.toronto.edu/~kriz/cifar.html
* Image folders: one sub-folder per class, read with Pillow.
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import zlib
from pathlib import Path

import numpy as np
import torch

from .._text import plural
from ..errors import DataFileError

#: IDX type codes -> numpy dtype (big-endian), from the IDX format description.
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


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


def read_image(path: Path, channels: int) -> torch.Tensor:
    """One image file of any size and mode as (channels, H, W) uint8; ``channels`` is 1 or 3.

    Raises:
        DataFileError: the file is missing or not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataFileError(f"missing image file {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DataFileError(f"cannot read image {path}: {err}") from None
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def read_image_folder(root: Path, channels: int, size: int | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """An image folder with one sub-folder per class (torchvision's ``ImageFolder`` layout).

    Images are resized to ``size`` x ``size`` (bilinear, antialiased) so they stack into one
    tensor; ``size=None`` requires them all to share one size.

    Returns:
        images (N, channels, size, size) uint8, labels (N,) int64, class names (sorted folder names).

    Raises:
        DataFileError: missing folder, no class folders, no images, unreadable or mixed-size images.
    """
    import torch.nn.functional as F

    root = Path(root)
    if not root.is_dir():
        raise DataFileError(f"missing image folder {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataFileError(f"{root} has no class sub-folders (expected ROOT/CLASS/IMAGE.png)")
    images, labels = [], []
    for k, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                img = read_image(f, channels)
                if size is not None and tuple(img.shape[1:]) != (size, size):
                    img = F.interpolate(img[None].float(), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)[0].round().clamp(0, 255).byte()
                images.append(img)
                labels.append(k)
    if not images:
        raise DataFileError(f"{root} has no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    if len({tuple(i.shape) for i in images}) > 1:
        raise DataFileError(f"images under {root} differ in size; pass an input size to resize them")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64), classes
