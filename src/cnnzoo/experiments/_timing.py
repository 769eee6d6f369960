"""Analyzer figures and measured forward time of small modules, shared by ``inception`` and
``small-filters``: params and MACs from :func:`cnnzoo.profile` (meta device), time from
:func:`cnnzoo.compare.latency.measure_latency` (eager fp32, this machine)."""
from __future__ import annotations

import torch
from torch import nn


def measure(make, input_chw: tuple[int, int, int], batch_size: int, min_seconds: float) -> dict:
    """Profile and time the module ``make()`` on (batch_size, C, H, W) input.

    Returns:
        dict: ``params``, ``macs`` (per image, conv + linear), ``output_shape`` (C, H, W),
        ``rf`` (receptive-field side, pixels, or None), ``seconds`` (median per forward call of
        the batch), ``timing`` (median, quartiles and repeats, seconds per call: the input of
        :func:`cnnzoo.compare.evidence.time_comparison`), ``per_image_ms`` and ``threads``.
    """
    from ..analysis import profile
    from ..compare.latency import measure_latency

    with torch.device("meta"):
        meta = make()
    p = profile(meta, input_chw)
    torch.manual_seed(0)
    lat = measure_latency(make(), (batch_size, *input_chw), path="eager", min_seconds=min_seconds)
    rf = p.receptive_field
    return {"params": p.totals.params, "macs": p.totals.macs, "output_shape": list(p.output_shapes[0][1:]),
            "rf": int(rf.size[0]) if rf is not None and not rf.is_global else None,
            "seconds": lat.median_seconds, "per_image_ms": 1e3 * lat.per_image_seconds, "threads": lat.threads,
            "timing": {k: getattr(lat, k) for k in ("median_seconds", "p25_seconds", "p75_seconds", "repeats")}}


def timing_record(m: dict) -> dict:
    """The timing of one :func:`measure` result, as :func:`cnnzoo.compare.evidence.time_comparison`
    takes it (results written before quartiles were kept: the median alone)."""
    return m.get("timing") or {"median_seconds": m["seconds"]}


def relu_stack(*convs: nn.Module) -> nn.Sequential:
    """conv -> ReLU -> conv -> ReLU ... (a ReLU after every conv)."""
    return nn.Sequential(*[m for c in convs for m in (c, nn.ReLU(inplace=True))])
