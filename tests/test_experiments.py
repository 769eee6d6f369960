"""cnnzoo experiment: each experiment on its tiny preset (the trainer tests' synthetic data set), the
report's numbers checked against the run's own records (metrics.json, the analyzer), verdict logic
on both sides, the visualize helpers against hand derivations, CLI errors as one line."""
from __future__ import annotations

import json
import re

import pytest
import torch

from cnnzoo.analysis import profile
from cnnzoo.cli import main
from cnnzoo.experiments import EXPERIMENTS, run_experiment
from cnnzoo.errors import CnnzooError
from cnnzoo.experiments import aux_heads, degradation, filters, finetune, inception, small_filters, transfer
from cnnzoo.experiments.report import summary
from cnnzoo.visualize import feature_maps, first_conv, low_frequency_share
from test_train import data_dir  # noqa: F401  (the trainer tests' tiny learnable MNIST-format data set)


def _results(out):
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a busy 2-core machine two threads wait on each other far longer than they compute."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, data_dir):  # noqa: F811
    """Run an experiment's tiny preset once per module: name -> (out dir, report)."""
    root, done = tmp_path_factory.mktemp("exp"), {}

    def get(name):
        if name not in done:
            out = root / name
            done[name] = (out, run_experiment(name, "tiny", out, data_dir, dataset="mnist"))
        return done[name]
    return get


def test_every_experiment_has_three_presets():
    for name in EXPERIMENTS:
        from cnnzoo.experiments import experiment_module
        assert set(experiment_module(name).PRESETS) == {"tiny", "quick", "full"}


def test_degradation_curves_are_the_logged_metrics(tiny):
    out, rep = tiny("degradation")
    res = _results(out)
    drawn = res["figures"]["degradation.png"]
    for kind, pair in degradation.MODELS.items():
        for m in pair:
            hist = json.loads((out / "runs" / m / "metrics.json").read_text())["history"]
            assert drawn[f"{kind} networks: {m} train"]["y"] == pytest.approx([100 * (1 - h["train_acc"]) for h in hist])
            assert drawn[f"{kind} networks: {m} test"]["y"] == pytest.approx([100 * (1 - h["test_acc"]) for h in hist])
            assert res["results"][m]["test_error"] == pytest.approx(1 - hist[-1]["test_acc"])
    md = (out / "report.md").read_text()
    assert "cnnzoo experiment degradation --preset tiny" in md and "degradation.png" in md
    assert (out / "degradation.png").stat().st_size > 0
    assert res["verdict"] == degradation.verdict(res["results"])


def test_degradation_verdict_follows_the_numbers():
    def res(p20, p56, r20, r56, n=5000):
        vals = dict(zip(("cifar_plain20", "cifar_plain56", "cifar_resnet20", "cifar_resnet56"), (p20, p56, r20, r56)))
        return {m: {"train_error": v, "test_error": v, "train_images": n, "test_images": n} for m, v in vals.items()}
    assert degradation.verdict(res(0.1, 0.2, 0.1, 0.05))[-1].startswith("Agrees with the lecture")
    assert degradation.verdict(res(0.1, 0.2, 0.1, 0.15))[-1].startswith("Agrees in part")
    assert degradation.verdict(res(0.2, 0.1, 0.1, 0.05))[-1].startswith("Does not reproduce")
    assert "cifar_plain56 ends with higher training error" in degradation.verdict(res(0.1, 0.2, 0.1, 0.05))[0]
    # 10 % vs 11 % error on 500 images: SE of the gap = sqrt(.1*.9/500 + .11*.89/500) = 0.0194, 2 SE = 3.9
    # points > 1 point: not a finding
    v = degradation.verdict(res(0.10, 0.11, 0.1, 0.05, n=500))
    assert v[-1].startswith("Not shown at this preset") and "the same training error, within noise" in v[0]


