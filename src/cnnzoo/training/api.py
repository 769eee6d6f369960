"""The training API: :func:`train` and :func:`evaluate`. The CLI verbs ``train`` and ``eval`` wrap
them (``predict`` is :func:`cnnzoo.deploy.predict`); a run is loaded by :func:`cnnzoo.resolve.load_run`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .._io import atomic_write_bytes, load_checkpoint, planned_epochs, write_json
from .._text import plural
from ..data.splits import parse_split
from ..errors import CnnzooError
from ..resolve import canonical_spec, load_run, model_kind, model_label, run_data, run_folder
from .distributed import dist_env, make_trainer, rank_errors
from .scores import class_scores
from .config import TrainConfig
from .evaluation import evaluate_model

#: Config fields that do not change what a run computes (ignored when reusing a finished run).
_NOT_IDENTITY = ("data_dir", "download", "device", "numerics", "workers")
#: Config fields chosen per machine when not given (cnnzoo.numerics): compared only when given.
_CHOSEN = ("amp", "channels_last", "data_mode")
#: Config fields added after runs were first saved, with the value a run saved before them had.
_ADDED_FIELDS = {"erase": 0.0, "tta": None, "ema": 0.0, "channels": None, "weights": None, "freeze": None,
                 "unfreeze_epoch": None, "backbone_lr_scale": 1.0, "per_class": None, "val_split": None,
                 "split": None, "select": None, "early_stop": None, "class_weights": None, "sampler": None,
                 "labels": None, "skip_bad_images": False, "data_mode": None, "workers": None}
#: Options that ``--resume`` applies when they differ from the saved run (everything else that
#: differs is refused): where the data lie and which device computes change no training step;
#: tta adds the final epoch's extra views; amp and channels_last change numerics and speed only;
#: lr is the schedule's new peak from the resume point on; epochs (a run planned in epochs) and
#: budget_minutes (a run planned by a budget) re-plan the rest of the schedule.
RESUME_APPLIES = ("data_dir", "download", "device", "workers", "tta", "amp", "channels_last", "lr", "epochs",
                  "budget_minutes")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        out_dir: the run's directory (checkpoint.pt, metrics.csv, metrics.json).
        final: the last epoch's metrics (``test_acc`` and ``test_top5`` as fractions, seconds).
        history: one dict per epoch, as in metrics.csv.
        wall_seconds: training + evaluation time summed over epochs (all resumes), seconds.
        summary: the whole metrics.json (config, seed, input size, width, versions, hardware).
        reused: True when a finished run with the same config was found and not retrained.
    """

    out_dir: Path
    final: dict
    history: list[dict]
    wall_seconds: float
    summary: dict
    reused: bool = False

    @property
    def test_acc(self) -> float:
        return self.final["test_acc"]


def _result(out: Path, summary: dict, reused: bool = False) -> TrainResult:
    return TrainResult(out, summary["final"], summary["history"], summary["wall_seconds"], summary, reused)


def _identity(cfg: dict) -> dict:
    keep = {k: v for k, v in cfg.items() if k not in _NOT_IDENTITY and not (k in _CHOSEN and v is None)}
    if keep.get("budget_minutes") is not None:
        keep.pop("epochs", None)        # estimated at run time
    return keep


def default_out_dir(cfg: TrainConfig) -> Path:
    """``runs/MODEL-DATASET-seedS`` under the current directory (MODEL: the registry name, or
    ``FILE-FACTORY`` for a model file; ``MODEL-DATASET-finetuned-seedS`` from pretrained ``weights``)."""
    return Path("runs") / f"{model_label(cfg.model)}-{cfg.dataset}{'-finetuned' if cfg.weights else ''}-seed{cfg.seed}"


def _flag(key: str) -> str:
    return key if key in ("model", "processes") else "--" + key.replace("_", "-")


def _differences(saved: dict, options: dict) -> list[tuple[str, object, object]]:
    """(option, saved value, given value) for every given option that differs from the saved run."""
    return [(k, saved.get(k), v) for k, v in options.items() if saved.get(k) != v]


def _words(diffs) -> str:
    return ", ".join(f"{_flag(k)} {v} (the run has {old})" for k, old, v in diffs)


