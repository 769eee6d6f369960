"""CLI verbs ``train``, ``eval``, ``predict`` and ``results``: thin wrappers around
:mod:`cnnzoo.training.api`."""
from __future__ import annotations

import argparse
import json

from ..data import DATASETS


def _train(a: argparse.Namespace) -> None:
    from .api import train
    from .distributed import dist_env

    opts = {k: getattr(a, k) for k in ("dataset", "data_dir", "download", "epochs", "budget_minutes",
                                       "input_size", "width", "batch_size", "lr", "optimizer", "schedule",
                                       "label_smoothing", "amp", "seed", "limit_train", "sync_bn", "device")}
    if a.channels_last is not None:
        opts["channels_last"] = a.channels_last
    opts = {k: v for k, v in opts.items() if v is not None and v is not False}
    r = train(a.model, out=a.out, resume=a.resume, progress=not a.quiet, **opts)
    if dist_env().rank != 0:                  # under torchrun only rank 0 reports
        return
    s = r.summary
    print(f"{s['model']} on {s['dataset']} (input {s['input_size']}x{s['input_size']}, width {s['width']:g}, "
          f"seed {s['seed']}): test top-1 {r.final['test_acc']:.2%}, top-5 {r.final['test_top5']:.2%} "
          f"after {len(r.history)} epochs, {r.wall_seconds:.0f} s{' (reused finished run)' if r.reused else ''}; "
          f"run in {r.out_dir}")


def _eval(a: argparse.Namespace) -> None:
    from .api import evaluate

    r = evaluate(a.checkpoint, a.dataset, a.data_dir, a.out)
    print(f"{r['model']} on {r['dataset']} ({r['n']} test images): top-1 {r['top1']:.2%}, top-5 {r['top5']:.2%}")
    for name, acc in r["per_class"].items():
        print(f"  {name:<14} {acc:.2%}")
    print(f"confusion matrix: {r['confusion_png']}")


def _predict(a: argparse.Namespace) -> None:
    from .api import predict

    for r in predict(a.checkpoint, a.images, a.topk):
        print(r["image"])
        for name, p in r["top"]:
            print(f"  {p:7.2%}  {name}")


def _results(a: argparse.Namespace) -> None:
    from .results import results_table

    print(results_table(a.runs_dir, a.format))


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a model on Fashion-MNIST (or MNIST, CIFAR-10, an image folder)")
    p.add_argument("model", help="registry name, e.g. lenet5_modern, cifar_resnet20")
    p.add_argument("--dataset", choices=DATASETS, help="default fashion-mnist")
    p.add_argument("--data-dir", help="folder with the data files (else $CNNZOO_DATA, else the system location)")
    p.add_argument("--download", action="store_true", help="fetch missing files with torchvision (needs a network)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, help="training length (default: the model's recipe)")
    g.add_argument("--budget-minutes", type=float, help="train for about this many minutes instead")
    p.add_argument("--input-size", type=int, help="side of the model input in pixels (recipe default)")
    p.add_argument("--width", type=float, help="channel multiplier (recipe default)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--schedule", choices=("cosine", "linear", "constant"))
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--amp", choices=("fp32", "bf16"), help="bf16 autocast (CPUs with AMX / AVX-512-BF16)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-train", type=int, help="use only the first N training images")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: BatchNorm statistics over the global batch of all processes")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: this process's GPU if there is one, else cpu)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATASET-seedS)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="top-1, top-5, per-class accuracy and a confusion-matrix PNG of a checkpoint")
    p.add_argument("checkpoint", help="checkpoint.pt or its run directory")
    p.add_argument("--dataset", choices=DATASETS, help="default: the data set it was trained on")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="folder for confusion.png and eval.json (default: the checkpoint's)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("predict", help="top-k classes of image files (PNG/JPEG, any size and mode)")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--topk", type=int, default=5)
    p.set_defaults(func=_predict)

    p = sub.add_parser("results", help="table of the training runs under a folder (from their metrics.json)")
    p.add_argument("runs_dir", nargs="?", default="runs")
    p.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    p.set_defaults(func=_results)