def test_inception_macs_are_the_analyzers(tiny):
    out, rep = tiny("inception")
    res = _results(out)["results"]
    for kind, naive in (("naive", True), ("bottleneck", False)):
        with torch.device("meta"):
            p = profile(inception.module(naive), inception.SIZES["input"])
        assert res[kind]["batch1"]["macs"] == p.totals.macs
        assert res[kind]["batch1"]["params"] == p.totals.params
        assert f"{p.totals.macs:,}" in (out / "report.md").read_text()
    # hand derivation (lecture L20/L23 sizes): naive output 128 + 192 + 96 + 256 = 672 channels,
    # bottleneck 128 + 192 + 96 + 64 = 480
    assert res["naive"]["batch1"]["output_shape"] == [672, 28, 28]
    assert res["bottleneck"]["batch1"]["output_shape"] == [480, 28, 28]
    assert res["naive"]["batch1"]["seconds"] > 0
    verdict = _results(out)["verdict"]
    assert verdict == inception.verdict(res)
    # hand sum of the naive module's convs: 28*28*256*(128*1 + 192*9 + 96*25) = 854,196,224 ~ the lecture's 854M
    assert res["naive"]["batch1"]["macs"] == 28 * 28 * 256 * (128 + 192 * 9 + 96 * 25)
    assert any(v.startswith("naive: analyzer 854M") and "agrees up to rounding" in v for v in verdict)
    drawn = _results(out)["figures"]["inception.png"]
    assert drawn["analyzer: MACs per image (millions): MACs (M)"]["y"] == pytest.approx(
        [res["naive"]["batch1"]["macs"] / 1e6, res["bottleneck"]["batch1"]["macs"] / 1e6])


def test_small_filters_rf_params_macs(tiny):
    out, _ = tiny("small-filters")
    res = _results(out)["results"]
    side = small_filters.PRESETS["tiny"]["side"]
    for c in small_filters.PRESETS["tiny"]["widths"]:
        s, b = res["3 x conv3x3"][str(c)], res["1 x conv7x7"][str(c)]
        # hand derivation: RF of three 3x3 stride-1 convs = 1 + 3 * 2 = 7; params 3(9C^2 + C) vs 49C^2 + C;
        # MACs per image: weights x H x W (padding keeps the side)
        assert s["rf"] == b["rf"] == 7
        assert s["params"] == 3 * (9 * c * c + c) and b["params"] == 49 * c * c + c
        assert s["macs"] == 27 * c * c * side * side and b["macs"] == 49 * c * c * side * side
    assert "agreeing with L13" in _results(out)["verdict"][0]


def test_aux_heads_arms_differ_only_in_aux_weight(tiny):
    out, _ = tiny("aux-heads")
    cfgs = {a: json.loads((out / "runs" / a / "metrics.json").read_text()) for a in ("aux", "noaux")}
    assert cfgs["aux"]["config"]["aux_weight"] == 0.3 and cfgs["noaux"]["config"]["aux_weight"] == 0.0
    strip = lambda c: {k: v for k, v in c.items() if k not in ("aux_weight", "data_dir")}  # noqa: E731
    assert strip(cfgs["aux"]["config"]) == strip(cfgs["noaux"]["config"])
    res = _results(out)
    for arm, key in (("with aux heads", "aux"), ("without aux heads", "noaux")):
        assert res["results"][arm]["test_acc"] == cfgs[key]["final"]["test_acc"]
        assert res["figures"]["aux_heads.png"][f"{aux_heads.MODEL}: error per epoch: {arm} test"]["y"] == \
            pytest.approx([100 * (1 - h["test_acc"]) for h in cfgs[key]["history"]])


def test_aux_verdict_both_ways():
    arm = lambda acc, n=2000: {"test_acc": acc, "wall_seconds": 1, "test_images": n}  # noqa: E731
    a = {"with aux heads": arm(0.8), "without aux heads": arm(0.7)}
    assert "ends more accurate" in aux_heads.verdict(a)[0] and "does not" not in aux_heads.verdict(a)[0]
    a["without aux heads"] = arm(0.9)
    assert "does not end more accurate" in aux_heads.verdict(a)[0]
    # the rule: a small gap on a small test set is "not shown", not a finding either way
    # (0.80 vs 0.78 on 200 images: 2 SE = 2 sqrt(.8*.2/200 + .78*.22/200) = 8.1 points)
    a = {"with aux heads": arm(0.80, 200), "without aux heads": arm(0.78, 200)}
    assert aux_heads.verdict(a)[0].startswith("Not shown at this preset")


def test_filters_verdict_needs_more_than_the_random_spread():
    null = [0.06 + 0.001 * i for i in range(39)]                # 0.060 .. 0.098
    assert filters.verdict({"trained": 0.140, "init": 0.085, "random_inits": null, "relative_change": 1.3})[0].startswith(
        "The trained first-layer filters are smoother than random ones beyond noise")
    # the quick run: smoother beyond noise, but the filters barely moved from their random start
    v = filters.verdict({"trained": 0.140, "init": 0.085, "random_inits": null, "relative_change": 0.2})[0]
    assert v.startswith("Not shown at this preset") and "moved 0.20 of their initial norm" in v
    # inside the spread of random inits: the "training gave them spatial structure" must not follow
    v = filters.verdict({"trained": 0.09, "init": 0.085, "random_inits": null})[0]
    assert v.startswith("Not shown at this preset") and "structure" not in v.split(":")[0]


