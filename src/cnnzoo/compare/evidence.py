"""How strong a measured difference must be before a verdict names it, shared by ``compare`` and
the experiments. Every rule is stated here once, with its threshold, so that a report can say
which rule decided and a small or noisy difference reads "not shown" rather than as a finding.

- Accuracies (fractions of n test images): two figures differ when their gap exceeds
  :data:`Z` standard errors of the difference, SE = sqrt(p1(1-p1)/n1 + p2(1-p2)/n2) (binomial
  sampling of the test images; on one shared test set this unpaired SE errs on the cautious side).
- Times: one measurement is faster than another when the ratio of medians exceeds
  1 + :data:`TIME_MARGIN` and, where both have two or more timed repeats, the quartile ranges
  do not overlap.
- Rank correlations: Spearman's rho with a one-sided permutation p-value (exact up to 8 points);
  a correlation counts when p < :data:`ALPHA`.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

#: Standard errors a difference of accuracies must exceed (about a 95 % two-sided level).
Z = 2.0
#: Smallest ratio of median times, minus 1, that counts as a speed difference on a shared machine.
TIME_MARGIN = 0.10
#: Significance level of the permutation test of a rank correlation.
ALPHA = 0.05

ACCURACY_RULE = (f"a gap counts when it exceeds {Z:g} standard errors of the difference "
                 "(binomial, over the test images)")
TIME_RULE = (f"a time difference counts when the median ratio exceeds {1 + TIME_MARGIN:.2f} and the "
             "quartile ranges do not overlap")


def accuracy_gap(p1: float, n1: int, p2: float, n2: int, s1: float = 1.0, s2: float = 1.0,
                 unit: str = "points") -> dict:
    """Is accuracy ``p1`` (fraction of ``n1`` test images) different from ``p2`` (of ``n2``)? With
    scales ``s1``, ``s2`` the compared figures are ``s1 * p1`` and ``s2 * p2`` (e.g. accuracy per
    million parameters), their standard errors scaled alike.

    Returns:
        dict: ``diff`` (s1 p1 - s2 p2), ``threshold`` (:data:`Z` x SE of the difference), ``beyond``
        (whether |diff| > threshold), ``text`` (e.g. ``"+1.20 points, noise threshold 0.85"``, in
        percentage ``unit``).
    """
    se = math.sqrt(s1 ** 2 * p1 * (1 - p1) / max(n1, 1) + s2 ** 2 * p2 * (1 - p2) / max(n2, 1))
    diff, thr = s1 * p1 - s2 * p2, Z * se
    return {"diff": diff, "threshold": thr, "beyond": abs(diff) > thr,
            "text": f"{100 * diff:+.2f} {unit}, noise threshold {100 * thr:.2f}"}


def beats(p1: float, n1: int, p2: float, n2: int) -> bool:
    """Whether accuracy ``p1`` exceeds ``p2`` beyond noise (:func:`accuracy_gap`)."""
    g = accuracy_gap(p1, n1, p2, n2)
    return g["beyond"] and g["diff"] > 0


def time_comparison(a: dict, b: dict) -> dict:
    """Compare two timings (dicts with ``median_seconds`` and, optionally, ``p25_seconds``,
    ``p75_seconds``, ``repeats``; per call or per image, the same unit in both).

    Returns:
        dict: ``ratio`` (a / b medians), ``outcome`` (``"a slower"``, ``"a faster"`` or
        ``"within noise"`` under :data:`TIME_RULE`).
    """
    ratio = a["median_seconds"] / b["median_seconds"]
    spread = min(a.get("repeats", 1), b.get("repeats", 1)) >= 2 and "p25_seconds" in a and "p25_seconds" in b
    if ratio > 1 + TIME_MARGIN and (not spread or a["p25_seconds"] > b["p75_seconds"]):
        return {"ratio": ratio, "outcome": "a slower"}
    if ratio < 1 / (1 + TIME_MARGIN) and (not spread or a["p75_seconds"] < b["p25_seconds"]):
        return {"ratio": ratio, "outcome": "a faster"}
    return {"ratio": ratio, "outcome": "within noise"}


def per_image(row: dict) -> dict:
    """A latency row (per batch call) as per-image times, for :func:`time_comparison` across batch sizes."""
    b = row["batch_size"]
    return {**{k: row[k] / b for k in ("median_seconds", "p25_seconds", "p75_seconds") if k in row},
            "repeats": row.get("repeats", 1)}


def _ranks(v) -> np.ndarray:
    """Ranks 0..n-1 of ``v``; tied values share the mean of their ranks (as scipy's ``rankdata``)."""
    v = np.asarray(v, dtype=float)
    order = np.argsort(v, kind="stable")
    first = np.r_[True, v[order][1:] != v[order][:-1]]                 # a new value starts a tie group
    starts = np.flatnonzero(first)
    mean_rank = (starts + np.r_[starts[1:], len(v)] - 1) / 2
    ranks = np.empty(len(v))
    ranks[order] = mean_rank[np.cumsum(first) - 1]
    return ranks


def spearman(x, y) -> float:
    """Spearman rank correlation (Pearson on ranks; tied values share their mean rank, so that
    maps with plateaus, e.g. a ReLU's zeros, are not correlated by their order)."""
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def spearman_test(x, y, samples: int = 20000) -> tuple[float, float]:
    """(rho, one-sided p-value of rho this large or larger under random pairing): every
    permutation for up to 8 points, else ``samples`` random ones (seed 0)."""
    rx, ry = _ranks(x), _ranks(y)
    rho = spearman(x, y)
    n = len(rx)
    if n <= 8:
        perms = np.array(list(itertools.permutations(range(n))))
    else:
        rng = np.random.default_rng(0)
        perms = np.array([rng.permutation(n) for _ in range(samples)])
    rys = ry[perms]                                                       # (P, n)
    cx = rx - rx.mean()
    rhos = (rys - rys.mean(1, keepdims=True)) @ cx / (np.linalg.norm(cx) * np.linalg.norm(rys - rys.mean(1, keepdims=True), axis=1))
    return rho, float(np.mean(rhos >= rho - 1e-12))


__all__ = ["Z", "TIME_MARGIN", "ALPHA", "ACCURACY_RULE", "TIME_RULE", "accuracy_gap", "beats", "time_comparison", "per_image",
           "spearman", "spearman_test"]
