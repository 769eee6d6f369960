"""Numerics chosen for the hardware a run is on: which numeric path trains (and runs) a model.

A *numeric path* is an autocast precision and a memory format:

==========  ==========================================================================
path        what runs
==========  ==========================================================================
``fp32``    float32, NCHW
``fp32_cl`` float32, model and input in ``channels_last`` (NHWC)
``bf16_cl`` ``torch.autocast(bfloat16)`` + ``channels_last``
``fp16_cl`` ``torch.autocast(float16)`` + ``channels_last``, with a ``torch.amp.GradScaler``
==========  ==========================================================================

A recipe states which paths it *may* use (:mod:`cnnzoo.training.recipes`, its ``numerics``:
the reduced-precision ones only where twin runs showed equal accuracy). Which one it *does* use is
decided here, for this machine (:func:`choose`):

1. the paths this hardware cannot run fast are left out (:func:`candidates`): bf16 needs native
   bf16 (a CPU with AMX, AVX-512-BF16 or Arm BF16, read from ``/proc/cpuinfo``; a GPU for which
   ``torch.cuda.is_bf16_supported()``); fp16 is tried only on a GPU without bf16 (PyTorch's AMP
   recipe: bf16 where supported, else fp16 with a gradient scaler);
2. among what is left, the one measured fastest for this model, input and batch in a few real
   training steps each (like ``cudnn.benchmark``, across numerics), cached per machine and
   configuration in ``$CNNZOO_CACHE/numerics.json`` (default ``~/.cache/cnnzoo``); an entry made on
   another machine (CPU model and flags, torch version, threads, device: :func:`machine`) is never
   used. ``CNNZOO_MEASURE_NUMERICS=0`` turns measuring off: the first candidate is used.

``--amp`` / ``--channels-last`` force a path (the choice says ``forced``). Every choice carries its
reason, printed at the start of ``cnnzoo train`` and recorded in metrics.json and the checkpoint.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ._io import cache_dir, write_json
from .errors import CnnzooError

#: path -> (autocast precision, channels_last); in order of preference when nothing is measured.
TRAIN_PATHS: dict[str, tuple[str, bool]] = {
    "bf16_cl": ("bf16", True), "fp16_cl": ("fp16", True), "fp32_cl": ("fp32", True), "fp32": ("fp32", False),
}
#: torch dtype of each autocast precision (None: no autocast).
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: x86 and Arm /proc/cpuinfo flags of native bf16 arithmetic (oneDNN / ACL use them).
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
#: bumped when the cache file's layout or the measurement changes (older entries are then unused).
CACHE_VERSION = 1


class NumericsError(CnnzooError, ValueError):
    """An unknown numeric path or precision."""


def path_name(amp: str, channels_last: bool) -> str:
    """``("bf16", True)`` -> ``"bf16_cl"``."""
    return f"{amp}{'_cl' if channels_last else ''}"


def check_paths(paths) -> tuple[str, ...]:
    """The paths as a tuple, each a key of :data:`TRAIN_PATHS`.

    Raises:
        NumericsError: an unknown path (the message lists the known ones).
    """
    bad = [p for p in paths if p not in TRAIN_PATHS]
    if bad or not paths:
        raise NumericsError(f"unknown numeric path(s) {', '.join(bad) or '(none)'}; "
                            f"choose from {', '.join(TRAIN_PATHS)}")
    return tuple(paths)


# -- what the hardware has ---------------------------------------------------------------------
@dataclass(frozen=True)
class Capabilities:
    """What one device offers for training numerics.

    Attributes:
        device: ``"cpu"``, ``"cuda"`` or ``"mps"``.
        name: the CPU model or GPU name.
        isa: ``torch.backends.cpu.get_cpu_capability()`` on a CPU ("AVX2", "AVX512", ...), the
            compute capability ("sm_90") on a CUDA GPU, "" on MPS.
        bf16: native bf16 arithmetic (autocast to bf16 is fast here).
        fp16: fp16 autocast worth trying (CUDA GPUs).
        flags: the native-bf16 CPU flags found (of :data:`BF16_FLAGS`).
    """

    device: str
    name: str
    isa: str
    bf16: bool
    fp16: bool = False
    flags: tuple[str, ...] = ()

    def bf16_words(self) -> str:
        """Why bf16 is or is not native here, in words."""
        if self.device != "cpu":
            return f"{self.name} {'supports' if self.bf16 else 'does not support'} bf16"
        if self.bf16:
            return f"native bf16 on this CPU: {', '.join(self.flags) or self.isa}"
        return f"no native bf16 on this {self.isa} CPU: emulated, several times slower"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[set[str], str]:
    """(the CPU's feature flags, its model name) from ``/proc/cpuinfo`` (x86 ``flags``, Arm
    ``Features``); on macOS from ``sysctl`` (Apple's ``FEAT_BF16`` as ``bf16``); empty where unreadable."""
    flags, name = set(), ""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
                elif key.strip() == "model name" and not name:
                    name = value.strip()
    except OSError:
        if platform.system() == "Darwin":
            flags, name = _sysctl_flags()
    name = name or platform.processor()
    return flags, name


def _sysctl_flags() -> tuple[set[str], str]:
    import subprocess

    def read(key: str) -> str:
        try:
            return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return ({"bf16"} if read("hw.optional.arm.FEAT_BF16") == "1" else set()), read("machdep.cpu.brand_string")


@functools.cache
def capabilities(device: str = "cpu") -> Capabilities:
    """The :class:`Capabilities` of a device type (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``);
    read once per process."""
    kind = torch.device(device).type
    if kind == "cuda":
        index = torch.device(device).index or 0
        major, minor = torch.cuda.get_device_capability(index)
        return Capabilities("cuda", torch.cuda.get_device_name(index), f"sm_{major}{minor}",
                            bf16=torch.cuda.is_bf16_supported(), fp16=True)
    if kind == "mps":
        return Capabilities("mps", "Apple GPU (MPS)", "", bf16=False)
    flags, name = cpu_flags()
    found = tuple(f for f in BF16_FLAGS if f in flags)
    return Capabilities("cpu", name, torch.backends.cpu.get_cpu_capability(), bf16=bool(found), flags=found)


def machine(caps: Capabilities) -> dict:
    """The fingerprint a cache entry is valid for: device, its name and ISA / native-bf16 flags,
    the torch version and the number of torch threads."""
    return {"device": caps.device, "name": caps.name, "isa": caps.isa, "bf16_flags": list(caps.flags),
            "bf16": caps.bf16, "torch": str(torch.__version__), "threads": torch.get_num_threads()}


def unusable(amp: str, caps: Capabilities) -> str | None:
    """Why autocast to precision ``amp`` does not run well on this hardware, or None where it does:
    bf16 needs native bf16; fp16 needs a GPU (``caps.fp16``) without bf16 (bf16 where the hardware
    has it, else fp16, as PyTorch's AMP advice)."""
    if amp == "bf16" and not caps.bf16:
        return caps.bf16_words()
    if amp == "fp16" and not caps.fp16:
        return "fp16 autocast is for GPUs"
    if amp == "fp16" and caps.bf16:
        return "bf16 is supported here"
    return None


def candidates(allowed, caps: Capabilities) -> tuple[list[str], dict[str, str]]:
    """The allowed paths this hardware runs well (:func:`unusable`), in :data:`TRAIN_PATHS` order, and
    {left-out path: why}."""
    allowed = check_paths(allowed)
    kept = [p for p in TRAIN_PATHS if p in allowed and unusable(TRAIN_PATHS[p][0], caps) is None]
    return kept, {p: unusable(TRAIN_PATHS[p][0], caps) for p in TRAIN_PATHS if p in allowed and p not in kept}


# -- the cache ---------------------------------------------------------------------------------
def cache_file() -> Path:
    """``numerics.json`` in cnnzoo's cache folder (:func:`cnnzoo._io.cache_dir`: ``$CNNZOO_CACHE``,
    else ``$XDG_CACHE_HOME/cnnzoo``, else ``~/.cache/cnnzoo``)."""
    return cache_dir() / "numerics.json"


def _key(fingerprint: dict, config: dict) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "machine": fingerprint, "config": config}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _read_cache() -> dict:
    try:
        entries = json.loads(cache_file().read_text())["entries"]
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}                  # no cache yet, or an unreadable one: measured again and rewritten


