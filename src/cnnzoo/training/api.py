"""The training API: :func:`train`, :func:`evaluate`, :func:`predict`, :func:`load_model`,
:func:`results_table`. The CLI verbs ``train``, ``eval``, ``predict`` and ``results`` wrap them.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import load_dataset, read_image, to_input
from ..errors import CnnzooError
from ..registry import create_model
from .checkpoint import CheckpointError, load_checkpoint
from .distributed import make_trainer, rank_errors
from .trainer import TrainConfig, evaluate_model

#: Config fields that do not change what a run computes (ignored when reusing a finished run).
_NOT_IDENTITY = ("data_dir", "download")
#: Config fields added after runs were first saved, with the value a run saved before them had.
_ADDED_FIELDS = {"erase": 0.0, "tta": None, "ema": 0.0}


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
    keep = {k: v for k, v in cfg.items() if k not in _NOT_IDENTITY}
    if keep.get("budget_minutes") is not None:
        keep.pop("epochs", None)        # estimated at run time
    return keep


def default_out_dir(cfg: TrainConfig) -> Path:
    """``runs/MODEL-DATASET-seedS`` under the current directory."""
    return Path("runs") / f"{cfg.model}-{cfg.dataset}-seed{cfg.seed}"


def train(model: str, *, out: str | os.PathLike | None = None, resume: bool = False,
          progress: bool = True, **options) -> TrainResult:
    """Train a registered model on an in-memory data set (Fashion-MNIST by default).

    Args:
        model: registry name, e.g. ``"lenet5_modern"``.
        out: run directory (default ``runs/MODEL-DATASET-seedS``).
        resume: continue the unfinished run in ``out`` from its last checkpoint (its saved
            config wins over ``options``, except ``data_dir`` and ``tta``).
        progress: show a progress bar (loss, accuracy, images/s, ETA).
        **options: any :class:`~cnnzoo.training.trainer.TrainConfig` field (``epochs``,
            ``budget_minutes``, ``input_size``, ``width``, ``batch_size``, ``lr``, ``seed``, ...);
            unset fields come from the model's recipe.

    Under ``torchrun`` with several processes every rank calls this and trains its shard with
    DDP (see :mod:`cnnzoo.training.distributed`); ``batch_size`` is then per process.

    Returns:
        A :class:`TrainResult`. A finished run in ``out`` with the same config is returned
        as is (``reused=True``) without training again.

    Raises:
        CnnzooError: unknown model or option, missing/corrupt data, an unfinished run in
            ``out`` without ``resume``, a finished run there with another config (or asked for
            ``tta`` views it was not scored with: ``evaluate`` scores them), a diverged loss.
        KeyboardInterrupt: after Ctrl-C, once the checkpoint is saved.
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise CnnzooError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields - {'model'}))}")
    cfg = TrainConfig(model=model, **options)
    out = Path(out) if out is not None else default_out_dir(cfg)
    ckpt_path, metrics_path = out / "checkpoint.pt", out / "metrics.json"
    if metrics_path.exists() and ckpt_path.exists():
        summary = json.loads(metrics_path.read_text())
        if summary.get("status") == "complete":
            if options.get("tta") not in (None, summary["config"].get("tta")):
                raise CnnzooError(f"{out} holds a finished run, scored without {options['tta']} views; score its "
                                  f"checkpoint with: cnnzoo eval {out} --tta {options['tta']}")
            now = dataclasses.asdict(cfg.resolved())   # other fields newer than the run take today's value
            if _identity({**now, **_ADDED_FIELDS, **summary["config"]}) == _identity(now) or resume:
                return _result(out, summary, reused=True)
            raise CnnzooError(f"{out} holds a finished run with another config; choose another --out")
    if ckpt_path.exists() and not resume:
        raise CnnzooError(f"{out} holds an unfinished run; add --resume to continue it or choose another --out")
    with rank_errors():                     # under torchrun: one line naming a failed rank
        if resume and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            # where the data lie and the final evaluation's views change no training step
            saved = {**_ADDED_FIELDS, **ckpt["config"], **{k: options[k] for k in ("data_dir", "tta") if k in options}}
            trainer = make_trainer(TrainConfig(**saved), out, progress=progress)
            trainer.restore(ckpt)
        else:
            trainer = make_trainer(cfg, out, progress=progress)
        return _result(out, trainer.fit())


