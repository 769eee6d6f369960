"""Plain-text tables for the terminal: a header, a rule of dashes, aligned columns."""
from __future__ import annotations

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


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun agreeing with it: ``plural(1, "epoch")`` is ``"1 epoch"``, ``plural(3, "epoch")``
    ``"3 epochs"``; ``nouns`` for an irregular plural."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts and sizes (``--batch-size``, ``--topk``, ``--depth``): a whole
    number of at least 1.

    Raises:
        argparse.ArgumentTypeError: anything else (argparse prints it as one line naming the option
            and exits with status 2).
    """
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type`` for a multiplier such as ``--width``: a number above 0."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value
