"""``cnnzoo draw`` and ``cnnzoo page``: the lecture's diagrams and the model page from the command line."""
from __future__ import annotations

import argparse
from pathlib import Path

from .._text import INPUT_FORMS, complete_input, input_size
from ..resolve import FORMS, ResolvedModel, resolve_model, run_folder
from . import DEPTHS, FORMATS, SHOW, DrawError, draw


def resolve(spec: str) -> ResolvedModel:
    """The draw verbs' MODEL argument through the shared resolver (:func:`cnnzoo.resolve_model`): a
    registry name (the paper's classes and channels, meta device), ``path/to/file.py:factory`` or a
    run folder / checkpoint (its recorded configuration)."""
    r = resolve_model(spec, meta=True)
    print(f"model: {r.description}")
    return r


def _size(args: argparse.Namespace, r: ResolvedModel) -> tuple[int, ...]:
    """``--input`` completed as ``cnnzoo summary`` does (a side S, HxW, CxHxW, NxCxHxW), else the
    resolved model's input (a registry name's paper input, a run's trained input, a file's own)."""
    return complete_input(args.input, r.input_size) if args.input else tuple(r.input_size)


def _stem(spec: str, r: ResolvedModel) -> str | None:
    """The file name (without suffix) of a model's drawing or page: ``FILE_FACTORY`` for a model
    file, the run folder's name for a run, ``None`` for a registry name (its own name is used)."""
    path, _, factory = spec.rpartition(":")
    return {"file": f"{Path(path).stem}_{factory}", "run": run_folder(spec).resolve().name}.get(r.kind)


def _show(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(SHOW) if text == "all" else tuple(s for s in text.split(",") if s)


def _cmd_draw(args: argparse.Namespace) -> None:
    if args.lecture:
        from .lecture import write_figures
        for path in write_figures(Path(args.out or "docs/figures"), args.format or "svg"):
            print(path)
        return
    if not args.model:
        raise DrawError(f"give a MODEL ({FORMS}) or --lecture")
    r = resolve(args.model)
    out = Path(args.out) if args.out else None
    suffix = out.suffix.lstrip(".").lower() if out and out.suffix else None
    fmt = args.format or suffix or "svg"
    if args.format and suffix in FORMATS and suffix != args.format:   # never PNG bytes in a .svg file
        raise DrawError(f"--out {out} names a .{suffix} file but --format is {args.format}; make them agree")
    if fmt not in FORMATS:
        raise DrawError(f"--out {out}: format {fmt!r} is not one of {', '.join(FORMATS)}; pass --format")
    diagram = draw(r.model, _size(args, r), args.depth, show=_show(args.show), aux=not args.no_aux)
    if out is None:
        out = Path(f"{_stem(args.model, r) or args.model}.{fmt}")
    print(diagram.save(out, fmt))


def _cmd_page(args: argparse.Namespace) -> None:
    from .page import write_page
    r = resolve(args.model)
    stem = _stem(args.model, r)
    out = Path(args.out)
    if out.suffix.lower() == ".html":            # --out names the page itself, not its folder
        out, stem = out.parent, out.stem
    explanations = _explanations(args.model) if r.kind == "run" and not args.no_explain else None
    print(write_page(r.model, out, _size(args, r), name=args.model if r.kind == "registry" else None,
                     depth=args.depth, stem=stem, explanations=explanations))


def _explanations(run: str) -> dict | None:
    """Grad-CAM of one test image per class of a run (:func:`cnnzoo.explain.page_examples`); a
    note instead where the run's data set cannot be read (the page is written without them)."""
    from ..errors import DataFileError
    from ..explain import page_examples

    try:
        ex = page_examples(run)
    except DataFileError as err:
        print(f"explanations: left out ({err})")
        return None
    print(f"explanations: Grad-CAM at {ex['layer']} of {len(ex['items'])} test images")
    return ex


def add_commands(sub) -> None:
    p = sub.add_parser("draw", help="the model as the lecture draws it: boxes, shapes, shortcuts",
                       description="Draw a model from the analyzer's trace with Graphviz: one box per layer "
                                   "(or block/stage) with its output shape; --lecture writes the lecture's "
                                   "figures into docs/figures/.")
    p.add_argument("model", nargs="?", help=FORMS)
    p.add_argument("--input", type=input_size, metavar="SIZE",
                   help=f"input size: {INPUT_FORMS} (default: the model's input, as cnnzoo summary)")
    p.add_argument("--depth", choices=DEPTHS, default="layer",
                   help="layer: every layer; block: blocks collapsed 'x N'; stage: one box per stage")
    p.add_argument("--format", choices=FORMATS, help="svg, png or pdf (default: from --out, else svg)")
    p.add_argument("--out", help="output file (default MODEL.FORMAT); with --lecture the directory "
                                 "(default docs/figures)")
    p.add_argument("--show", help=f"extra figures per box: comma-separated from {','.join(SHOW)}, or 'all'")
    p.add_argument("--no-aux", action="store_true", help="leave out auxiliary classifiers (GoogLeNet)")
    p.add_argument("--lecture", action="store_true", help="write the lecture's figures (LeNet-5 ... ResNet-50)")
    p.set_defaults(func=_cmd_draw)

    p = sub.add_parser("page", help="one offline HTML page: diagram, layers, receptive fields",
                       description="Write MODEL.html into --out: the diagram, the per-layer table (sortable, "
                                   "filterable), the totals and a receptive-field viewer; no network needed.")
    p.add_argument("model", help=FORMS)
    p.add_argument("--out", required=True, help="directory to write MODEL.html into, or the page's own path (*.html)")
    p.add_argument("--input", type=input_size, metavar="SIZE",
                   help=f"input size: {INPUT_FORMS} (default: the model's input, as cnnzoo summary)")
    p.add_argument("--depth", choices=DEPTHS, default="layer", help="depth of the diagram (default layer)")
    p.add_argument("--no-explain", action="store_true",
                   help="for a run: leave out the Grad-CAM explanations of its test images")
    p.set_defaults(func=_cmd_page)


