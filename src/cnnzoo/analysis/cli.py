"""``cnnzoo summary``: the per-layer table and totals of a registry model or a user's own model."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnzooError
from .ops import CATEGORIES
from .profile import profile


#: ``--dtype`` choices: the dtype the model's floating-point weights (and so the input) are cast to.
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class ModelLoadError(CnnzooError, ValueError):
    """``path/to/file.py:factory`` that does not give an ``nn.Module``; names the file."""


def load_model(spec: str) -> nn.Module:
    """A registry name (built on the meta device) or ``path/to/file.py:factory`` (called with no args).

    Raises:
        UnknownModelError: neither a file spec nor a registered name.
        ModelLoadError: the file is missing, fails to import, lacks ``factory``, or the factory
            does not return an ``nn.Module``.
    """
    path, sep, factory = spec.rpartition(":")
    if not sep or not path.endswith(".py"):
        from ..registry import create_model
        with torch.device("meta"):
            return create_model(spec)
    file = Path(path)
    if not file.is_file():
        raise ModelLoadError(f"{file}: no such file")
    mod_spec = importlib.util.spec_from_file_location(f"_cnnzoo_user_{file.stem}", file)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - a user's file may raise anything
        raise ModelLoadError(f"{file}: import failed: {type(err).__name__}: {err}") from err
    fn = getattr(module, factory, None)
    if fn is None:
        raise ModelLoadError(f"{file}: has no {factory!r}")
    try:
        model = fn() if callable(fn) and not isinstance(fn, nn.Module) else fn
    except Exception as err:  # noqa: BLE001
        raise ModelLoadError(f"{file}:{factory}() raised {type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{file}:{factory} is not a model: it gives {type(model).__name__}, not an nn.Module")
    return model


def _cmd_summary(args: argparse.Namespace) -> None:
    model = load_model(args.model)
    size = args.input or "x".join(map(str, getattr(model, "default_input_size", (3, 224, 224))))
    count = "all" if args.count == "all" else tuple(c for c in args.count.split(",") if c)
    if args.dtype:   # the input follows the weights' dtype
        model = model.to(DTYPES[args.dtype])
    prof = profile(model, size, args.batch, count=count, real=args.real, train=args.train)
    render = {"text": prof.to_text, "markdown": prof.to_markdown, "csv": prof.to_csv, "json": prof.to_json}
    sys.stdout.write(render[args.format](args.depth).rstrip("\n") + "\n")


def add_commands(sub) -> None:
    p = sub.add_parser("summary", help="per-layer table: shapes, params, MACs, memory, receptive field",
                       description="Profile a model layer by layer (meta device: no memory, no arithmetic).")
    p.add_argument("model", help="registry name (e.g. resnet50) or path/to/file.py:factory")
    p.add_argument("--input", help="input size CxHxW or NxCxHxW (default: the model's default_input_size)")
    p.add_argument("--batch", type=int, default=None,
                   help="batch size N (default 1); with a 4-axis --input it says which axis is the batch")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=None,
                   help="cast the model's weights to this dtype; the input follows (default: the model's own)")
    p.add_argument("--depth", type=int, default=None, help="group rows to K name levels (default: every leaf)")
    p.add_argument("--format", choices=("text", "markdown", "csv", "json"), default="text")
    p.add_argument("--count", default="conv,linear",
                   help=f"comma-separated cost categories or 'all' (from {','.join(CATEGORIES)}; default conv,linear)")
    p.add_argument("--real", action="store_true", help="run on real tensors instead of the meta device")
    p.add_argument("--train", action="store_true", help="profile in training mode (aux heads, dropout)")
    p.set_defaults(func=_cmd_summary)