def test_transfer_verdict_counts_only_gains_beyond_noise():
    r = {"trained": {"test_acc": 0.62}, "random": {"test_acc": 0.60}, "test_images": 2000,
         "by_size": {"25": {"trained": 0.50, "random": 0.40}, "100": {"trained": 0.61, "random": 0.60}}}
    v = transfer.verdict({"vgg16_bn": r})
    # 2 points on 2000 images: 2 SE = 2 sqrt(.62*.38/2000 + .6*.4/2000) = 3.1 points -> not shown
    assert "are not shown to differ from random features" in v[0]
    assert "beyond noise with 25 of 25, 100 labelled images" in v[1]


def test_timing_verdicts_use_the_noise_rule():
    t = lambda m, spread: {"seconds": m, "timing": {"median_seconds": m, "p25_seconds": m - spread,  # noqa: E731
                                                     "p75_seconds": m + spread, "repeats": 5}}
    # 7x7 time 1.05 vs stack 1.0: under the 10 % margin -> neither faster nor slower
    res = {"3 x conv3x3": {"8": {"rf": 7, "params": 1, **t(1.0, 0.01)}},
           "1 x conv7x7": {"8": {"rf": 7, "params": 2, **t(1.05, 0.01)}}}
    assert "the stack is faster at no width and slower at no width" in small_filters.verdict(res)[2]
    res["1 x conv7x7"]["8"].update(t(2.0, 0.01))
    assert "the stack is faster at every width" in small_filters.verdict(res)[2]


def test_linear_probe_separable_and_random():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    f = torch.randn(200, 8, generator=g) * 0.1 + torch.nn.functional.one_hot(y, 8).float() * 5
    assert transfer.linear_probe(f[:100], y[:100], f[100:], y[100:], 50)["test_acc"] == 1.0
    noise = torch.randn(200, 8, generator=g)      # labels independent of features: near chance (0.25)
    assert transfer.linear_probe(noise[:100], y[:100], noise[100:], y[100:], 50)["test_acc"] < 0.5


def test_transfer_trains_on_source_classes_only(tiny):
    out, rep = tiny("transfer")
    name = transfer.PRESETS["tiny"]["models"][0]
    ck = torch.load(out / "runs" / name / "checkpoint.pt", weights_only=False)
    assert ck["num_classes"] == len(transfer.SOURCE) and ck["config"]["classes"] == list(transfer.SOURCE)
    r = _results(out)["results"][name]
    assert r["trained"]["dim"] == r["random"]["dim"] == 4096 // 8       # FC7 at width 1/8
    assert 0 <= r["trained"]["test_acc"] <= 1
    drawn = _results(out)["figures"]["transfer.png"]
    line = drawn[f"{name}, trained features"]
    assert line["x"] == [int(n) for n in r["by_size"]] == transfer.PRESETS["tiny"]["probe_sizes"]
    assert line["y"] == pytest.approx([100 * v["trained"] for v in r["by_size"].values()])
    assert line["y"][-1] == pytest.approx(100 * r["trained"]["test_acc"])   # the largest size is the full probe


def _finetune_res(accs: dict, n: int = 2000) -> dict:
    """results of the finetune experiment from {size: (scratch, linear probe, fine-tune) accuracies}."""
    per = {"10": 10, "100": 100, "all": 6000}
    return {"source": {"test_acc": 0.9, "test_images": n, "train_images": 30000, "classes": [0, 1, 2, 3, 4]},
            "by_size": {k: {"test_images": n, "train_images": 5 * per[k], "images_per_class": per[k],
                            **{arm: {"test_acc": a} for arm, a in zip(finetune.ARMS, v)}} for k, v in accs.items()}}


