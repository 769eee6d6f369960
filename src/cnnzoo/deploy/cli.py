"""CLI verbs ``export`` and ``bench``: thin wrappers around :mod:`cnnzoo.deploy`."""
from __future__ import annotations

import argparse
import json

from .._text import positive_int
from ..analysis.cli import INPUT_FORMS, input_size
from ..resolve import FORMS

_MODEL_HELP = f"{FORMS}; a registry name has fresh weights, or --weights"
_INPUT_HELP = f"input size: {INPUT_FORMS}, without the batch (default: the run's / model's input)"


def _export(a: argparse.Namespace) -> None:
    from .export import export_model
    batch = a.batch if a.batch == "dynamic" else _positive_int(a.batch, "--batch")
    r = export_model(a.model, a.format, a.out, input_shape=a.input, batch=batch, dtype=a.dtype,
                     weights=a.weights, data_dir=a.data_dir)
    c, h, w = r.input_shape
    print(f"exported {r.model} to {r.path} ({r.format}, {r.dtype}, input (N={r.batch}, {c}, {h}, {w})) in "
          f"{r.seconds:.1f} s")
    for ch in r.checks:
        print(f"  verified on {ch['images']} {ch['inputs']} (batch {ch['batch_size']}): max |diff| "
              f"{ch['max_abs_diff']:.3g} <= tolerance {r.tolerance:.3g}, top-1 agreement {ch['agreement']:.2%}")
    for note in r.notes:
        print(f"  note: {note}")
    print(f"  report: {r.path}.json")


#: How predict (and visualize) turn a user's image into the model's input; `predict --help` shows it.
PREDICT_RULE = ("Each image is read as an image viewer shows it: EXIF orientation applied, the first frame of an "
                "animated file, every mode mapped from its real range, transparency composited on white. It is "
                "converted to the model's channels (grey: ITU-R 601-2 luma; RGB: grey replicated), its shorter "
                "side resized to the model's input size S, or by the weights' rule (256 for 224 for torchvision's "
                "ImageNet weights; bilinear, antialiased), and the centre SxS square cut, as torchvision's Resize + "
                "CenterCrop: the aspect ratio is kept, a non-square image loses the ends of its longer side. Then it "
                "is normalised with the mean and std the weights expect (a run's record, torchvision's metadata, "
                "an ONNX export's metadata). "
                "Details: docs/data.md.")


def _predict(a: argparse.Namespace) -> None:
    from .predict import predict

    for i, r in enumerate(predict(a.model, a.images, a.topk, weights=a.weights)):
        if i == 0:
            print(f"model: {r['description']}")
            print(f"inference path: {r['path']} ({r['path_why']})")
        print(r["image"])
        for name, p in r["top"]:
            print(f"  {p:7.2%}  {name}")


def _positive_int(text: str, flag: str) -> int:
    from ..errors import CnnzooError

    if not text.isdigit() or int(text) < 1:
        raise CnnzooError(f"{flag} {text!r}: give 'dynamic' or a positive integer")
    return int(text)


def bench_table(rows) -> str:
    """The rows of :func:`~cnnzoo.deploy.bench.bench` as a markdown table, speed-up vs eager."""
    base = rows[0].images_per_s
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    lines = ["| path | batch | images/s | x eager | median ms | top-1 | agreement | max abs diff | validated |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        speed = None if r.images_per_s is None else r.images_per_s / base
        lines.append(f"| {r.path} | {r.batch_size} | {fmt(r.images_per_s, '.1f')} | {fmt(speed, '.2f')} | "
                     f"{fmt(r.median_ms, '.2f')} | {fmt(r.top1, '.2%')} | {fmt(r.agreement, '.2%')} | "
                     f"{fmt(r.max_abs_diff, '.3g')} | {'yes' if r.validated else 'no'} |")
    notes = [f"- {r.path}: {r.note}" for r in rows if r.note and r.note != "reference"]
    return "\n".join(lines + ([""] + notes if notes else []))


def _bench(a: argparse.Namespace) -> None:
    import torch

    from .bench import bench

    rows = bench(a.model, batch_size=a.batch_size, input_shape=a.input, paths=a.paths,
                 weights=a.weights, data_dir=a.data_dir, rounds=a.rounds)
    if a.format == "json":
        keys = ("path", "batch_size", "images_per_s", "median_ms", "top1", "agreement", "max_abs_diff", "validated",
                "note")
        print(json.dumps([{k: getattr(r, k) for k in keys} for r in rows], indent=2))
        return
    print(f"{a.model}: batch {a.batch_size}, {torch.get_num_threads()} thread(s), median of {a.rounds} "
          f"interleaved rounds (torch.utils.benchmark)")
    print(bench_table(rows))


def add_predict_command(sub) -> None:
    p = sub.add_parser("predict", help="top-k classes of image files (PNG/JPEG, any size and mode)",
                       description=PREDICT_RULE)
    p.add_argument("model", metavar="MODEL", help="a run folder of cnnzoo train or its checkpoint.pt, a registry name "
                   "with --weights, or a FILE.onnx exported by cnnzoo export")
    p.add_argument("images", nargs="+", help="image files; each read as described above")
    p.add_argument("--topk", type=positive_int, default=5, help="how many classes to list per image (default 5)")
    p.add_argument("--weights", metavar="FILE", help="a torchvision weight file for a registry name: ImageNet class "
                   "names and the weights' own transform, from torchvision's metadata")
    p.set_defaults(func=_predict)


def add_commands(sub) -> None:
    from .export import FORMATS
    from .paths import PATHS, SLOW_PATHS

    p = sub.add_parser("export", help="ONNX, TorchScript or ExportedProgram file, verified")
    p.add_argument("model", metavar="MODEL_OR_RUN", help=_MODEL_HELP)
    p.add_argument("--format", required=True, help=f"one of {', '.join(FORMATS)}")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write (its report: FILE.json)")
    p.add_argument("--input", type=input_size, metavar="SIZE", help=_INPUT_HELP)
    p.add_argument("--batch", default="dynamic", help="'dynamic' (default: any batch size) or a fixed N")
    p.add_argument("--dtype", default="fp32", help="fp32 (default) or bf16 (torchscript, exported-program)")
    p.add_argument("--weights", metavar="FILE", help="a torchvision weight file for a registry name")
    p.add_argument("--data-dir", help="where the run's data set lives (for the check on its test images)")
    p.set_defaults(func=_export)

    p = sub.add_parser("bench", help="speed and accuracy of every inference path on this CPU")
    p.add_argument("model", metavar="MODEL_OR_RUN", help=_MODEL_HELP)
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per call (default 16)")
    p.add_argument("--input", type=input_size, metavar="SIZE", help=_INPUT_HELP)
    p.add_argument("--paths", help=f"comma list of {', '.join(PATHS)}; 'all'; default: all but the slow "
                                   f"{', '.join(SLOW_PATHS)} (they compile for minutes)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--rounds", type=positive_int, default=5, help="interleaved timing rounds (default 5)")
    p.add_argument("--weights", metavar="FILE", help="a torchvision weight file for a registry name")
    p.add_argument("--data-dir", help="where the run's data set lives")
    p.set_defaults(func=_bench)
