"""``filters`` (Zeiler & Fergus 2013, Sec. 4, Fig. 2; the lecture's AlexNet/ZFNet slides): the
first-layer filters of a trained model as an image grid, next to the same filters at their random
initialization, and the feature maps of a chosen layer for one test image
(:func:`cnnzoo.visualize.visualize`). The verdict compares how smooth the filters are (share of
low-frequency power) after training with its spread over random initializations (:func:`verdict`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ._common import train_arm
from .report import Report, table

PRESETS = {
    "tiny": {"model": "alexnet", "layer": "features.3", "epochs": 1, "limit_train": 64, "limit_test": 32,
             "width": 0.25, "batch_size": 32},
    "quick": {"model": "alexnet", "layer": "features.3", "epochs": 3, "limit_train": 20000, "limit_test": 2000,
              "width": 0.25},
    "full": {"model": "alexnet", "layer": "features.3", "epochs": 8, "limit_train": None, "limit_test": None,
             "width": 0.25},
}


def run(preset: dict, out: Path, data_dir: str | None = None) -> Report:
    from PIL import Image

    from ..data import load_dataset
    from ..registry import create_model
    from ..resolve import load_model
    from ..visualize import first_conv, low_frequency_share, plot_filters, visualize

    rep = Report("filters", "What the first layer learns: filters and feature maps",
                 "the lecture's AlexNet/ZFNet visualizations (Zeiler & Fergus 2013, Fig. 2): trained first-layer "
                 "filters are structured (edges, blobs), unlike random ones.", "", dict(preset))
    r = train_arm(preset["model"], out / "runs" / preset["model"], preset, data_dir)
    trained, ck = load_model(r.out_dir / "checkpoint.pt")
    torch.manual_seed(ck["config"]["seed"])                       # the trainer's own initial weights
    init = create_model(ck["model"], num_classes=ck["num_classes"], in_chans=ck["in_chans"], **ck["model_kwargs"])
    data = load_dataset(ck["dataset"], data_dir)
    image = out / "test_image0.png"
    Image.fromarray(data.test.read([0])[0].permute(1, 2, 0).squeeze(-1).numpy()).save(image)
    vis = visualize(r.out_dir / "checkpoint.pt", image, preset["layer"], out)
    name, conv0 = first_conv(init)
    plot_filters(conv0.weight, out / "filters_init.png", f"{ck['model']}: {name} filters at initialization")
    w1, w0 = first_conv(trained)[1].weight.detach(), conv0.weight.detach()
    shares = {"trained": low_frequency_share(w1), "init": low_frequency_share(w0), "random_inits": null_shares(ck),
              "relative_change": float((w1 - w0).norm() / w0.norm())}
    rep.results = {"first_conv": vis["first_conv"], "filter_shape": list(conv0.weight.shape), "layer": vis["layer"],
                   "map_shape": vis["map_shape"], "low_frequency_share": shares, "test_acc": r.test_acc,
                   "test_image": f"{ck['dataset']} test image 0 ({data.classes[int(data.test.labels[0])]})",
                   "run": str(r.out_dir)}
    rep.figures = {"filters.png": {}, "filters_init.png": {}, "feature_maps.png": {}}
    null = torch.tensor(shares["random_inits"])
    rep.sections.append(table(["", "value"], [
        ["model (test acc)", f"{ck['model']} ({100 * r.test_acc:.2f}%)"],
        ["first conv layer", f"{vis['first_conv']} {tuple(conv0.weight.shape)}"],
        ["feature maps", f"{vis['layer']} {tuple(vis['map_shape'])} on {rep.results['test_image']}"],
        ["low-frequency power share, trained", f"{shares['trained']:.3f}"],
        ["low-frequency power share, at init (the run's seed)", f"{shares['init']:.3f}"],
        [f"the same over {len(null)} other random inits: mean ± sd (max)",
         f"{null.mean():.3f} ± {null.std():.3f} ({null.max():.3f})"],
        ["filter change from initialization (L2 norm of W - W0 over that of W0)", f"{shares['relative_change']:.2f}"]]))
    rep.verdict = verdict(shares)
    return rep


#: Random initializations (seeds 1..N) that give the share's spread when nothing is learned.
NULL_SEEDS = 39


def null_shares(ck: dict, seeds: int = NULL_SEEDS) -> list[float]:
    """Low-frequency share of the first conv layer at ``seeds`` random initializations of the
    checkpoint's model (seeds 1..N, the trainer's init): the values the share takes without training."""
    from ..registry import create_model
    from ..visualize import first_conv, low_frequency_share

    out = []
    for seed in range(1, seeds + 1):
        torch.manual_seed(seed)
        m = create_model(ck["model"], num_classes=ck["num_classes"], in_chans=ck["in_chans"], **ck["model_kwargs"])
        out.append(low_frequency_share(first_conv(m)[1].weight))
    return out


#: Smallest relative change of the filters from their initialization (||W - W0|| / ||W0||) below
#: which they are still mostly their random start, so their pictures look alike whatever the share says.
MIN_CHANGE = 0.5


def verdict(shares: dict) -> list[str]:
    """Trained share against the random initializations' (a one-sided rank test: it counts when
    fewer than ALPHA of the N + 1 values are at least the trained one, i.e. above all 39 for N = 39),
    and how far training moved the filters (:data:`MIN_CHANGE`)."""
    from ..compare.evidence import ALPHA

    null = shares["random_inits"]
    t = shares["trained"]
    p = (1 + sum(v >= t for v in null)) / (len(null) + 1)
    lo = (1 + sum(v <= t for v in null)) / (len(null) + 1)
    spread = f"trained {t:.3f}; {len(null)} random inits {min(null):.3f} to {max(null):.3f}"
    change = shares.get("relative_change")
    moved = f"the filters moved {change:.2f} of their initial norm (threshold {MIN_CHANGE})" if change is not None else ""
    if p < ALPHA and change is not None and change < MIN_CHANGE:
        return [f"Not shown at this preset: the trained first-layer filters are smoother than random ones beyond noise "
                f"(low-frequency power share {spread}; rank p = {p:.3f} < {ALPHA}), but {moved}: they are still "
                "mostly their random start, so filters.png and filters_init.png look alike; structure needs a "
                "longer run (--preset full)."]
    if p < ALPHA:
        return [f"The trained first-layer filters are smoother than random ones beyond noise (low-frequency power "
                f"share {spread}; rank p = {p:.3f} < {ALPHA}){'; ' + moved if moved else ''}: training moved them "
                "toward low frequencies. This number measures smoothness, not shape: whether it is visible structure "
                "(edges, blobs as in Zeiler & Fergus Fig. 2) is for filters.png against filters_init.png to show."]
    if lo < ALPHA:
        return [f"The trained first-layer filters are rougher than random ones beyond noise ({spread}; rank "
                f"p = {lo:.3f}): no smoothing toward structure in this run."]
    return [f"Not shown at this preset: the trained filters' low-frequency share lies within the spread of random "
            f"initializations ({spread}; rank p = {p:.3f}, counts when < {ALPHA}); a longer run (--preset full) may "
            "separate them."]