def test_finetune_verdict_follows_the_numbers():
    v = finetune.verdict(_finetune_res({"10": (0.40, 0.70, 0.72), "100": (0.70, 0.78, 0.85),
                                        "all": (0.92, 0.80, 0.925)}))
    assert v[0].startswith("10 labelled images per class: linear probe beats scratch (70.00% vs 40.00%, +30.00 points")
    # 72% vs 70% on 2000 images each: 2 SE = 2 sqrt(.72*.28/2000 + .70*.30/2000) = 2.87 points > 2: not a finding
    assert "fine-tune is not shown to differ from linear probe (72.00% vs 70.00%, +2.00 points, noise threshold 2.87)" in v[0]
    # 92.5% vs 92%: 2 SE = 2 sqrt(.925*.075/2000 + .92*.08/2000) = 1.67 points > 0.5; 92% vs 80% is beyond it
    assert "all (6,000) labelled images per class: linear probe does worse than scratch" in v[2]
    assert "fine-tune is not shown to differ from scratch (92.50% vs 92.00%" in v[2]
    assert v[3].startswith("Agrees with the lecture: with 10 labelled images per class, starting from the source run "
                           "(fine-tune) beats training from scratch beyond noise")
    assert v[4] == ("A transferred arm beats scratch beyond noise at 10, 100 of 10, 100, all (6,000) labelled images "
                    "per class; scratch beats both at no size.")
    assert v[5].startswith("Fine-tuning beats the linear probe beyond noise at 100, all (6,000); the linear probe "
                           "beats fine-tuning at no size: as the lecture advises")
    assert len(v) == 6                           # no "why it can differ" when the lecture's claim holds
    # 60% vs 55% on 200 test images: 2 SE = 2 sqrt(.6*.4/200 + .55*.45/200) = 9.87 points > 5: not shown
    v = finetune.verdict(_finetune_res({"10": (0.55, 0.60, 0.58), "all": (0.90, 0.85, 0.91)}, n=200))
    assert v[2].startswith("Not shown at this preset: with 10 labelled images per class the better transferred arm "
                           "(linear probe) and training from scratch are within noise (+5.00 points, noise threshold 9.87")
    assert v[-1].startswith("Why it can differ")
    v = finetune.verdict(_finetune_res({"10": (0.60, 0.40, 0.45), "all": (0.90, 0.70, 0.80)}))
    assert v[2].startswith("Contradicts the lecture in this run") and "scratch beats both at 10, all (6,000)." in v[3]
    # fine-tuning beats the probe already at 10 per class (45% vs 40%, 2 SE = 3.1 points): not the lecture's pattern
    assert "beats fine-tuning at no size: not the pattern the lecture advises on" in v[4]


def test_finetune_fall_on_unfreezing():
    # epochs 1-2 frozen, all layers from 3: 70% -> 40% on 2000 images is far beyond 2 SE (3.0 points)
    arm = {"test_acc": 0.75, "unfreeze_epoch": 3, "test_acc_per_epoch": [0.5, 0.7, 0.4, 0.75]}
    assert finetune.unfreeze_drop(arm, 2000) == (0.7, 0.4)
    # 70% -> 66% on 200 images: 2 SE = 2 sqrt(.7*.3/200 + .66*.34/200) = 9.3 points > 4: no finding
    assert finetune.unfreeze_drop({**arm, "test_acc_per_epoch": [0.5, 0.7, 0.66, 0.75]}, 200) is None
    assert finetune.unfreeze_drop({"test_acc": 0.7, "test_acc_per_epoch": [0.5, 0.7]}, 2000) is None   # a probe
    res = _finetune_res({"10": (0.60, 0.70, 0.75), "all": (0.90, 0.85, 0.91)})
    res["by_size"]["10"]["fine-tune"].update(arm)
    v = finetune.verdict(res)
    assert ("When every layer starts to train, the fine-tune's test accuracy falls beyond noise at 10 "
            "(70.00% -> 40.00%) labelled images per class") in v[-2] and v[-1].startswith("Why the fall on unfreezing")


