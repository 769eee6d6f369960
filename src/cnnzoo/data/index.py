"""A cached index of an image folder's files, so that a folder of a million images is listed once.

Listing ImageNet's training folder (1.28 million files in 1,000 class folders) walks every
directory; on a network file system that takes minutes, every run. :func:`list_folder` keeps the
result of :func:`~cnnzoo.data.readers.list_image_folder` in ``cache_dir()/index/`` and reuses it
while every directory it walked has the modification time it had then. A file added, removed or
renamed changes the modification time of the directory that holds it, and a new sub-folder that
of its parent, so the check costs one ``stat`` per directory (1,001 for ImageNet) instead of a
listing; a file rewritten in place changes no listing and needs no new index. A directory modified
within :data:`RACY_SECONDS` of the listing is not trusted (its time stamp could hide a change made
in the same tick, as git's "racy" index entries), so such an index is never reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from .._io import atomic_write_bytes, cache_dir
from . import readers

FORMAT = 1
RACY_SECONDS = 2.0


def _index_path(root: Path) -> Path:
    return cache_dir() / "index" / (hashlib.sha1(str(root).encode()).hexdigest()[:20] + ".json")


def _mtimes(dirs: list[str]) -> list[int] | None:
    try:
        return [os.stat(d).st_mtime_ns for d in dirs]
    except OSError:                                  # a directory vanished: list again
        return None


def list_folder(root: str | os.PathLike) -> tuple[list[tuple[Path, int]], list[str], str | None, bool]:
    """:func:`~cnnzoo.data.readers.list_image_folder` of ``root``, from the cached index when it is
    still valid (see the module docstring).

    Returns:
        (files [(path, label), ...], class names, note or None, whether the index was reused).

    Raises:
        DataFileError: as :func:`~cnnzoo.data.readers.list_image_folder`.
    """
    root = Path(os.path.abspath(root))
    path = _index_path(root)
    try:
        rec = json.loads(path.read_text())
        if rec.get("format") == FORMAT and rec["root"] == str(root) and _mtimes(rec["dirs"]) == rec["mtimes"]:
            files = [(root / f, k) for f, k in rec["files"]]
            return files, rec["classes"], rec["note"], True
    except (OSError, ValueError, KeyError, TypeError):
        pass                                         # no index, or an unreadable one: list the folder
    walked: list[str] = []
    files, classes, note = readers.list_image_folder(root, walked)
    mtimes = _mtimes(walked)
    if mtimes is not None and max(mtimes, default=0) < (time.time() - RACY_SECONDS) * 1e9:
        rec = {"format": FORMAT, "root": str(root), "dirs": walked, "mtimes": mtimes, "classes": classes,
               "note": note, "files": [(f.relative_to(root).as_posix(), k) for f, k in files]}
        try:
            atomic_write_bytes(path, json.dumps(rec).encode())
        except OSError:                              # a read-only cache: list every time
            pass
    return files, classes, note, False
