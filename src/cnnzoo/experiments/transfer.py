"""``transfer`` (LECTURE L17; Simonyan & Zisserman 2014, Sec. 4 and Appendix B): a VGG trained on
Fashion-MNIST classes 0-4 only; its FC7 features (other models: globally average-pooled
``forward_features``) of the held-out classes 5-9 feed a linear classifier, against the same
classifier on the features of the same network with random (untrained) weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..compare.evidence import ACCURACY_RULE, accuracy_gap, beats
from ._common import train_arm
from .report import Report, new_figure, pct, save_plot, table

#: Labels the network is trained on, and the held-out labels the linear classifier learns.
SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)

PRESETS = {
    "tiny": {"models": ["vgg11_bn"], "epochs": 1, "limit_train": 64, "limit_test": 32, "width": 0.125,
             "batch_size": 32, "probe_train": 64, "probe_test": 32, "probe_steps": 20, "probe_sizes": [16, 64]},
    "quick": {"models": ["vgg16_bn"], "epochs": 4, "limit_train": 10000, "limit_test": 2000, "width": 0.125,
              "probe_train": 5000, "probe_test": 2000, "probe_steps": 100, "probe_sizes": [25, 100, 500, 5000]},
    "full": {"models": ["vgg16_bn", "vgg16", "cifar_resnet20"], "epochs": 8, "limit_train": None,
             "limit_test": None, "probe_train": None, "probe_test": None, "probe_steps": 200,
             "probe_sizes": [25, 100, 500, 5000, 30000]},
}


@torch.no_grad()
def features(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """(N, C, H, W) model input -> (N, D): FC7 after ReLU for VGG (``forward_fc7``), else the
    global average of ``forward_features``."""
    model.eval()
    fn = getattr(model, "forward_fc7", None) or (lambda t: model.forward_features(t).mean((2, 3)))
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def linear_probe(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                 steps: int, l2: float = 1e-4) -> dict:
    """Multinomial logistic regression on standardized features, full-batch L-BFGS.

    Returns:
        dict: ``train_acc``, ``test_acc`` (fractions), ``dim`` (feature size D).
    """
    mu, sd = train_f.mean(0), train_f.std(0).clamp_min(1e-6)
    a, b = (train_f - mu) / sd, (test_f - mu) / sd
    k = int(train_y.max()) + 1
    w = torch.zeros(a.shape[1], k, requires_grad=True)
    bias = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ w + bias, train_y) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        acc = lambda f, y: float(((f @ w + bias).argmax(1) == y).float().mean())  # noqa: E731
        return {"train_acc": acc(a, train_y), "test_acc": acc(b, test_y), "dim": int(a.shape[1])}


def _target_data(ck: dict, data_dir, preset: dict):
    from ..data import load_dataset, to_input
    from ..training.trainer import select_classes

    d = select_classes(load_dataset(ck["dataset"], data_dir), list(TARGET))
    tr, te = d.train.head(preset["probe_train"]), d.test.head(preset["probe_test"])
    prep = lambda s: to_input(s.read(), ck["input_size"], ck["mean"], ck["std"])  # noqa: E731 (source-run normalisation)
    return prep(tr), tr.labels, prep(te), te.labels


def run(preset: dict, out: Path, data_dir: str | None = None) -> Report:
    from ..registry import create_model
    from ..resolve import load_model

    rep = Report("transfer", "Transfer: FC7 features on held-out classes",
                 "L17: FC7 (4096-d) is a good generic feature representation that transfers to other data and tasks.",
                 "", dict(preset))
    res = {}
    for name in preset["models"]:
        run_ = train_arm(name, out / "runs" / name, preset, data_dir, classes=list(SOURCE))
        trained, ck = load_model(run_.out_dir / "checkpoint.pt")
        torch.manual_seed(ck["config"]["seed"])                 # the trainer's own initial weights
        random = create_model(ck["model"], num_classes=ck["num_classes"], in_chans=ck["in_chans"],
                              **ck["model_kwargs"])
        tx, ty, vx, vy = _target_data(ck, data_dir, preset)
        feats = {arm: (features(m, tx), features(m, vx)) for arm, m in (("trained", trained), ("random", random))}
        res[name] = {"source_test_acc": run_.test_acc, "run": str(run_.out_dir), "test_images": len(vy), **{
            arm: linear_probe(f, ty, v, vy, preset["probe_steps"]) for arm, (f, v) in feats.items()}}
        # the same probe with only the first n labelled target images (transfer matters most with few labels)
        res[name]["by_size"] = {str(n): {arm: linear_probe(f[:n], ty[:n], v, vy, preset["probe_steps"])["test_acc"]
                                         for arm, (f, v) in feats.items()} for n in preset["probe_sizes"] if n <= len(ty)}
    rep.results = res
    labels = {"trained": "trained features", "random": "random-weight features"}
    rep.sections.append(
        f"Trained on classes {list(SOURCE)}; linear classifier on classes {list(TARGET)} "
        f"(chance {pct(1 / len(TARGET))}):\n\n" + table(
            ["model", "source test acc", "feature dim", *(f"{labels[a]}: target test acc" for a in labels)],
            [[m, pct(r["source_test_acc"]), r["trained"]["dim"], *(pct(r[a]["test_acc"]) for a in labels)]
             for m, r in res.items()]) + "\n\nThe random arm is the same network with its initial weights (BatchNorm in eval "
        "mode at its initial statistics): random conv features are a known strong baseline on small images "
        "(Jarrett et al. 2009; Saxe et al. 2011), so the gap, not the absolute accuracy, is the measurement.")
    fig, axes = new_figure(1, width=6)
    for m, r in res.items():
        for a, style in zip(labels, ("o-", "s--")):
            axes[0].plot([int(n) for n in r["by_size"]], [100 * v[a] for v in r["by_size"].values()], style,
                         label=f"{m}, {labels[a]}")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("labelled images of the held-out classes")
    axes[0].set_ylabel("held-out classes: test accuracy (%)")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    save_plot(rep, out, "transfer.png", fig)
    rep.verdict = verdict(res)
    return rep


def verdict(res: dict) -> list[str]:
    """Per model: the gain of trained over random features on the held-out classes, counted only
    beyond noise (:data:`~cnnzoo.compare.evidence.ACCURACY_RULE`, n = the probe's test images)."""
    out = []
    for m, r in res.items():
        n = r.get("test_images", 0)
        gap = accuracy_gap(r["trained"]["test_acc"], n, r["random"]["test_acc"], n)
        word = ("transfer better than random features" if gap["diff"] > 0 else
                "do worse than random features") if gap["beyond"] else "are not shown to differ from random features"
        tail = (", agreeing with L17" if gap["diff"] > 0 else ", contradicting L17 in this run") if gap["beyond"] \
            else f" at this preset ({ACCURACY_RULE})"
        out.append(f"{m}: features trained on other classes {word} ({pct(r['trained']['test_acc'])} vs "
                   f"{pct(r['random']['test_acc'])}, {gap['text']}){tail}.")
        wins = [k for k, v in r["by_size"].items() if beats(v["trained"], n, v["random"], n)]
        out.append(f"{m}: trained features beat random ones beyond noise with {', '.join(wins) if wins else 'none'} "
                   f"of {', '.join(r['by_size'])} labelled images.")
    twins = [(m, f"{m}_bn") for m in res
             if f"{m}_bn" in res and res[m]["random"]["test_acc"] == res[f"{m}_bn"]["random"]["test_acc"]]
    for m, bn in twins:
        out.append(f"{m} and {bn} score the same with random weights: with one seed they draw the same conv and "
                   "FC weights, and BatchNorm at its initial statistics (mean 0, variance 1, scale 1, shift 0) "
                   "is the identity up to its epsilon.")
    if any(r["trained"]["test_acc"] <= r["random"]["test_acc"] for r in res.values()):   # a possible reason
        out.append("Why it can differ (a likely reason, not measured here): L17 speaks of features learned on "
                   "ImageNet's 1,000 classes, while this source task has 5 classes whose images are unlike most "
                   "held-out ones, and features near the classifier (FC7) are the most specific to the source "
                   "task; transfer falls with the distance between tasks and toward the top layers "
                   "(Yosinski et al. 2014, 'How transferable are features in deep neural networks?').")
    return out
