"""``cnnzoo.compare``: the lecture's closing comparison (L31, L32) measured on this machine.

For each model the job runs three stages, each cached as a file under ``OUT/models/NAME/``
so that an interrupted job resumes and skips finished work:

1. ``analysis.json``: :func:`cnnzoo.profile` at ImageNet scale (3x224x224, 1000 classes) and
   at the trained scale (the recipe's input side and width, the data set's channels and classes);
2. ``latency.json``: :func:`~cnnzoo.compare.latency.measure_latency` at the trained scale for
   the preset's batch sizes, ``eager`` and the fastest of deploy's inference paths here
   (:func:`~cnnzoo.compare.latency.timing_paths`); measured peak tensor memory
   (:func:`~cnnzoo.compare.latency.peak_memory`);
3. ``imagenet.json``: forward time against batch size at 3x224x224, 1000 classes, eager and the
   fastest path (:func:`~cnnzoo.compare.latency.batch_curve`), and peak memory at batch 1
   (redone when the preset's ImageNet timing settings change);
4. ``train/``: a :func:`cnnzoo.train` run (its checkpoint and metrics.json; an unfinished
   run is resumed, a finished one reused).

Then ``results.json``, ``report.md`` and the plots are written from the cached files
(:mod:`cnnzoo.compare.report`, :mod:`cnnzoo.compare.plots`), with the ImageNet-scale view: the
published accuracies of :mod:`cnnzoo.compare.published` against the analyzer's operations.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CnnzooError
from ..registry import model_info
from ..resolve import canonical_spec, model_kind, model_label, resolve_model
from .._io import write_json
from .imagenet import IMAGENET, IMAGENET_CLASSES, profile_record
from .latency import batch_curve, fastest_path, measure_latency, peak_memory, predictions_on_path, timing_paths

#: The lecture's networks (L1-L30), paper-faithful variants where they train sensibly.
DEFAULT_MODELS = ("lenet5", "alexnet_paper", "zfnet", "vgg16", "googlenet_paper", "resnet18", "resnet50",
                  "resnet152")



@dataclass(frozen=True)
class Preset:
    """How much work the job does. Fields:

    name: label written into the report.
    batch_sizes: batch sizes timed at the trained scale.
    min_seconds: minimum timing per (batch size, path), seconds.
    imagenet_latency: also time the models at 3x224x224, 1000 classes (the ImageNet-scale panel).
    imagenet_batch_sizes: batch sizes timed at ImageNet scale (fp32 and the fastest path).
    imagenet_repeats: timed calls per (batch size, path) at ImageNet scale, after one warm-up call.
    imagenet_select_batch: the batch size at which every path is timed to pick the fastest.
    train_seconds: per-model training budget in seconds (``None``: the recipe's epochs on the full
        training set). With a budget, the training subset and epochs are sized from two timed
        training steps, and accuracies are labelled short-budget.
    limit_test: evaluate on the first N test images (``None``: the whole test set).
    min_train_images: smallest training subset for a budgeted run.
    train_minutes: with ``train_seconds=None``, the wall-clock budget of each model's training on
        the whole training set (the trainer's ``budget_minutes``: epochs estimated from timed
        steps, at least one); ``None``: the recipe's epochs.
    """

    name: str
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    min_seconds: float = 0.5
    imagenet_latency: bool = True
    train_seconds: float | None = None
    limit_test: int | None = None
    min_train_images: int = 512
    train_minutes: float | None = None
    imagenet_batch_sizes: tuple[int, ...] = (1, 4, 16, 64)
    imagenet_repeats: int = 2
    imagenet_select_batch: int = 16

    @property
    def short_budget(self) -> bool:
        return self.train_seconds is not None


PRESETS: dict[str, Preset] = {
    # about 15 minutes for the 8 default models on 2 CPU cores; ImageNet-scale timing at batch 1
    # and 16 only, one timed call each (about 100 forward images of the 8 models, ~3.6 TMACs)
    "quick": Preset("quick", batch_sizes=(1, 4, 16, 64), min_seconds=0.2, train_seconds=45.0, limit_test=1000,
                    imagenet_batch_sizes=(1, 16), imagenet_repeats=1),
    # all 60,000 training images for about 5 minutes per model (the recipes' epochs of the big
    # networks take hours on 2 CPU cores), the whole test set: about 50 minutes for the 8 defaults
    "full": Preset("full", min_seconds=1.0, train_minutes=5.0),
}


class CompareError(CnnzooError):
    """A compare job that cannot start (bad --out, another preset's results in --out, ...)."""


# -- checks before any work ------------------------------------------------------------------
def _check_models(models) -> dict[str, str]:
    """{label: spec} of the ``--models`` arguments (registry names, ``FILE.py:FACTORY``).

    Raises:
        UnknownModelError, ModelLoadError: an unknown name or a model file that does not load.
        CompareError: a run folder or checkpoint (compare trains each model itself).
    """
    specs = {}
    for arg in dict.fromkeys(models or DEFAULT_MODELS):
        if model_kind(arg) == "run":
            raise CompareError(f"{arg} is a trained run; compare trains each model itself: give a registry name "
                               "or FILE.py:FACTORY")
        specs[model_label(canonical_spec(arg))] = canonical_spec(arg)
    return specs


def _check_builds(specs: dict[str, str], num_classes: int, in_chans: int) -> None:
    """Build each model file at both scales the job uses, so that a factory that cannot fails
    before any work (registry models always build)."""
    for spec in specs.values():
        if model_kind(spec) == "file":
            for nc, ch in ((num_classes, in_chans), (IMAGENET_CLASSES, IMAGENET[0])):
                resolve_model(spec, num_classes=nc, in_chans=ch)


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise CompareError(f"cannot write to output directory {out}: {err.strerror or err}") from None


#: Preset fields that only the ``imagenet.json`` stage reads: that stage records them and is
#: redone when they change, so they stay out of the manifest (older runs keep being reused).
IMAGENET_FIELDS = ("imagenet_batch_sizes", "imagenet_repeats", "imagenet_select_batch")


def _check_manifest(out: Path, manifest: dict) -> None:
    path = out / "compare.json"
    manifest = json.loads(json.dumps(manifest))           # tuples -> lists, as read back
    if path.exists():
        old = json.loads(path.read_text())
        if old != manifest:
            raise CompareError(f"{out} holds a comparison with other settings (preset {old['preset']['name']!r}, "
                               f"data set {old['dataset']!r}); choose another --out")
    else:
        write_json(path, manifest)


def _cached(path: Path, fn, settings: dict | None = None) -> dict:
    """The stage record in ``path``, computed by ``fn()`` and written there if missing (or, with
    ``settings``, if the record was made with other settings)."""
    if path.exists():
        rec = json.loads(path.read_text())
        if settings is None or rec.get("settings") == settings:
            return {**rec, "cached": True}
    rec = fn()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, rec)
    return {**rec, "cached": False}


