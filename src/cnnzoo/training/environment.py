"""Where a run computes: the device it trains on and the library versions and hardware written
into every metrics file."""
from __future__ import annotations

import os
import platform

import torch

from .config import TrainConfigError


def environment() -> dict:
    """Library versions and hardware, written into every metrics file."""
    from importlib.metadata import version  # importing torchvision itself takes seconds

    from .. import __version__

    return {
        "versions": {"cnnzoo": __version__, "python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": version("torchvision"), "numpy": version("numpy")},
        "hardware": {"platform": platform.platform(), "machine": platform.machine(),
                     "processor": platform.processor() or _cpu_model(), "cpu_count": os.cpu_count(),
                     "torch_threads": torch.get_num_threads(),
                     "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                     "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        return ""


def resolve_device(name: str | None) -> torch.device:
    """The device a run trains on: ``name``, or CUDA when available, else the CPU. Under torchrun
    a bare ``"cuda"`` means this process's GPU (``cuda:$LOCAL_RANK``).

    Raises:
        TrainConfigError: a CUDA or MPS device is asked for where none is available.
    """
    cuda = torch.cuda.is_available()
    name = name or ("cuda" if cuda else "cpu")
    if name.startswith("cuda") and not cuda:
        raise TrainConfigError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise TrainConfigError("--device mps: this torch has no MPS device here (Apple silicon, macOS 12.3+); "
                               "use --device cpu")
    if name == "cuda":
        name = f"cuda:{os.environ.get('LOCAL_RANK', torch.cuda.current_device())}"
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise TrainConfigError(f"--device {name}: {err}") from None
