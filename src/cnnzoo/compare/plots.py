"""The comparison's figures (matplotlib, Agg backend), each from the per-model records of
:func:`cnnzoo.compare.compare`. Every ``*_figure`` returns ``(figure, points)`` where
``points`` is the number of data points drawn; :func:`save_plots` writes the PNGs."""
from __future__ import annotations

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
    fp32 (solid) and the fastest path (dashed), one colour per model (the lecture's L32)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    points = 0
    for i, (name, r) in enumerate(records.items()):
        lat = r["latency"]
        for key, style in (("fp32", "-o"), ("fast", "--s")):
            rows = lat[key]
            b = [row["batch_size"] for row in rows]
            label = f"{name} fp32" if key == "fp32" else f"{name} {lat['fast_path']}"
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


FIGURES = {"accuracy_vs_macs.png": accuracy_vs_macs_figure, "latency_vs_batch.png": latency_vs_batch_figure,
           "training_curves.png": training_curves_figure}


def save_plots(out: Path, records: dict, titles: dict[str, str]) -> dict[str, int]:
    """Write every figure of :data:`FIGURES` into ``out``; returns {file name: points drawn}."""
    drawn = {}
    for fname, make in FIGURES.items():
        fig, points = make(records, titles[fname])
        fig.savefig(out / fname, dpi=110)
        plt.close(fig)
        drawn[fname] = points
    return drawn
