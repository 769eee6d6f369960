"""Inference speed and memory of a model on this machine: :func:`measure_latency`,
:func:`fastest_path`, :func:`peak_memory`.

Execution paths are deploy's (:data:`cnnzoo.deploy.paths.PATHS`: ``eager``, the baseline, eager
fp32 NCHW under ``torch.inference_mode``; ``channels_last``; ``bn_folded``; ``bf16``; ``ort_fp32``;
...), built by its builders; ``"fast"`` is whichever of :func:`cnnzoo.deploy.paths.timing_paths`
is fastest for this model and input, found by :func:`fastest_path` (the result's ``path`` names
the one chosen). A path added to deploy is timed here too, unless it compiles for minutes or
needs calibration.

Timing is deploy's (:func:`cnnzoo.deploy.bench.time_runners`: wall clock on all torch threads,
candidates interleaved): after ``warmup`` untimed calls, ``repeats`` blocks of
calls are timed, each lasting about ``min_seconds / repeats``; each block gives one per-call time,
and the result is their median and inter-quartile range. Times are wall-clock seconds per forward
call of a whole batch; ``images_per_s = batch_size / median_seconds``.
"""
from __future__ import annotations

import glob
import time
import weakref
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..deploy.bench import time_runners
from ..deploy.export import Runner
from ..deploy.paths import PATHS, timing_paths
from ..errors import CnnzooError


class LatencyOptionError(CnnzooError, ValueError):
    """An unknown execution path or a malformed input shape for a latency measurement."""


@dataclass
class LatencyResult:
    """One timed configuration.

    Attributes:
        batch_size: N of the (N, C, H, W) input.
        input_shape: (N, C, H, W).
        path: the execution path timed (a name of :data:`cnnzoo.deploy.paths.PATHS`).
        median_seconds: median wall time of one forward call of the whole batch, seconds.
        p25_seconds, p75_seconds: quartiles of the per-call times, seconds.
        iqr_seconds: ``p75_seconds - p25_seconds``.
        images_per_s: ``batch_size / median_seconds``.
        per_image_seconds: ``median_seconds / batch_size``.
        repeats: number of timed blocks (each block averages ``calls_per_repeat`` calls).
        calls_per_repeat: forward calls per timed block.
        threads: torch intra-op threads used.
        watts: mean package power during the measurement (warm-up included) from RAPL's energy
            counters (:func:`rapl_energy_uj`), watts; ``None`` when not measured.
    """

    batch_size: int
    input_shape: tuple
    path: str
    median_seconds: float
    p25_seconds: float
    p75_seconds: float
    iqr_seconds: float
    images_per_s: float
    per_image_seconds: float
    repeats: int
    calls_per_repeat: int
    threads: int
    watts: float | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "input_shape": list(self.input_shape)}


def _check(input_shape, path: str) -> tuple[int, ...]:
    if path not in PATHS:
        raise LatencyOptionError(f"unknown execution path {path!r}; choose from {', '.join(PATHS)} or 'fast'")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or min(shape) < 1:
        raise LatencyOptionError(f"input_shape must be (N, C, H, W) with positive sizes, got {tuple(input_shape)}")
    return shape


def _example(shape: tuple) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def build_runner(model: nn.Module, path: str, example: torch.Tensor) -> Runner:
    """Deploy's runner of ``path`` for ``model`` (put in eval mode), built for ``example`` (N, C, H, W)
    and calibrated on it where the path quantises.

    Raises:
        LatencyOptionError: unknown path. CnnzooError (and others): the path cannot be built here.
    """
    _check(example.shape, path)
    return PATHS[path](model.eval(), example, [example])


def _result(times: list[float], number: int, shape: tuple, path: str) -> LatencyResult:
    p25, med, p75 = (float(v) for v in np.percentile(times, [25, 50, 75]))
    n = shape[0]
    return LatencyResult(n, shape, path, med, p25, p75, p75 - p25, n / med, med / n, len(times), number,
                         torch.get_num_threads())


def _timed(runners: dict[str, Runner], shape: tuple, warmup: int, repeats: int,
           min_seconds: float) -> dict[str, LatencyResult]:
    x = _example(shape)
    timed = time_runners(runners, x, rounds=repeats, min_seconds=min_seconds / max(1, repeats), warmup=warmup)
    return {p: _result(ts, number, shape, p) for p, (ts, number) in timed.items()}


