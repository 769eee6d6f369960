"""Scoring a model on uint8 images: top-1, top-5, loss and the confusion matrix, one view or the
mean over test-time views, in the run's numerics on its device."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import numerics
from ..data import check_tta, to_input, tta_views
from ..data.source import ImageSource, TensorSource

#: Images per evaluation batch at inputs up to 64 x 64; larger inputs get proportionally fewer
#: (:func:`eval_batch_size`), so that a batch's activations stay about the same size.
EVAL_BATCH = 1000


def eval_batch_size(input_size: int) -> int:
    """Images per evaluation batch at ``input_size``: :data:`EVAL_BATCH` up to 64 x 64, then the
    same number of input pixels (e.g. 81 at 224), at least 16."""
    return max(16, min(EVAL_BATCH, EVAL_BATCH * 64 * 64 // (input_size * input_size)))


def autocast(device: torch.device, amp: str | None):
    """``torch.autocast`` to the precision ``amp`` ("fp32": off) on ``device``."""
    dtype = numerics.DTYPES[amp or "fp32"]
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` (on the CPU) on ``device``: through pinned memory and a non-blocking copy to a GPU."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


@torch.no_grad()
def evaluate_model(model: nn.Module, x: ImageSource | torch.Tensor, y: torch.Tensor | None, input_size: int, mean,
                   std, num_classes: int, batch_size: int | None = None, channels_last: bool = False,
                   amp: str = "fp32", tta: str | None = None, pad: int = 0, flip: bool = True) -> dict:
    """Top-1, top-5, mean loss and the confusion matrix of ``model`` on uint8 images.

    Args:
        x: an :class:`~cnnzoo.data.source.ImageSource` (in memory or streamed; its evaluation
            views, its labels; ``y`` None), or (N, C, H, W) uint8 images with ``y`` (N,) int64 labels.
        batch_size: images per batch (``None``: :func:`eval_batch_size` of ``input_size``).
        input_size, mean, std: as in training (images resized to input_size, normalised).
        tta: also score multi-view testing, the mean softmax over the views of
            :func:`~cnnzoo.data.tta_views`: ``"flip"`` (each image and its mirror) or ``"10crop"``
            (Krizhevsky et al. 2012, Sec. 4.1; He et al. 2016, Sec. 3.4: four corner crops and the
            centre, and their mirrors, here at the offsets of training's random crop with ``pad``).
        pad, flip: the model's training crop padding and random flips (for ``tta``).

    Raises:
        CnnzooError: an unknown ``tta``, any with ``flip`` off, or ``"10crop"`` with ``pad`` 0
            (:func:`~cnnzoo.data.check_tta`).

    Returns:
        dict with ``loss`` (mean cross-entropy, nats), ``top1``, ``top5`` (fractions),
        ``confusion`` ((K, K) int64 tensor, row = true class, column = prediction) and ``n``,
        all of the single view; with ``tta``, also ``tta``: the same keys for the mean over the views.
    """
    check_tta(tta, pad, flip)
    src = x if isinstance(x, ImageSource) else TensorSource(x, y)
    model.eval()
    dev = next(model.parameters()).device
    tallies = [_Tally(num_classes) for _ in range(2 if tta else 1)]
    bs = batch_size or eval_batch_size(input_size)
    n = 0
    for xb, yb in src.in_batches(bs):
        n += len(yb)
        if not len(yb):                               # a streamed batch of only unreadable files
            continue
        with autocast(dev, amp):
            views = [xb, *tta_views(xb, tta, pad)] if tta else [xb]
            logp = torch.stack([model(to_device(to_input(v, input_size, mean, std, channels_last), dev)).float()
                                .log_softmax(1).cpu() for v in views])           # (views, B, K)
        tallies[0].add(logp[0], yb)
        if tta:                                       # log of the mean of the views' softmax
            tallies[1].add(logp.logsumexp(0) - math.log(len(views)), yb)
    res = tallies[0].result(n)
    if tta:
        res["tta"] = tallies[1].result(n)
    return res


class _Tally:
    """Running sums of one scoring (a single view, or the mean over views): summed loss, top-5
    hits, confusion counts."""

    def __init__(self, num_classes: int):
        self.k = num_classes
        self.loss = torch.zeros((), dtype=torch.float64)
        self.top5 = torch.zeros((), dtype=torch.int64)
        self.conf = torch.zeros(num_classes * num_classes, dtype=torch.int64)

    def add(self, logp: torch.Tensor, y: torch.Tensor) -> None:
        """``logp``: (B, K) log-probabilities; ``y``: (B,) labels."""
        self.loss += F.nll_loss(logp, y, reduction="sum").double()
        self.top5 += (logp.topk(min(5, self.k), 1).indices == y[:, None]).any(1).sum()
        self.conf += torch.bincount(y * self.k + logp.argmax(1), minlength=self.k ** 2)

    def result(self, n: int) -> dict:
        conf, n1 = self.conf.view(self.k, self.k), max(1, n)
        return {"loss": float(self.loss) / n1, "top1": float(conf.diag().sum()) / n1,
                "top5": float(self.top5) / n1, "confusion": conf, "n": n}
