"""Labels from a CSV file for a flat folder of images (``--labels FILE.csv``), the layout of
Kaggle's image-classification competitions: ``IMAGES/*.jpg`` and a ``labels.csv`` such as

    filename,label
    0001.jpg,cat
    0002.jpg,dog

The CSV has a header row; the filename column is the first header named one of
:data:`FILE_COLUMNS`, the label column the first named one of :data:`LABEL_COLUMNS` (case and
surrounding spaces ignored). A filename is a path relative to the images folder; one without a
suffix (a Kaggle ``id``) names the image file with that stem. Labels are class names or integers:
the classes are the distinct labels, sorted (integers numerically). Read with the :mod:`csv` module.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import DataFileError
from .readers import IMAGE_SUFFIXES, is_stray

#: Header names accepted for the filename column and for the label column, in order of preference.
FILE_COLUMNS = ("filename", "file", "file_name", "image", "image_id", "id", "path")
LABEL_COLUMNS = ("label", "class", "category", "target")
#: How many missing or unlabelled files a refusal names before it gives the count of the rest.
SHOW = 5


def _image_files(root: Path) -> dict[str, Path]:
    """{path relative to ``root`` (posix): path} of the image files under ``root``, hidden and
    system entries left out."""
    found = {}
    for d, dirs, names in os.walk(root, followlinks=True):
        d = Path(d)
        dirs[:] = sorted(n for n in dirs if not is_stray(d / n))
        for n in sorted(names):
            if not is_stray(d / n) and (d / n).suffix.lower() in IMAGE_SUFFIXES:
                found[(d / n).relative_to(root).as_posix()] = d / n
    return found


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    keys = [h.strip().lower() for h in header]
    return next((keys.index(n) for n in names if n in keys), None)


def _named(items: list[str], k: int = SHOW) -> str:
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def read_labels_csv(csv_path: str | os.PathLike, root: Path) -> tuple[list[tuple[Path, int]], list[str], str]:
    """The labelled images of the folder ``root`` according to ``csv_path``.

    Returns:
        ([(image path, label), ...] in the CSV's row order, class names (index = label), a one-line
        note saying which columns were used and how many rows and classes were read).

    Raises:
        DataFileError (one line each): the CSV is missing, empty or not readable text; no header
            column for the filename or the label (naming the columns it has and the names
            accepted); a row with an empty filename or label; a file named by two rows; rows naming
            files that are not in ``root`` and image files in ``root`` that no row names (both
            listed together, the first few of each and their counts); fewer than two classes.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataFileError(f"--labels {csv_path}: no such file; give the CSV of filename,label rows")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataFileError(f"--labels {csv_path} is not a readable CSV text file ({err})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]          # blank lines are no rows
    if not rows:
        raise DataFileError(f"--labels {csv_path} is empty; it needs a header (e.g. filename,label) and one row per image")
    header = rows[0]
    fcol, lcol = _column(header, FILE_COLUMNS), _column(header, LABEL_COLUMNS)
    if fcol is None or lcol is None:
        lacks = " and ".join(w for w, c in (("a filename column", fcol), ("a label column", lcol)) if c is None)
        raise DataFileError(f"--labels {csv_path} has the columns {', '.join(h.strip() for h in header) or '(none)'} "
                            f"and lacks {lacks}: name them in the header row, one of {'/'.join(FILE_COLUMNS)} for the "
                            f"filename and one of {'/'.join(LABEL_COLUMNS)} for the label")
    images = _image_files(root)
    by_stem: dict[str, list[str]] = {}
    for rel in images:
        by_stem.setdefault(rel.rsplit(".", 1)[0], []).append(rel)
    entries, missing, seen = [], [], {}
    for line, row in enumerate(rows[1:], start=2):                # line numbers as an editor shows them
        name = row[fcol].strip().replace("\\", "/") if fcol < len(row) else ""
        label = row[lcol].strip() if lcol < len(row) else ""
        if not name or not label:
            raise DataFileError(f"--labels {csv_path} line {line}: empty {'filename' if not name else 'label'} "
                                f"({','.join(row)}); fill it in or delete the row")
        rel = name.removeprefix("./")
        if rel not in images and not Path(rel).suffix and len(by_stem.get(rel, [])) == 1:
            rel = by_stem[rel][0]                                    # a Kaggle id without its suffix
        if rel not in images:
            missing.append(f"line {line}: {name}")
            continue
        if rel in seen:
            raise DataFileError(f"--labels {csv_path}: {rel} is named by lines {seen[rel]} and {line}; keep one row per image")
        seen[rel] = line
        entries.append((rel, label))
    unlabelled = [rel for rel in images if rel not in seen]
    if missing or unlabelled:
        parts = ([f"{len(missing)} row(s) name files not in {root} ({_named(missing)})"] if missing else []) + \
                ([f"{len(unlabelled)} image file(s) have no row ({_named(unlabelled)})"] if unlabelled else [])
        raise DataFileError(f"--labels {csv_path}: {'; '.join(parts)}; make the CSV and the folder agree")
    names = sorted({lab for _, lab in entries})
    if all(_is_int(n) for n in names):
        names = sorted(names, key=int)
    if len(names) < 2:
        raise DataFileError(f"--labels {csv_path} has {len(names)} label ({', '.join(names)}); a classifier needs at least 2")
    index = {n: k for k, n in enumerate(names)}
    note = (f"labels from {csv_path}: filename column {header[fcol].strip()!r}, label column {header[lcol].strip()!r}; "
            f"{len(entries)} rows, {len(names)} classes ({'integers' if all(_is_int(n) for n in names) else 'names'})")
    return [(images[rel], index[lab]) for rel, lab in entries], names, note


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False
