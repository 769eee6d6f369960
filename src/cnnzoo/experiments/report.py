"""The shared report of every experiment: ``report.md`` (claim, command, measured figures,
plots, verdict) and ``results.json`` (the same figures, every plotted line's points, the preset).

Plots go through :func:`save_plot`, which reads each drawn line back from the matplotlib axes
before saving, so ``results.json`` holds exactly what the PNG shows (the tests compare it with
the runs' own records).
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CnnzooError


@dataclass
class Report:
    """One experiment's outcome.

    Attributes:
        name: experiment name (``degradation``, ...); title: report heading.
        claim: the lecture's claim being rerun, with its id (LECTURE.md), e.g. ``"L27: ..."``.
        preset: preset name; settings: the preset's values (data, written into both files).
        command: the command line that reproduces the report.
        sections: markdown blocks (tables, notes) in order, each derived from measurements.
        figures: {PNG file name: {line label: {"x": [...], "y": [...]}}} as drawn.
        verdict: sentences derived from the measured values.
        results: the measured figures (JSON-serialisable).
        out: the directory written by :meth:`write`.
    """

    name: str
    title: str
    claim: str
    preset: str
    settings: dict
    command: str = ""
    sections: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    verdict: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    out: str = ""

    def to_markdown(self) -> str:
        figs = "\n".join(f"![{Path(f).stem}]({f})" for f in self.figures)
        setting = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return "\n\n".join(s for s in (
            f"# {self.title}", f"Lecture claim — {self.claim}",
            f"Command (preset `{self.preset}`: {setting}):\n\n```\n{self.command}\n```",
            *self.sections, figs, "## Verdict (from the measurements above)\n\n" +
            "\n".join(f"- {v}" for v in self.verdict)) if s) + "\n"

    def write(self, out: Path) -> Path:
        """Write ``report.md`` and ``results.json`` into ``out``; returns the report's path."""
        out.mkdir(parents=True, exist_ok=True)
        self.out = str(out)
        (out / "results.json").write_text(json.dumps(
            {"name": self.name, "preset": self.preset, "settings": self.settings, "command": self.command,
             "results": self.results, "figures": self.figures, "verdict": self.verdict}, indent=1) + "\n")
        path = out / "report.md"
        path.write_text(self.to_markdown())
        return path


def command_line(name: str, preset: str, out: Path | str, **options: str | None) -> str:
    """The CLI command that reproduces an experiment (``options``: ``dataset``, ``data_dir``, ... if set)."""
    extra = [a for k, v in options.items() if v is not None for a in (f"--{k.replace('_', '-')}", str(v))]
    return shlex.join(["cnnzoo", "experiment", name, "--preset", preset, "--out", str(out), *extra])


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table; floats keep the caller's formatting (pass strings for that)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(v: float) -> str:
    """A fraction as a percentage with two decimals, e.g. ``0.1234 -> '12.34%'``."""
    return f"{100 * v:.2f}%"


def new_figure(ncols: int = 1, width: float = 5.0, height: float = 3.8):
    """(figure, list of axes) with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def save_plot(report: Report, out: Path, filename: str, fig) -> None:
    """Save ``fig`` as ``out/filename`` and record every drawn line (label -> x, y) in the report.

    Lines are keyed ``"axes title: line label"``; bars (``ax.bar``) are recorded as their
    heights keyed by tick label.
    """
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.canvas.draw()                      # resolves tick labels (categorical axes)
    drawn: dict = {}
    for ax in fig.axes:
        prefix = f"{ax.get_title()}: " if ax.get_title() else ""
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                drawn[prefix + line.get_label()] = {"x": [_num(v) for v in line.get_xdata()],
                                                    "y": [float(v) for v in line.get_ydata()]}
        for cont in ax.containers:
            labels = [t.get_text() for t in ax.get_xticklabels()]
            drawn[prefix + str(cont.get_label())] = {"x": labels, "y": [float(r.get_height()) for r in cont]}
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / filename, dpi=110)
    plt.close(fig)
    report.figures[filename] = drawn


def _num(v):
    """A plotted x value as float, or as str for categorical axes."""
    try:
        return float(v)
    except ValueError:
        return str(v)


def _report_heading(report_md: Path) -> tuple[str, str]:
    """(title, claim) from a written report.md: its ``# `` heading and its ``Lecture claim — `` line."""
    title = claim = ""
    for line in report_md.read_text().splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("Lecture claim — ") and not claim:
            claim = line[len("Lecture claim — "):].strip()
    return title, claim


def summary(root: str | Path, relative_to: str | Path = ".") -> str:
    """Markdown digest of every experiment report under ``root`` (each ``*/results.json``): per
    experiment, in :data:`EXPERIMENTS` order and preferring its ``full`` preset, the title, the
    lecture's claim, a link to the report, its figures and its verdict, all read from the files.
    Paths are written relative to ``relative_to`` (the README's folder).

    Raises:
        CnnzooError: no experiment reports under ``root``.
    """
    from . import EXPERIMENTS   # the package imports this module: a late import

    found: dict[str, tuple[Path, dict]] = {}
    for path in sorted(Path(root).glob("*/results.json")):
        rec = json.loads(path.read_text())
        if rec.get("name") in EXPERIMENTS and "verdict" in rec:
            if rec["name"] not in found or rec.get("preset") == "full":
                found[rec["name"]] = (path.parent, rec)
    if not found:
        raise CnnzooError(f"no experiment reports (*/results.json with a verdict) under {root}")
    blocks = []
    for name in (n for n in EXPERIMENTS if n in found):
        folder, rec = found[name]
        rel = Path(os.path.relpath(folder, relative_to)).as_posix()
        title, claim = _report_heading(folder / "report.md")
        figs = " ".join(f"![{Path(f).stem}]({rel}/{f})" for f in rec.get("figures", {}))
        blocks.append("\n\n".join(b for b in (
            f"**{title}** — `{name}`, preset `{rec['preset']}`, [report]({rel}/report.md)",
            f"Lecture: {claim}" if claim else "", figs,
            "\n".join(f"- {v}" for v in rec["verdict"])) if b))
    return "\n\n".join(blocks)


def readme_section(root: str | Path, page: str | Path) -> str:
    """The cnnzoo-experiments section of the markdown page ``page``: the command that wrote it and
    :func:`summary` of ``root`` with links relative to the page's folder.

    Raises:
        CnnzooError: no experiment reports under ``root``.
    """
    return (f"Generated by `cnnzoo experiments {root} --readme {page}` from the reports' results.json.\n\n"
            + summary(root, Path(page).parent))
