"""Export a model to ONNX, TorchScript or a ``torch.export`` ExportedProgram, verified before it is kept.

The file is written next to its destination, loaded back in its own runtime (ONNX Runtime,
``torch.jit.load``, ``torch.export.load``) and run on random inputs and, for a training run,
on its real test images; only when every output is within the tolerance of the eager model's
is it moved into place, with a ``FILE.json`` report (tolerance, measured max difference,
top-1 agreement) beside it. A model that does not export is searched module by module for the
deepest layer that fails on its own, and the error names it.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import CnnzooError
from ..training.checkpoint import write_json
from .source import Source, resolve_model

#: Relative tolerance on the logits, times max(1, max |eager logit|): fp32 kernels differ in
#: summation order (~1e-6 relative per layer); bf16 keeps 8 significant bits (2^-8 = 0.4%).
RTOL = {"fp32": 1e-4, "bf16": 5e-2}
#: Test images a training run's export is checked on.
REAL_IMAGES = 256

Runner = Callable[[torch.Tensor], torch.Tensor]


class ExportError(CnnzooError):
    """A model that does not export or whose export does not reproduce the eager outputs.

    Attributes:
        layer: qualified name of the deepest module that fails to export on its own (``""``: the
            top level), or ``None`` when the export ran but its outputs differ.
    """

    def __init__(self, message: str, layer: str | None = None):
        super().__init__(message)
        self.layer = layer


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and how it was checked (also saved as ``FILE.json``).

    Attributes:
        path: the exported file. format: ``"onnx"``, ``"torchscript"`` or ``"exported-program"``.
        model: the model or run exported. input_shape: (C, H, W). batch: ``"dynamic"`` or N.
        dtype: ``"fp32"`` or ``"bf16"``. tolerance: the absolute bound on |exported - eager| logits.
        max_abs_diff: the largest |exported - eager| over every check.
        checks: one dict per check: ``inputs`` ("random inputs" or "test images"), ``images``, ``batch_size``,
            ``max_abs_diff``, ``agreement`` (fraction of equal top-1 predictions).
        notes: what the export leaves out and why (e.g. GoogLeNet's auxiliary heads).
        seconds: wall time of export and verification.
        metadata: what a user of the file needs besides it (:func:`~cnnzoo.deploy.source.input_meta`:
            ``model``, ``classes``, ``input_size``, ``mean``, ``std``, ``resize``, where known); an ONNX
            file carries the same in its ``metadata_props`` (keys ``cnnzoo.*``, JSON values), which
            ``cnnzoo predict FILE.onnx`` reads.
    """

    path: str
    format: str
    model: str
    input_shape: tuple[int, int, int]
    batch: str | int
    dtype: str
    tolerance: float
    max_abs_diff: float
    checks: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# --- one writer and one loader per format ------------------------------------------------------

def _batch_dim(dynamic: bool):
    """``dynamic_shapes`` for ``torch.export`` with a free batch dimension, or ``None``."""
    return ({0: torch.export.Dim("batch", min=1, max=65536)},) if dynamic else None


