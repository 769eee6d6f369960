"""Inference speed and memory of a model on this machine: :func:`measure_latency`,
:func:`fastest_path`, :func:`peak_memory`.

Execution paths (what ``path=`` accepts):

- ``"fp32"``: eager PyTorch, float32, NCHW, ``torch.inference_mode`` (the baseline);
- ``"fp32_cl"``: float32 with the model and input in ``channels_last`` (NHWC) memory format;
- ``"bf16_cl"``: ``torch.autocast("cpu", torch.bfloat16)`` + ``channels_last`` (oneDNN uses AMX /
  AVX-512-BF16 where the CPU has them; offered only on such CPUs, see :func:`available_paths`);
- ``"fast"``: whichever of the above is fastest for this model and input, found by
  :func:`fastest_path` (the result's ``path`` names the one chosen).

Timing uses :class:`torch.utils.benchmark.Timer` (all torch threads, ``blocked_autorange``):
after ``warmup`` untimed calls, blocks of calls are timed until both ``min_seconds`` have
passed and ``repeats`` blocks exist; each block gives one per-call time, and the result is
their median and inter-quartile range. Times are wall-clock seconds per forward call of a
whole batch; ``images_per_s = batch_size / median_seconds``.
"""
from __future__ import annotations

import glob
import logging
import time
import weakref
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..errors import CnnzooError

#: Concrete execution paths, fastest-to-try order irrelevant; "fast" picks among them.
PATHS = ("fp32", "fp32_cl", "bf16_cl")


class LatencyOptionError(CnnzooError, ValueError):
    """An unknown execution path or a malformed input shape for a latency measurement."""


