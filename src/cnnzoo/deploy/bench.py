"""``bench``: every inference path of this machine side by side, timed and validated in one run.

Throughput and latency are wall-clock medians (:func:`time_runners`), the paths measured in
interleaved rounds (path 1, path 2, ..., then again) so that a change in the machine's load hits
every path alike. A training run's paths are validated on its whole test set: top-1 and the
agreement of their top-1 predictions with eager fp32's; a path is *validated* when it agrees on at
least :data:`MIN_AGREEMENT` and loses at most :data:`MAX_TOP1_DROP` of top-1. A model without
trained weights cannot be validated: its rows give the max logit difference from eager on random
inputs and say ``unvalidated``.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import CnnzooError
from .._io import write_json
from .export import Runner, _first_line
from .paths import PATHS, SLOW_PATHS, select_paths
from ..resolve import run_folder
from .source import Source, resolve_source

#: A path is validated when its top-1 predictions agree with eager fp32's on this fraction of
#: the test set and its top-1 is at most MAX_TOP1_DROP (0.2 points) below eager's.
MIN_AGREEMENT = 0.995
MAX_TOP1_DROP = 0.002
#: The file ``bench`` writes into a run's folder; ``fastest_validated_path`` reads it.
BENCH_FILE = "bench.json"
#: Calibration images for the int8 paths (the run's first training images, else random).
CALIBRATION_IMAGES = 512


@dataclass
class PathResult:
    """One path's row.

    Attributes:
        path: the path's name (see :mod:`cnnzoo.deploy.paths`).
        batch_size: images per call.
        images_per_s: batch_size / median_ms * 1000 (``None`` if the path is unavailable).
        median_ms: median wall time of one call, milliseconds.
        top1: top-1 on the run's test set (fraction), ``None`` for an untrained model.
        agreement: fraction of test images whose top-1 class equals eager fp32's (``None`` untrained).
        max_abs_diff: max |logits - eager fp32 logits| (test images of a run, else the random batch).
        validated: agreement >= MIN_AGREEMENT and top-1 loss <= MAX_TOP1_DROP (eager: always).
        note: why a path is unavailable or unvalidated.
    """

    path: str
    batch_size: int
    images_per_s: float | None = None
    median_ms: float | None = None
    top1: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    validated: bool = False
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _calibration(src: Source, gen: torch.Generator, batch: int = 32) -> list[torch.Tensor]:
    if src.trained:
        return list(src.images("train", CALIBRATION_IMAGES)[0].split(batch))
    return [torch.randn(batch, *src.input_shape, generator=gen) for _ in range(CALIBRATION_IMAGES // batch // 4)]


def _logits(run: Runner, x: torch.Tensor, example: torch.Tensor) -> torch.Tensor:
    """Logits of ``x`` on the CPU, run at the timed batch size (no recompiles) on ``example``'s device."""
    return torch.cat([run(b.to(example.device)).cpu() for b in x.split(len(example))])


def _score(rows: dict[str, PathResult], runners: dict[str, Runner], src: Source, example: torch.Tensor) -> None:
    """Fill top1 / agreement / max_abs_diff / validated of each available row: a trained run's test
    set goes through every path batch by batch (:meth:`Source.image_batches`: in memory or
    streamed, never the whole set as float32 at once)."""
    batches = src.image_batches("test", 8 * len(example)) if src.trained else [(example, None)]
    preds: dict[str, list[torch.Tensor]] = {name: [] for name in runners}
    diffs, ys = dict.fromkeys(runners, 0.0), []
    for x, y in batches:
        ref = _logits(runners["eager"], x, example)
        for name, run in runners.items():
            out = ref if name == "eager" else _logits(run, x, example)
            diffs[name] = max(diffs[name], float((out - ref).abs().max()))
            preds[name].append(out.argmax(1))
        ys.append(y)
    for name in runners:
        row = rows[name]
        row.max_abs_diff = diffs[name]
        if ys[0] is None:
            row.validated = name == "eager"
            row.note = row.note or ("reference" if name == "eager" else "unvalidated: no trained weights")
            continue
        check = validate(torch.cat(preds[name]), torch.cat(preds["eager"]), torch.cat(ys))
        row.top1, row.agreement, row.validated = check["top1"], check["agreement"], check["validated"]
        row.note = f"not validated: {'; '.join(check['fails'])}" if check["fails"] else row.note


