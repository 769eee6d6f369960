"""The inference paths cnnzoo knows, each built by a library from an eval-mode fp32 model (on the
CPU; the PyTorch ones also on a CUDA GPU, with the model and example there).

Every builder takes ``(model, example, calibration)`` -- the model, an example batch (N, C, H, W)
and a list of calibration batches (training images, or random ones for an untrained model) --
and returns a runner ``x (N, C, H, W) float32 -> logits (N, num_classes) float32``.

========================  =====================================================================
path                      what runs
========================  =====================================================================
``eager``                 the model as built: fp32, NCHW (the baseline)
``channels_last``         fp32, model and input in NHWC memory format (oneDNN's preferred layout)
``bn_folded``             BatchNorm folded into the preceding conv (``torch.fx`` ``fuse``), NHWC
``bf16``                  ``bn_folded`` under ``torch.autocast("cpu", bfloat16)`` (AVX-512-BF16 / AMX)
``compile``               ``torch.compile`` (inductor, ``freezing``: weights constant-folded,
                          BatchNorm folded by inductor), fp32, NHWC
``compile_bf16``          ``compile`` under bf16 autocast
``ort_fp32``              ONNX Runtime, CPU provider, all graph optimisations
``ort_int8``              ONNX Runtime on a statically quantised graph (``onnxruntime.quantization``:
                          QDQ, int8 weights per channel, uint8 activations, min-max calibration)
``pt2e_int8``             torchao PT2E: ``X86InductorQuantizer`` (int8 weights per channel, uint8
                          activations), calibrated, then ``torch.compile`` with freezing
========================  =====================================================================

The ``compile*`` and ``pt2e_int8`` paths compile for minutes on a loaded 2-core machine; they are
:data:`SLOW_PATHS`, run only when asked for.
"""
from __future__ import annotations

import copy
import os
import tempfile
from typing import Callable

import torch
from torch import nn

from ..errors import CnnzooError
from .export import Runner, _batch_dim, _write_onnx, quiet

Builder = Callable[[nn.Module, torch.Tensor, list], Runner]
CL = torch.channels_last


def _no_grad(fn: Runner) -> Runner:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fn(x).float()
    return run


def _nhwc(model: nn.Module, bf16: bool = False) -> Runner:
    model = model.to(memory_format=CL)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x.contiguous(memory_format=CL))
    return _no_grad(run)


class _Logits(nn.Module):
    """``forward_head(forward_features(x))`` of a cnnzoo model, without ``forward``'s input checks
    (Python branches on the input's shape, which ``torch.fx`` cannot trace)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every eval-mode BatchNorm folded into the conv before it.

    Uses ``torch.fx.experimental.optimization.fuse`` (``torch.nn.utils.fusion.fuse_conv_bn_eval``
    on each conv -> BatchNorm pair of the traced graph): ``w' = w * gamma / sqrt(var + eps)``,
    ``b' = (b - mean) * gamma / sqrt(var + eps) + beta`` (Ioffe & Szegedy 2015, Sec. 3.2).

    Raises:
        CnnzooError: the model cannot be traced by ``torch.fx`` (the message names why).
    """
    from torch.fx.experimental.optimization import fuse

    root = _Logits(model) if hasattr(model, "forward_features") and hasattr(model, "forward_head") else model
    try:
        return fuse(torch.fx.symbolic_trace(copy.deepcopy(root).eval()))
    except Exception as err:  # noqa: BLE001 - fx tracing fails in many ways
        raise CnnzooError(f"torch.fx cannot trace {type(model).__name__}: {type(err).__name__}: "
                          f"{str(err).splitlines()[0][:200]}") from None


def _eager(model, example, calib) -> Runner:
    return _no_grad(model)


def _channels_last(model, example, calib) -> Runner:
    return _nhwc(copy.deepcopy(model))


def _bn_folded(model, example, calib) -> Runner:
    return _nhwc(fold_batchnorm(model))


def _bf16(model, example, calib) -> Runner:
    return _nhwc(fold_batchnorm(model), bf16=True)


def _frozen(module: nn.Module, example: torch.Tensor, bf16: bool = False) -> Runner:
    """``torch.compile(module)`` run under inductor's ``freezing`` (weights become constants,
    BatchNorm folds, int8 weights are pre-packed). The flag is set around every call, not through
    ``options``: a recompile (another batch size) must see it too, and torchao's int8 weight-pack
    pass runs only with the global flag ("UnsupportedOperatorException: onednn.qconv_prepack" else)."""
    import torch._inductor.config as inductor_config

    fn = _nhwc(torch.compile(module), bf16)

    def run(x: torch.Tensor) -> torch.Tensor:
        with inductor_config.patch(freezing=True):
            return fn(x)
    with quiet():
        run(example)                              # compile now, not inside the timed loop
    return run


def _compiled(model: nn.Module, example: torch.Tensor, bf16: bool) -> Runner:
    return _frozen(copy.deepcopy(model).to(memory_format=CL), example, bf16)


def _compile(model, example, calib) -> Runner:
    return _compiled(model, example, bf16=False)


def _compile_bf16(model, example, calib) -> Runner:
    return _compiled(model, example, bf16=True)