def cached(fingerprint: dict, config: dict) -> dict | None:
    """The cache entry of this machine and configuration, or None. An entry whose recorded
    machine differs from ``fingerprint`` is never returned."""
    entry = _read_cache().get(_key(fingerprint, config))
    if entry and entry.get("machine") == fingerprint and entry.get("config") == config:
        return entry
    return None


def store(fingerprint: dict, config: dict, path: str, images_per_s: dict[str, float]) -> None:
    """Add (or replace) the entry of this machine and configuration, atomically. A cache that
    cannot be written (read-only home) is skipped: the next run measures again."""
    entries = _read_cache()
    entries[_key(fingerprint, config)] = {
        "machine": fingerprint, "config": config, "path": path, "images_per_s": images_per_s,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    try:
        write_json(cache_file(), {"version": CACHE_VERSION, "entries": entries})
    except OSError:
        pass


def measuring() -> bool:
    """Whether :func:`choose` may measure (``CNNZOO_MEASURE_NUMERICS`` is not ``0``)."""
    return os.environ.get("CNNZOO_MEASURE_NUMERICS", "1") != "0"


# -- the choice --------------------------------------------------------------------------------
@dataclass
class Choice:
    """The numeric path a run uses and why.

    Attributes:
        path: a key of :data:`TRAIN_PATHS`. amp: its precision ("fp32", "bf16", "fp16").
        channels_last: its memory format.
        how: ``"forced"`` (by ``--amp`` / ``--channels-last``), ``"only"`` (one candidate),
            ``"measured"`` (timed now), ``"cached"`` (timed before on this machine) or
            ``"unmeasured"`` (measuring off: the first candidate).
        reason: one line for the user.
        images_per_s: the measured images/s of each candidate (measured or cached; else empty).
        left_out: {allowed path: why this hardware does not run it}.
        machine: the fingerprint of :func:`machine`.
    """

    path: str
    how: str
    reason: str
    images_per_s: dict[str, float] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    @property
    def amp(self) -> str:
        return TRAIN_PATHS[self.path][0]

    @property
    def channels_last(self) -> bool:
        return TRAIN_PATHS[self.path][1]

    def to_dict(self) -> dict:
        return {**asdict(self), "amp": self.amp, "channels_last": self.channels_last}

    @classmethod
    def from_dict(cls, d: dict) -> "Choice":
        """The inverse of :meth:`to_dict` (as read back from metrics.json or a checkpoint)."""
        return cls(**{k: v for k, v in d.items() if k not in ("amp", "channels_last")})


def _speeds(ips: dict[str, float]) -> str:
    return ", ".join(f"{p} {v:,.0f}" for p, v in ips.items())


def choose(allowed, config: dict, measure: Callable[[str], float] | None, *, device: str = "cpu",
           amp: str | None = None, channels_last: bool | None = None,
           caps: Capabilities | None = None) -> Choice:
    """The numeric path for one model and input on this machine (see the module docstring).

    Args:
        allowed: the paths the recipe allows (keys of :data:`TRAIN_PATHS`).
        config: what the speed depends on besides the machine (model, input, width, batch, ...);
            JSON-serialisable. Part of the cache key.
        measure: ``measure(path)`` -> images/s of a few training steps in that path; ``None``: do
            not measure (the first candidate).
        device: the device trained on. caps: its capabilities (default :func:`capabilities`).
        amp, channels_last: the user's ``--amp`` / ``--channels-last``; both given: that path;
            one given: the candidates that agree with it.

    Returns:
        :class:`Choice`.

    Raises:
        NumericsError: an unknown allowed path or ``amp``.
    """
    caps = caps or capabilities(device)
    fp = machine(caps)
    if amp is not None and amp not in DTYPES:
        raise NumericsError(f"--amp {amp}: choose from {', '.join(DTYPES)}")
    kept, dropped = candidates(allowed, caps)
    flags = " ".join(f for f in (f"--amp {amp}" if amp else "",
                                 {True: "--channels-last", False: "--no-channels-last", None: ""}[channels_last]) if f)
    if amp is not None or channels_last is not None:
        agree = [p for p in kept if amp in (None, TRAIN_PATHS[p][0]) and channels_last in (None, TRAIN_PATHS[p][1])]
        if amp is not None and channels_last is not None or not agree:
            path = path_name(amp or "fp32", True if channels_last is None else channels_last)
            slow = f" ({caps.bf16_words()})" if TRAIN_PATHS[path][0] == "bf16" and not caps.bf16 else ""
            return Choice(path, "forced", f"{path}: forced by {flags}{slow}", left_out=dropped, machine=fp)
        kept = agree
    if not kept:                                   # only reduced precision allowed and none runs here
        kept = ["fp32_cl"]
    left = f"; left out: {'; '.join(f'{p} ({why})' for p, why in dropped.items())}" if dropped else ""
    given = f" with {flags}" if flags else ""
    if len(kept) == 1:
        return Choice(kept[0], "only", f"{kept[0]}: the only allowed path{given}{left}", left_out=dropped, machine=fp)
    key = {**config, "candidates": kept}
    hit = cached(fp, key)
    if hit and hit.get("path") in kept:
        return Choice(hit["path"], "cached", f"{hit['path']}: fastest of {_speeds(hit['images_per_s'])} images/s "
                      f"measured on this machine {hit.get('date', '')}{given}{left}",
                      hit["images_per_s"], dropped, fp)
    if measure is None or not measuring():
        return Choice(kept[0], "unmeasured", f"{kept[0]}: first of {', '.join(kept)} (not measured){given}{left}",
                      left_out=dropped, machine=fp)
    ips = {p: float(measure(p)) for p in kept}
    best = max(ips, key=ips.get)
    store(fp, key, best, ips)
    return Choice(best, "measured", f"{best}: fastest of {_speeds(ips)} images/s measured now{given}{left}",
                  ips, dropped, fp)


__all__ = ["TRAIN_PATHS", "DTYPES", "Capabilities", "Choice", "NumericsError", "capabilities", "candidates", "choose",
           "machine", "cache_file", "cached", "store", "path_name", "check_paths", "cpu_flags", "measuring", "unusable"]
