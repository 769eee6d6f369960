"""``cnnzoo summary``: the per-layer table and totals of a registry model or a user's own model."""
from __future__ import annotations

import argparse
import sys

import torch

from .._text import INPUT_FORMS, complete_input, input_size, positive_float, positive_int
from ..resolve import FORMS, ModelLoadError, resolve_model  # noqa: F401  (ModelLoadError: re-exported)
from .ops import CATEGORIES
from .profile import profile

#: ``--dtype`` choices: the dtype the model's floating-point weights (and so the input) are cast to.
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _cmd_summary(args: argparse.Namespace) -> None:
    r = resolve_model(args.model, num_classes=args.num_classes, in_chans=args.in_chans, width=args.width, meta=True)
    size = complete_input(args.input, r.input_size) if args.input else tuple(r.input_size)
    count = "all" if args.count == "all" else tuple(c for c in args.count.split(",") if c)
    model = r.model.to(DTYPES[args.dtype]) if args.dtype else r.model   # the input follows the weights' dtype
    prof = profile(model, size, args.batch, count=count, real=args.real, train=args.train)
    render = {"text": prof.to_text, "markdown": prof.to_markdown, "csv": prof.to_csv, "json": prof.to_json}
    if args.format in ("text", "markdown"):          # csv and json stay machine-readable
        shown = "x".join(map(str, size))
        print(f"model: {r.description}" + (f"; profiled at {shown}" if args.input else ""))
    sys.stdout.write(render[args.format](args.depth).rstrip("\n") + "\n")


def add_commands(sub) -> None:
    p = sub.add_parser("summary", help="per-layer shapes, params, MACs, memory, receptive field",
                       description="Profile a model layer by layer (meta device: no memory, no arithmetic).")
    p.add_argument("model", help=f"{FORMS}; a registry name is built with the paper's class count and "
                                  "input, a run with the configuration it was trained with")
    p.add_argument("--num-classes", type=positive_int, help="size of the logits (default: the paper's; not with a run)")
    p.add_argument("--in-chans", type=positive_int, help="input channels (default: the paper's input; not with a run)")
    p.add_argument("--width", type=positive_float, help="channel multiplier (default 1; not with a run)")
    p.add_argument("--input", type=input_size, metavar="SIZE",
                   help=f"input size: {INPUT_FORMS}; HxW and S take the model's channel count (default: the "
                        "paper's input for a registry name, the trained input for a run, the model's "
                        "default_input_size for a file)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="batch size N (default 1); with a 4-axis --input it says which axis is the batch")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=None,
                   help="cast the model's weights to this dtype; the input follows (default: the model's own)")
    p.add_argument("--depth", type=positive_int, default=None, help="group rows to K name levels (default: every leaf)")
    p.add_argument("--format", choices=("text", "markdown", "csv", "json"), default="text")
    p.add_argument("--count", default="conv,linear",
                   help=f"comma-separated cost categories or 'all' (from {','.join(CATEGORIES)}; default conv,linear)")
    p.add_argument("--real", action="store_true", help="run on real tensors instead of the meta device")
    p.add_argument("--train", action="store_true", help="profile in training mode (aux heads, dropout)")
    p.set_defaults(func=_cmd_summary)
