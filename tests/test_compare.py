"""cnnzoo compare: a tiny end-to-end run (two small models, the trainer tests' synthetic data set, a short
budget), resume, bad input, the latency/memory measurements and the verdict logic."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.compare import CompareError, LatencyOptionError, Preset, measure_latency, peak_memory, timing_paths
from cnnzoo._readme import markers, update_section
from cnnzoo.errors import DataFileError, UnknownModelError
from cnnzoo.registry import torchvision_models
from test_train import data_dir  # noqa: F401  (the trainer tests' tiny learnable MNIST-format data set)

report = importlib.import_module("cnnzoo.compare.report")   # cnnzoo.compare is also the function
plots = importlib.import_module("cnnzoo.compare.plots")
evidence = importlib.import_module("cnnzoo.compare.evidence")
published = importlib.import_module("cnnzoo.compare.published")

MODELS = ["lenet5_modern", "lenet5"]
TINY = Preset("tiny", batch_sizes=(1, 2), min_seconds=0.01, train_seconds=1.0, limit_test=64, min_train_images=128,
              imagenet_batch_sizes=(1, 2), imagenet_repeats=1, imagenet_select_batch=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("cmp") / "out"
    res = cnnzoo.compare(MODELS, preset=TINY, dataset="mnist", data_dir=data_dir, out=out, progress=False)
    return out, res


def test_tiny_run_writes_every_output(run):
    out, res = run
    for f in ("report.md", "results.json", "accuracy_vs_macs.png", "latency_vs_batch.png", "training_curves.png",
              "imagenet_accuracy_vs_ops.png", "imagenet_latency_vs_batch.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    for f in ("accuracy_vs_macs.png", "latency_vs_batch.png", "training_curves.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"       # PNG signature (PNG spec, 5.2)
        from PIL import Image
        with Image.open(out / f) as im:
            im.verify()
    assert json.loads((out / "results.json").read_text())["models"].keys() == set(MODELS)


def test_numbers_are_consistent(run):
    out, res = run
    text = (out / "report.md").read_text()
    assert "command: `cnnzoo.compare(" in text and "torch " in text and "short-budget" in text
    for name, r in res["models"].items():
        # accuracy: the trainer's own metrics file
        m = json.loads((out / "models" / name / "train" / "metrics.json").read_text())
        assert r["accuracy"]["top1"] == m["final"]["test_acc"] and r["accuracy"]["top5"] == m["final"]["test_top5"]
        assert r["accuracy"]["limit_test"] == TINY.limit_test
        assert f"| {name} |" in text and f"{100 * m['final']['test_acc']:.2f}" in text
        # analysis: the analyzer on the model built at the trained scale
        t = r["analysis"]["trained"]
        with torch.device("meta"):
            model = cnnzoo.create_model(name, num_classes=10, in_chans=1)
        p = cnnzoo.profile(model, (1, t["input_size"], t["input_size"]))
        assert (t["params"], t["macs"]) == (p.totals.params, p.totals.macs)
        assert r["analysis"]["imagenet"]["input"] == [3, 224, 224]
        # latency: one row per batch size and path, throughput = batch / median time
        for key in ("eager", "fast"):
            rows = r["latency"][key]
            assert [row["batch_size"] for row in rows] == list(TINY.batch_sizes)
            for row in rows:
                assert row["images_per_s"] == pytest.approx(row["batch_size"] / row["median_seconds"])
                assert row["p25_seconds"] <= row["median_seconds"] <= row["p75_seconds"]
        assert r["latency"]["fast"][0]["path"] == r["latency"]["fast_path"]
        assert r["latency"]["fast_path"] in timing_paths() and r["latency"]["settings"]["paths"] == timing_paths()
    plots_drawn = res["files"]["plots"]
    assert plots_drawn["accuracy_vs_macs.png"]["points"] == len(MODELS)
    assert plots_drawn["latency_vs_batch.png"]["points"] == len(MODELS) * len(TINY.batch_sizes) * 2
    assert plots_drawn["training_curves.png"]["points"] == sum(
        len(r["accuracy"]["history"]) for r in res["models"].values())


def test_bubble_chart_has_one_labelled_bubble_per_model(run):
    _, res = run
    fig, n = plots.accuracy_vs_macs_figure(res["models"], "t")
    ax = fig.axes[0]
    assert n == len(MODELS) == len(ax.collections)
    assert sorted(t.get_text().split("\n")[0] for t in ax.texts) == sorted(MODELS)
    assert ax.get_xscale() == "log"


def test_summary_names_the_models_of_each_verdict(run):
    from cnnzoo.compare.cli import summary_lines

    _, res = run
    v = res["verdicts"]
    for verdict in v["L31"] + v["L32"] + v["L32_imagenet"]:
        assert sorted(verdict["models"]) == sorted(MODELS), verdict["claim"]
    for verdict in v["L31_imagenet"]:     # published top-1 of torchvision's weights, not the compared models
        assert sorted(verdict["models"]) == sorted(torchvision_models())
    lines = summary_lines(res)
    i = lines.index("ImageNet scale:")
    assert lines[1] == f"{'models':>15}: {', '.join(v['L31'][0]['models'])}"
    assert lines[i + 1] == f"{'models':>15}: {', '.join(v['L31_imagenet'][0]['models'])}"
    assert f"{'models':>15}: {', '.join(v['L32_imagenet'][0]['models'])}" in lines[i + 2:]
    assert sum(line.strip().startswith("models:") for line in lines) == 3    # said again only when it changes


def test_resume_skips_finished_work(run, data_dir):
    out, first = run
    name = MODELS[1]
    ckpt = out / "models" / name / "train" / "checkpoint.pt"
    mtime = ckpt.stat().st_mtime_ns
    (out / "models" / MODELS[0] / "latency.json").unlink()          # one stage lost: only it is redone
    res = cnnzoo.compare(MODELS, preset=TINY, dataset="mnist", data_dir=data_dir, out=out, progress=False)
    assert ckpt.stat().st_mtime_ns == mtime                           # not retrained
    assert res["models"][name]["accuracy"]["cached"] and res["models"][name]["latency"]["cached"]
    assert res["models"][MODELS[0]]["accuracy"]["cached"] and not res["models"][MODELS[0]]["latency"]["cached"]
    assert res["models"][name]["accuracy"]["top1"] == first["models"][name]["accuracy"]["top1"]


def test_other_settings_in_out_are_refused(run, data_dir):
    out, _ = run
    other = Preset("tiny2", batch_sizes=(1,), min_seconds=0.01, imagenet_latency=False, train_seconds=1.0)
    with pytest.raises(CompareError, match="other settings"):
        cnnzoo.compare(MODELS, preset=other, dataset="mnist", data_dir=data_dir, out=out, progress=False)


def test_readme_section_is_generated_and_replaced(run, tmp_path):
    out, res = run
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n\n" + markers("compare")[0] + "\nstale\n" + markers("compare")[1] + "\n\nafter\n")
    meta = {k: v for k, v in res.items() if k not in ("models", "verdicts", "files", "imagenet")}
    report.write_outputs(out, meta, res["models"], readme=readme)
    first = readme.read_text()
    body = first.split(markers("compare")[0])[1].split(markers("compare")[1])[0]
    update_section(readme, "compare", body)                            # idempotent: the same file again
    text = readme.read_text()
    assert text == first
    assert "stale" not in text and text.count(markers("compare")[0]) == 1 and "before" in text and "after" in text
    assert "accuracy_vs_macs.png" in text and f"| {MODELS[0]} |" in text
    assert "latency_vs_batch.png" in text and "imagenet_accuracy_vs_ops.png" in text and "ImageNet scale" in text


@pytest.mark.parametrize("case", ["model", "out", "data"])
def test_bad_input_fails_before_any_work(tmp_path, case):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = {"out": blocker / "sub"}.get(case, tmp_path / "out")
    kw = dict(preset=TINY, dataset="mnist", data_dir=str(tmp_path / ("empty" if case == "data" else "")),
              out=out, progress=False)
    (tmp_path / "empty").mkdir()
    models = ["lenet5_modren"] if case == "model" else MODELS
    err = {"model": UnknownModelError, "out": CompareError, "data": DataFileError}[case]
    with pytest.raises(err) as e:
        cnnzoo.compare(models, **kw)
    assert "\n" not in str(e.value)
    assert not (out / "compare.json").exists()


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cnnzoo", "compare", "--models", "vgg17", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown model 'vgg17'" in r.stderr


# -- latency and memory ----------------------------------------------------------------------
def test_measure_latency_result():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    r = measure_latency(model, (3, 1, 16, 16), path="eager", warmup=1, repeats=4, min_seconds=0.0)
    assert (r.batch_size, r.path, r.input_shape) == (3, "eager", (3, 1, 16, 16))
    assert r.repeats >= 4 and r.median_seconds > 0
    assert r.images_per_s == pytest.approx(3 / r.median_seconds)
    assert r.iqr_seconds == pytest.approx(r.p75_seconds - r.p25_seconds)
    exact = measure_latency(model, (3, 1, 16, 16), warmup=1, repeats=3, min_seconds=0.0)   # slow-model mode
    assert (exact.repeats, exact.calls_per_repeat) == (3, 1)
    fast = measure_latency(model, (3, 1, 16, 16), path="fast", min_seconds=0.0)
    assert fast.path in timing_paths()
    with pytest.raises(LatencyOptionError, match="unknown execution path"):
        measure_latency(model, (1, 1, 16, 16), path="int8")
    with pytest.raises(LatencyOptionError, match=r"\(N, C, H, W\)"):
        measure_latency(model, (1, 16, 16))


def test_compare_times_deploys_paths(monkeypatch):
    """compare chooses among deploy's paths: a path added to deploy.paths.PATHS is timed by compare
    (unless slow or calibrated), and bf16 only where the CPU has native bf16 (cnnzoo.numerics)."""
    from cnnzoo import numerics
    from cnnzoo.deploy import paths as dp

    calls = []

    def traced(model, example, calib):                 # a new path: eager, counting its calls
        run = dp._eager(model, example, calib)
        return lambda x: calls.append(len(x)) or run(x)

    monkeypatch.setitem(dp.PATHS, "traced", traced)
    assert "traced" in timing_paths() and "eager" in timing_paths()
    assert not set(timing_paths()) & set(dp.SLOW_PATHS + dp.CALIBRATED_PATHS)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    r = measure_latency(model, (2, 1, 8, 8), path="traced", warmup=1, repeats=2, min_seconds=0.0)
    assert r.path == "traced" and calls == [2, 2, 2]               # one warm-up, two timed calls
    monkeypatch.setattr(dp, "SLOW_PATHS", (*dp.SLOW_PATHS, "traced"))
    assert "traced" not in timing_paths()
    amx = numerics.Capabilities("cpu", "Xeon", "AVX512", bf16=True, flags=("amx_bf16",))
    avx2 = numerics.Capabilities("cpu", "EPYC", "AVX2", bf16=False)
    monkeypatch.setattr(numerics, "capabilities", lambda device="cpu": amx)
    assert "bf16" in timing_paths()
    monkeypatch.setattr(numerics, "capabilities", lambda device="cpu": avx2)
    assert "bf16" not in timing_paths() and "bf16" in dp.usable_paths(["bf16"])[1]


def test_peak_memory_counts_live_tensors():
    # Hand derivation: conv output (2, 8, 8, 8) float32 = 2*8*8*8*4 = 4096 bytes; the in-place
    # ReLU allocates nothing; weights 8*1*3*3 + 8 = 80 floats = 320 bytes; input 2*1*8*8*4 = 512.
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True))
    m = peak_memory(model, (2, 1, 8, 8))
    assert (m.peak_activation_bytes, m.param_bytes, m.input_bytes) == (4096, 320, 512)
    assert m.peak_bytes == 4096 + 320 + 512
    # two convs in sequence: the first output is freed only after the second exists -> both live
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    assert peak_memory(model, (2, 1, 8, 8)).peak_activation_bytes == 2 * 4096


# -- verdict logic on synthetic records --------------------------------------------------------
def _rec(family, macs, params, top1, lat_b1, lat_big, n=10000):
    lat = lambda s, b: {"batch_size": b, "median_seconds": s * b, "per_image_seconds": s, "images_per_s": 1 / s}  # noqa: E731
    return {"analysis": {"family": family, "imagenet": {"macs": macs, "params_executed": params},
                         "trained": {"macs": macs / 50, "params_executed": params / 16}},
            "accuracy": {"top1": top1, "test_images": n},
            "latency": {"eager": [lat(lat_b1, 1), lat(lat_big, 64)]},
            "imagenet_latency": {"eager": [lat(macs / 1e11, 1), lat(macs / 2e11, 16)], "fast": [], "fast_path": "eager"}}


def _four(**top1):
    acc = {"alexnet": 0.90, "vgg16": 0.92, "googlenet": 0.91, "resnet50": 0.93, **top1}
    return {"alexnet": _rec("alexnet", 0.7e9, 61e6, acc["alexnet"], 1e-3, 2e-4),
            "vgg16": _rec("vgg", 15.5e9, 138e6, acc["vgg16"], 5e-3, 1e-3),
            "googlenet": _rec("googlenet", 1.5e9, 6.6e6, acc["googlenet"], 2e-3, 3e-4),
            "resnet50": _rec("resnet", 4.1e9, 25.6e6, acc["resnet50"], 3e-3, 5e-3)}


def _l31(recs):
    return {v["claim"].split()[0]: v for v in report.l31_verdicts(recs, short_budget=False)}


def test_verdicts_follow_the_numbers():
    l31 = _l31(_four())
    assert [l31[k]["verdict"] for k in ("VGG", "ResNet", "GoogLeNet", "AlexNet")] == ["agrees"] * 4
    assert _l31(_four(vgg16=0.99))["ResNet"]["verdict"] == "differs"        # VGG now the most accurate
    l32 = report.l32_verdicts(_four())
    assert l32[0]["verdict"] == "agrees in part" and "rises for resnet50" in l32[0]["detail"]
    # ImageNet-scale time proportional to MACs: rank correlation 1; exact one-sided p = 1/4! = 0.042
    im = report.imagenet_l32_verdicts(_four())
    assert im[1]["verdict"] == "agrees" and im[1]["spearman"] == pytest.approx(1.0)
    assert im[1]["p_value"] == pytest.approx(1 / 24) and im[1]["pearson_log"] == pytest.approx(1.0)
    assert im[2]["verdict"] == "not measured"                              # no power counter in the records


def test_two_models_or_an_absent_family_is_not_tested():
    # the case: lenet5_modern and resnet18, where resnet18 is also the costlier of the two
    recs = {"lenet5_modern": _rec("lenet", 0.0004e9, 0.06e6, 0.88, 1e-4, 2e-5),
            "resnet18": _rec("resnet", 1.8e9, 11.7e6, 0.90, 2e-3, 4e-4)}
    for v in report.l31_verdicts(recs, short_budget=True):
        assert v["verdict"] == "not tested" and "only 2 model(s) from 2 families" in v["detail"], v
    recs = _four()
    del recs["googlenet"]
    recs["lenet5"] = _rec("lenet", 0.0004e9, 0.06e6, 0.89, 1e-4, 2e-5)
    v = _l31(recs)["GoogLeNet"]
    assert v["verdict"] == "not tested" and "no googlenet model" in v["detail"]


def test_accuracy_lead_within_noise_is_not_shown():
    # 0.93 vs 0.92 on 500 test images: SE of the gap = sqrt(.93*.07/500 + .92*.08/500) = 0.0166,
    # threshold 2 SE = 3.3 points > the 1-point lead
    recs = {k: {**r, "accuracy": {**r["accuracy"], "test_images": 500}} for k, r in _four().items()}
    v = _l31(recs)["ResNet"]
    assert v["verdict"] == "not shown" and "noise threshold 3.33" in v["detail"]
    # the most accurate network also the costliest: only in part
    recs = _four(resnet50=0.95)
    recs["resnet50"]["analysis"]["imagenet"]["macs"] = 20e9
    assert _l31(recs)["ResNet"]["verdict"] == "agrees in part"


def test_evidence_rules_by_hand():
    g = evidence.accuracy_gap(0.93, 10000, 0.92, 10000)
    assert g["threshold"] == pytest.approx(2 * (0.93 * 0.07 / 1e4 + 0.92 * 0.08 / 1e4) ** 0.5) and g["beyond"]
    t = lambda m, lo, hi: {"median_seconds": m, "p25_seconds": lo, "p75_seconds": hi, "repeats": 5}  # noqa: E731
    assert evidence.time_comparison(t(1.2, 1.15, 1.25), t(1.0, 0.95, 1.05))["outcome"] == "a slower"
    assert evidence.time_comparison(t(1.2, 0.9, 1.25), t(1.0, 0.95, 1.1))["outcome"] == "within noise"  # overlap
    assert evidence.time_comparison(t(1.05, 1.04, 1.06), t(1.0, 0.99, 1.01))["outcome"] == "within noise"  # < 10 %
    # 3 points perfectly ranked: p = 1/3! ; never "significant" at 0.05
    assert evidence.spearman_test([1, 2, 3], [5, 6, 7]) == (pytest.approx(1.0), pytest.approx(1 / 6))


def test_spearman_against_hand_ranks():
    # x ranks 0,1,2,3; y ranks 0,2,1,3 -> d^2 = 0+1+1+0 = 2; rho = 1 - 6*2/(4*15) = 0.8
    assert evidence.spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)


# -- the model argument: model files, runs ---------------------------------------------------
def test_models_may_be_model_files_and_not_runs(tmp_path):
    job = importlib.import_module("cnnzoo.compare.job")
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n"
        "def build(num_classes, in_chans):\n"
        "    return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(4, num_classes))\n")
    spec = f"{tmp_path}/net.py:build"
    assert job._check_models(["lenet5", spec]) == {"lenet5": "lenet5", "net-build": spec}
    rec = job.analyze(spec, 10, 1)
    # ImageNet scale: conv 3*4*9+4 = 112, fc 4*1000+1000 = 5,000; trained scale (1 channel, 10 classes):
    # conv 1*4*9+4 = 40, fc 4*10+10 = 50
    assert rec["model"] == "net-build" and rec["family"] == "user"
    assert (rec["imagenet"]["params"], rec["trained"]["params"]) == (5_112, 90)
    (tmp_path / "run").mkdir()
    with pytest.raises(CompareError, match="is a trained run; compare trains each model itself"):
        job._check_models([str(tmp_path / "run")])




# -- the ImageNet-scale view -------------------------------------------------------------------
#: torchvision's published ImageNet-1K figures as the issue quotes them from torchvision's model table.
QUOTED = {("alexnet", "IMAGENET1K_V1"): (56.522, 79.066), ("vgg16", "IMAGENET1K_V1"): (71.592, None),
          ("vgg16_bn", "IMAGENET1K_V1"): (73.36, None), ("googlenet", "IMAGENET1K_V1"): (69.778, None),
          ("resnet18", "IMAGENET1K_V1"): (69.758, None), ("resnet50", "IMAGENET1K_V1"): (76.13, None),
          ("resnet50", "IMAGENET1K_V2"): (80.858, None), ("resnet152", "IMAGENET1K_V1"): (78.312, None)}


def test_published_table_equals_torchvision_metadata(run):
    from torchvision.models import get_model_weights

    _, res = run
    tv = [r for r in res["imagenet"] if r["source"] == "torchvision"]
    assert {r["model"] for r in tv} == set(torchvision_models())     # every torchvision twin of the registry
    for r in tv:
        acc = get_model_weights(r["model"])[r["weights"]].meta["_metrics"]["ImageNet-1K"]
        if r["top1"] is None:                                  # feature-only weights: NaN in torchvision
            assert acc["acc@1"] != acc["acc@1"]
        else:
            assert (r["top1"], r["top5"]) == (acc["acc@1"], acc["acc@5"])
        # the analyzer on cnnzoo's module agrees with torchvision's own parameter and operation counts
        assert r["params"] == r["tv_num_params"] and r["macs"] / 1e9 == pytest.approx(r["tv_gmacs"], abs=6e-4)
    got = {(r["model"], r["weights"]): (r["top1"], r["top5"]) for r in tv}
    for key, (top1, top5) in QUOTED.items():
        assert got[key][0] == top1 and (top5 is None or got[key][1] == top5)
    assert {r["weights"] for r in tv if r["model"] == "resnet50"} == {"IMAGENET1K_V1", "IMAGENET1K_V2"}


def test_paper_figures_are_errors_turned_into_accuracies():
    rows = {r["model"]: r for f in published.PAPER_FIGURES for r in published.accuracy_rows(f.model)
            if r["source"] == "paper"}
    # Simonyan & Zisserman Table 3, configuration D: 27.0 % top-1, 8.8 % top-5 error
    assert (rows["vgg16"]["top1"], rows["vgg16"]["top5"]) == (73.0, 91.2)
    # He et al. Table 3, ResNet-152: 21.43 / 5.71 % error (10-crop)
    assert (rows["resnet152_v1"]["top1"], rows["resnet152_v1"]["top5"]) == (78.57, 94.29)
    assert rows["googlenet_paper"]["top1"] is None and rows["googlenet_paper"]["top5"] == 89.93
    assert not rows["lenet5"]["imagenet"] and "MNIST" in rows["lenet5"]["dataset"]
    assert all(r["citation"] and "Table" in r["citation"] for m, r in rows.items() if m != "lenet5")


def test_imagenet_view_has_every_model_and_one_point_each(run):
    out, res = run
    rows = res["imagenet"]
    # a model with neither torchvision weights nor a paper figure is shown without accuracy, not dropped
    (lm,) = [r for r in rows if r["model"] == "lenet5_modern"]
    assert lm["source"] is None and lm["top1"] is None and lm["compared"]
    text = (out / "report.md").read_text()
    assert "| lenet5_modern | - | none published | - |" in text
    drawn = res["files"]["plots"]
    assert drawn["imagenet_accuracy_vs_ops.png"]["points"] == len(rows)
    fig, n = plots.imagenet_accuracy_figure(rows, "t")
    ax = fig.axes[0]
    assert n == len(rows) == len(ax.collections)                 # one marker per row, strip included
    assert sum(1 for t in ax.texts if t.get_text().startswith("lenet5_modern")) == 1
    # the latency panel: eager (and the fastest path when it is not eager) at every batch size, per model
    lines = sum(1 if r["imagenet_latency"]["fast_path"] == "eager" else 2 for r in res["models"].values())
    assert drawn["imagenet_latency_vs_batch.png"]["points"] == lines * len(TINY.imagenet_batch_sizes)
    for f in ("imagenet_accuracy_vs_ops.png", "imagenet_latency_vs_batch.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name, r in res["models"].items():
        curve = r["imagenet_latency"]
        assert [row["batch_size"] for row in curve["eager"]] == list(TINY.imagenet_batch_sizes)
        assert curve["fast_path"] == min(curve["selection"], key=lambda p: curve["selection"][p]["median_seconds"])
        assert curve["eager"][0]["input_shape"] == [1, 3, 224, 224]
        assert set(curve["selection"]) <= set(timing_paths()) and "eager" in curve["selection"]


def test_report_names_the_host_of_cached_stages(run):
    _, res = run
    meta = {k: v for k, v in res.items() if k not in ("models", "verdicts", "files", "imagenet")}
    assert report.hosts_line(meta, res["models"]) == ""                    # all measured here, in this run
    moved = {**meta, "hardware": {**meta["hardware"], "processor": "Other CPU"}}
    line = report.hosts_line(moved, res["models"])
    assert "training: " in line and "ImageNet-scale timing: " in line and res["hardware"]["processor"] in line


# -- the fast path, checked on the trained model (as cnnzoo bench validates a path) ---------------
def test_the_timed_fast_path_is_checked_on_the_trained_model(run):
    import copy

    from torch.fx.experimental.optimization import fuse

    from cnnzoo.compare.job import fast_path_check
    from cnnzoo.data import load_dataset, to_input
    from cnnzoo.deploy.paths import _Logits
    from cnnzoo.training import load_model

    out, res = run
    name = next(iter(res["models"]))
    run_dir = out / "models" / name / "train"
    chk = fast_path_check(run_dir, "bf16")
    # by hand: the same test images through plain eager fp32 and through deploy's bf16 path: BatchNorm
    # folded (torch.fx's fuse), bf16 autocast, channels_last
    model, ck = load_model(run_dir)
    data = load_dataset(ck["dataset"], ck["config"]["data_dir"], channels=ck["in_chans"], size=ck["input_size"])
    n = ck["config"].get("limit_test") or len(data.test.x)
    x, y = to_input(data.test.x[:n], ck["input_size"], ck["mean"], ck["std"]), data.test.labels[:n]
    with torch.inference_mode():
        ref = model(x).argmax(1)
        folded = fuse(torch.fx.symbolic_trace(_Logits(copy.deepcopy(model)).eval()))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = folded.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    fast = fast.float().argmax(1)
    assert chk["images"] == n
    assert chk["agreement"] == pytest.approx(float((fast == ref).float().mean()))
    assert chk["top1_eager"] == pytest.approx(float((ref == y).float().mean()))
    assert chk["top1_fast"] == pytest.approx(float((fast == y).float().mean()))
    assert chk["validated"] == (chk["agreement"] >= 0.995 and chk["top1_eager"] - chk["top1_fast"] <= 0.002)
    for r in res["models"].values():                 # every run records its own check, fp32 needs none
        assert (r["fast_path_check"] is None) == (r["latency"]["fast_path"] == "eager")
    if any(r["fast_path_check"] for r in res["models"].values()):
        assert "agrees " in (out / "report.md").read_text()