def load_model(checkpoint: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a checkpoint (eval mode, fp32, CPU).

    Returns:
        (model, checkpoint dict without tensors of the optimizer).

    Raises:
        CheckpointError: missing or corrupt checkpoint, or weights that do not fit the model.
    """
    ckpt = load_checkpoint(Path(checkpoint))
    model = create_model(ckpt["model"], num_classes=ckpt["num_classes"], in_chans=ckpt["in_chans"],
                         **ckpt["model_kwargs"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{checkpoint}: weights do not fit {ckpt['model']}: {str(err).splitlines()[0]}") from None
    ckpt.pop("optimizer", None)
    return model.eval(), ckpt


def evaluate(checkpoint: str | os.PathLike, dataset: str | None = None, data_dir: str | None = None,
             out: str | os.PathLike | None = None, batch_size: int = 1000, tta: str | None = None) -> dict:
    """Evaluate a checkpoint on a test set.

    Args:
        checkpoint: a ``checkpoint.pt`` or the run directory holding it.
        dataset, data_dir: the test set (default: the one the model was trained on).
        out: directory for ``confusion.png`` and ``eval.json`` (default: the checkpoint's directory).
        tta: also score multi-view testing, ``"flip"`` or ``"10crop"`` (the crops at the offsets of
            the checkpoint's training crop; see :func:`~cnnzoo.training.evaluate_model`).

    Returns:
        dict: ``top1``, ``top5`` (fractions), ``loss`` (nats), ``per_class`` ({class name:
        accuracy}), ``confusion`` (K x K list, row = true class), all of the single view; ``n``,
        ``confusion_png`` (path), ``seconds`` (wall time of the evaluation, all views); with
        ``tta`` also ``tta``: ``views`` (the kind), ``top1``, ``top5`` and ``loss`` of the mean
        over the views.

    Raises:
        CheckpointError, DataFileError: missing/corrupt checkpoint or data; CnnzooError when the
            data set's classes or channels differ from the model's, or for an unusable ``tta``.
    """
    model, ck = load_model(checkpoint)
    data = load_dataset(dataset or ck["dataset"], data_dir)
    if data.num_classes != ck["num_classes"] or data.in_chans != ck["in_chans"]:
        raise CnnzooError(f"{data.name} has {data.num_classes} classes x {data.in_chans} channel(s); "
                          f"the model expects {ck['num_classes']} x {ck['in_chans']}")
    t0 = time.perf_counter()
    m = evaluate_model(model, data.test_x, data.test_y, ck["input_size"], ck["mean"], ck["std"],
                       ck["num_classes"], batch_size, tta=tta, pad=ck["config"].get("pad") or 0,
                       flip=ck["config"].get("flip", True))
    seconds = time.perf_counter() - t0
    conf = m["confusion"]
    per_class = (conf.diag().double() / conf.sum(1).clamp_min(1)).tolist()
    cp = Path(checkpoint)
    out = Path(out) if out is not None else (cp if cp.is_dir() else cp.parent)
    out.mkdir(parents=True, exist_ok=True)
    png = out / "confusion.png"
    _plot_confusion(conf, ck["classes"], png, f"{ck['model']} on {data.name}: top-1 {m['top1']:.2%}")
    res = {"model": ck["model"], "dataset": data.name, "n": m["n"], "top1": m["top1"], "top5": m["top5"],
           "loss": m["loss"], "per_class": dict(zip(ck["classes"], per_class)),
           "confusion": conf.tolist(), "confusion_png": str(png), "seconds": seconds}
    if tta:
        res["tta"] = {"views": tta, **{k: m["tta"][k] for k in ("top1", "top5", "loss")}}
    (out / "eval.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def _plot_confusion(conf: torch.Tensor, classes: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 1.0 + 0.55 * k))
    ax.imshow(conf.numpy(), cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    hi = conf.max().item() / 2
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(conf[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if conf[i, j] > hi else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def predict(checkpoint: str | os.PathLike, images: list[str | os.PathLike], topk: int = 5) -> list[dict]:
    """Classify image files (PNG/JPEG/..., any size and mode) with a checkpoint.

    Each image is converted to the model's channel count (grayscale or RGB), resized to its
    input size and normalised as in training. Note that Fashion-MNIST images are light
    objects on a black background; a photo on a white background looks different to the model.

    The model runs on the run's fastest inference path validated by ``cnnzoo bench`` (agreement
    with eager fp32 >= 99.5%, see :func:`cnnzoo.deploy.fastest_validated_path`), else eager fp32.

    Returns:
        one dict per image: ``image`` (path), ``top`` ([(class name, probability), ...],
        ``topk`` entries, most likely first), ``path`` (the inference path) and ``path_why``.

    Raises:
        CheckpointError, DataFileError: missing/corrupt checkpoint or image.
    """
    from ..deploy import validated_runner

    model, ck = load_model(checkpoint)
    run, run_path, why = validated_runner(checkpoint, model, ck)     # the fastest validated path (cnnzoo bench)
    k = min(topk, ck["num_classes"])
    results = []
    for path in images:
        x = read_image(Path(path), ck["in_chans"])[None]                 # (1, C, H, W) uint8
        probs = run(to_input(x, ck["input_size"], ck["mean"], ck["std"])).softmax(1)[0]
        p, idx = probs.topk(k)
        results.append({"image": str(path), "top": [(ck["classes"][i], float(q)) for q, i in zip(p, idx.tolist())],
                        "path": run_path, "path_why": why})
    return results
