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

#: Modules that add verbs to the CLI (``MODULE`` calls its ``add_commands``, ``MODULE:FUNCTION`` that
#: function), in the order they appear in ``cnnzoo --help``. The README's order: the zoo (``list``,
#: here), summary, lecture, train/eval/predict/results, compare, experiments, draw/page, explain,
#: export/bench.
COMMAND_MODULES: list[str] = ["cnnzoo.analysis.cli", "cnnzoo.lecture", "cnnzoo.training.cli",
                              "cnnzoo.deploy.cli:add_predict_command", "cnnzoo.training.cli:add_results_command",
                              "cnnzoo.compare.cli", "cnnzoo.experiments.cli", "cnnzoo.draw.cli", "cnnzoo.explain.cli",
                              "cnnzoo.deploy.cli"]
#: First lines of ``cnnzoo --help`` (plain text: it is printed as it is).
DESCRIPTION = ("cnnzoo: the classic CNNs of CS231n Lecture 9 (LeNet-5 to ResNet), analysed, trained and "
               "compared on this machine.")


def _cmd_list(args: argparse.Namespace) -> None:
    from ._text import text_table
    from .registry import list_models, model_figures, model_info

    names = list_models(args.pattern)
    if not names:
        raise CnnzooError(f"no model matches {args.pattern!r}; cnnzoo list without a pattern shows them all")
    rows = [("name", "family", "year", "classes", "params", "input (C,H,W)", "min side", "torchvision")]
    for name in names:
        info = model_info(name)
        params, side = model_figures(name)
        c, h, w = info.default_input_size
        rows.append((name, info.family, str(info.year), str(info.num_classes), f"{params:,}", f"{c}x{h}x{w}",
                     str(side), info.torchvision or "-"))
    print("\n".join(text_table(rows)))
    print("params: every declared parameter (GoogLeNet's auxiliary heads included) for the paper's class count; "
          "min side: smallest square input that runs, found on the meta device")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's layout with the help column past the longest command name (``experiments``), so
    that every command takes one line."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=18)
        self._action_max_length = 16


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line (``cnnzoo train: error: argument --workers: ...
    (cnnzoo train --help lists the options)``), not the usage block and then the line; exit status 2.
    Every sub-command's parser is one (argparse builds them with the parent's class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="cnnzoo", description=DESCRIPTION, epilog="cnnzoo COMMAND --help gives a command's options.",
        formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"cnnzoo {__version__} (torch {torch.__version__})")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND", title="commands")
    p = sub.add_parser("list", help="the registry: names, parameters, default and smallest input")
    p.add_argument("pattern", nargs="?", help="shell-style wildcard, e.g. 'resnet*'")
    p.set_defaults(func=_cmd_list)
    for entry in COMMAND_MODULES:
        mod, _, fn = entry.partition(":")
        getattr(importlib.import_module(mod), fn or "add_commands")(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):     # a bare `cnnzoo`: the help, not an error
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CnnzooError as err:
        print(f"cnnzoo {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:          # a path the user gave that cannot be read or written (--out on a read-only disk)
        where = f"{err.filename}: " if err.filename else ""
        print(f"cnnzoo {args.verb}: error: {where}{err.strerror or err}; choose another path", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cnnzoo {args.verb}: interrupted", file=sys.stderr)
        return 130
