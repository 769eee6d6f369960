"""CLI verb ``compare``: a thin wrapper around :func:`cnnzoo.compare.compare`."""
from __future__ import annotations

import argparse
import shlex
import sys

from ..data import DATASETS


def summary_lines(result: dict) -> list[str]:
    """The terminal summary of a :func:`~cnnzoo.compare.compare` result: per scale, each verdict on
    L31 and L32 under a line naming the models it used, when they change (the ImageNet-scale L31
    verdicts judge every architecture with torchvision weights, not only the compared ones)."""
    lines = []
    for scale, keys in ((result["dataset"], ("L31", "L32")), ("ImageNet scale", ("L31_imagenet", "L32_imagenet"))):
        lines.append(f"{scale}:")
        shown = None
        for v in result["verdicts"][keys[0]] + result["verdicts"][keys[1]]:
            models = v.get("models")
            if models is not None and models != shown:
                lines.append(f"{'models':>15}: {', '.join(models) or 'none'}")
                shown = models
            lines.append(f"{v['verdict']:>15}: {v['claim']}")
    return lines


def _compare(a: argparse.Namespace) -> None:
    from .job import compare

    command = shlex.join(["cnnzoo", *sys.argv[1:]])
    r = compare(a.models, preset=a.preset, dataset=a.dataset, out=a.out, data_dir=a.data_dir,
                progress=not a.quiet, command=command, readme=a.readme)
    out = a.out or f"runs/compare-{a.preset}"
    print("\n".join(summary_lines(r)))
    print(f"report: {out}/report.md (results.json, {', '.join(r['files']['plots'])})"
          + (f"; README section updated in {a.readme}" if a.readme else ""))


def add_commands(sub) -> None:
    from .job import DEFAULT_MODELS, PRESETS

    p = sub.add_parser("compare", help="the lecture's comparison (L31, L32) measured on this machine",
                       description="Analyse, time and train the lecture's networks on this machine; write report.md, "
                                   "results.json and plots with verdicts on the lecture's L31 and L32")
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help=f"registry names or FILE.py:FACTORY (a factory taking num_classes and in_chans) (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--preset", choices=tuple(PRESETS), default="quick",
                   help="quick: short-budget training, about 15 min on 2 cores; full: the recipes' epochs")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir", help="folder with the data files (else $CNNZOO_DATA, else the system location)")
    p.add_argument("--out", help="output folder (default runs/compare-PRESET); finished work there is reused")
    p.add_argument("--readme", metavar="FILE",
                   help="also write the results section between the cnnzoo-compare markers of this markdown file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_compare)
