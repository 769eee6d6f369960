"""The comparison's figures (matplotlib, Agg backend), each from the per-model records of
:func:`cnnzoo.compare.compare`. Every ``*_figure`` returns ``(figure, points)`` where
``points`` is the number of data points drawn; :func:`save_plots` writes the PNGs."""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Bubble area of the accuracy chart, points^2 per million parameters (minimum 30).
AREA_PER_MPARAM = 120.0
def accuracy_vs_macs_figure(records: dict, title: str):
    """Top-1 accuracy (%) against MACs per image (log axis) at the trained scale; bubble area
    proportional to parameters (used at inference), each bubble labelled (after Canziani et al.
    2016, Fig. 1, the lecture's L31 figure)."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    from adjustText import adjust_text

    names = [n for n, r in records.items() if r["accuracy"].get("top1") is not None]
    texts, xs, ys = [], [], []
    for i, name in enumerate(names):
        t, a = records[name]["analysis"]["trained"], records[name]["accuracy"]
        x, y, mp = t["macs"] / 1e9, 100 * a["top1"], t["params_executed"] / 1e6
        ax.scatter([x], [y], s=max(30.0, AREA_PER_MPARAM * mp), alpha=0.45, color=f"C{i % 10}", edgecolors="k")
        texts.append(ax.text(x, y, f"{name}\n{mp:.2g}M params", fontsize=8))
        xs.append(x)
        ys.append(y)
    ax.set_xscale("log")
    ax.set_xlabel("operations per image at the trained scale (GMACs, log scale)")
    ax.set_ylabel("test top-1 accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(0.25)
    fig.tight_layout()
    if texts:  # move labels off each other and off the bubbles (adjustText), a line back to each bubble
        adjust_text(texts, x=xs, y=ys, ax=ax, expand=(1.4, 2.2), force_static=(1.0, 1.5),
                    arrowprops={"arrowstyle": "-", "lw": 0.5})
    return fig, len(names)


def latency_vs_batch_figure(records: dict, title: str):
    """Per-image forward time (ms, log) and throughput (images/s) against batch size (log2),
    eager (solid) and the fastest path (dashed), one colour per model (the lecture's L32)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    points = 0
    for i, (name, r) in enumerate(records.items()):
        lat = r["latency"]
        for key, style in (("eager", "-o"), ("fast", "--s")):
            rows = lat[key]
            b = [row["batch_size"] for row in rows]
            label = f"{name} eager" if key == "eager" else f"{name} {lat['fast_path']}"
            ax1.plot(b, [1e3 * row["per_image_seconds"] for row in rows], style, color=f"C{i % 10}", ms=3, label=label)
            ax2.plot(b, [row["images_per_s"] for row in rows], style, color=f"C{i % 10}", ms=3)
            points += len(rows)
    for ax, ylab in ((ax1, "forward time per image (ms, log scale)"), (ax2, "throughput (images/s, log scale)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylab)
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=6, ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, points


def training_curves_figure(records: dict, title: str):
    """Test top-1 (%) against training time (s) and training loss against epoch, per model."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    points = 0
    for i, (name, r) in enumerate(records.items()):
        h = r["accuracy"].get("history") or []
        ax1.plot([row["elapsed_seconds"] for row in h], [100 * row["test_acc"] for row in h], "-o",
                 color=f"C{i % 10}", ms=4, label=name)
        ax2.plot([row["epoch"] for row in h], [row["train_loss"] for row in h], "-o", color=f"C{i % 10}", ms=4)
        points += len(h)
    ax1.set_xlabel("training time (s, cumulative, incl. evaluation)")
    ax1.set_ylabel("test top-1 accuracy (%)")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss (cross-entropy, nats)")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    ax1.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, points


#: Marker per accuracy source of the ImageNet chart (torchvision weights by version, the papers).
SOURCE_MARKERS = {"IMAGENET1K_V1": ("o", "torchvision IMAGENET1K_V1 weights"),
                  "IMAGENET1K_V2": ("s", "torchvision IMAGENET1K_V2 weights (2021 recipe)"),
                  "paper": ("^", "the paper's own table (single model; protocol in the report)"),
                  None: ("X", "no published ImageNet top-1 (drawn below the axis)")}


def _marker_key(row: dict):
    if row["source"] == "torchvision" and row["top1"] is not None:
        return row["weights"] if row["weights"] in SOURCE_MARKERS else "IMAGENET1K_V1"
    if row["source"] == "paper" and row["imagenet"] and row["top1"] is not None:
        return "paper"
    return None


def _strip_level(levels: list[float], start: float, span: float) -> int:
    """The first strip row whose last label ends before ``start`` (log10 GMACs); the label then
    occupies that row up to ``start + span``."""
    for i, end in enumerate(levels):
        if start > end:
            levels[i] = start + span
            return i
    levels.append(start + span)
    return len(levels) - 1


def imagenet_accuracy_figure(rows: list[dict], title: str):
    """Published ImageNet-1K top-1 (%) against the analyzer's GMACs at 224x224 (log axis), bubble
    area proportional to parameters, marker = accuracy source, colour = family; rows without an
    ImageNet top-1 sit on a strip below the axis (Canziani et al. 2016, Fig. 1, the lecture's L31)."""
    from adjustText import adjust_text
    from matplotlib.lines import Line2D

    from ..registry import families as registry_families
    from .imagenet import short_citation

    families = registry_families()                         # colour = the family's place in the lecture
    fig, ax = plt.subplots(figsize=(13, 8))
    texts, xs, ys = [], [], []
    strip = ax.get_xaxis_transform()                       # x in data units, y in axes fraction
    levels: list[float] = []                               # per strip row: where its last label ends (log10 x)
    for r in sorted(rows, key=lambda r: r["macs"]):
        key = _marker_key(r)
        x, mp = r["macs"] / 1e9, r["params"] / 1e6
        fam = r["family"] if r["family"] in families else "other"
        color = f"C{[*families, 'other'].index(fam)}"
        if key is None:                                     # shown without accuracy, not dropped
            why = (f"{r['dataset'].split()[0]} only" if r["top1"] is not None else
                   "top-5 only" if r["top5"] is not None else r["weights"] or "no figure")
            label = f"{r['model']} ({why})"
            y = 0.03 + 0.04 * _strip_level(levels, math.log10(x), 0.013 * len(label))
            ax.scatter([x], [y], s=45, marker="X", color=color, edgecolors="k", linewidths=0.5,
                       transform=strip, clip_on=False, zorder=3)
            ax.text(x * 1.08, y, label, fontsize=6.5, transform=strip, ha="left", va="center")
            continue
        ax.scatter([x], [r["top1"]], s=max(20.0, 3.0 * mp), marker=SOURCE_MARKERS[key][0], alpha=0.5, color=color,
                   edgecolors="k", linewidths=0.6)
        texts.append(ax.text(x, r["top1"], f"{r['model']} {short_citation(r)}", fontsize=7))
        xs.append(x)
        ys.append(r["top1"])
    ax.set_xscale("log")
    gm = [r["macs"] / 1e9 for r in rows]
    ax.set_xlim(min(gm) / 1.6, max(gm) * 1.6)
    ax.set_xlabel("operations per image at 3x224x224 (GMACs, analyzer; log scale)")
    ax.set_ylabel("ImageNet-1K top-1 accuracy (%), as published")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ys:
        ax.set_ylim(min(ys) - 0.3 * (max(ys) - min(ys)) - 1, max(ys) + 2)   # the lower band holds the strip
    handles = [Line2D([], [], marker=m, ls="", color="grey", mec="k", label=lab) for m, lab in SOURCE_MARKERS.values()]
    handles += [Line2D([], [], marker="o", ls="", color=f"C{i}", label=f) for i, f in enumerate(families)]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="marker: source\ncolour: family\narea: parameters", title_fontsize=7)
    fig.tight_layout()
    if texts:   # move labels off each other and off the bubbles (adjustText), a line back to each bubble
        adjust_text(texts, x=xs, y=ys, ax=ax, expand=(1.25, 1.9), force_text=(0.5, 1.0), force_static=(0.3, 0.6),
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"})
    return fig, len(rows)


def imagenet_latency_figure(records: dict, title: str):
    """Forward time per image (ms, log) against batch size (log2) at 3x224x224: eager (solid) and the
    fastest path (dashed), one colour per timed model (Canziani et al. 2016, Fig. 3; L32)."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    points = 0
    timed = {n: r["imagenet_latency"] for n, r in records.items() if r.get("imagenet_latency")}
    for i, (name, c) in enumerate(timed.items()):
        for key, style in (("eager", "-o"), ("fast", "--s")):
            if key == "fast" and c["fast_path"] == "eager":
                continue                                     # the same measurements as the eager line
            rows = c[key]
            ax.plot([row["batch_size"] for row in rows], [1e3 * row["per_image_seconds"] for row in rows], style,
                    color=f"C{i % 10}", ms=4, label=f"{name} {'eager' if key == 'eager' else c['fast_path']}")
            points += len(rows)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if timed:
        b = [row["batch_size"] for row in next(iter(timed.values()))["eager"]]
        ax.set_xticks(b, [str(x) for x in b])
    ax.set_xlabel("batch size")
    ax.set_ylabel("forward time per image (ms, log scale)")
    ax.grid(True, which="both", alpha=0.3)
    if timed:
        ax.legend(fontsize=7, ncol=2)
    else:
        ax.text(0.5, 0.5, "not timed at this preset", transform=ax.transAxes, ha="center")
    ax.set_title(title + "\npower: " + ("see report" if any(row.get("watts") for c in timed.values()
                                                            for row in c["eager"]) else "not measured (no readable RAPL counter)"),
                 fontsize=10)
    fig.tight_layout()
    return fig, points


FIGURES = {"accuracy_vs_macs.png": accuracy_vs_macs_figure, "latency_vs_batch.png": latency_vs_batch_figure,
           "training_curves.png": training_curves_figure}


def save_plots(out: Path, records: dict, rows: list[dict], titles: dict[str, str]) -> dict[str, int]:
    """Write every figure of :data:`FIGURES` (from the per-model records) and the two ImageNet-scale
    figures (from the published-accuracy rows and the ImageNet timing) into ``out``; returns
    {file name: points drawn}."""
    makers = {**{f: partial(m, records) for f, m in FIGURES.items()},
              "imagenet_accuracy_vs_ops.png": partial(imagenet_accuracy_figure, rows),
              "imagenet_latency_vs_batch.png": partial(imagenet_latency_figure, records)}
    drawn = {}
    for fname, make in makers.items():
        fig, points = make(titles[fname])
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)
        drawn[fname] = points
    return drawn
