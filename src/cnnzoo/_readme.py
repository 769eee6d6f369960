"""Generated sections of a markdown page (README.md or a docs page), between HTML-comment markers.

A section named ``NAME`` is the block from ``<!-- cnnzoo-NAME:begin -->`` to
``<!-- cnnzoo-NAME:end -->``; commands that produce figures rewrite it (``cnnzoo results|compare|
experiments --readme PAGE``), so nothing in it is typed by hand. :data:`PAGES` says which page of
this repository holds each section; ``tests/test_docs.py`` regenerates each from the committed
results and fails when a page is stale.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import CnnzooError

#: The page of this repository that holds each generated section.
PAGES: dict[str, str] = {"compare": "README.md", "results": "docs/training.md", "experiments": "docs/experiments.md"}


class SectionError(CnnzooError, ValueError):
    """A page that does not exist or lacks a section's markers; the message names both."""


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of section ``name``."""
    return f"<!-- cnnzoo-{name}:begin -->", f"<!-- cnnzoo-{name}:end -->"


def _pattern(name: str) -> re.Pattern:
    begin, end = markers(name)
    return re.compile(re.escape(begin) + "(.*?)" + re.escape(end), re.S)


def read_section(path: str | Path, name: str) -> str:
    """The body of section ``name`` of the page ``path``, without its markers and outer blank lines.

    Raises:
        SectionError: no such page, or the page has no markers for ``name``.
    """
    match = _pattern(name).search(_read(path, name))
    if match is None:
        raise SectionError(_no_markers(path, name))
    return match.group(1).strip()


def check_section(path: str | Path, name: str) -> None:
    """Raise :class:`SectionError` unless ``path`` exists and holds section ``name``'s markers
    (so that a long job can fail before it starts, not after)."""
    read_section(path, name)


def update_section(path: str | Path, name: str, body: str) -> None:
    """Replace section ``name`` of the markdown page ``path`` by ``body`` wrapped in its markers.

    Raises:
        SectionError: no such page, or the page has no markers for ``name`` (the section is never
            appended: a page that lost its markers, e.g. after the section moved, stays as it is).
    """
    begin, end = markers(name)
    text = _read(path, name)
    if not _pattern(name).search(text):
        raise SectionError(_no_markers(path, name))
    section = f"{begin}\n\n{body.strip()}\n\n{end}"
    Path(path).write_text(_pattern(name).sub(lambda _: section, text))


def _read(path: str | Path, name: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as err:
        raise SectionError(f"{path}: cannot read the page for the {name} section ({err.strerror})") from None


def _no_markers(path: str | Path, name: str) -> str:
    begin, end = markers(name)
    home = f" (in this repository it is {PAGES[name]})" if name in PAGES else ""
    return (f"{path} has no {name} section: give the page that holds the lines {begin} and {end}{home}, "
            "or add those two lines where the section should go")
