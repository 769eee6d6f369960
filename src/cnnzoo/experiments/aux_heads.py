"""``aux-heads`` (LECTURE L25; Szegedy et al. 2014, Sec. 5): GoogLeNet (paper variant) trained with
its two auxiliary classifiers (loss weight 0.3) and without them (weight 0), same seed, same
initial weights (the heads are built in both arms and simply unused in the second), same data
and budget: error curves and final accuracy.
"""
from __future__ import annotations

from pathlib import Path

from ..compare.evidence import ACCURACY_RULE, accuracy_gap
from ._common import error_curves, sample_sizes, train_arm
from .report import Report, new_figure, pct, save_plot, table

MODEL = "googlenet_paper"
#: Arm label -> auxiliary loss weight (Sec. 5: "their loss is added to the total loss with a discount weight (0.3)").
ARMS = {"with aux heads": 0.3, "without aux heads": 0.0}

PRESETS = {
    "tiny": {"epochs": 1, "limit_train": 64, "limit_test": 32, "width": 0.125, "input_size": 64, "batch_size": 32},
    "quick": {"epochs": 5, "limit_train": 10000, "limit_test": 2000, "width": 0.125, "input_size": 64},
    "full": {"epochs": 8, "limit_train": None, "limit_test": None, "width": 0.25, "input_size": 64},
}


def run(preset: dict, out: Path, data_dir: str | None = None) -> Report:
    rep = Report("aux-heads", "GoogLeNet with and without auxiliary classifiers",
                 "L25: two auxiliary classifiers on intermediate layers add to the training loss to inject extra "
                 "gradient into the lower layers of the deep network.", "", dict(preset))
    runs = {arm: train_arm(MODEL, out / "runs" / ("aux" if w else "noaux"), preset, data_dir, aux_weight=w)
            for arm, w in ARMS.items()}
    fig, axes = new_figure(1, width=6)
    for arm, r in runs.items():
        error_curves(axes[0], arm, r.history)
    axes[0].set_title(f"{MODEL}: error per epoch")
    save_plot(rep, out, "aux_heads.png", fig)
    rep.results = {arm: {"aux_weight": ARMS[arm], "test_acc": r.test_acc, "train_acc": r.final["train_acc"],
                         "test_loss": r.final["test_loss"], "wall_seconds": r.wall_seconds, "run": str(r.out_dir),
                         "test_images": sample_sizes(r, data_dir)["test_images"]}
                   for arm, r in runs.items()}
    rep.sections.append("Final epoch:\n\n" + table(
        ["arm", "aux loss weight", "train acc", "test acc", "test loss (nats)", "train+eval s"],
        [[arm, v["aux_weight"], pct(v["train_acc"]), pct(v["test_acc"]), f"{v['test_loss']:.4f}",
          f"{v['wall_seconds']:.0f}"] for arm, v in rep.results.items()]))
    rep.verdict = verdict(rep.results)
    return rep


def verdict(res: dict) -> list[str]:
    """Which arm reached the higher final test accuracy, and whether the gap exceeds noise
    (:data:`~cnnzoo.compare.evidence.ACCURACY_RULE`)."""
    (a, ra), (b, rb) = res.items()
    gap = accuracy_gap(ra["test_acc"], ra.get("test_images", 0), rb["test_acc"], rb.get("test_images", 0))
    both = f"({pct(ra['test_acc'])} vs {pct(rb['test_acc'])}, {gap['text']})"
    if not gap["beyond"]:
        what = (f"Not shown at this preset: training {a} and {b} end within noise of each other {both}; "
                f"{ACCURACY_RULE}.")
    elif gap["diff"] > 0:
        what = f"Training {a} ends more accurate on the test set, beyond noise {both}: the extra gradient helped " \
               "in this run, as the lecture suggests."
    else:
        what = f"Training {a} does not end more accurate {both}: in this run the auxiliary classifiers cost " \
               "accuracy (later work, Szegedy et al. 2016, Sec. 4, found them to act mainly as regularizers)."
    return [what, f"Time cost of the aux heads: {ra['wall_seconds']:.0f} s vs {rb['wall_seconds']:.0f} s."]
