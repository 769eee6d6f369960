"""The comparison at ImageNet scale (Canziani, Paszke & Culurciello 2016, Fig. 1-3; the lecture's
L31/L32): published top-1 (:mod:`cnnzoo.compare.published`, never measured here) against the
operations and parameters the analyzer counts on cnnzoo's modules at 3x224x224, and the forward
time measured on this machine for the compared models (the ``imagenet.json`` stage of the job).
"""
from __future__ import annotations

import functools

import torch

from ..analysis import profile
from ..registry import model_info, torchvision_models
from ..resolve import resolve_model
from .published import IMAGENET_VAL_IMAGES, PAPER_FIGURES, accuracy_rows

#: The batch size whose per-image time the table shows beside batch 1 (as the issue's table asks).
TABLE_BATCH = 16
IMAGENET = (3, 224, 224)          # (C, H, W) and 1000 classes: the scale of the lecture's figures
IMAGENET_CLASSES = 1000


def chart_models(compared) -> list[str]:
    """The architectures of the ImageNet view: those with torchvision weights (the registry's
    torchvision twins), every architecture with a paper figure, and the compared models, each once."""
    return list(dict.fromkeys([*torchvision_models(), *(f.model for f in PAPER_FIGURES), *compared]))


def profile_record(model: torch.nn.Module, input_size: tuple) -> dict:
    """The analyzer's figures of ``model`` at ``input_size`` (C, H, W) as compare records them:
    parameters (all, executed at inference, bytes), MACs, activation bytes, receptive field, depth."""
    p = profile(model, input_size)
    t = p.totals
    return {"input": list(input_size), "params": t.params, "params_executed": t.params_executed,
            "param_bytes": t.param_bytes, "macs": t.macs, "activation_bytes": t.activation_bytes,
            "receptive_field": p.receptive_field.size[0] if p.receptive_field else None,
            "receptive_field_text": str(p.receptive_field) if p.receptive_field else None, "depth": p.depth}


@functools.lru_cache(maxsize=None)
def _imagenet_profile(name: str) -> dict:
    """The analyzer's record of ``name`` at 3x224x224, 1000 classes (meta device; cached per process)."""
    model = resolve_model(name, num_classes=IMAGENET_CLASSES, in_chans=IMAGENET[0], meta=True).model
    return profile_record(model, IMAGENET)


def _per_image(rows: list[dict], batch: int) -> tuple[float | None, str | None]:
    for r in rows:
        if r["batch_size"] == batch:
            return r["per_image_seconds"], r["path"]
    return None, None


def timing_columns(curve: dict | None) -> dict:
    """Batch-1 and batch-:data:`TABLE_BATCH` time per image (seconds) and peak memory (bytes) from
    one model's ``imagenet.json`` record; ``None`` values when the model was not timed."""
    if not curve:
        return {"b1_eager": None, "b16_eager": None, "b16_fast": None, "fast_path": None, "peak_bytes": None}
    b16, path = _per_image(curve["fast"], TABLE_BATCH)
    return {"b1_eager": _per_image(curve["eager"], 1)[0], "b16_eager": _per_image(curve["eager"], TABLE_BATCH)[0],
            "b16_fast": b16, "fast_path": path, "peak_bytes": curve["memory"]["peak_bytes"]}


def imagenet_rows(records: dict) -> list[dict]:
    """One row per published figure (or per model without one) of every architecture of
    :func:`chart_models`: the figure and its source, the analyzer's parameters (executed at
    inference) and MACs at 3x224x224, accuracy density (top-1 % per million parameters) and top-1 %
    per GMAC (Canziani et al. 2016, Fig. 5-6), and this machine's timing where it was measured."""
    rows = []
    for name in chart_models(records):
        rec = records.get(name, {})
        an = rec["analysis"]["imagenet"] if rec else dict(_imagenet_profile(name))
        fam = rec["analysis"]["family"] if rec else model_info(name).family
        params, macs = an["params_executed"], an["macs"]
        for r in accuracy_rows(name):
            top1 = r["top1"] if r["imagenet"] else None
            rows.append({**r, "family": fam, "params": params, "macs": macs, "compared": name in records,
                         "top1_per_mparam": None if top1 is None else top1 / (params / 1e6),
                         "top1_per_gmac": None if top1 is None else top1 / (macs / 1e9),
                         **timing_columns(rec.get("imagenet_latency"))})
    return rows


def l31_points(rows: list[dict]) -> dict:
    """Inputs of the L31 verdicts at ImageNet scale: one point per architecture with torchvision
    ``IMAGENET1K_V1`` weights (one training recipe family, one test protocol: single 224 crop);
    top-1 as a fraction of the 50,000 validation images."""
    return {r["model"]: {"family": r["family"], "macs": r["macs"], "params": r["params"], "top1": r["top1"] / 100,
                         "n": IMAGENET_VAL_IMAGES}
            for r in rows if r["source"] == "torchvision" and r["weights"] == "IMAGENET1K_V1" and r["top1"] is not None}


def short_citation(row: dict) -> str:
    """A chart label's source tag: the weights' version (``V1``, ``V2``) or the paper's first
    author and table (``He T3``)."""
    if row["source"] == "torchvision":
        return row["weights"].replace("IMAGENET1K_", "")
    if row["source"] == "paper":
        c = row["citation"]
        table = c.split("Table ")[1].split()[0].rstrip(",") if "Table " in c else ""
        return f"{c.split()[0].rstrip(',')} {'T' + table if table else ''}".strip()
    return "no figure"


__all__ = ["IMAGENET", "IMAGENET_CLASSES", "profile_record", "chart_models", "imagenet_rows", "l31_points",
           "timing_columns", "short_citation", "TABLE_BATCH"]