def test_finetune_arms_share_images_and_differ_in_their_start(tiny):
    from cnnzoo.training import load_checkpoint

    out, rep = tiny("finetune")
    res, runs = _results(out), out / "runs"
    src = json.loads((runs / "source" / "metrics.json").read_text())
    assert src["config"]["classes"] == list(finetune.SOURCE) and src["num_classes"] == len(finetune.SOURCE)
    assert res["results"]["source"]["test_acc"] == src["final"]["test_acc"]
    drawn = res["figures"]["finetune.png"]
    limit = finetune.PRESETS["tiny"]["limit_train"]
    for size, plan in finetune.PRESETS["tiny"]["sizes"].items():
        m = {arm: json.loads((runs / f"{size}-{folder}" / "metrics.json").read_text())
             for arm, folder in finetune.ARMS.items()}
        # the same target images, budget and recipe in every arm: only the fine-tuning options differ
        # (a run as weights also sets channels to its own, the data set's 1 that scratch reads by default)
        strip = lambda c: {k: v for k, v in c.items() if k not in (*finetune.TRANSFER_OPTIONS, "channels")}  # noqa: E731
        assert strip(m["scratch"]["config"]) == strip(m["linear probe"]["config"]) == strip(m["fine-tune"]["config"])
        assert {m[arm]["data"]["in_chans"] for arm in m} == {1}
        c = m["fine-tune"]["config"]
        assert c["classes"] == list(finetune.TARGET) and c["epochs"] == plan["epochs"]
        assert c["per_class"] == (None if size == "all" else int(size))
        assert (c["weights"], c["freeze"], c["unfreeze_epoch"]) == (str(runs / "source"), "backbone", 2)
        assert m["linear probe"]["config"]["unfreeze_epoch"] is None and m["scratch"]["config"]["weights"] is None
        r = res["results"]["by_size"][size]
        # hand count: the tiny data set has more than 2 images of each target class among its first 64
        assert r["train_images"] == (limit if size == "all" else 5 * int(size))
        for arm in finetune.ARMS:
            assert r[arm]["test_acc"] == m[arm]["final"]["test_acc"]
            assert drawn[f"after the last epoch: {arm}"]["y"] == pytest.approx(
                [100 * v[arm]["test_acc"] for v in res["results"]["by_size"].values()])
    first = next(iter(finetune.PRESETS["tiny"]["sizes"]))
    before = load_checkpoint(runs / "source" / "checkpoint.pt")["state_dict"]
    changed = lambda folder: {k for k, v in load_checkpoint(runs / f"{first}-{folder}" / "checkpoint.pt")  # noqa: E731
                              ["state_dict"].items() if not torch.equal(v, before[k])}
    assert changed("probe") == {"fc.weight", "fc.bias"}      # the linear probe trains the classifier only
    assert {"conv1.weight", "bn1.running_mean"} <= changed("finetune")   # fine-tuning reaches the stem
    assert res["verdict"] == finetune.verdict(res["results"])
    assert "cnnzoo experiment finetune --preset tiny" in (out / "report.md").read_text()


def test_finetune_unfreeze_epoch():
    # head_share 0.5: 30 epochs -> epochs 1-15 frozen, all layers from 16; never before 2 nor after the last
    assert [finetune.unfreeze_epoch(e, 0.5) for e in (30, 4, 2, 1)] == [16, 3, 2, 1]
    assert finetune.unfreeze_epoch(10, 0.0) == 2 and finetune.unfreeze_epoch(10, 1.0) == 10


def test_low_frequency_share_hand_cases():
    const = torch.ones(2, 1, 5, 5)                 # all power at DC
    assert low_frequency_share(const) == pytest.approx(1.0)
    checker = (torch.arange(6)[:, None] + torch.arange(6)[None]) % 2 * 2.0 - 1   # all power at Nyquist (3, 3)
    assert low_frequency_share(checker.view(1, 1, 6, 6)) == pytest.approx(0.0, abs=1e-9)


def test_filters_experiment_and_visualize_cli(tiny, tmp_path):
    out, rep = tiny("filters")
    for f in ("filters.png", "filters_init.png", "feature_maps.png", "report.md"):
        assert (out / f).stat().st_size > 0
    res = _results(out)["results"]
    assert res["filter_shape"][2:] == [11, 11] and res["layer"] == "features.3"
    ck = out / "runs" / "alexnet" / "checkpoint.pt"
    assert main(["visualize", str(ck), str(out / "test_image0.png"), "--layer", "features.0",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "feature_maps.png").exists()
    assert main(["visualize", str(ck), str(out / "test_image0.png"), "--layer", "nope"]) == 2


def test_feature_maps_shape_and_first_conv():
    from cnnzoo import create_model
    m = create_model("alexnet", num_classes=10, in_chans=1, width=0.25)
    assert first_conv(m)[0] == "features.0"
    maps = feature_maps(m, torch.randn(1, 1, 96, 96), "features.0")
    assert maps.shape == (16, 23, 23)          # (96 + 2*2 - 11) // 4 + 1 = 23; 64 * 0.25 = 16 filters


def test_cli_errors_are_one_line(capsys):
    assert main(["experiment", "inception", "--preset", "huge"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'huge'" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["experiment", "nope"])


def test_experiments_digest_reads_the_reports(tiny, tmp_path):
    out, rep = tiny("small-filters")
    tiny("inception")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- cnnzoo-experiments:begin -->\nold\n<!-- cnnzoo-experiments:end -->\n")
    assert main(["experiments", str(out.parent), "--readme", str(readme)]) in (0, None)
    text = readme.read_text()
    assert "\nold\n" not in text and text.index("Inception") < text.index("Small filters")   # EXPERIMENTS order
    for line in rep.verdict:
        assert f"- {line}" in text
    links = {(readme.parent / m).resolve() for m in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)}
    assert {(out / fig).resolve() for fig in rep.figures} <= links   # figures resolve from the README's folder
    with pytest.raises(CnnzooError, match="no experiment reports"):
        summary(tmp_path / "nothing")