# -- the stages ------------------------------------------------------------------------------
def trained_scale(name: str) -> dict:
    """Input side and width of the model's training recipe (:func:`cnnzoo.training.recipe_for`)."""
    from ..training import recipe_for

    r = recipe_for(name)
    return {"input_size": r["input_size"], "width": r["width"]}


def _build(spec: str, num_classes: int, in_chans: int, width: float = 1.0, meta: bool = False) -> torch.nn.Module:
    return resolve_model(spec, num_classes=num_classes, in_chans=in_chans, width=width if width != 1.0 else None,
                         meta=meta).model


def _about(spec: str) -> dict:
    """The registry's facts of a model (family, year, paper, ILSVRC result, notes); for a model
    file: family "user", no year, the file as its paper."""
    if model_kind(spec) == "file":
        return {"family": "user", "year": "-", "paper": spec, "ilsvrc": None, "notes": "a user's model file"}
    info = model_info(spec)
    return {"family": info.family, "year": info.year, "paper": info.paper, "ilsvrc": info.ilsvrc, "notes": info.notes}


def analyze(name: str, num_classes: int, in_chans: int) -> dict:
    """Profile one model (registry name or model file) at ImageNet scale and at its trained scale
    (registry models on the meta device, no arithmetic)."""
    scale = trained_scale(name)
    s = scale["input_size"]
    big = _build(name, IMAGENET_CLASSES, IMAGENET[0], meta=True)
    small = _build(name, num_classes, in_chans, scale["width"], meta=True)
    return {"model": model_label(name), **_about(name), "imagenet": profile_record(big, IMAGENET),
            "trained": {**scale, "num_classes": num_classes, **profile_record(small, (in_chans, s, s))}}


