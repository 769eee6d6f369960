"""Text for the terminal and documents: aligned tables, numbers (``num``, ``short``, ``megabytes``), shapes
(``hwc``), plurals, and argparse types for counts and sizes."""
from __future__ import annotations

import argparse
from typing import Sequence


def text_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a table whose first row is the header; cells that start with a digit (figures)
    are right-aligned, other cells and shapes such as ``3x224x224`` left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(c.rjust(w) if k and c[:1].isdigit() and "x" not in c else c.ljust(w)
                               for c, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def num(x: float) -> str:
    """``34944 -> "34,944"``; large non-integers are rounded, small ones keep 4 significant digits."""
    if float(x).is_integer() or abs(x) >= 1000:
        return f"{round(x):,}"
    return f"{x:.4g}"


def short(x: float) -> str:
    """``271351808 -> "271.4M"``: 4 significant digits with K, M, G (powers of 1000)."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:.4g}{unit}"
    return f"{x:.4g}"


def hwc(shape: tuple) -> str:
    """One image's or feature map's shape without the batch axis, the lecture's way: (C, H, W) ->
    ``"56x56x256"`` (H x W x C); (C,) -> ``"4096"``; any other rank (a sequence (L, D), a volume)
    as it is."""
    dims = (*shape[1:], shape[0]) if len(shape) == 3 else shape
    return "x".join(map(str, dims))


def megabytes(b: float) -> str:
    """Bytes in both units: ``"15.05 MB (14.35 MiB)"`` (MB = 10^6 bytes, MiB = 2^20 bytes)."""
    return f"{b / 1e6:,.2f} MB ({b / 2**20:,.2f} MiB)"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun agreeing with it: ``plural(1, "epoch")`` is ``"1 epoch"``, ``plural(3, "epoch")``
    ``"3 epochs"``; ``nouns`` for an irregular plural."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def positive_int(text: str, least: int = 1) -> int:
    """An argparse ``type`` for counts and sizes (``--batch-size``, ``--topk``, ``--depth``): a whole
    number of at least ``least`` (1).

    Raises:
        argparse.ArgumentTypeError: anything else (argparse prints it as one line naming the option
            and exits with status 2).
    """
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least {least}")
    return value


def nonnegative_int(text: str) -> int:
    """An argparse ``type`` for counts that may be 0 (``--workers``)."""
    return positive_int(text, 0)


def positive_float(text: str) -> float:
    """An argparse ``type`` for a multiplier such as ``--width``: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


#: The forms of ``--input`` (summary, draw, export, bench).
INPUT_FORMS = "CxHxW (3x224x224), NxCxHxW (8x3x224x224), HxW (224x224) or a side S (224)"


def input_size(text: str) -> tuple[int, ...]:
    """Parse ``--input``: ``CxHxW``, ``NxCxHxW``, ``HxW`` or a single side ``S`` (a square input).

    ``HxW`` and ``S`` leave the channel count to the model (see :func:`complete_input`).

    Raises:
        argparse.ArgumentTypeError: anything else, with the accepted forms (argparse then prints
            it as one line naming ``--input`` and exits with status 2).
    """
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if not 1 <= len(dims) <= 4 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an input size; give {INPUT_FORMS}")
    return dims


def complete_input(dims: tuple[int, ...], default_input_size: tuple[int, ...]) -> tuple[int, ...]:
    """(C, H, W) or (N, C, H, W) from parsed ``--input`` dims: a side ``S`` is ``SxS``, and an
    ``HxW`` takes the channel count of ``default_input_size`` (C, H, W)."""
    dims = dims * 2 if len(dims) == 1 else dims
    return (default_input_size[0], *dims) if len(dims) == 2 else dims