def _ort_session(path: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()    # the same cores as torch's paths
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: torch.from_numpy(sess.run(None, {name: x.contiguous().numpy()})[0])


def _onnx_file(model: nn.Module, example: torch.Tensor, folder: str) -> str:
    path = os.path.join(folder, "model.onnx")
    with quiet(), torch.no_grad():
        _write_onnx(model, example, path, dynamic=True)
    return path


def _cpu_only(example: torch.Tensor, what: str) -> None:
    if example.device.type != "cpu":
        raise CnnzooError(f"{what} runs on the CPU only")


def _ort_fp32(model, example, calib) -> Runner:
    _cpu_only(example, "ONNX Runtime's CPU provider")
    with tempfile.TemporaryDirectory() as tmp:
        return _ort_session(_onnx_file(model, example, tmp))   # the session keeps the graph in memory


def _ort_int8(model, example, calib) -> Runner:
    _cpu_only(example, "ONNX Runtime's CPU provider")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name: str):
            self.batches = iter([{name: b.numpy()} for b in calib])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = _onnx_file(model, example, tmp)
        pre, int8 = os.path.join(tmp, "pre.onnx"), os.path.join(tmp, "int8.onnx")
        with quiet():
            quant_pre_process(fp32, pre)          # shape inference + graph optimisation, as the docs advise
            quantize_static(pre, int8, Reader("input"), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return _ort_session(int8)


def _pt2e_int8(model, example, calib) -> Runner:
    _cpu_only(example, "torchao's X86InductorQuantizer")
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    with quiet(), torch.no_grad():
        # strict (dynamo) capture: the quantizer finds conv/add/relu patterns by the source_fn_stack
        # metadata that only it records ("Input partition has more than one output node" otherwise);
        # traced at batch >= 2, since torch.export specialises a batch of 1 ("Constraints violated")
        capture = example if len(example) > 1 else example.expand(2, *example.shape[1:])
        graph = torch.export.export(copy.deepcopy(model).eval(), (capture,), dynamic_shapes=_batch_dim(True),
                                    strict=True).module()
        prepared = prepare_pt2e(graph, quantizer)
        for b in calib:
            prepared(b)
        quantized = convert_pt2e(prepared)
    return _frozen(quantized, example)


#: name -> builder, in the order the benchmark reports them.
PATHS: dict[str, Builder] = {
    "eager": _eager, "channels_last": _channels_last, "bn_folded": _bn_folded, "bf16": _bf16,
    "compile": _compile, "compile_bf16": _compile_bf16, "ort_fp32": _ort_fp32, "ort_int8": _ort_int8,
    "pt2e_int8": _pt2e_int8,
}
#: Paths that compile with inductor (minutes for a ResNet-50 on 2 loaded cores).
SLOW_PATHS = ("compile", "compile_bf16", "pt2e_int8")
#: Paths that need calibration images (statically quantised: validated on a trained model's data).
CALIBRATED_PATHS = ("ort_int8", "pt2e_int8")
#: The autocast precision of each path that is not float32 (where it runs well: :mod:`cnnzoo.numerics`).
PRECISION = {"bf16": "bf16", "compile_bf16": "bf16"}
#: What ``bench`` runs without ``--paths`` (less any this CPU does not run well: :func:`usable_paths`).
DEFAULT_PATHS = tuple(p for p in PATHS if p not in SLOW_PATHS)


def timing_paths() -> list[str]:
    """The paths ``compare`` times to find a model's fastest: every path of :data:`PATHS` that
    builds in seconds and needs no calibration, less those this CPU does not run well
    (:func:`usable_paths`). A path added to :data:`PATHS` is among them unless it is listed in
    :data:`SLOW_PATHS` or :data:`CALIBRATED_PATHS`."""
    return usable_paths([p for p in PATHS if p not in SLOW_PATHS and p not in CALIBRATED_PATHS])[0]


def usable_paths(names, device: str = "cpu") -> tuple[list[str], dict[str, str]]:
    """The paths of ``names`` that this device runs well, and {left-out path: why}: a bf16 path only
    with native bf16 (:func:`cnnzoo.numerics.unusable`), the rule training's numerics follow."""
    from ..numerics import capabilities, unusable

    why = {n: unusable(PRECISION.get(n, "fp32"), capabilities(device)) for n in names}
    return [n for n in names if why[n] is None], {n: w for n, w in why.items() if w is not None}


def select_paths(spec: str | list[str] | None, device: str = "cpu") -> tuple[list[str], dict[str, str]]:
    """The paths to run and {default path left out: why}.

    ``None`` / ``"default"`` -> :data:`DEFAULT_PATHS` less the ones ``device`` does not run well
    (:func:`usable_paths`, said in the second value); ``"all"`` -> every path; else a comma list,
    run as asked. ``eager`` (the baseline) is always first.

    Raises:
        CnnzooError: an unknown path name.
    """
    left: dict[str, str] = {}
    if spec in (None, "default"):
        names, left = usable_paths(DEFAULT_PATHS, device)
    elif spec == "all":
        names = list(PATHS)
    else:
        names = spec.split(",") if isinstance(spec, str) else list(spec)
        bad = [n for n in names if n not in PATHS]
        if bad:
            raise CnnzooError(f"unknown --paths {', '.join(bad)}; choose from {', '.join(PATHS)}, 'default' or 'all'")
    return ["eager", *[n for n in dict.fromkeys(names) if n != "eager"]], left