def resume_plan(ckpt: dict, options: dict, world_size: int = 1) -> dict:
    """The options a ``--resume`` applies, after checking the rest against the saved run.

    Args:
        ckpt: the unfinished run's checkpoint; options: the options given now (``model``
            included); world_size: processes of this job.

    Returns:
        {option: new value} for the options of :data:`RESUME_APPLIES` that differ.

    Raises:
        CnnzooError: before any work, in one line listing every refused option with both values:
            one outside :data:`RESUME_APPLIES`, ``epochs`` on a budget run or ``budget_minutes`` on
            an epochs run, ``epochs`` not above the epochs already completed, or another number of
            processes than the run's (its global batch and steps per epoch would change).
    """
    saved = {**_ADDED_FIELDS, **ckpt["config"]}
    diffs = _differences(saved, options)
    budget_run = saved.get("budget_minutes") is not None
    refused = [d for d in diffs if d[0] not in RESUME_APPLIES or (d[0] == "epochs" and budget_run)
               or (d[0] == "budget_minutes" and not budget_run)
               or (d[0] == "epochs" and d[2] is not None and d[2] <= ckpt["epoch"])]
    saved_world = ckpt.get("world_size", 1)
    if saved_world != world_size:
        refused.append(("processes", saved_world, world_size))
    if refused:
        why = []
        if any(k == "epochs" and not budget_run for k, _, _ in refused):
            why.append(f"--epochs must exceed the {ckpt['epoch']} epoch(s) already completed")
        if any(k in ("epochs", "budget_minutes") for k, _, _ in refused) and not why:
            why.append("a run keeps its kind of plan (epochs or --budget-minutes)")
        if saved_world != world_size:
            why.append(f"resume it with torchrun --nproc_per_node={saved_world}")
        raise CnnzooError(f"cannot resume with {_words(refused)}: --resume may change only "
                          f"{', '.join(_flag(k) for k in RESUME_APPLIES)}" + (f" ({'; '.join(why)})" if why else "")
                          + "; drop the others or choose another --out")
    return {k: v for k, _, v in diffs}