def latency(name: str, num_classes: int, in_chans: int, preset: Preset) -> dict:
    """Time one model on this CPU (see the module docstring); seconds per forward call."""
    scale = trained_scale(name)
    s = scale["input_size"]
    torch.manual_seed(0)
    model = _build(name, num_classes, in_chans, scale["width"]).eval()
    big_batch = max(preset.batch_sizes)
    fast = fastest_path(model, (big_batch, in_chans, s, s), min_seconds=preset.min_seconds)
    rec = {"threads": torch.get_num_threads(), "fast_path": fast, "input_size": s, "width": scale["width"],
           "settings": latency_settings(), "load_average": [os.getloadavg()[0]]}  # 1-min load before and after
    for key, path in (("eager", "eager"), ("fast", fast)):
        rec[key] = [measure_latency(model, (b, in_chans, s, s), path=path, min_seconds=preset.min_seconds).to_dict()
                    for b in preset.batch_sizes]
    rec["memory"] = dataclasses.asdict(peak_memory(model, (big_batch, in_chans, s, s)))
    rec["load_average"].append(os.getloadavg()[0])
    return rec


def latency_settings() -> dict:
    """What the timing stages chose among (deploy's paths that this CPU runs well): a stage recorded
    with other candidates (or before compare timed deploy's paths) is redone."""
    return {"paths": timing_paths()}


def imagenet_settings(preset: Preset) -> dict:
    """The preset's ImageNet-scale timing settings, as the ``imagenet.json`` stage records them."""
    return {"batch_sizes": list(preset.imagenet_batch_sizes), "repeats": preset.imagenet_repeats,
            "select_batch": preset.imagenet_select_batch, "input": list(IMAGENET), **latency_settings()}