@dataclass
class LatencyResult:
    """One timed configuration.

    Attributes:
        batch_size: N of the (N, C, H, W) input.
        input_shape: (N, C, H, W).
        path: the concrete execution path timed (``"fp32"``, ``"fp32_cl"`` or ``"bf16_cl"``).
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


def bf16_supported() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AMX or AVX-512-BF16) that oneDNN uses."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def available_paths() -> tuple[str, ...]:
    """The execution paths worth timing on this machine (``bf16_cl`` only with native bf16)."""
    return PATHS if bf16_supported() else PATHS[:2]


def _check(input_shape, path: str, allowed) -> tuple[int, ...]:
    if path not in allowed:
        raise LatencyOptionError(f"unknown execution path {path!r}; choose from {', '.join(allowed)}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or min(shape) < 1:
        raise LatencyOptionError(f"input_shape must be (N, C, H, W) with positive sizes, got {tuple(input_shape)}")
    return shape


def _prepared(model: nn.Module, shape: tuple, path: str):
    """(callable running one forward, the input) for a concrete path; model in eval mode."""
    model.eval()
    cl = path.endswith("_cl")
    model = model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    bf16 = path.startswith("bf16")

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(x)

    return run, x


def _not_no_cuda_runtime(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("No CUDA runtime is found")


def benchmark_timer() -> type:
    """:class:`torch.utils.benchmark.Timer`, imported without its one stray log line.

    Importing it imports ``torch.utils.cpp_extension``, which at import time looks for a CUDA
    toolkit and, on a machine that has one but no usable GPU, logs "No CUDA runtime is found,
    using CUDA_HOME=..." to the terminal. Timing never compiles an extension, so the line tells a
    user nothing to act on: that one message of that one logger is filtered (the filter is
    added once; every other message of the logger still shows).
    """
    logging.getLogger("torch.utils.cpp_extension").addFilter(_not_no_cuda_runtime)
    from torch.utils.benchmark import Timer

    return Timer


def measure_latency(model: nn.Module, input_shape, *, path: str = "fp32", warmup: int = 2,
                    repeats: int = 5, min_seconds: float = 0.5) -> LatencyResult:
    """Time the forward pass of ``model`` on a random (N, C, H, W) batch on this CPU.

    Args:
        model: any ``nn.Module`` taking (N, C, H, W) float input; put in eval mode (and in
            channels_last memory format for the ``*_cl`` paths, which it keeps afterwards).
        input_shape: (N, C, H, W); N is the batch size.
        path: ``"fp32"``, ``"fp32_cl"``, ``"bf16_cl"`` or ``"fast"`` (see the module docstring).
        warmup: untimed forward calls first (oneDNN primitive creation, allocator warm-up).
        repeats: at least this many timed blocks.
        min_seconds: keep timing blocks until this much time is spent, seconds; ``0``: exactly
            ``repeats`` single timed calls after the warm-up (for slow forwards: ImageNet-scale batches).

    Returns:
        :class:`LatencyResult` (seconds are wall-clock seconds per forward call of the batch).

    Raises:
        LatencyOptionError: unknown path or malformed shape.
        InputShapeError, InputTooSmallError: the model rejects the input (from the model's checks).
    """
    if path == "fast":
        path = fastest_path(model, input_shape)
    shape = _check(input_shape, path, PATHS)
    Timer = benchmark_timer()  # noqa: N806 - a class

    run, x = _prepared(model, shape, path)
    for _ in range(max(1, warmup)):
        run(x)
    threads = torch.get_num_threads()
    times, number = [], 1
    if min_seconds > 0:
        timer = Timer("run(x)", globals={"run": run, "x": x}, num_threads=threads)
        m = timer.blocked_autorange(min_run_time=min_seconds)
        times, number = list(m.times), m.number_per_run
    while len(times) < repeats:            # more blocks of the same size (Timer.timeit would add 2 warm-up calls each)
        t0 = time.perf_counter()
        for _ in range(number):
            run(x)
        times.append((time.perf_counter() - t0) / number)
    p25, med, p75 = (float(v) for v in np.percentile(times, [25, 50, 75]))
    n = shape[0]
    return LatencyResult(n, shape, path, med, p25, p75, p75 - p25, n / med, med / n, len(times), number, threads)


def time_paths(model: nn.Module, input_shape, candidates: tuple[str, ...] | None = None,
               min_seconds: float = 0.2, repeats: int = 3) -> dict[str, LatencyResult]:
    """Time each candidate path (default :func:`available_paths`) on one input shape: {path: result}.

    Raises:
        LatencyOptionError: an unknown candidate path or malformed shape.
    """
    candidates = candidates or available_paths()
    for p in candidates:
        _check(input_shape, p, PATHS)
    return {p: measure_latency(model, input_shape, path=p, warmup=1, repeats=repeats, min_seconds=min_seconds)
            for p in candidates}


def predictions_on_path(model: nn.Module, x: torch.Tensor, path: str, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes (N,) of ``x`` (N, C, H, W), float32, run on ``path`` in batches; the model is
    left in that path's memory format.

    Raises:
        LatencyOptionError: an unknown path.
    """
    run, _ = _prepared(model, _check((1, *x.shape[1:]), path, PATHS), path)
    fmt = torch.channels_last if path.endswith("_cl") else torch.contiguous_format
    return torch.cat([run(xb.contiguous(memory_format=fmt)).float().argmax(1) for xb in x.split(batch_size)])


def fastest_path(model: nn.Module, input_shape, candidates: tuple[str, ...] | None = None,
                 min_seconds: float = 0.2) -> str:
    """The concrete path with the lowest median forward time for this model and input shape.

    Each candidate (default :func:`available_paths`) is timed briefly (3 repeats, at least
    ``min_seconds``, :func:`time_paths`); the model is left in the memory format of the winner.

    Raises:
        LatencyOptionError: an unknown candidate path or malformed shape.
    """
    timed = time_paths(model, input_shape, candidates, min_seconds)
    best = min(timed, key=lambda p: timed[p].median_seconds)
    _prepared(model, tuple(input_shape), best)
    return best


def batch_curve(model: nn.Module, chw: tuple[int, int, int], batch_sizes, *, select_batch: int,
                repeats: int = 2) -> dict:
    """Forward time against batch size, fp32 and the fastest path, with few calls (slow models).

    Every available path is timed at ``select_batch`` (one warm-up, ``repeats`` timed calls); the
    fastest there is the *fast* path, then fp32 and the fast path are timed at the other batch
    sizes the same way. Where RAPL energy counters are readable, each result's ``watts`` is set.

    Returns:
        dict: ``fast_path``; ``fp32`` and ``fast``: one :meth:`LatencyResult.to_dict` per batch size;
        ``selection``: {path: result at ``select_batch``}; ``repeats``.

    Raises:
        LatencyOptionError: malformed (C, H, W) or batch sizes.
    """
    def timed(b: int, path: str) -> LatencyResult:
        e0, t0 = rapl_energy_uj(), time.perf_counter()
        r = measure_latency(model, (b, *chw), path=path, warmup=1, repeats=repeats, min_seconds=0.0)
        e1, t1 = rapl_energy_uj(), time.perf_counter()
        if e0 is not None and e1 is not None and e1 > e0:            # a wrapped counter gives no figure
            r.watts = (e1 - e0) / 1e6 / (t1 - t0)
        return r

    sel = {p: timed(select_batch, p) for p in available_paths()}
    fast = min(sel, key=lambda p: sel[p].median_seconds)
    rows: dict[str, list[LatencyResult]] = {"fp32": [], "fast": []}
    for b in batch_sizes:
        for key, path in (("fp32", "fp32"), ("fast", fast)):
            if b == select_batch:
                r = sel[path]
            elif key == "fast" and path == "fp32":
                r = rows["fp32"][-1]                                  # fp32 is the fastest: timed once
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


def peak_memory(model: nn.Module, input_shape, path: str = "fp32") -> MemoryResult:
    """Measure the peak tensor memory of one eval-mode forward on a (N, C, H, W) batch.

    Raises:
        LatencyOptionError: unknown path (``"fast"`` is not accepted here) or malformed shape.
    """
    shape = _check(input_shape, path, PATHS)
    run, x = _prepared(model, shape, path)
    tracker = _LiveBytes()
    with tracker:
        out = run(x)
    del out
    size = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    pb = size(model.parameters()) + size(model.buffers())
    ib = x.numel() * x.element_size()
    return MemoryResult(shape[0], pb, ib, tracker.peak, pb + ib + tracker.peak)


__all__ = ["PATHS", "LatencyResult", "LatencyOptionError", "MemoryResult", "measure_latency", "fastest_path",
           "time_paths", "batch_curve", "rapl_energy_uj", "peak_memory", "available_paths", "bf16_supported"]