def measure_latency(model: nn.Module, input_shape, *, path: str = "eager", warmup: int = 2,
                    repeats: int = 5, min_seconds: float = 0.5) -> LatencyResult:
    """Time the forward pass of ``model`` on a random (N, C, H, W) batch on this CPU.

    Args:
        model: any ``nn.Module`` taking (N, C, H, W) float input; put in eval mode.
        input_shape: (N, C, H, W); N is the batch size.
        path: a name of :data:`cnnzoo.deploy.paths.PATHS` or ``"fast"`` (see the module docstring).
        warmup: untimed forward calls first (oneDNN primitive creation, allocator warm-up).
        repeats: timed blocks.
        min_seconds: about this much time in all blocks together, seconds; ``0``: exactly
            ``repeats`` single timed calls after the warm-up (for slow forwards: ImageNet-scale batches).

    Returns:
        :class:`LatencyResult` (seconds are wall-clock seconds per forward call of the batch).

    Raises:
        LatencyOptionError: unknown path or malformed shape.
        InputShapeError, InputTooSmallError: the model rejects the input (from the model's checks).
    """
    if path == "fast":
        path = fastest_path(model, input_shape)
    shape = _check(input_shape, path)
    return _timed({path: build_runner(model, path, _example(shape))}, shape, warmup, repeats, min_seconds)[path]


def build_runners(model: nn.Module, paths, example: torch.Tensor) -> dict[str, Runner]:
    """{path: runner} of each of ``paths`` that builds for this model; ``eager`` always builds.
    A path that cannot be built here (a model ``torch.fx`` cannot trace, an export that fails) is
    left out, as ``bench`` reports it unavailable."""
    runners = {}
    for p in paths:
        try:
            runners[p] = build_runner(model, p, example)
        except LatencyOptionError:
            raise
        except Exception:  # noqa: BLE001 - a path this model lacks is skipped, not fatal
            if p == "eager":
                raise
    return runners


def fastest_path(model: nn.Module, input_shape, candidates=None, min_seconds: float = 0.2) -> str:
    """The path with the lowest median forward time for this model and input shape.

    The candidates (default :func:`~cnnzoo.deploy.paths.timing_paths`) are timed side by side
    (:func:`~cnnzoo.deploy.bench.time_runners`, 3 blocks over about ``min_seconds``); one that
    cannot be built for this model is skipped.

    Raises:
        LatencyOptionError: an unknown candidate path or malformed shape.
    """
    shape = _check(input_shape, "eager")
    candidates = list(candidates or timing_paths())
    for p in candidates:
        _check(shape, p)
    timed = _timed(build_runners(model, candidates, _example(shape)), shape, 1, 3, min_seconds)
    return min(timed, key=lambda p: timed[p].median_seconds)


