"""The ``cnnzoo`` command line: one verb per API function, each a thin wrapper.

Each area of cnnzoo contributes its verbs through a module in ``COMMAND_MODULES`` that
defines ``add_commands(subparsers)``; every parser sets ``func(args) -> int | None``.
A :class:`~cnnzoo.errors.CnnzooError` is printed as one line and exits with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

import torch

from .errors import CnnzooError

#: Modules that add verbs to the CLI, in the order they appear in ``cnnzoo --help``.
COMMAND_MODULES: list[str] = ["cnnzoo.analysis.cli", "cnnzoo.training.cli", "cnnzoo.lecture", "cnnzoo.compare.cli",
                                 "cnnzoo.experiments.cli", "cnnzoo.deploy.cli"]


def _cmd_list(args: argparse.Namespace) -> None:
    from .registry import create_model, list_models, model_info

    rows = [("name", "family", "year", "classes", "params", "input (C,H,W)", "min side", "torchvision")]
    for name in list_models(args.pattern):
        info = model_info(name)
        with torch.device("meta"):
            model = create_model(name, num_classes=info.num_classes, in_chans=info.default_input_size[0])
        params = sum(p.numel() for p in model.parameters())
        c, h, w = info.default_input_size
        rows.append((name, info.family, str(info.year), str(info.num_classes), f"{params:,}", f"{c}x{h}x{w}",
                     str(info.min_input_size), info.torchvision or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(cell.rjust(wd) if cell[:1].isdigit() else cell.ljust(wd)
                        for cell, wd in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * wd for wd in widths))
    print("params: every declared parameter (GoogLeNet's auxiliary heads included) for the paper's class count; "
          "min side: smallest square input that runs, found on the meta device")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnzoo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = sub.add_parser("list", help="the registry as a table (name, family, year, params, input size)")
    p.add_argument("pattern", nargs="?", help="shell-style wildcard, e.g. 'resnet*'")
    p.set_defaults(func=_cmd_list)
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CnnzooError as err:
        print(f"cnnzoo {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cnnzoo {args.verb}: interrupted", file=sys.stderr)
        return 130
