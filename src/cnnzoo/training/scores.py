"""Per-class scores from a confusion matrix: precision, recall, F1, balanced accuracy, macro-F1.

Definitions as scikit-learn's ``classification_report``, ``balanced_accuracy_score`` and
``f1_score(average="macro")`` (Brodersen et al. 2010 for balanced accuracy): for class c with
``tp`` correct predictions, ``support`` true images and ``predicted`` images predicted as c,

    precision = tp / predicted,  recall = tp / support,  F1 = 2 * precision * recall / (precision + recall)

with 0 where a denominator is 0 (scikit-learn's ``zero_division=0``). Balanced accuracy is the mean
recall over the classes that have test images; macro-F1 the mean F1 over the classes that have test
images or predictions (scikit-learn's label set). Top-1 is the diagonal over the total.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def class_scores(confusion: torch.Tensor, classes: Sequence[str]) -> dict:
    """Scores of a (K, K) confusion matrix (row = true class, column = prediction).

    Returns:
        dict: ``top1``, ``balanced_accuracy``, ``macro_f1`` (fractions) and ``per_class``:
        {class name: {"precision", "recall", "f1" (fractions), "support" (test images)}}.
    """
    c = confusion.double()
    tp, support, predicted = c.diag(), c.sum(1), c.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp_min(1), 0.0)
    recall = torch.where(support > 0, tp / support.clamp_min(1), 0.0)
    pr = precision + recall
    f1 = torch.where(pr > 0, 2 * precision * recall / pr.clamp_min(1e-300), 0.0)
    has_true, seen = support > 0, (support > 0) | (predicted > 0)
    return {"top1": float(tp.sum() / c.sum().clamp_min(1)),
            "balanced_accuracy": float(recall[has_true].mean()) if has_true.any() else 0.0,
            "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
            "per_class": {name: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                                 "support": int(support[k])} for k, name in enumerate(classes)}}