def _checked_trace(model: nn.Module, x: torch.Tensor) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` with torch's own trace check: traced again on the input negated and on
    ``2x + 1``, the graphs must be equal (a Python branch on a tensor's value makes them differ)."""
    try:
        return torch.jit.trace(model, x, check_inputs=[(-x,), (2 * x + 1,)])
    except torch.jit.TracingCheckError:
        raise ExportError("the traced graph changes with the input's values (a Python branch or loop on a "
                          "tensor's value): a trace would keep one branch only") from None


def _write_onnx(model: nn.Module, x: torch.Tensor, path: str, dynamic: bool) -> None:
    # The TorchScript-based exporter first (a second or two) after a checked trace (it records
    # the same trace unchecked); where it fails (e.g. an adaptive pool after LRN with a free batch
    # size: "input size not accessible"), the torch.export-based exporter.
    _checked_trace(model, x)
    names = {"input_names": ["input"], "output_names": ["logits"]}
    try:
        torch.onnx.export(model, (x,), path, dynamo=False, **names,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None)
    except Exception as err:  # noqa: BLE001 - any failure of the old exporter: try the new one
        try:
            torch.onnx.export(model, (x,), path, dynamo=True, **names, dynamic_shapes=_batch_dim(dynamic))
        except Exception:  # noqa: BLE001
            raise err from None


def _write_onnx_meta(path: str, meta: dict) -> None:
    """Put ``meta`` into the ONNX file's ``metadata_props`` (key ``cnnzoo.KEY``, value JSON)."""
    import json

    import onnx

    from .predict import ONNX_META_PREFIX

    proto = onnx.load(path)
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props},
                                        **{ONNX_META_PREFIX + k: json.dumps(v) for k, v in meta.items()}})
    onnx.save(proto, path)


def _load_onnx(path: str) -> Runner:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: torch.from_numpy(sess.run(None, {name: x.numpy()})[0])


def _write_torchscript(model: nn.Module, x: torch.Tensor, path: str, dynamic: bool) -> None:
    torch.jit.save(_checked_trace(model, x), path)


def _load_torchscript(path: str) -> Runner:
    return torch.jit.load(path, map_location="cpu").eval()


def _write_exported_program(model: nn.Module, x: torch.Tensor, path: str, dynamic: bool) -> None:
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=_batch_dim(dynamic)), path)


def _load_exported_program(path: str) -> Runner:
    return torch.export.load(path).module()


#: format -> (file suffix, writer(model, example, path, dynamic), loader(path) -> runner)
FORMATS: dict[str, tuple[str, Callable, Callable[[str], Runner]]] = {
    "onnx": (".onnx", _write_onnx, _load_onnx),
    "torchscript": (".pt", _write_torchscript, _load_torchscript),
    "exported-program": (".pt2", _write_exported_program, _load_exported_program),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@contextlib.contextmanager
def quiet():
    """Silence the exporters' warnings, log lines and prints (C++ ones too: file descriptors 1
    and 2 go to a scratch file); their errors still propagate."""
    import sys

    logging.disable(logging.WARNING)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink, warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            warnings.simplefilter("ignore")
            yield
    finally:
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd)
            os.close(old)
        logging.disable(logging.NOTSET)


def _first_line(err: BaseException) -> str:
    lines = [s.strip() for s in str(err).splitlines() if s.strip()]
    return f"{type(err).__name__}: {lines[0][:240] if lines else ''}"


def _culprit(model: nn.Module, x: torch.Tensor, fmt: str, dynamic: bool) -> tuple[str, str, str]:
    """(qualified name, class, reason) of the deepest module that fails to export on its own.

    Each module's input is recorded in one eager pass; then the children of the failing module
    are exported one by one, descending into the first that fails. A module none of whose
    children fails is the culprit itself (its own forward code does what the exporter cannot).
    """
    write = FORMATS[fmt][1]
    inputs: dict[str, tuple] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, args, n=n: inputs.setdefault(n, args))
             for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()

    def fails(module: nn.Module, args: tuple) -> str | None:
        if len(args) != 1 or not isinstance(args[0], torch.Tensor):
            return None                         # the exporters take one tensor; cannot test alone
        with tempfile.TemporaryDirectory() as tmp, quiet():
            try:
                write(module, args[0], os.path.join(tmp, "m" + FORMATS[fmt][0]), dynamic)
            except Exception as err:  # noqa: BLE001 - every exporter failure is a finding here
                return _first_line(err)
        return None

    name, module, reason = "", model, None
    while True:
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            why = fails(child, inputs[full]) if full in inputs else None
            if why:
                name, module, reason = full, child, why
                break
        else:
            return name, type(module).__name__, reason or ""


def _notes(model: nn.Module) -> list[str]:
    """What an export of ``forward`` leaves out, and why."""
    notes = []
    if getattr(model, "aux1", None) is not None:
        notes.append("GoogLeNet's auxiliary classifiers (aux1, aux2) are not in the graph: forward() returns the "
                     "main logits in every mode, and the paper discards the aux heads at inference (Szegedy et al. "
                     "2015, Sec. 5); their weights are dropped from the file")
    if hasattr(model, "tower0") and hasattr(model, "devices"):
        notes.append(f"AlexNetTwoTower: both towers are traced into one graph; the device moves "
                     f"({model.devices[0]} -> {model.devices[1]}) are recorded as they ran, so the file runs on "
                     f"those devices only")
    return notes


def _check_out(out: Path, fmt: str) -> None:
    if out.is_dir():
        raise CnnzooError(f"--out {out} is a folder; give a file name, e.g. {out / ('model' + FORMATS[fmt][0])}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as err:
        raise CnnzooError(f"cannot write --out {out}: {err.strerror or err}; choose a writable folder") from None


def _batches(batch: str | int) -> tuple[int, tuple[int, ...]]:
    """(batch size to export with, batch sizes to verify at)."""
    if batch == "dynamic":
        return 2, (1, 3)                        # checks at sizes other than the traced one
    n = int(batch)
    if n < 1:
        raise CnnzooError(f"--batch {batch}: give 'dynamic' or a positive integer")
    return n, (n,)


def _compare(ref: torch.Tensor, got: torch.Tensor) -> tuple[float, float]:
    """(max |got - ref|, fraction of rows with the same argmax)."""
    ref, got = ref.float(), got.float()
    return float((got - ref).abs().max()), float((got.argmax(1) == ref.argmax(1)).float().mean())


@torch.no_grad()
def export_model(model: str | nn.Module | Source, format: str, out: str | os.PathLike, *,
                 input_shape: tuple[int, int, int] | None = None, batch: str | int = "dynamic",
                 dtype: str = "fp32", weights: str | None = None, data_dir: str | None = None,
                 seed: int = 0) -> ExportReport:
    """Export a model, verify the file in its own runtime, and keep it only if it matches eager.

    Args:
        model: registry name, training run folder / checkpoint, ``nn.Module`` (with
            ``input_shape``) or a :class:`~cnnzoo.deploy.source.Source`.
        format: ``"onnx"``, ``"torchscript"`` (traced) or ``"exported-program"`` (``torch.export``).
        out: the file to write; its report goes to ``out + ".json"``.
        input_shape: (C, H, W) of one image (default: the run's, or the registry's default).
        batch: ``"dynamic"`` (any batch size; checked at 1 and 3) or a fixed batch size N.
        dtype: ``"fp32"`` or ``"bf16"`` (weights and input in bfloat16; not for ONNX).
        weights: a torchvision weight file for a registry name.
        seed: of the random check inputs, N(0, 1) like normalised images.

    Returns:
        An :class:`ExportReport`; the same is written to ``out + ".json"``.

    Raises:
        CnnzooError: an unknown format or dtype, bf16 with ONNX, an unwritable ``out``.
        ExportError: the model does not export (the message names the deepest failing layer,
            its class and the exporter's reason) or the file's outputs differ from eager beyond
            the tolerance (nothing is left at ``out`` then).
    """
    if format not in FORMATS:
        raise CnnzooError(f"unknown --format {format!r}; choose one of {', '.join(FORMATS)}")
    if dtype not in DTYPES:
        raise CnnzooError(f"unknown --dtype {dtype!r}; choose fp32 or bf16")
    if format == "onnx" and dtype == "bf16":
        raise CnnzooError("--dtype bf16 with --format onnx: ONNX's Conv has no bfloat16 type (its T is float16, "
                          "float or double), so no runtime would load it; export fp32 or use --format "
                          "torchscript / exported-program")
    t0 = time.perf_counter()
    src = model if isinstance(model, Source) else resolve_model(model, input_shape, weights, data_dir)
    out = Path(out)
    _check_out(out, format)
    n_export, n_checks = _batches(batch)
    meta = {"model": src.name, **src.meta}
    suffix, write, load = FORMATS[format]
    net = copy.deepcopy(src.model).to(torch.bfloat16) if dtype == "bf16" else src.model   # the caller's stays fp32
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(n_export, *src.input_shape, generator=gen).to(DTYPES[dtype])
    tmp = out.with_name(f".{out.name}.partial{os.getpid()}{suffix}")
    try:
        try:
            with quiet():
                write(net, example, str(tmp), batch == "dynamic")
        except Exception as err:  # noqa: BLE001 - any exporter failure becomes a located ExportError
            layer, cls, why = _culprit(net, example, format, batch == "dynamic")
            where = f"layer {layer} ({cls})" if layer else f"the model's own forward ({cls})"
            raise ExportError(f"{src.name} does not export to {format}: {where}: {why or _first_line(err)}",
                              layer) from None
        if format == "onnx":                      # classes and preprocessing travel with the file
            _write_onnx_meta(str(tmp), meta)
        with quiet():
            runner = load(str(tmp))
        inputs = [("random inputs", torch.randn(n, *src.input_shape, generator=gen)) for n in n_checks]
        if src.trained:
            inputs.append(("test images", src.images("test", REAL_IMAGES // n_export * n_export or n_export)[0]))
        checks, tol = [], 0.0
        for kind, x in inputs:
            step = n_export if batch != "dynamic" else min(len(x), 64)
            x = x[:len(x) // step * step].to(DTYPES[dtype])         # whole batches only (a fixed --batch)
            ref = torch.cat([net(c) for c in x.split(step)])
            try:
                got = torch.cat([runner(c) for c in x.split(step)])
            except Exception as err:  # noqa: BLE001 - the reloaded file fails in its own runtime
                raise ExportError(f"{src.name} exported to {format}, but the file fails when run on {kind} "
                                  f"(batch {step}): {_first_line(err)}; nothing written to {out}") from None
            diff, agree = _compare(ref, got)
            tol = max(tol, RTOL[dtype] * max(1.0, float(ref.float().abs().max())))
            checks.append({"inputs": kind, "images": len(x), "batch_size": step, "max_abs_diff": diff,
                           "agreement": agree})
        worst = max(c["max_abs_diff"] for c in checks)
        if not worst <= tol:                    # also catches NaN
            raise ExportError(f"{src.name} exported to {format} but its outputs differ from eager: max |diff| "
                              f"{worst:.3g} > tolerance {tol:.3g}; nothing written to {out}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    report = ExportReport(str(out), format, src.name, tuple(src.input_shape), batch, dtype, tol, worst, checks,
                          _notes(src.model), time.perf_counter() - t0, meta)
    write_json(Path(f"{out}.json"), report.to_dict())
    return report
