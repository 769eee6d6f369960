"""CLI verbs ``train``, ``eval`` and ``results``: thin wrappers around :mod:`cnnzoo.training.api`
(``predict`` is deploy's: :mod:`cnnzoo.deploy.cli`)."""
from __future__ import annotations

import argparse

from .._text import nonnegative_int, plural, positive_int
from ..data import DATASETS, TTA_VIEWS
from ..data.datasets import DATA_MODES
from .results import run_classes, shows_top5
from .selection import SELECT as SELECT_CHOICES


def freeze_arg(text: str) -> str | int:
    """``--freeze``: ``backbone`` or a number of stages N >= 0."""
    if text == "backbone":
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r}: give 'backbone' or a number of stages N (0, 1, 2, ...)")


def _train(a: argparse.Namespace) -> None:
    from ..resolve import model_label
    from .api import train
    from .distributed import dist_env

    opts = {k: getattr(a, k) for k in ("dataset", "data_dir", "channels", "download", "epochs", "budget_minutes",
                                       "input_size", "width", "batch_size", "lr", "optimizer", "weight_decay",
                                       "schedule", "label_smoothing", "pad", "erase", "ema", "amp", "seed", "limit_train",
                                       "per_class", "sync_bn", "device", "tta", "weights", "freeze", "unfreeze_epoch",
                                       "backbone_lr_scale", *FINETUNE_DATA_OPTIONS)}
    opts = {k: v for k, v in opts.items() if v is not None and v is not False}
    opts.update({k: getattr(a, k) for k in ("flip", "channels_last") if getattr(a, k) is not None})
    r = train(a.model, out=a.out, resume=a.resume, progress=not a.quiet, **opts)
    if dist_env().rank != 0:                  # under torchrun only rank 0 reports
        return
    s, f = r.summary, r.final
    k = run_classes(s)
    if s.get("model_description"):             # runs saved before it was recorded lack it
        print(f"model: {s['model_description']}")
    if a.quiet and s.get("numerics"):          # else said at the start
        print(f"numerics: {s['numerics']['reason']}")
    print(f"{model_label(s['model'])} on {s['dataset']} (input {s['input_size']}x{s['input_size']}, width {s['width']:g}, "
          f"seed {s['seed']}): test {_accuracy(f['test_acc'], f['test_top5'], k)} "
          f"after {plural(len(r.history), 'epoch')}, {r.wall_seconds:.0f} s{' (reused finished run)' if r.reused else ''}; "
          f"run in {r.out_dir}")
    if "test_acc_tta" in f:
        print(f"{_tta_words(s['config']['tta'])}: {_accuracy(f['test_acc_tta'], f['test_top5_tta'], k)}")
    sel = s.get("selection") or {}
    if sel.get("metric"):                      # a run with validation data: which epoch, and why
        print(f"kept epoch {sel['kept_epoch']}: {sel['why']}")


def _eval(a: argparse.Namespace) -> None:
    from ..resolve import model_label, run_folder
    from .api import evaluate

    r = evaluate(a.checkpoint, a.dataset, a.data_dir, a.out, a.batch_size, tta=a.tta, workers=a.workers)
    k = len(r["per_class"])
    scores = r["per_class"]
    if r["epochs_done"] < r["epochs"]:
        print(f"unfinished run: the checkpoint holds epoch {r['epochs_done']} of {r['epochs']}, so the figures are "
              f"mid-schedule; continue it with cnnzoo train {run_folder(a.checkpoint)} --resume")
    for s in r["skipped_images"]:
        print(f"skipped an unreadable image file: {s['file']} ({s['error']})")
    print(f"model: {r['description']}")
    print(f"{model_label(r['model'])} on {r['dataset']} ({r['n']} test images, {r['seconds']:.1f} s): "
          f"{_accuracy(r['top1'], r['top5'], k)}")
    print(f"balanced accuracy {r['balanced_accuracy']:.2%} (mean per-class recall), macro-F1 {r['macro_f1']:.2%}")
    w = max(14, *(len(n) for n in scores))
    print(f"  {'class':<{w}} {'precision':>9} {'recall':>7} {'F1':>7} {'images':>6}")
    for name, c in scores.items():
        print(f"  {name:<{w}} {c['precision']:>9.2%} {c['recall']:>7.2%} {c['f1']:>7.2%} {c['support']:>6}")
    print(f"confusion matrix: {r['confusion_png']}")
    if a.tta:                                  # the lines above are the single view's
        print(f"{_tta_words(a.tta)}: {_accuracy(r['tta']['top1'], r['tta']['top5'], k)}")



#: The train options of validation, model selection, imbalance and folder data (docs/training.md, "Fine-tuning").
FINETUNE_DATA_OPTIONS = ("val_split", "split", "select", "early_stop", "class_weights", "sampler", "labels",
                         "skip_bad_images", "data_mode", "workers")


