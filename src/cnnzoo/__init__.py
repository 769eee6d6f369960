"""cnnzoo: the classic CNN architectures of CS231n Lecture 9, faithful, measured and compared.

Public API::

    create_model(name, num_classes=None, in_chans=None, **kwargs) -> nn.Module  (None: the paper's)
    list_models(pattern=None) -> list[str]
    model_info(name) -> ModelInfo
    resolve_model(arg, num_classes=None, in_chans=None, width=None) -> ResolvedModel
        (arg: registry name, FILE.py:FACTORY, or a run folder / checkpoint; docs/zoo-contract.md)
    load_run(run) -> ResolvedModel; load_model(run) -> (nn.Module, checkpoint dict)   (a trained run)
    export_model(model_or_run, format, out, ...) -> ExportReport    (verified ONNX / TorchScript / ExportedProgram)
    bench(model_or_run, batch_size=16, paths=None) -> list[PathResult]  (every CPU inference path, validated)
    explain(model_or_run, images, method="gradcam", ...) -> list[dict]  (occlusion / Grad-CAM / saliency maps)
"""
from .errors import CnnzooError, DataFileError, InputShapeError, InputTooSmallError, UnknownModelError
from .registry import ModelInfo, create_model, list_models, model_info
from .training import evaluate, train
from .analysis import Profile, profile
from .compare import compare
from .models._torchvision import load_torchvision_weights
from .draw import draw
from .explain import explain
from .models._weights import WeightsMismatchError
from .resolve import ModelLoadError, ResolvedModel, load_model, load_run, resolve_model
from .deploy import bench, export_model

__version__ = "0.1.0"
__all__ = [
    "create_model", "list_models", "model_info", "ModelInfo",
    "train", "evaluate", "load_torchvision_weights", "profile", "Profile", "compare", "draw", "explain",
    "export_model", "bench", "resolve_model", "ResolvedModel", "load_run", "load_model", "ModelLoadError",
    "WeightsMismatchError",
    "CnnzooError", "UnknownModelError", "InputShapeError", "InputTooSmallError", "DataFileError",
]