def predictions_on_path(model: nn.Module, x: torch.Tensor, path: str, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes (N,) of ``x`` (N, C, H, W), float32, run on ``path`` in batches.

    Raises:
        LatencyOptionError: an unknown path.
    """
    run = build_runner(model, path, x[:batch_size])
    return torch.cat([run(xb).float().argmax(1) for xb in x.split(batch_size)])


def batch_curve(model: nn.Module, chw: tuple[int, int, int], batch_sizes, *, select_batch: int,
                repeats: int = 2) -> dict:
    """Forward time against batch size, eager and the fastest path, with few calls (slow models).

    Every path of :func:`~cnnzoo.deploy.paths.timing_paths` that builds for the model is timed at
    ``select_batch`` (one warm-up, ``repeats`` timed calls); the fastest there is the *fast* path, then eager and the
    fast path are timed at the other batch sizes the same way. Where RAPL energy counters are
    readable, each result's ``watts`` is set.

    Returns:
        dict: ``fast_path``; ``eager`` and ``fast``: one :meth:`LatencyResult.to_dict` per batch size;
        ``selection``: {path: result at ``select_batch``}; ``repeats``.

    Raises:
        LatencyOptionError: malformed (C, H, W) or batch sizes.
    """
    runners = build_runners(model, timing_paths(), _example((select_batch, *chw)))

    def timed(b: int, path: str) -> LatencyResult:
        e0, t0 = rapl_energy_uj(), time.perf_counter()
        r = _timed({path: runners[path]}, _check((b, *chw), path), 1, repeats, 0.0)[path]
        e1, t1 = rapl_energy_uj(), time.perf_counter()
        if e0 is not None and e1 is not None and e1 > e0:            # a wrapped counter gives no figure
            r.watts = (e1 - e0) / 1e6 / (t1 - t0)
        return r

    sel = {p: timed(select_batch, p) for p in runners}
    fast = min(sel, key=lambda p: sel[p].median_seconds)
    rows: dict[str, list[LatencyResult]] = {"eager": [], "fast": []}
    for b in batch_sizes:
        for key, path in (("eager", "eager"), ("fast", fast)):
            if b == select_batch:
                r = sel[path]
            elif key == "fast" and path == "eager":
                r = rows["eager"][-1]                                 # eager is the fastest: timed once
            else:
                r = timed(b, path)
            rows[key].append(r)
    return {"fast_path": fast, "repeats": repeats, "selection": {p: r.to_dict() for p, r in sel.items()},
            **{k: [r.to_dict() for r in v] for k, v in rows.items()}}


#: RAPL package energy counters (Linux powercap), microjoules; usually readable by root only.
RAPL_GLOB = "/sys/class/powercap/intel-rapl:[0-9]*/energy_uj"


def rapl_energy_uj() -> int | None:
    """Sum of the readable RAPL package energy counters (microjoules), or ``None`` when this
    machine exposes none (no powercap, a VM, or files readable by root only)."""
    total, found = 0, False
    for f in glob.glob(RAPL_GLOB):
        try:
            total += int(open(f).read())
            found = True
        except (OSError, ValueError):
            return None
    return total if found else None


class _LiveBytes(TorchDispatchMode):
    """Counts bytes of tensor storages allocated by ops and still alive; keeps the maximum."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.ptrs: set[int] = set()

    def _free(self, ptr: int, nbytes: int) -> None:
        self.ptrs.discard(ptr)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                st = t.untyped_storage()
                ptr, nbytes = st.data_ptr(), st.nbytes()
                if nbytes and ptr not in self.ptrs:      # new storage (not a view or in-place result)
                    self.ptrs.add(ptr)
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(t, self._free, ptr, nbytes)
        return out


@dataclass
class MemoryResult:
    """Peak memory of one forward call, bytes (MB = 10^6 bytes).

    Attributes:
        batch_size: N.
        param_bytes: parameters and buffers of the model.
        input_bytes: the input batch.
        peak_activation_bytes: the largest total size of tensors created during the forward and
            alive at the same time (measured: every op's new output storage is counted until the
            tensor is freed; scratch buffers inside oneDNN kernels are not seen).
        peak_bytes: ``param_bytes + input_bytes + peak_activation_bytes``.
    """

    batch_size: int
    param_bytes: int
    input_bytes: int
    peak_activation_bytes: int
    peak_bytes: int


def peak_memory(model: nn.Module, input_shape, path: str = "eager") -> MemoryResult:
    """Measure the peak tensor memory of one eval-mode forward on a (N, C, H, W) batch (PyTorch
    paths only: memory inside another runtime, such as ONNX Runtime, is not seen).

    Raises:
        LatencyOptionError: unknown path (``"fast"`` is not accepted here) or malformed shape.
    """
    shape = _check(input_shape, path)
    x = _example(shape)
    run = build_runner(model, path, x)
    tracker = _LiveBytes()
    with tracker:
        out = run(x)
    del out
    size = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    pb = size(model.parameters()) + size(model.buffers())
    ib = x.numel() * x.element_size()
    return MemoryResult(shape[0], pb, ib, tracker.peak, pb + ib + tracker.peak)


__all__ = ["LatencyResult", "LatencyOptionError", "MemoryResult", "measure_latency", "fastest_path",
           "timing_paths",
           "build_runner", "build_runners", "batch_curve", "rapl_energy_uj", "peak_memory", "predictions_on_path"]