def add_finetune_data_options(p: argparse.ArgumentParser) -> None:
    """``cnnzoo train``'s flags for validation and model selection, imbalanced classes, labels from
    a CSV and unreadable images (each a :class:`~cnnzoo.training.TrainConfig` field)."""
    g = p.add_argument_group("validation, model selection and imbalance (docs/training.md, Fine-tuning)")
    g.add_argument("--val-split", type=float, metavar="F",
                   help="hold out this stratified, seeded fraction of the training images for validation (e.g. 0.1; "
                        "the held-out files or indices go to RUN/split.json); a folder with val/ beside train/ and "
                        "test/ uses val/")
    g.add_argument("--split", metavar="TRAIN,VAL,TEST",
                   help="fractions that split a --dataset folder of class folders without train/ and test/ (or with "
                        "--labels): stratified, seeded, printed and recorded (default 0.8,0.1,0.1)")
    g.add_argument("--select", choices=SELECT_CHOICES,
                   help="with validation data, the weights kept: best (the epoch with the highest validation top-1, "
                        "the earlier on a tie; the default) or last; the test set is scored once, on them")
    g.add_argument("--early-stop", type=positive_int, metavar="P",
                   help="stop after P epochs without a higher validation top-1 (needs validation data)")
    g.add_argument("--class-weights", choices=("balanced",),
                   help="balanced: weight each class's cross-entropy by n / (k * n_c)")
    g.add_argument("--sampler", choices=("balanced",),
                   help="balanced: draw each epoch's images with replacement, every class equally likely "
                        "(seeded per epoch)")
    g.add_argument("--labels", metavar="FILE.csv",
                   help="with --dataset folder: a CSV (header row; a filename/file/image/id column and a "
                        "label/class/category column) labelling the flat folder --data-dir; split as --split")
    g.add_argument("--skip-bad-images", action="store_true",
                   help="leave unreadable image files out (all listed at the start, counted in metrics.json) "
                        "instead of refusing them; a stream always skips them as it meets them")
    add_stream_options(g)
    g.add_argument("--data-mode", choices=DATA_MODES,
                   help="memory: decode every image before the first step; stream: decode each batch in worker "
                        "processes as it is needed (image folders; random-resized crops + flips for training); auto "
                        "(default): in memory when the decoded images fit in a quarter of the available memory and "
                        "take at most 20 s to decode, else streamed; the choice and its reason are printed and "
                        "recorded (docs/data.md)")


def add_stream_options(g) -> None:
    """``--workers``, shared by ``train`` and ``eval``."""
    g.add_argument("--workers", type=nonnegative_int, metavar="N",
                   help="processes that decode a streamed folder's images (default: the cores, at most 8; 0: in "
                        "the training process)")


def _accuracy(top1: float, top5: float, num_classes: int | None) -> str:
    """``top-1 91.06%, top-5 99.76%``; top-5 only when the data set has more than 5 classes."""
    if shows_top5(num_classes):
        return f"top-1 {top1:.2%}, top-5 {top5:.2%}"
    return f"top-1 {top1:.2%} (no top-5: with {plural(num_classes, 'class', 'classes')} every image is a top-5 hit)"


def _results(a: argparse.Namespace) -> None:
    from .results import readme_section, results_table

    if a.readme:
        from .._readme import update_section

        update_section(a.readme, "results", readme_section(a.runs_dir, a.readme))
        print(f"results section updated in {a.readme}")
        return
    print(results_table(a.runs_dir, a.format, full=a.all))


_TTA_HELP = ("also score multi-view testing, the mean softmax over the views: flip (each image and its mirror) "
             "or 10crop (the 10-crop test of AlexNet and ResNet: four corner crops at the training "
             "crop's offsets and the centre, and their mirrors)")


