"""Generated sections of a markdown file (the README's results), between HTML-comment markers.

A section named ``NAME`` is the block from ``<!-- cnnzoo-NAME:begin -->`` to
``<!-- cnnzoo-NAME:end -->``; commands that produce figures rewrite it, so nothing in it is
typed by hand.
"""
from __future__ import annotations

import re
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of section ``name``."""
    return f"<!-- cnnzoo-{name}:begin -->", f"<!-- cnnzoo-{name}:end -->"


def update_section(path: str | Path, name: str, body: str) -> None:
    """Replace section ``name`` of the markdown file ``path`` by ``body`` wrapped in its markers
    (the section is appended when the file has no such markers)."""
    path = Path(path)
    begin, end = markers(name)
    section = f"{begin}\n\n{body.strip()}\n\n{end}"
    text = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