def validate(pred: torch.Tensor, ref: torch.Tensor, y: torch.Tensor) -> dict:
    """The validation rule of a path: its predicted classes ``pred`` (N,) against eager fp32's
    ``ref`` (N,) on labelled images ``y`` (N,).

    Returns:
        dict: ``top1`` and ``top1_eager`` (fractions), ``agreement`` (fraction of ``pred == ref``),
        ``validated`` (agreement >= :data:`MIN_AGREEMENT` and top-1 at most :data:`MAX_TOP1_DROP`
        below eager's) and ``fails`` (each failed condition in words).
    """
    top1, top1_eager = float((pred == y).float().mean()), float((ref == y).float().mean())
    agreement = float((pred == ref).float().mean())
    fails = ([f"agreement {agreement:.2%} < {MIN_AGREEMENT:.1%}"] if agreement < MIN_AGREEMENT else []) + \
        ([f"top-1 {100 * (top1 - top1_eager):+.2f} points vs eager (limit -{100 * MAX_TOP1_DROP:.1f})"]
         if top1 < top1_eager - MAX_TOP1_DROP else [])
    return {"top1": top1, "top1_eager": top1_eager, "agreement": agreement, "validated": not fails, "fails": fails}


def time_runners(runners: dict[str, Runner], x: torch.Tensor, rounds: int = 5, min_seconds: float = 0.05,
                 warmup: int = 1) -> dict[str, tuple[list[float], int]]:
    """Time each runner on ``x``, interleaved (runner 1, runner 2, ..., then again) over ``rounds``
    rounds, so that a change in the machine's load hits every runner alike.

    After ``warmup`` untimed calls (allocations, oneDNN primitive caches) each round times a block
    of calls lasting about ``min_seconds`` (``0``: one call per block, for slow forwards), wall
    clock (``time.perf_counter``) on all torch threads. No call is hidden: ``torch.utils.benchmark``'s
    ``Timer.timeit`` adds two untimed calls to every block, which triples the time of a slow forward.

    Returns:
        {name: (seconds per call of each round's block, calls per block)}.
    """
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)   # a GPU runs ahead of Python
    number = {}
    for name, run in runners.items():
        for _ in range(max(1, warmup)):
            run(x)
        if min_seconds > 0:
            sync()
            t0 = time.perf_counter()
            run(x)
            sync()
            number[name] = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-6)))
        else:
            number[name] = 1
    times: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(number[name]):
                run(x)
            sync()
            times[name].append((time.perf_counter() - t0) / number[name])   # seconds per call
    return {n: (ts, number[n]) for n, ts in times.items()}


def _time(rows: dict[str, PathResult], runners: dict[str, Runner], x: torch.Tensor, rounds: int,
          min_seconds: float) -> None:
    """Median time per call of each runner (:func:`time_runners`) into its row."""
    for name, (ts, _) in time_runners(runners, x, rounds, min_seconds).items():
        med = statistics.median(ts)
        rows[name].median_ms = med * 1e3
        rows[name].images_per_s = len(x) / med


def bench(model: str | nn.Module | Source, *, batch_size: int = 16, input_shape: tuple[int, int, int] | None = None,
          paths: str | list[str] | None = None, weights: str | None = None, data_dir: str | None = None,
          rounds: int = 5, min_seconds: float = 0.05, seed: int = 0, save: bool = True,
          device: str = "cpu") -> list[PathResult]:
    """Time and validate each inference path of this machine on one model, side by side.

    Args:
        model: registry name, training run folder / checkpoint, ``nn.Module`` (with ``input_shape``)
            or a :class:`~cnnzoo.deploy.source.Source`.
        batch_size: images per timed call. input_shape: (C, H, W) (default: the run's / registry's).
        paths: ``None`` (:data:`~cnnzoo.deploy.paths.DEFAULT_PATHS`), ``"all"``, or names
            (comma-separated or a list); ``eager`` is always measured, first, as the baseline.
        rounds: interleaved timing rounds; each measurement repeats a call until ``min_seconds``.
        save: for a training run, also write the rows to ``RUN/bench.json`` (read by
            :func:`fastest_validated_path`).
        device: ``"cpu"`` or a CUDA device (``"cuda"``, ``"cuda:N"``): the model and inputs go there;
            the CPU-only paths (ONNX Runtime, x86 int8) are then unavailable.

    Returns:
        One :class:`PathResult` per path, in the order of ``paths``; a path that cannot be built
        here has ``images_per_s=None`` and says why in ``note``.

    Raises:
        CnnzooError (and subclasses): an unknown path, model, run or data; a batch size below 1.
    """
    if batch_size < 1:
        raise CnnzooError(f"--batch-size {batch_size}: give a positive integer")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CnnzooError(f"--device {device}: no CUDA device is available here; use --device cpu")
    names, left_out = select_paths(paths, device)
    src = model if isinstance(model, Source) else resolve_source(model, input_shape, weights, data_dir)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, *src.input_shape, generator=gen).to(device)
    calib = [b.to(device) for b in _calibration(src, gen)]
    src.model.to(device)
    rows = {n: PathResult(n, batch_size) for n in names}
    runners: dict[str, Runner] = {}
    for name in names:
        try:
            runners[name] = PATHS[name](src.model, x, calib)
        except Exception as err:  # noqa: BLE001 - a path this machine or model lacks is reported, not fatal
            if name == "eager":
                raise
            rows[name].note = f"unavailable: {_first_line(err)}"
    _score(rows, runners, src, x)
    _time(rows, runners, x, rounds, min_seconds)
    results = [*rows.values(), *[PathResult(n, batch_size, note=f"left out: {why}; time it with --paths {n}")
                                 for n, why in left_out.items()]]
    if save and src.trained:
        folder = run_folder(src.name)
        write_json(folder / BENCH_FILE, {"threads": torch.get_num_threads(), "torch": torch.__version__,
                                         "machine": _machine(device), "rows": [r.to_dict() for r in results]})
    return results


