"""``filters`` (Zeiler & Fergus 2013, Sec. 4, Fig. 2; the lecture's AlexNet/ZFNet slides): the
first-layer filters of a trained model as an image grid, next to the same filters at their random
initialization, and the feature maps of a chosen layer for one test image
(:func:`cnnzoo.visualize.visualize`). The verdict compares how smooth the filters are (share of
low-frequency power) after training and at initialization.
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
    from ..training import load_model
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
    Image.fromarray(data.test_x[0].permute(1, 2, 0).squeeze(-1).numpy()).save(image)
    vis = visualize(r.out_dir / "checkpoint.pt", image, preset["layer"], out)
    name, conv0 = first_conv(init)
    plot_filters(conv0.weight, out / "filters_init.png", f"{ck['model']}: {name} filters at initialization")
    shares = {"trained": low_frequency_share(first_conv(trained)[1].weight),
              "init": low_frequency_share(conv0.weight)}
    rep.results = {"first_conv": vis["first_conv"], "filter_shape": list(conv0.weight.shape), "layer": vis["layer"],
                   "map_shape": vis["map_shape"], "low_frequency_share": shares, "test_acc": r.test_acc,
                   "test_image": f"{ck['dataset']} test image 0 ({data.classes[int(data.test_y[0])]})",
                   "run": str(r.out_dir)}
    rep.figures = {"filters.png": {}, "filters_init.png": {}, "feature_maps.png": {}}
    rep.sections.append(table(["", "value"], [
        ["model (test acc)", f"{ck['model']} ({100 * r.test_acc:.2f}%)"],
        ["first conv layer", f"{vis['first_conv']} {tuple(conv0.weight.shape)}"],
        ["feature maps", f"{vis['layer']} {tuple(vis['map_shape'])} on {rep.results['test_image']}"],
        ["low-frequency power share, trained", f"{shares['trained']:.3f}"],
        ["low-frequency power share, at init", f"{shares['init']:.3f}"]]))
    smoother = shares["trained"] > shares["init"]
    rep.verdict = [f"The trained first-layer filters are {'smoother' if smoother else 'not smoother'} than at "
                   f"initialization (low-frequency power share {shares['trained']:.3f} vs {shares['init']:.3f})"
                   f"{': training gave them spatial structure' if smoother else ': no structure beyond the random start in this run'}."]
    return rep
