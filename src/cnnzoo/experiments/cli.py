"""CLI verbs ``experiment`` and ``visualize`` (thin wrappers of :func:`run_experiment` and
:func:`cnnzoo.visualize.visualize`)."""
from __future__ import annotations

import argparse

from . import EXPERIMENTS


def _experiment(args: argparse.Namespace) -> None:
    from . import run_experiment

    rep = run_experiment(args.name, args.preset, args.out, args.data_dir, args.dataset)
    print(f"{rep.out}/report.md")
    for line in rep.verdict:
        print(f"  {line}")


def _experiments(args: argparse.Namespace) -> None:
    from .._readme import update_section
    from .report import readme_section, summary

    if args.readme is None:
        print(summary(args.root))
        return
    update_section(args.readme, "experiments", readme_section(args.root, args.readme))
    print(f"experiments section updated in {args.readme}")


def _visualize(args: argparse.Namespace) -> None:
    from ..visualize import visualize

    res = visualize(args.checkpoint, args.image, args.layer, args.out)
    for key in ("filters_png", "input_png", "feature_maps_png"):
        if key in res:
            print(res[key])


def add_commands(sub) -> None:
    p = sub.add_parser("experiment", help="rerun one of the lecture's experiments: report and plots",
                       description="Experiments: " + "; ".join(f"{k} ({v[1]})" for k, v in EXPERIMENTS.items()))
    p.add_argument("name", choices=list(EXPERIMENTS))
    p.add_argument("--preset", default="quick", help="quick (2 CPU cores, <= 15 min) or full (the README's figures)")
    p.add_argument("--out", help="output directory (default runs/experiments/NAME-PRESET)")
    p.add_argument("--data-dir", help="directory with the data set's files")
    p.add_argument("--dataset", help="data set for the training experiments (default fashion-mnist)")
    p.set_defaults(func=_experiment)
    p = sub.add_parser("experiments", help="digest of the experiment reports under a folder")
    p.add_argument("root", help="folder whose sub-folders hold experiment reports, e.g. docs/experiments")
    p.add_argument("--readme", metavar="PAGE",
                   help="write the digest between the cnnzoo-experiments markers of this markdown page "
                        "(docs/experiments.md in this repository); links are made relative to it")
    p.set_defaults(func=_experiments)
    p = sub.add_parser("visualize", help="first-layer filters and feature maps of a checkpoint")
    p.add_argument("checkpoint", help="checkpoint.pt or its run directory")
    p.add_argument("image", nargs="?", help="image file for the feature maps, prepared as predict does "
                   "(see cnnzoo predict --help); input.png shows what the model saw")
    p.add_argument("--layer", help="module whose feature maps IMAGE gives, e.g. features.3 (default: the "
                   "first conv layer); a wrong name lists the layers that run a convolution")
    p.add_argument("--out", help="output directory (default: the checkpoint's directory)")
    p.set_defaults(func=_visualize)
