"""``finetune`` (LECTURE L17, the transfer-learning workflow; Yosinski et al. 2014; Kornblith et al.
2019): a network trained on Fashion-MNIST classes 0-4 (the source run) is the starting point for
classes 5-9 (the target task) with 10, 100 and all labelled images per class. Three arms per size,
each one :func:`cnnzoo.train` call on the same target images, seed and budget:

- **scratch**: the same architecture from random weights;
- **linear probe**: the source run's weights, every layer but the classifier frozen
  (``freeze="backbone"``; the frozen BatchNorm layers keep the source statistics; a classifier is
  re-initialised only when its class count differs from the target's);
- **fine-tune**: the same, then every layer trains from ``unfreeze_epoch`` on, the backbone at
  ``backbone_lr_scale`` times the head's learning rate.

The verdicts compare final test accuracies under the noise rule of
:mod:`cnnzoo.compare.evidence`.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..compare.evidence import ACCURACY_RULE, accuracy_gap, beats
from ._common import sample_sizes, train_arm
from .report import Report, new_figure, pct, save_plot, table
from .transfer import SOURCE, TARGET

#: The options of :func:`cnnzoo.train` that the transferred arms set (and scratch leaves at their defaults).
TRANSFER_OPTIONS = ("weights", "freeze", "unfreeze_epoch", "backbone_lr_scale")
#: Arm -> folder name under ``runs/``; the two transferred arms start from the source run.
ARMS = {"scratch": "scratch", "linear probe": "probe", "fine-tune": "finetune"}
TRANSFERRED = ("linear probe", "fine-tune")

#: Presets (data, not code). Top level: the source run (and the fields every run shares);
#: ``sizes``: labelled images per class of the target task ("all": every image ``limit_train``
#: leaves, about ``limit_train / 5`` per class) -> that size's epochs and batch (fewer images get
#: more epochs, so that each arm takes enough steps); ``head_share``: the share of a fine-tune's
#: epochs with the backbone frozen. fp32 throughout (the cifar_* recipe's bf16 is emulated on
#: CPUs without AVX-512-BF16/AMX). quick: 430 s of training and evaluation over its 10 runs (about
#: 8 min end to end) on 2 cores shared with five other jobs (load 4-7), 1 torch thread.
PRESETS = {
    "tiny": {"model": "cifar_resnet20", "epochs": 1, "limit_train": 64, "limit_test": 32, "width": 0.25,
             "input_size": 28, "batch_size": 32, "amp": "fp32", "head_share": 0.5, "backbone_lr_scale": 0.1,
             "sizes": {"2": {"epochs": 2, "batch_size": 10}, "all": {"epochs": 2}}},
    "quick": {"model": "cifar_resnet20", "epochs": 4, "limit_train": 10000, "limit_test": 2000, "width": 0.5,
              "input_size": 28, "amp": "fp32", "head_share": 0.5, "backbone_lr_scale": 0.1,
              "sizes": {"10": {"epochs": 15, "batch_size": 10}, "100": {"epochs": 8, "batch_size": 50},
                        "all": {"epochs": 4}}},
    "full": {"model": "cifar_resnet20", "epochs": 15, "limit_train": None, "limit_test": None, "width": 1.0,
             "input_size": 28, "amp": "fp32", "head_share": 0.5, "backbone_lr_scale": 0.1,
             "sizes": {"10": {"epochs": 30, "batch_size": 10}, "100": {"epochs": 15, "batch_size": 50},
                       "all": {"epochs": 8}}},
}


def arm_options(arm: str, source: Path, epochs: int, preset: dict) -> dict:
    """The :func:`cnnzoo.train` options that make ``arm`` differ from training from scratch."""
    if arm == "scratch":
        return {}
    opts = {"weights": str(source), "freeze": "backbone"}
    if arm == "fine-tune":            # frozen for the first head_share of the epochs, then all layers
        opts.update(unfreeze_epoch=unfreeze_epoch(epochs, preset["head_share"]),
                    backbone_lr_scale=preset["backbone_lr_scale"])
    return opts


def unfreeze_epoch(epochs: int, head_share: float) -> int:
    """The 1-based epoch from which every layer trains: after ``head_share`` of ``epochs`` (at least
    one epoch of each phase when ``epochs`` >= 2)."""
    return min(epochs, max(2, 1 + math.floor(epochs * head_share)))


def run(preset: dict, out: Path, data_dir: str | None = None) -> Report:
    rep = Report("finetune", "Fine-tuning: transfer from a source run vs training from scratch",
                 "L17 (transfer learning): a CNN trained on one task is a starting point for another; with few "
                 "labelled images, train a linear classifier on its frozen features, with more, fine-tune the "
                 "whole network; either beats training from scratch when labels are scarce.", "", dict(preset))
    shared = {"amp": preset["amp"]}
    src = train_arm(preset["model"], out / "runs" / "source", preset, data_dir, classes=list(SOURCE), **shared)
    res = {"source": {"test_acc": src.test_acc, "run": str(src.out_dir), "classes": list(SOURCE),
                      **sample_sizes(src, data_dir)}, "by_size": {}}
    for size, plan in preset["sizes"].items():
        per_class = None if size == "all" else int(size)
        row = res["by_size"][size] = {}
        for arm, folder in ARMS.items():
            opts = arm_options(arm, src.out_dir, plan["epochs"], preset)
            r = train_arm(preset["model"], out / "runs" / f"{size}-{folder}", preset, data_dir, classes=list(TARGET),
                          per_class=per_class, **plan, **shared, **opts)
            row[arm] = {"test_acc": r.test_acc, "train_acc": r.final["train_acc"], "epochs": len(r.history),
                        "wall_seconds": r.wall_seconds, "run": str(r.out_dir),
                        "test_acc_per_epoch": [h["test_acc"] for h in r.history],
                        **{k: opts[k] for k in ("unfreeze_epoch", "backbone_lr_scale") if k in opts}}
        row.update(sample_sizes(r, data_dir))                # the same images in every arm of a size
        row["images_per_class"] = row["train_images"] / len(TARGET)
    rep.results = res
    _tables(rep, res)
    rep.sections.append(_start_notes(res))
    _plot(rep, res, out)
    rep.verdict = verdict(res)
    return rep


def _size_label(size: str, row: dict) -> str:
    return f"all ({row['images_per_class']:,.0f})" if size == "all" else size


def _tables(rep: Report, res: dict) -> None:
    s = res["source"]
    rep.sections.append(
        f"Source run: classes {s['classes']} ({s['train_images']:,} training images), test accuracy "
        f"{pct(s['test_acc'])} on {s['test_images']:,} test images. Target task: classes {list(TARGET)} "
        f"relabelled 0-4 (chance {pct(1 / len(TARGET))}); every arm of a size trains on the same stratified, "
        "seeded subset of the target training images (`per_class`) and is tested on the same "
        f"{next(iter(res['by_size'].values()))['test_images']:,} target test images:\n\n" + table(
            ["labelled images per class", "training images", *(f"{a}: test acc" for a in ARMS)],
            [[_size_label(k, r), f"{r['train_images']:,}", *(pct(r[a]["test_acc"]) for a in ARMS)]
             for k, r in res["by_size"].items()]))
    rep.sections.append(
        "Budget per arm (epochs; the fine-tune's backbone trains from the epoch given) and train+eval seconds "
        "(measured on a 2-core machine shared with other jobs: compare them only within one row):\n\n" + table(
            ["labelled images per class", *(f"{a}: epochs" for a in ARMS), *(f"{a}: s" for a in ARMS)],
            [[_size_label(k, r),
              *(f"{r[a]['epochs']}" + (f" (all layers from {r[a]['unfreeze_epoch']}, backbone at "
                                       f"{r[a]['backbone_lr_scale']:g}x the lr)" if "unfreeze_epoch" in r[a] else "")
                for a in ARMS),
              *(f"{r[a]['wall_seconds']:.0f}" for a in ARMS)] for k, r in res["by_size"].items()]))


def _start_notes(res: dict) -> str:
    """How the transferred arms of the first size started, from their runs' own record
    (metrics.json ``finetune`` notes, but the one naming the weights' path, and ``preprocess``)."""
    import json

    row = next(iter(res["by_size"].values()))
    rec = {a: json.loads((Path(row[a]["run"]) / "metrics.json").read_text()) for a in ARMS}
    notes = [n for a in TRANSFERRED for n in rec[a]["finetune"]["notes"] if not n.startswith("weights:")]
    norm = lambda a: ", ".join(f"{m:.4f}/{d:.4f}" for m, d in zip(rec[a]["preprocess"]["mean"],  # noqa: E731
                                                                     rec[a]["preprocess"]["std"]))
    text = (f"How the transferred arms started (their runs' metrics.json, first size): the source run's weights; "
            + "; ".join(dict.fromkeys(notes)) + f". Input mean/std: {norm('fine-tune')} (the source run's) for the "
            f"transferred arms, {norm('scratch')} ({rec['scratch']['preprocess']['source']}) for scratch.")
    if not any("re-initialised" in n for a in TRANSFERRED for n in rec[a]["finetune"]["notes"]):
        text += (" The source's classifier has as many outputs as the target task has classes, so it is loaded too "
                 "(cnnzoo.train re-initialises only a classifier of another class count): the transferred arms' head "
                 "starts from the source's class mapping and trains from there.")
    return text


def _plot(rep: Report, res: dict, out: Path) -> None:
    from matplotlib.ticker import MaxNLocator, NullLocator

    fig, (ax, curves) = new_figure(2, width=5.5)
    rows = res["by_size"]
    x = [r["images_per_class"] for r in rows.values()]
    for arm, style in zip(ARMS, ("s--", "o-", "^-")):
        ax.plot(x, [100 * r[arm]["test_acc"] for r in rows.values()], style, label=arm)
    ax.set_xscale("log")
    ax.set_xticks(x, [_size_label(k, r) for k, r in rows.items()])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("labelled images per class (target task)")
    ax.set_ylabel("target test accuracy (%)")
    ax.set_title("after the last epoch")
    smallest, row = next(iter(rows.items()))
    for arm, style in zip(ARMS, (".--", ".-", ".-")):
        acc = row[arm]["test_acc_per_epoch"]
        curves.plot(range(1, len(acc) + 1), [100 * a for a in acc], style, label=arm)
    curves.axvline(row["fine-tune"]["unfreeze_epoch"] - 0.5, color="grey", lw=0.8, ls=":",
                   label="fine-tune: all layers train from here")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_xlabel("epoch")
    curves.set_ylabel("target test accuracy (%)")
    curves.set_title(f"{smallest} labelled images per class, per epoch")
    for a in (ax, curves):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    save_plot(rep, out, "finetune.png", fig)


def _versus(a: dict, b: dict, n: int) -> tuple[str, dict]:
    """("beats", "does worse than" or "is not shown to differ from", the gap) for accuracy a vs b."""
    gap = accuracy_gap(a["test_acc"], n, b["test_acc"], n)
    return ("beats" if gap["diff"] > 0 else "does worse than") if gap["beyond"] else \
        "is not shown to differ from", gap


def verdict(res: dict) -> list[str]:
    """Per size, each transferred arm against scratch and fine-tuning against the linear probe, a gap
    counting only beyond noise (:data:`~cnnzoo.compare.evidence.ACCURACY_RULE`, n = the target test
    images); then the lecture's two claims: transfer beats scratch with few labels, and fine-tuning
    overtakes the linear probe as labels grow."""
    rows, out = res["by_size"], []
    for size, r in rows.items():
        n, label = r["test_images"], _size_label(size, r)
        parts = []
        for a, b in (("linear probe", "scratch"), ("fine-tune", "scratch"), ("fine-tune", "linear probe")):
            word, gap = _versus(r[a], r[b], n)
            parts.append(f"{a} {word} {b} ({pct(r[a]['test_acc'])} vs {pct(r[b]['test_acc'])}, {gap['text']})")
        out.append(f"{label} labelled images per class: " + "; ".join(parts) + ".")

    order = [_size_label(k, r) for k, r in rows.items()]

    def wins(a: str, b: str) -> set[str]:
        return {_size_label(k, r) for k, r in rows.items()
                if beats(r[a]["test_acc"], r["test_images"], r[b]["test_acc"], r["test_images"])}

    def where(sizes: set[str]) -> str:
        return ", ".join(s for s in order if s in sizes) or "no size"

    first, r0 = next(iter(rows.items()))
    best = max(TRANSFERRED, key=lambda a: r0[a]["test_acc"])
    word, gap = _versus(r0[best], r0["scratch"], r0["test_images"])
    if word == "beats":
        line = (f"Agrees with the lecture: with {first} labelled images per class, starting from the source run "
                f"({best}) beats training from scratch beyond noise ({gap['text']}).")
    elif word == "does worse than":
        line = (f"Contradicts the lecture in this run: with {first} labelled images per class the better "
                f"transferred arm ({best}) does worse than training from scratch ({gap['text']}).")
    else:
        line = (f"Not shown at this preset: with {first} labelled images per class the better transferred arm "
                f"({best}) and training from scratch are within noise ({gap['text']}; {ACCURACY_RULE}).")
    out.append(line)
    transfer_wins = wins("linear probe", "scratch") | wins("fine-tune", "scratch")
    out.append(f"A transferred arm beats scratch beyond noise at {where(transfer_wins)} of {', '.join(order)} "
               f"labelled images per class; scratch beats both at "
               f"{where(wins('scratch', 'linear probe') & wins('scratch', 'fine-tune'))}.")
    ft_wins = wins("fine-tune", "linear probe")
    advice = order[0] not in ft_wins and order[-1] in ft_wins   # the probe holds its own small, fine-tuning wins large
    out.append(f"Fine-tuning beats the linear probe beyond noise at {where(ft_wins)}; the linear probe beats "
               f"fine-tuning at {where(wins('linear probe', 'fine-tune'))}: "
               + ("as the lecture advises" if advice else "not the pattern the lecture advises on")
               + " (a linear classifier on top for little data, fine-tuning more layers for more).")
    drops = {_size_label(k, r): d for k, r in rows.items() if (d := unfreeze_drop(r["fine-tune"], r["test_images"]))}
    if drops:
        out.append("When every layer starts to train, the fine-tune's test accuracy falls beyond noise at "
                   + ", ".join(f"{k} ({pct(a)} -> {pct(b)})" for k, (a, b) in drops.items())
                   + " labelled images per class, from the epoch before to the epoch of unfreezing.")
    if word != "beats" or not transfer_wins:
        out.append("Why it can differ (likely reasons, not measured here): the source task has only "
                   f"{len(res['source']['classes'])} classes where L17 speaks of ImageNet's 1,000, and transfer falls "
                   "with the distance between tasks (Yosinski et al. 2014); with enough target images, training from scratch catches up "
                   "with pre-training (He et al. 2019, 'Rethinking ImageNet Pre-training'); and the fine-tune's "
                   "backbone trains only after unfreezing, at a fraction of the learning rate (the budget table).")
    if drops:
        out.append("Why the fall on unfreezing (a likely reason, not measured here): the unfrozen BatchNorm layers "
                   "switch to the statistics of small target batches and overwrite the source's running statistics; "
                   "Keras's transfer-learning guide keeps BatchNorm in inference mode when fine-tuning for this "
                   "reason.")
    return out


def unfreeze_drop(arm: dict, n: int) -> tuple[float, float] | None:
    """(test accuracy at the epoch before ``unfreeze_epoch``, at it) when it fell beyond noise
    (:func:`~cnnzoo.compare.evidence.beats`, n test images each), else None."""
    e, acc = arm.get("unfreeze_epoch"), arm.get("test_acc_per_epoch", [])
    if not e or len(acc) < e:
        return None
    before, after = acc[e - 2], acc[e - 1]
    return (before, after) if beats(before, n, after, n) else None