def _machine(device: str = "cpu") -> dict:
    """The fingerprint of this machine and device (:func:`cnnzoo.numerics.machine`)."""
    from ..numerics import capabilities, machine

    return machine(capabilities(device))


def fastest_validated_path(run: str | os.PathLike, skip_slow: bool = False) -> tuple[str, str]:
    """The fastest validated path of a training run, from its last ``cnnzoo bench`` (``RUN/bench.json``).

    Args:
        skip_slow: leave out :data:`~cnnzoo.deploy.paths.SLOW_PATHS` (they compile for minutes
            before the first image: a loss for a few images, as ``predict`` classifies).

    Returns:
        (path name, why): ``("eager", "no bench.json ...")`` when the run was never benchmarked or
        no faster path was validated, or ``bench.json`` was written on another machine (its
        fingerprint, :func:`cnnzoo.numerics.machine`, differs: fastest there need not be fastest here).
    """
    folder = run_folder(run)
    try:
        record = json.loads((folder / BENCH_FILE).read_text())
        rows = record["rows"]
    except (OSError, ValueError, KeyError):
        return "eager", f"no {BENCH_FILE} in {folder}: run `cnnzoo bench {run}` to validate faster paths"
    if record.get("machine") != _machine():          # timed elsewhere (or before machines were recorded)
        return "eager", (f"{BENCH_FILE} in {folder} was not measured on this machine and torch: run "
                         f"`cnnzoo bench {run}` here to validate faster paths")
    ok = [r for r in rows if r.get("validated") and r.get("images_per_s")
          and not (skip_slow and r["path"] in SLOW_PATHS)]
    if not ok:
        return "eager", "no path validated"
    best = max(ok, key=lambda r: r["images_per_s"])
    return best["path"], (f"{best['images_per_s']:.0f} images/s at batch {best['batch_size']}, agreement "
                          f"{best['agreement']:.2%} with eager fp32 in {BENCH_FILE}"
                          f"{'; compiling paths left out' if skip_slow else ''}")


def validated_runner(run: str | os.PathLike, model: nn.Module, ckpt: dict,
                     skip_slow: bool = True) -> tuple[Runner, str, str]:
    """The runner of a training run's fastest validated path (see :func:`fastest_validated_path`).

    Args:
        run: the run's folder or checkpoint; model, ckpt: as :func:`~cnnzoo.training.load_model` returns.
        skip_slow: leave out the paths that compile for minutes (as :func:`fastest_validated_path`).

    Returns:
        (runner ``x (N, C, H, W) -> logits (N, K) float32``, path name, why that path); eager fp32
        when no faster path was validated or the path cannot be rebuilt here (``why`` says so).
    """
    from .paths import _eager

    name, why = fastest_validated_path(run, skip_slow)
    if name != "eager":
        src = Source(model, str(run), (ckpt["in_chans"], ckpt["input_size"], ckpt["input_size"]), ckpt)
        try:
            example = torch.zeros(1, *src.input_shape)        # shapes only; the data set is read just for
            calib = _calibration(src, torch.Generator().manual_seed(0)) if "int8" in name else []  # int8's
            return PATHS[name](model, example, calib), name, why
        except Exception as err:  # noqa: BLE001 - fall back to the reference path, and say why
            name, why = "eager", f"{name} cannot be rebuilt here ({_first_line(err)})"
    return _eager(model, None, []), name, why
