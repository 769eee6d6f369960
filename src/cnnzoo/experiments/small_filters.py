"""``small-filters`` (LECTURE L13-L14; Simonyan & Zisserman 2014, Sec. 2.3): a stack of three 3x3
convs (stride 1, pad 1, ReLU after each) against one 7x7 conv (pad 3, ReLU), C channels in and out,
at several widths C: receptive field, parameters and MACs from the analyzer, measured forward time.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..compare.evidence import TIME_RULE, time_comparison
from ._timing import measure, relu_stack, timing_record
from .report import Report, new_figure, save_plot, table

PRESETS = {
    "tiny": {"widths": [8, 16], "side": 16, "batch_size": 1, "min_seconds": 0.01},
    "quick": {"widths": [32, 64, 128], "side": 28, "batch_size": 8, "min_seconds": 0.3},
    "full": {"widths": [16, 32, 64, 128, 256], "side": 56, "batch_size": 8, "min_seconds": 1.0},
}

#: The two designs of Sec. 2.3, as builders of C -> C modules.
DESIGNS = {
    "3 x conv3x3": lambda c: relu_stack(*(nn.Conv2d(c, c, 3, padding=1) for _ in range(3))),
    "1 x conv7x7": lambda c: relu_stack(nn.Conv2d(c, c, 7, padding=3)),
}


def run(preset: dict, out: Path, data_dir: str | None = None) -> Report:
    rep = Report("small-filters", "Small filters: three 3x3 convs vs one 7x7 conv",
                 "L13/L14: three stacked 3x3 convs (stride 1) see the same 7x7 receptive field as one 7x7 conv, "
                 "with 3*(9C^2) = 27C^2 weights instead of 49C^2 and three non-linearities instead of one.",
                 "", dict(preset))
    side, n = preset["side"], preset["batch_size"]
    res = {name: {str(c): measure(lambda: make(c), (c, side, side), n, preset["min_seconds"])
                  for c in preset["widths"]} for name, make in DESIGNS.items()}
    rows = [[str(c), *(f"{res[d][str(c)][k]:,}" for k in ("rf",) for d in DESIGNS),
             *(f"{res[d][str(c)]['params']:,}" for d in DESIGNS), *(f"{res[d][str(c)]['macs']:,}" for d in DESIGNS),
             *(f"{res[d][str(c)]['per_image_ms']:.3f}" for d in DESIGNS)] for c in preset["widths"]]
    d1, d2 = DESIGNS
    threads = res["3 x conv3x3"][str(preset["widths"][0])]["threads"]
    rep.sections.append(f"Input {side}x{side}, batch {n}, fp32, {threads} torch thread(s); MACs per image; "
                        "RF = receptive-field side (pixels):\n\n"
                        + table(["C", f"RF {d1}", f"RF {d2}", f"params {d1}", f"params {d2}", f"MACs {d1}",
                                 f"MACs {d2}", f"ms/image {d1}", f"ms/image {d2}"], rows))
    fig, axes = new_figure(2, width=4.5)
    for d in DESIGNS:
        axes[0].plot(preset["widths"], [res[d][str(c)]["params"] for c in preset["widths"]], "o-", label=d)
        axes[1].plot(preset["widths"], [res[d][str(c)]["per_image_ms"] for c in preset["widths"]], "o-", label=d)
    for ax, title in zip(axes, ("parameters (analyzer)", "measured ms per image")):
        ax.set_title(title)
        ax.set_xlabel("channels C")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    save_plot(rep, out, "small_filters.png", fig)
    rep.results = res
    rep.verdict = verdict(res)
    return rep


def verdict(res: dict) -> list[str]:
    """Receptive fields equal?, parameter ratio, and at which widths the stack is faster."""
    small, big = res.values()
    widths = list(small)
    rfs = {(small[c]["rf"], big[c]["rf"]) for c in widths}
    same_rf = all(a == b for a, b in rfs)
    out = [f"Receptive field: {'equal' if same_rf else 'different'} "
           f"({', '.join(f'{a} vs {b}' for a, b in sorted(rfs, key=str))} pixels)"
           f"{', agreeing with L13' if same_rf else ', contradicting L13'}."]
    ratios = [small[c]["params"] / big[c]["params"] for c in widths]
    out.append(f"Parameters: the 3x3 stack has {min(ratios):.3f}-{max(ratios):.3f}x the 7x7 conv's "
               f"(weights alone 27/49 = {27 / 49:.3f}; biases make the difference)"
               f"{', fewer as L14 says' if max(ratios) < 1 else ', not fewer'}.")
    # 7x7 time vs 3x3-stack time per width, counted only beyond timing noise
    cmp = {c: time_comparison(timing_record(big[c]), timing_record(small[c])) for c in widths}
    faster = [c for c in widths if cmp[c]["outcome"] == "a slower"]
    slower = [c for c in widths if cmp[c]["outcome"] == "a faster"]
    speed = ", ".join(f"C={c}: {cmp[c]['ratio']:.2f}x" for c in widths)
    where = lambda cs: "every width" if len(cs) == len(widths) else ("C = " + ", ".join(cs)) if cs else "no width"  # noqa: E731
    out.append(f"Measured time (7x7 time / 3x3-stack time): {speed}; beyond timing noise the stack is faster at "
               f"{where(faster)} and slower at {where(slower)} on this machine ({TIME_RULE}).")
    return out
