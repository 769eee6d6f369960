"""A :class:`~cnnzoo.analysis.Profile` as a text table, markdown, CSV or JSON."""
from __future__ import annotations

import csv
import io
import json

from .._text import megabytes, text_table as _table

COLUMNS = ("layer", "type", "kernel", "input", "output", "params", "MACs", "act. bytes", "RF")


def _shape(s) -> str:
    return "x".join(map(str, s)) if s else "-"


def _kernel(r) -> str:
    if r.kernel is None:
        return ""
    k = _shape(r.kernel) if len(set(r.kernel)) > 1 else str(r.kernel[0])
    if r.stride:
        k += f"/{_shape(r.stride) if len(set(r.stride)) > 1 else r.stride[0]}"
    if r.padding and any(r.padding):
        k += f" p{_shape(r.padding) if len(set(r.padding)) > 1 else r.padding[0]}"
    if r.dilation and any(d != 1 for d in r.dilation):
        k += f" d{_shape(r.dilation)}"
    return k + (f" g{r.groups}" if r.groups and r.groups != 1 else "")


def _si(v: float, unit: str = "") -> str:
    for div, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.2f} {p}{unit}"
    return f"{v:g} {unit}".strip()


def _cells(r) -> list[str]:
    name = r.name + (f" (call {r.call})" if r.call > 1 else "")
    return [name, r.type, _kernel(r), _shape(r.input_shape), _shape(r.output_shape), f"{r.params:,}",
            f"{r.macs:,}" + (f" + uncounted {','.join(dict.fromkeys(r.uncounted))}" if r.uncounted else ""),
            f"{r.activation_bytes:,}", str(r.rf) if r.rf else "?"]


def summary_lines(prof) -> list[tuple[str, str]]:
    """(label, value) lines of the totals, with units."""
    t = prof.totals
    n = t.batch_size
    return [
        ("input", f"{_shape(prof.input_shape)} ({prof.device}, {'train' if prof.train else 'eval'} mode)"),
        ("output", ", ".join(map(_shape, prof.output_shapes))),
        ("params", f"{t.params:,} ({_si(t.params)}): trainable {t.params_trainable:,}, frozen "
                   f"{t.params_frozen:,}; executed {t.params_executed:,}"),
        ("MACs", f"{t.macs:,} ({_si(t.macs)}MAC) for batch {n}; FLOPs {t.flops:,} ({_si(t.flops)}FLOP)"
                 + (f"; without {len(prof.uncounted)} uncounted ops" if prof.uncounted else "")),
        ("param memory", f"{megabytes(t.param_bytes)} + buffers {megabytes(t.buffer_bytes)}"),
        ("forward activations", f"{t.activation_elems:,} values, {megabytes(t.activation_bytes)} for batch {n}"),
        ("training memory", f"{megabytes(t.train_bytes_fixed)} fixed + {megabytes(t.train_bytes_per_image)} per image"),
        ("depth", f"{prof.depth} weight layers on the longest path"),
        ("receptive field", f"{prof.receptive_field or '?'} (last spatial map"
                            + ("; +gate: each unit also depends on the whole input through a gate"
                               if prof.receptive_field and prof.receptive_field.gated else "")
                            + f"); output: {prof.output_receptive_field or '?'}"),
        ("uncounted ops", f"{len(prof.uncounted)} not in MACs/FLOPs: " + ", ".join(prof.uncounted)
                          if prof.uncounted else "none"),
    ]


def to_text(prof, depth=None) -> str:
    lines = [f"{prof.model} profile"]
    lines += _table([list(COLUMNS)] + [_cells(r) for r in prof.rows(depth)])
    width = max(len(k) for k, _ in summary_lines(prof))
    lines += [""] + [f"{k.ljust(width)}  {v}" for k, v in summary_lines(prof)]
    lines += ["", "conventions:"] + [f"  - {c}" for c in prof.conventions()]
    return "\n".join(lines)


def to_markdown(prof, depth=None) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [f"## {prof.model} profile", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---:" if c in ("params", "MACs", "act. bytes") else "---" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in prof.rows(depth)]
    lines += ["", "| total | value |", "|---|---|"] + [f"| {k} | {esc(v)} |" for k, v in summary_lines(prof)]
    lines += ["", "Conventions:"] + [f"- {c}" for c in prof.conventions()]
    return "\n".join(lines)


def to_csv(prof, depth=None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["layer", "call", "type", "kernel", "stride", "padding", "dilation", "groups", "input_shape",
                "output_shape", "params", "macs", "flops", "activation_elems", "activation_bytes",
                "rf_size", "rf_stride", "rf_padding", "rf_global", "uncounted"])
    for r in prof.rows(depth):
        rf = r.rf.to_dict() if r.rf else {}
        w.writerow([r.name, r.call, r.type, *(_shape(v) if v else "" for v in (r.kernel, r.stride, r.padding,
                   r.dilation)), r.groups or "", _shape(r.input_shape), _shape(r.output_shape), r.params, r.macs,
                   r.flops, r.activation_elems, r.activation_bytes, _shape(rf.get("size")),
                   _shape(rf.get("stride")), _shape(rf.get("padding")), rf.get("is_global", ""),
                   ";".join(r.uncounted)])
    return buf.getvalue()


def to_json(prof, depth=None) -> str:
    return json.dumps({
        "model": prof.model, "input_shape": prof.input_shape, "output_shapes": prof.output_shapes,
        "device": prof.device, "train": prof.train, "count": list(prof.count), "depth": prof.depth,
        "receptive_field": prof.receptive_field.to_dict() if prof.receptive_field else None,
        "output_receptive_field": prof.output_receptive_field.to_dict() if prof.output_receptive_field else None,
        "totals": prof.totals.__dict__, "uncounted": prof.uncounted, "conventions": prof.conventions(),
        "layers": [r.to_dict() for r in prof.rows(depth)],
    }, indent=1)
