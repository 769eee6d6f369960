"""Deploy a model: verified export (ONNX, TorchScript, ExportedProgram) and the inference paths of this CPU.

    export_model(model_or_run, format, out, input_shape=None, batch="dynamic", dtype="fp32") -> ExportReport
    bench(model_or_run, batch_size=16, input_shape=None, paths=None) -> list[PathResult]
    fastest_validated_path(run) -> (path name, why)
    predict(run | name + weights | FILE.onnx, images, topk=5, weights=None) -> list[dict]
"""
from .bench import PathResult, bench, fastest_validated_path, validated_runner
from .export import FORMATS, ExportError, ExportReport, export_model
from .paths import DEFAULT_PATHS, PATHS, SLOW_PATHS, fold_batchnorm
from .predict import predict
from .source import Source, resolve_model

__all__ = ["export_model", "ExportReport", "ExportError", "FORMATS", "bench", "PathResult",
           "fastest_validated_path", "validated_runner", "PATHS", "DEFAULT_PATHS", "SLOW_PATHS", "fold_batchnorm",
           "Source", "resolve_model", "predict"]
