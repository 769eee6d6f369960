"""``inception`` (LECTURE L20-L23; Szegedy et al. 2014, Sec. 4, Fig. 2): the naive Inception
module against the one with 1x1 bottleneck reductions, at the lecture's sizes (28x28x256 input;
1x1 128, 3x3 192, 5x5 96, 3x3 pool; reductions 64): parameters and MACs from the analyzer and the
forward time measured on this machine.
"""
from __future__ import annotations

from pathlib import Path

from ..models.googlenet import Inception
from ..compare.evidence import TIME_RULE, time_comparison
from ._timing import measure, timing_record
from .report import Report, new_figure, save_plot, table

#: The lecture's module (L20, L23): input (C, H, W) and the branch widths.
SIZES = {"input": (256, 28, 28), "c1": 128, "c3": 192, "c5": 96, "reduce": 64}

#: The lecture's stated conv operation counts (L21, L23), compared with the analyzer's, never used as results.
LECTURE_OPS = {"naive": 854e6, "bottleneck": 358e6}

PRESETS = {
    "tiny": {"batch_sizes": [1], "min_seconds": 0.01},
    "quick": {"batch_sizes": [1, 8], "min_seconds": 0.5},
    "full": {"batch_sizes": [1, 8, 32], "min_seconds": 2.0},
}


def module(naive: bool) -> Inception:
    """The lecture's naive (L20) or bottleneck (L23) Inception module."""
    s, red = SIZES, None if naive else SIZES["reduce"]
    return Inception(s["input"][0], s["c1"], red, s["c3"], red, s["c5"], red, naive=naive)


def run(preset: dict, out: Path, data_dir: str | None = None) -> Report:
    rep = Report("inception", "Inception: naive vs bottleneck module",
                 "L21/L23: on a 28x28x256 input the naive module costs 854M conv operations, the 1x1 bottleneck "
                 "version 358M (output 28x28x672 vs 28x28x480).", "", dict(preset))
    res: dict = {}
    for kind in ("naive", "bottleneck"):
        res[kind] = {f"batch{n}": measure(lambda: module(kind == "naive"), SIZES["input"], n, preset["min_seconds"])
                     for n in preset["batch_sizes"]}
    rows = []
    for kind, by_batch in res.items():
        first = next(iter(by_batch.values()))
        rows.append([kind, "x".join(map(str, first["output_shape"])), f"{first['params']:,}", f"{first['macs']:,}",
                     *(f"{m['per_image_ms']:.2f}" for m in by_batch.values())])
    threads = next(iter(res["naive"].values()))["threads"]
    rep.sections.append(f"Analyzer (per image, conv MACs) and measured fp32 forward time per image (ms, {threads} torch "
                        "thread(s)):\n\n" + table(
        ["module", "output C x H x W", "params", "MACs", *(f"ms/image @ {b}" for b in res["naive"])], rows))
    fig, axes = new_figure(2, width=4.2)
    kinds = list(res)
    axes[0].bar(kinds, [res[k][next(iter(res[k]))]["macs"] / 1e6 for k in kinds], label="MACs (M)")
    axes[0].set_title("analyzer: MACs per image (millions)")
    for b in res["naive"]:
        axes[1].plot(kinds, [res[k][b]["per_image_ms"] for k in kinds], "o-", label=f"{b}")
    axes[1].set_title("measured forward time per image (ms)")
    axes[1].legend(fontsize=8)
    save_plot(rep, out, "inception.png", fig)
    rep.results = res
    rep.verdict = verdict(res)
    return rep


def verdict(res: dict) -> list[str]:
    """MAC and time ratios naive / bottleneck, and whether the measured time follows the MACs."""
    out = []
    first = next(iter(res["naive"]))
    mac_ratio = res["naive"][first]["macs"] / res["bottleneck"][first]["macs"]
    out.append(f"The bottleneck cuts MACs {mac_ratio:.2f}x ({res['naive'][first]['macs'] / 1e6:.0f}M -> "
               f"{res['bottleneck'][first]['macs'] / 1e6:.0f}M per image), as the lecture argues.")
    for kind, stated in LECTURE_OPS.items():
        got = res[kind][first]["macs"]
        same = abs(got - stated) / stated < 0.005
        out.append(f"{kind}: analyzer {got / 1e6:.0f}M MACs vs the lecture's {stated / 1e6:.0f}M: "
                   f"{'agrees up to rounding' if same else 'differs (see docs/lecture.md, L21/L23, for the derivation)'}.")
    for b in res["naive"]:
        c = time_comparison(timing_record(res["naive"][b]), timing_record(res["bottleneck"][b]))
        t = c["ratio"]
        how = {"a slower": "faster", "a faster": "slower", "within noise": "not shown to differ in speed"}[c["outcome"]]
        out.append(f"Measured at {b}: the bottleneck module is {how} on this machine ({t:.2f}x the naive speed; "
                   f"{'close to' if abs(t - mac_ratio) / mac_ratio < 0.25 else 'unlike'} the {mac_ratio:.2f}x MAC ratio; "
                   f"{TIME_RULE}).")
    return out
