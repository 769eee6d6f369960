"""``degradation`` (LECTURE L27; He et al. 2015, Sec. 4.2, Fig. 1 and Fig. 6): plain-20, plain-56,
ResNet-20 and ResNet-56 (the CIFAR-style 6n+2 networks, option A shortcuts) trained with one
recipe on Fashion-MNIST; training and test error curves as in the paper's figure, and a verdict
on whether the deeper plain net trains worse and whether the residual versions reverse that.
"""
from __future__ import annotations

from pathlib import Path

from .report import Report, new_figure, pct, save_plot, table
from ..compare.evidence import ACCURACY_RULE, accuracy_gap
from ._common import error_curves, sample_sizes, train_arm

#: Plain and residual networks of equal depth, paired as in the paper's Fig. 6.
MODELS = {"plain": ("cifar_plain20", "cifar_plain56"), "residual": ("cifar_resnet20", "cifar_resnet56")}

#: Presets (data, not code). Shared recipe = the trainer's cifar_* row, these fields overridden.
#: width 0.25 cuts channels (16/32/64 -> 4/8/16) to fit 2 CPU cores; depth is untouched. Measured on 2
#: busy cores, 1 torch thread: quick 222 s; full is about 12x quick's images x 3x its epochs (~2 h).
PRESETS = {
    "tiny": {"epochs": 1, "limit_train": 64, "limit_test": 32, "width": 0.25, "input_size": 28, "batch_size": 32},
    "quick": {"epochs": 4, "limit_train": 5000, "limit_test": 2000, "width": 0.25, "input_size": 28},
    "full": {"epochs": 12, "limit_train": None, "limit_test": None, "width": 0.25, "input_size": 28},
}


def _last(history: list[dict], key: str) -> float:
    return 1 - history[-1][key]


def run(preset: dict, out: Path, data_dir: str | None = None) -> Report:
    rep = Report("degradation", "Degradation: deeper plain nets train worse, residual nets do not",
                 "L27: on CIFAR-10 a plain 56-layer network has higher training and test error than a plain "
                 "20-layer one (an optimization problem, not overfitting); ResNets reverse this (He et al. 2015, "
                 "Fig. 1, Fig. 6).", "", dict(preset))
    runs = {m: train_arm(m, out / "runs" / m, preset, data_dir) for pair in MODELS.values() for m in pair}
    fig, axes = new_figure(2)
    for ax, (kind, pair) in zip(axes, MODELS.items()):
        for m in pair:
            error_curves(ax, m, runs[m].history)
        ax.set_title(f"{kind} networks")
    save_plot(rep, out, "degradation.png", fig)
    rows, res = [], {}
    for m, r in runs.items():
        res[m] = {"train_error": _last(r.history, "train_acc"), "test_error": _last(r.history, "test_acc"),
                  "params": r.summary["params"], "wall_seconds": r.wall_seconds, "run": str(r.out_dir),
                  **sample_sizes(r, data_dir)}
        rows.append([m, f"{r.summary['params']:,}", pct(res[m]["train_error"]), pct(res[m]["test_error"]),
                     f"{r.wall_seconds:.0f}"])
    rep.results = res
    rep.sections.append("Final epoch (training error: running error over the last epoch's augmented batches):\n\n"
                        + table(["model", "params", "train error", "test error", "train+eval s"], rows))
    rep.verdict = verdict(res)
    return rep


#: The sample behind each error: training error over the last epoch's images, test error over the test set.
_N = {"train_error": "train_images", "test_error": "test_images"}


def _compare_errors(res: dict, shallow: str, deep: str, key: str) -> tuple[str, dict]:
    """("higher" / "lower" / "about equal", the gap) for deep vs shallow under the accuracy noise rule."""
    a, b = res[shallow], res[deep]
    gap = accuracy_gap(b[key], b.get(_N[key], 0), a[key], a.get(_N[key], 0))
    return ("higher" if gap["diff"] > 0 else "lower") if gap["beyond"] else "about equal", gap


def verdict(res: dict) -> list[str]:
    """Sentences from the final errors: plain-56 vs plain-20, then ResNet-56 vs ResNet-20; a gap
    counts only beyond noise (:data:`~cnnzoo.compare.evidence.ACCURACY_RULE`)."""
    out = []
    for kind, (shallow, deep) in MODELS.items():
        for key, what in (("train_error", "training"), ("test_error", "test")):
            rel, gap = _compare_errors(res, shallow, deep, key)
            how = f"{rel} {what} error than" if rel != "about equal" else f"the same {what} error, within noise, as"
            out.append(f"{deep} ends with {how} {shallow} ({pct(res[deep][key])} vs {pct(res[shallow][key])}; "
                       f"{gap['text']}).")
    plain, _ = _compare_errors(res, *MODELS["plain"], "train_error")
    resid, _ = _compare_errors(res, *MODELS["residual"], "train_error")
    if plain == "higher" and resid != "higher":
        out.append("Agrees with the lecture: the deeper plain net trains worse, and with shortcuts the deeper net "
                   "trains at least as well as the shallower one.")
    elif plain == "higher":
        out.append("Agrees in part: the deeper plain net trains worse, but in this run the residual 56-layer net "
                   "does not reach the 20-layer net's training error (longer training may change this).")
    elif plain == "about equal":
        out.append("Not shown at this preset: plain-56 and plain-20 end with training errors within noise of each "
                   f"other ({ACCURACY_RULE}); a longer run (--preset full) may separate them.")
    else:
        out.append("Does not reproduce the lecture's degradation in this run: plain-56 trains better than "
                   "plain-20 beyond noise (short budgets and reduced width weaken the effect; try --preset full).")
    return out