def imagenet_latency(spec: str, preset: Preset) -> dict:
    """Time one model at 3x224x224, 1000 classes (random weights): forward time against batch
    size, eager and the fastest path (:func:`~cnnzoo.compare.latency.batch_curve`), and the peak
    tensor memory of one eager forward at batch 1; seconds, bytes (``wall_seconds``: the stage's time)."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = _build(spec, IMAGENET_CLASSES, IMAGENET[0]).eval()
    load = [os.getloadavg()[0]]
    mem = dataclasses.asdict(peak_memory(model, (1, *IMAGENET)))
    curve = batch_curve(model, IMAGENET, preset.imagenet_batch_sizes, select_batch=preset.imagenet_select_batch,
                        repeats=preset.imagenet_repeats)
    from ..training.environment import environment

    return {"settings": imagenet_settings(preset), "threads": torch.get_num_threads(),
            "hardware": environment()["hardware"], **curve, "memory": mem,
            "load_average": [*load, os.getloadavg()[0]], "wall_seconds": time.perf_counter() - t0}


def fast_path_check(run_dir: Path, path: str, data_dir: str | None = None) -> dict:
    """Whether the fast path a model was timed on keeps its predictions, on the trained model and
    the test images its run scored, by ``cnnzoo bench``'s rule (:func:`cnnzoo.deploy.bench.validate`:
    agreement with eager at least :data:`~cnnzoo.deploy.bench.MIN_AGREEMENT`, top-1 at most
    :data:`~cnnzoo.deploy.bench.MAX_TOP1_DROP` below eager's).

    Returns:
        dict: ``path``, ``images``, ``agreement`` and ``top1_eager`` / ``top1_fast`` (fractions),
        ``validated``.
    """
    from ..data import to_input
    from ..deploy.bench import validate
    from ..resolve import load_model, run_data

    model, ck = load_model(run_dir)
    data = run_data(ck, data_dir)
    test = data.test.head(ck["config"].get("limit_test"))
    n = len(test)
    x, y = to_input(test.read(), ck["input_size"], ck["mean"], ck["std"]), test.labels
    check = validate(predictions_on_path(model, x, path), predictions_on_path(model, x, "eager"), y)
    return {"path": path, "images": n, "agreement": check["agreement"], "top1_eager": check["top1_eager"],
            "top1_fast": check["top1"], "validated": check["validated"]}


def train_seconds_per_image(name: str, dataset: str, data_dir: str | None, steps: int = 2) -> float:
    """Measured training time per image of the model's recipe on this machine, seconds: the
    fastest of ``steps`` real :class:`~cnnzoo.training.Trainer` steps on one recipe batch."""
    import tempfile

    from ..training import TrainConfig, Trainer, recipe_for

    b = recipe_for(name)["batch_size"]
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(TrainConfig(model=name, dataset=dataset, data_dir=data_dir, epochs=1, limit_train=b,
                                 limit_test=1), tmp, progress=False)
        x, y = tr.first_batch(b)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            tr.train_step(x, y)
            times.append(time.perf_counter() - t0)
    return min(times) / len(y)


def training_options(name: str, preset: Preset, dataset: str, data_dir: str | None, train_images: int) -> dict:
    """:func:`cnnzoo.train` options for one model: the recipe, plus for a short budget a training
    subset and epoch count sized from :func:`train_seconds_per_image` so that training takes
    about ``preset.train_seconds``."""
    from ..training import recipe_for

    opts = {"dataset": dataset, "limit_test": preset.limit_test}
    if data_dir is not None:
        opts["data_dir"] = data_dir
    if preset.short_budget:
        images = int(preset.train_seconds / train_seconds_per_image(name, dataset, data_dir))
        rec = recipe_for(name)
        limit = max(preset.min_train_images, min(train_images, images) // rec["batch_size"] * rec["batch_size"])
        opts.update(limit_train=limit, epochs=max(1, min(rec["epochs"], images // train_images)))
    elif preset.train_minutes is not None:
        opts["budget_minutes"] = preset.train_minutes
    return {k: v for k, v in opts.items() if v is not None}


def _accuracy_record(summary: dict, run_dir: Path, preset: Preset) -> dict:
    f = summary["final"]
    cfg = summary["config"]
    return {"top1": f["test_acc"], "top5": f["test_top5"], "train_seconds": summary["wall_seconds"],
            "epochs": len(summary["history"]), "limit_train": cfg.get("limit_train"),
            "limit_test": cfg.get("limit_test"), "input_size": summary["input_size"], "width": summary["width"],
            "hardware": summary.get("hardware"), "numerics": (summary.get("numerics") or {}).get("path"),
            "short_budget": preset.short_budget, "run_dir": str(run_dir),
            "history": [{k: row[k] for k in ("epoch", "train_loss", "train_acc", "test_acc", "elapsed_seconds")}
                        for row in summary["history"]]}


def accuracy(name: str, run_dir: Path, preset: Preset, options, progress: bool) -> dict:
    """Train (or resume, or reuse) the model's run in ``run_dir``; its test top-1/top-5 as fractions.
    ``options()`` gives the :func:`cnnzoo.train` options of a fresh run (called only for one)."""
    from ..training import train

    metrics = run_dir / "metrics.json"
    if metrics.exists() and json.loads(metrics.read_text()).get("status") == "complete":
        return {**_accuracy_record(json.loads(metrics.read_text()), run_dir, preset), "cached": True}
    resume = (run_dir / "checkpoint.pt").exists()
    r = train(name, out=run_dir, resume=resume, progress=progress, **({} if resume else options()))
    return {**_accuracy_record(r.summary, run_dir, preset), "cached": False}


# -- the job ---------------------------------------------------------------------------------
def compare(models=None, *, preset: str | Preset = "quick", dataset: str = "fashion-mnist",
            out: str | os.PathLike | None = None, data_dir: str | None = None, progress: bool = True,
            command: str | None = None, readme: str | os.PathLike | None = None) -> dict:
    """Analyse, time and train the lecture's networks on this machine; write the comparison.

    Args:
        models: registry names or ``FILE.py:FACTORY`` (whose factory takes ``num_classes`` and
            ``in_chans``, as it is built for the data set and for ImageNet; the report names it
            FILE-FACTORY) (default :data:`DEFAULT_MODELS`: LeNet-5, AlexNet, ZFNet, VGG-16,
            GoogLeNet, ResNet-18, ResNet-50, ResNet-152).
        preset: ``"quick"`` (short-budget training, about 15 minutes on 2 cores for the default
            models), ``"full"`` (the recipes' epochs), or a :class:`Preset`.
        dataset, data_dir: the data set to train and test on (see :func:`cnnzoo.train`).
        out: output directory (default ``runs/compare-PRESET``); cached stages there are reused.
        progress: a progress bar across the whole job (and the trainer's bar per model).
        command: the command line written into the report (default: this Python call).
        readme: a markdown file whose section between ``<!-- cnnzoo-compare:begin -->`` and
            ``<!-- cnnzoo-compare:end -->`` is replaced by the generated results section.

    Returns:
        The content of ``results.json`` (per-model ``analysis``, ``latency``, ``accuracy``;
        ``verdicts`` for L31 and L32; ``files``: paths of report.md, results.json and the PNGs).

    Raises:
        UnknownModelError, CompareError (unwritable --out, or another preset's results there),
        DataFileError (missing data set), SectionError (``readme`` missing or without the markers),
        all before any work starts; CnnzooError from training.
    """
    from tqdm import tqdm

    from .._readme import check_section
    from ..data import load_dataset
    from .report import write_outputs

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise CompareError(f"unknown preset {preset!r}; choose {' or '.join(PRESETS)}")
        preset = PRESETS[preset]
    specs = _check_models(models)
    models = list(specs)
    out = Path(out) if out is not None else Path("runs") / f"compare-{preset.name}"
    _check_out(out)
    if readme is not None:
        check_section(readme, "compare")            # SectionError before any work
    # DataFileError before any work; only the class and channel counts are used here, so an image
    # folder of any sizes is read at one size (each model's training reads it at its input size)
    data = load_dataset(dataset, data_dir, size=32)
    nc, ch = data.num_classes, data.in_chans
    _check_builds(specs, nc, ch)
    settings = {k: v for k, v in dataclasses.asdict(preset).items() if k not in IMAGENET_FIELDS}
    _check_manifest(out, {"preset": settings, "dataset": dataset})

    records = {}
    stages = 4 if preset.imagenet_latency else 3
    bar = tqdm(total=stages * len(models), unit="stage", desc="compare", disable=not progress, dynamic_ncols=True)
    try:
        for name, spec in specs.items():               # name: the label of folders and tables
            d = out / "models" / name
            bar.set_postfix_str(f"{name}: analysis")
            an = _cached(d / "analysis.json", lambda: analyze(spec, nc, ch))
            bar.update(1)
            bar.set_postfix_str(f"{name}: latency")
            lat = _cached(d / "latency.json", lambda: latency(spec, nc, ch, preset), latency_settings())
            bar.update(1)
            im = None
            if preset.imagenet_latency:
                bar.set_postfix_str(f"{name}: latency at 224x224")
                im = _cached(d / "imagenet.json", lambda: imagenet_latency(spec, preset), imagenet_settings(preset))
                bar.update(1)
            bar.set_postfix_str(f"{name}: training")
            acc = accuracy(spec, d / "train", preset,
                           lambda: training_options(spec, preset, dataset, data_dir, len(data.train)), progress)
            acc["test_images"] = min(len(data.test), acc["limit_test"] or len(data.test))  # for the noise test
            check = None                                   # the timed fast path, checked on the trained model
            if lat["fast_path"] != "eager":
                check = _cached(d / "fast_path_check.json",
                                lambda: fast_path_check(d / "train", lat["fast_path"], data_dir))
            bar.update(1)
            records[name] = {"analysis": an, "latency": lat, "imagenet_latency": im, "accuracy": acc,
                             "fast_path_check": check}
    finally:
        bar.close()
    from ..training.environment import environment

    meta = {"command": command or f"cnnzoo.compare({models!r}, preset={preset.name!r}, dataset={dataset!r}, "
                                  f"out={str(out)!r})",
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "preset": dataclasses.asdict(preset), "dataset": dataset, "models": models, **environment()}
    return write_outputs(out, meta, records, readme=readme)