def _tta_words(kind: str) -> str:
    return f"with {kind} test-time augmentation ({TTA_VIEWS[kind]} views)"


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a model on Fashion-MNIST, MNIST, CIFAR-10 or a folder")
    p.add_argument("model", nargs="?",
                   help="registry name (lenet5_modern, cifar_resnet20), FILE.py:FACTORY (built for the data "
                        "set's classes and channels), or with --resume the run folder to continue; may be left "
                        "out with --weights RUN (that run's model)")
    p.add_argument("--dataset", choices=DATASETS, help="default fashion-mnist")
    p.add_argument("--data-dir", help="folder with the data files, used or refused, never replaced (else "
                   "$CNNZOO_DATA, else the system location); for --dataset folder: DIR/train/CLASS/IMAGE and "
                   "DIR/test/CLASS/IMAGE (or val/), each image resized to the input size (shorter side, centre "
                   "crop); hidden and system folders are skipped (docs/data.md)")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help="input channels: 1 (grey, ITU-R 601-2 luma) or 3 (RGB, grey replicated); default: the "
                        "data set's own (a folder is RGB when any image is in colour); any conversion is printed")
    p.add_argument("--download", action="store_true", help="fetch missing files with torchvision (needs a network)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, help="training length (default: the model's recipe)")
    g.add_argument("--budget-minutes", type=float,
                   help="train and evaluate within this many minutes instead (epochs estimated from a few "
                        "steps, re-fitted after each epoch to the mean time of the last three)")
    p.add_argument("--input-size", type=int, help="side of the model input in pixels (recipe default)")
    p.add_argument("--width", type=float, help="channel multiplier (recipe default)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--schedule", choices=("cosine", "linear", "constant"))
    p.add_argument("--weight-decay", type=float, help="on conv/linear weights, not biases or norm parameters")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--pad", type=int, help="random-crop padding in pixels, 0 = no crop (recipe default)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="random horizontal flips (recipe default)")
    p.add_argument("--erase", type=float, metavar="P",
                   help="random-erasing probability (Zhong et al. 2020; recipe default 0 = off)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="evaluate and save an exponential moving average of the weights with this decay, "
                        "e.g. 0.999 (timm's --model-ema; recipe default 0 = off)")
    p.add_argument("--amp", choices=("fp32", "bf16", "fp16"),
                   help="force this autocast precision (fp16 with a gradient scaler); default: the fastest of the "
                        "recipe's numerics measured on this machine, bf16 only where it is native (AMX, "
                        "AVX-512-BF16, Arm BF16, GPUs with bf16), cached in ~/.cache/cnnzoo")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="force the NHWC memory format on (or off); default: chosen with --amp's rule")
    p.add_argument("--seed", type=int, help="every random draw derives from it (default 0)")
    p.add_argument("--limit-train", type=int, help="use only the first N training images")
    p.add_argument("--per-class", type=int, metavar="N",
                   help="train on at most N images of each class (a stratified subset drawn from --seed; "
                        "after --limit-train), e.g. 10 for a few-shot run")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: BatchNorm statistics over the global batch of all processes")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: this process's GPU if there is one, else cpu)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATASET-seedS)")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in --out; --lr (new peak), --epochs (the schedule's rest "
                        "re-planned), --budget-minutes, --data-dir, --device, --amp, --channels-last and --tta may "
                        "differ from the run, any other difference is refused")
    p.add_argument("--tta", choices=tuple(TTA_VIEWS),
                   help=_TTA_HELP + "; the final epoch's test_acc_tta, next to the single-view test_acc "
                   "(also with --resume of an unfinished run; score a finished one with cnnzoo eval --tta)")
    g = p.add_argument_group("fine-tuning (docs/training.md#fine-tuning)")
    g.add_argument("--weights", metavar="SOURCE",
                   help="start from these weights: a torchvision/timm-style weight file (state_dict, "
                        "{'state_dict'|'model': ...}, module./_orig_mod. prefixes) or a run folder / checkpoint.pt "
                        "(which gives its model, width and recipe unless given); a classifier of another class "
                        "count is re-initialised, a first conv of another channel count adapted; images are "
                        "normalised and resized as the weights expect")
    g.add_argument("--freeze", type=freeze_arg, metavar="backbone|N",
                   help="backbone: train only the classifier; N: freeze the stem and the first N stages. Frozen "
                        "layers stay in eval mode (BatchNorm statistics unchanged)")
    g.add_argument("--unfreeze-epoch", type=positive_int, metavar="E", help="train every layer from epoch E on")
    g.add_argument("--backbone-lr-scale", type=float, metavar="F",
                   help="the backbone's learning rate is F times the head's (default 1)")
    add_finetune_data_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="top-1, top-5, per-class accuracy, confusion matrix of a run")
    p.add_argument("checkpoint", help="a run folder of cnnzoo train or its checkpoint.pt")
    p.add_argument("--dataset", choices=DATASETS, help="default: the data set it was trained on")
    p.add_argument("--data-dir", help="default: the data folder the run recorded")
    p.add_argument("--out", help="folder for confusion.png and eval.json (default: the checkpoint's)")
    p.add_argument("--tta", choices=tuple(TTA_VIEWS), help=_TTA_HELP + ", printed after the single-view figures")
    p.add_argument("--batch-size", type=positive_int,
                   help="test images per forward pass (default 1000 up to 64x64 inputs, fewer for larger ones)")
    add_stream_options(p)
    p.set_defaults(func=_eval)



def add_results_command(sub) -> None:
    p = sub.add_parser("results", help="table of the training runs under a folder")
    p.add_argument("runs_dir", nargs="?", default="runs")
    p.add_argument("--format", choices=("text", "markdown", "csv", "json"), default="text",
                   help="text: aligned columns for a terminal (default); markdown, csv, json: every column")
    p.add_argument("--all", action="store_true", help="every column in the text format too")
    p.add_argument("--readme", metavar="PAGE",
                   help="instead, write the markdown table between the cnnzoo-results markers of this markdown "
                        "page (docs/training.md in this repository)")
    p.set_defaults(func=_results)