def train(model: str | None, *, out: str | os.PathLike | None = None, resume: bool = False,
          progress: bool = True, **options) -> TrainResult:
    """Train a registered model on an in-memory data set (Fashion-MNIST by default).

    Args:
        model: registry name (``"lenet5_modern"``) or ``FILE.py:FACTORY`` (built with the data
            set's ``num_classes`` and ``in_chans``; see :func:`cnnzoo.resolve.resolve_model`); with
            ``resume``, also the run folder or checkpoint to continue; ``None`` with ``weights`` a
            run: that run's model.
        out: run directory (default ``runs/MODEL-DATASET-seedS``).
        resume: continue the unfinished run in ``out`` from its last checkpoint. Options that
            differ from the saved run are applied if they are in :data:`RESUME_APPLIES` (``lr``:
            the schedule continues with the new peak; ``epochs``: the rest of the schedule is
            stretched or compressed to end at the new last epoch, as a budget re-plan, so the
            learning rate does not jump), each said in one line and recorded in metrics.json
            ``resume_changes``; any other difference is refused before any work
            (:func:`resume_plan`).
        progress: show a progress bar (loss, accuracy, images/s, ETA).
        **options: any :class:`~cnnzoo.training.config.TrainConfig` field (``epochs``,
            ``budget_minutes``, ``input_size``, ``width``, ``batch_size``, ``lr``, ``seed``, ...);
            unset fields come from the model's recipe. Fine-tuning (:mod:`cnnzoo.training.finetune`):
            ``weights`` (a weight file or a run folder / checkpoint.pt; a run gives its model, width,
            builder options, channels and recipe unless given), ``freeze`` (``"backbone"`` or N
            stages), ``unfreeze_epoch`` (1-based), ``backbone_lr_scale``. Validation and selection:
            ``val_split`` (a fraction), ``select`` ("best" | "last"), ``early_stop`` (epochs),
            ``split`` ("0.8,0.1,0.1" or three numbers); imbalance: ``class_weights="balanced"``,
            ``sampler="balanced"``; folder data: ``labels`` (a CSV path), ``skip_bad_images``
            (docs/training.md, "Fine-tuning"; docs/data.md), ``data_mode`` ("memory" | "stream" |
            "auto"; None: auto) and ``workers`` (a stream's decoding processes; docs/data.md).

    Under ``torchrun`` with several processes every rank calls this and trains its shard with
    DDP (see :mod:`cnnzoo.training.distributed`); ``batch_size`` is then per process.

    Returns:
        A :class:`TrainResult`. A finished run in ``out`` with the same config is returned
        as is (``reused=True``) without training again.

    Raises:
        CnnzooError: unknown model or option, missing/corrupt data, an unfinished run in
            ``out`` without ``resume``, a run given as ``model`` without ``resume``, options a
            resume cannot change (listed), a finished run there with another config (the
            differing options listed; or asked for ``tta`` views it was not scored with:
            ``evaluate`` scores them), a diverged loss, fine-tuning options that cannot apply
            (:class:`~cnnzoo.training.finetune.FineTuneError`: ``freeze`` N beyond the model's stages,
            ``unfreeze_epoch`` without ``freeze`` or beyond ``epochs``), ``weights`` that are missing,
            unreadable or do not fit (beyond the classifier and the first conv's channels).
        KeyboardInterrupt: after Ctrl-C, once the checkpoint is saved.
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise CnnzooError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields - {'model'}))}")
    for key in ("data_dir", "labels"):      # recorded absolute, so that eval finds them from anywhere
        if options.get(key):
            options[key] = os.path.abspath(options[key])
    if options.get("split") is not None:    # one spelling, "0.8,0.1,0.1", for the record and comparisons
        options["split"] = ",".join(f"{v:g}" for v in parse_split(options["split"]))
    if model is None or options.get("weights"):
        from .finetune import with_source

        model, options = with_source(model, options)
    given_model = model_kind(model) != "run"       # a run to resume names its own model
    ckpt = None                                     # a run's checkpoint, loaded once
    if not given_model:
        run_dir = run_folder(model)
        ckpt = load_checkpoint(run_dir)
        if not resume:
            raise CnnzooError(f"{model} is a trained run: to continue it add --resume; to train its model anew "
                              f"give the model ({model_label(ckpt['model'])}) and another --out")
        if out is not None and Path(out).resolve() != run_dir.resolve():
            raise CnnzooError(f"--out {out} is not the run {model} to resume; drop --out")
        out, model = run_dir, ckpt["model"]
    model = canonical_spec(model)
    cfg = TrainConfig(model=model, **options)
    cfg.check()                             # before any file is written
    given = {"model": model, **options} if given_model else dict(options)
    out = Path(out) if out is not None else default_out_dir(cfg)
    ckpt_path, metrics_path = out / "checkpoint.pt", out / "metrics.json"
    if metrics_path.exists() and ckpt_path.exists():
        summary = json.loads(metrics_path.read_text())
        if summary.get("status") == "complete":
            if options.get("tta") not in (None, summary["config"].get("tta")):
                raise CnnzooError(f"{out} holds a finished run, scored without {options['tta']} views; score its "
                                  f"checkpoint with: cnnzoo eval {out} --tta {options['tta']}")
            if resume:                       # the options given now against the run's
                diffs = _differences(_identity({**_ADDED_FIELDS, **summary["config"]}), _identity(given))
            else:                            # the whole config; fields newer than the run take today's value
                now = dataclasses.asdict(cfg.resolved())
                diffs = _differences(_identity({**now, **_ADDED_FIELDS, **summary["config"]}), _identity(now))
            if not diffs:
                return _result(out, summary, reused=True)
            raise CnnzooError(f"{out} holds a finished run with other options: {_words(diffs)}; choose another --out")
    if ckpt_path.exists() and not resume:
        raise CnnzooError(f"{out} holds an unfinished run; add --resume to continue it or choose another --out")
    with rank_errors():                     # under torchrun: one line naming a failed rank
        if resume and ckpt_path.exists():
            ckpt = ckpt or load_checkpoint(ckpt_path)
            changes = resume_plan(ckpt, given, dist_env().world_size)
            saved = {**_ADDED_FIELDS, **ckpt["config"], **changes}
            trainer = make_trainer(TrainConfig(**saved), out, progress=progress)
            trainer.restore(ckpt, changes)
        else:
            if resume and progress and dist_env().rank == 0:
                print(f"--resume: no checkpoint in {out} yet, so the run starts from its first step", flush=True)
            trainer = make_trainer(cfg, out, progress=progress)
        return _result(out, trainer.fit())


def evaluate(checkpoint: str | os.PathLike, dataset: str | None = None, data_dir: str | None = None,
             out: str | os.PathLike | None = None, batch_size: int | None = None, tta: str | None = None,
             workers: int | None = None) -> dict:
    """Evaluate a checkpoint on a test set.

    Args:
        checkpoint: a ``checkpoint.pt`` or the run directory holding it.
        dataset, data_dir: the test set (default: the one the model was trained on, from the
            data folder the run recorded); read with the model's channels, and an image folder
            resized to its input size, as in training.
        out: directory for ``confusion.png`` and ``eval.json`` (default: the checkpoint's directory).
        tta: also score multi-view testing, ``"flip"`` or ``"10crop"`` (the crops at the offsets of
            the checkpoint's training crop; see :func:`~cnnzoo.training.evaluate_model`).
        batch_size: images per batch (``None``: :func:`~cnnzoo.training.evaluation.eval_batch_size`).
        workers: decoding processes when the test set is streamed (a run trained on a stream).

    Returns:
        dict: ``model`` (as recorded), ``description`` (the model's configuration in one line),
        ``top1``, ``top5``, ``balanced_accuracy`` (mean per-class recall), ``macro_f1`` (fractions),
        ``loss`` (nats), ``per_class`` ({class name: {``precision``, ``recall``, ``f1``, ``support``}}:
        :func:`~cnnzoo.training.scores.class_scores`), ``confusion`` (K x K list, row = true class),
        all of the single view; ``n``,
        ``confusion_png`` (path), ``seconds`` (wall time of the evaluation, all views),
        ``epochs_done`` and ``epochs`` (completed and planned epochs: fewer done = an unfinished run),
        ``skipped_images`` ([{``file``, ``error``}, ...] of the test files a stream could not decode: left
        out, not scored); with
        ``tta`` also ``tta``: ``views`` (the kind), ``top1``, ``top5`` and ``loss`` of the mean
        over the views.

    Raises:
        CheckpointError, DataFileError: missing/corrupt checkpoint or data; CnnzooError when the
            data set's class count differs from the model's, or for an unusable ``tta``.
    """
    run = load_run(checkpoint)
    model, ck = run.model, run.checkpoint
    data = run_data(ck, data_dir, dataset, workers)
    if data.num_classes != ck["num_classes"]:
        raise CnnzooError(f"{data.name} has {plural(data.num_classes, 'class', 'classes')}; the model expects "
                          f"{ck['num_classes']}")
    t0 = time.perf_counter()
    m = evaluate_model(model, data.test, None, ck["input_size"], ck["mean"], ck["std"],
                       ck["num_classes"], batch_size, tta=tta, pad=ck["config"].get("pad") or 0,
                       flip=ck["config"].get("flip", True))
    seconds = time.perf_counter() - t0
    conf = m["confusion"]
    scores = class_scores(conf, ck["classes"])
    cp = Path(checkpoint)
    out = Path(out) if out is not None else run_folder(cp)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "confusion.png"
    _plot_confusion(conf, ck["classes"], png, f"{model_label(ck['model'])} on {data.name}: top-1 {m['top1']:.2%}")
    res = {"model": ck["model"], "description": run.description, "dataset": data.name, "n": m["n"], "top1": m["top1"],
           "top5": m["top5"], "balanced_accuracy": scores["balanced_accuracy"], "macro_f1": scores["macro_f1"],
           "loss": m["loss"], "per_class": scores["per_class"],
           "confusion": conf.tolist(), "confusion_png": str(png), "seconds": seconds,
           "epochs_done": ck["epoch"], "epochs": planned_epochs(ck),
           "skipped_images": [{"file": f, "error": why} for f, why in data.test.skipped]}
    if tta:
        res["tta"] = {"views": tta, **{k: m["tta"][k] for k in ("top1", "top5", "loss")}}
    write_json(out / "eval.json", res)
    return res


def _plot_confusion(conf: torch.Tensor, classes: list[str], path: Path, title: str) -> None:
    """The confusion matrix as a PNG; the title wraps to the figure's width and the saved canvas
    takes in every label (bbox ``tight``), so neither is cut off with few classes or a long name."""
    import io
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    width = max(4.0, 1.0 + 0.6 * k)                         # inches; the title wraps at ~11 characters per inch
    fig, ax = plt.subplots(figsize=(width, 1.0 + 0.55 * k))
    ax.imshow(conf.numpy(), cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(textwrap.fill(title, int(11 * width)))
    hi = conf.max().item() / 2
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(conf[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if conf[i, j] > hi else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
