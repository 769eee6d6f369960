"""One model argument for every command: a registry name, ``FILE.py:FACTORY``, or a run.

Every command that takes a model (``summary``, ``train``, ``compare --models``, ``eval``,
``predict``, and later ``draw``, ``export``, ``bench``) passes its argument to
:func:`resolve_model`, which accepts three forms:

``NAME``
    a registry name (``cnnzoo list``), built by :func:`cnnzoo.create_model`. Options left at
    ``None`` take the paper's values: ``lenet5_modern`` is 10 classes of 1x28x28 images, as
    ``cnnzoo list`` counts it.
``FILE.py:FACTORY``
    a function, ``nn.Module`` class or ``nn.Module`` instance named ``FACTORY`` in a Python
    file. The file's folder is put first on ``sys.path`` before it is imported, as ``python
    FILE.py`` does, so it may import modules beside it (``from blocks import block``). The
    factory is called with those of ``num_classes``, ``in_chans``, ``width`` and the extra
    keyword arguments that its signature takes; an option it does not take must already hold in
    the model it builds (its ``num_classes``/``in_chans`` attribute, else its last
    ``nn.Linear`` / first ``nn.Conv2d``), else a one-line error says to add the parameter.
``RUN`` or ``RUN/checkpoint.pt``
    a run folder of ``cnnzoo train`` or its checkpoint: the model it trained (registry name or
    model file, with the run's class count, channels and builder options) with its weights
    (wrapper prefixes stripped, :func:`~cnnzoo.models._weights.load_state_dict`), at the input
    size it was trained at. Its configuration is fixed: ``num_classes``, ``in_chans`` and
    ``width`` may not be given.

Usage::

    from cnnzoo.resolve import resolve_model
    r = resolve_model("lenet5_modern")                  # 10 classes, 1x28x28: 61,706 parameters
    r = resolve_model("net.py:build", num_classes=10, in_chans=1)
    r = resolve_model("runs/lenet5_modern-fashion-mnist-seed0")   # trained weights, eval mode
    r.model, r.description, r.input_size, r.checkpoint

A new command takes the argument with ``add_model_argument(parser)`` for its help text,
calls :func:`resolve_model` (with ``meta=True`` when it only needs shapes) and prints
``r.description`` so the user sees which configuration it used. :func:`model_kind` tells the
form without building anything (``train`` uses it to refuse a run without ``--resume``).

Runs are loaded here too: :func:`load_run` (a run only, as a :class:`ResolvedModel`),
:func:`load_model` (its model and checkpoint dict) and :func:`run_data` (its data set as its
training read it), for ``eval``, ``predict``, ``draw``, ``export``/``bench``, compare and the
experiments.
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ._io import CheckpointError, load_checkpoint, planned_epochs
from ._text import plural
from .data import load_dataset
from .errors import CnnzooError, UnknownModelError

#: What the argument may be, for help texts and error messages.
FORMS = "a registry name (cnnzoo list), FILE.py:FACTORY, or a run folder / checkpoint.pt"


class ModelLoadError(CnnzooError, ValueError):
    """A model argument that cannot be turned into a model: a model file that is missing, fails
    to import, lacks the factory or whose factory does not build an ``nn.Module``; a run without a
    checkpoint; options that a run or a factory cannot take. The message names the file."""


@dataclass
class ResolvedModel:
    """What :func:`resolve_model` returns.

    Attributes:
        model: the ``nn.Module`` (a run's: in eval mode with its trained weights; with
            ``meta=True`` on the meta device and without weights).
        description: one line naming the model and the configuration used, e.g.
            ``lenet5_modern (registry): 10 classes, 1 input channel, width 1, input 1x28x28``.
        kind: ``"registry"``, ``"file"`` or ``"run"``.
        spec: the model as a run records it: the registry name, or ``/abs/path/FILE.py:FACTORY``
            (a run: its recorded model).
        num_classes, in_chans: as built (``None`` where a model file's model does not say).
        input_size: (C, H, W) to profile or feed it at: the paper's default input for a registry
            name, the model's ``default_input_size`` (else in_chans x 224 x 224) for a file, the
            trained input for a run.
        model_kwargs: the builder keyword arguments used (``width`` included when not 1).
        checkpoint: a run's checkpoint dict (no optimizer state); ``None`` otherwise.
    """

    model: nn.Module
    description: str
    kind: str
    spec: str
    num_classes: int | None
    in_chans: int | None
    input_size: tuple[int, int, int]
    model_kwargs: dict = field(default_factory=dict)
    checkpoint: dict | None = None


def run_folder(run: str | os.PathLike) -> Path:
    """The folder of a run given as its folder or as its ``checkpoint.pt`` (where metrics.json,
    eval.json and the drawings go)."""
    path = Path(run)
    return path if path.is_dir() else path.parent


def model_kind(arg: str) -> str:
    """``"registry"``, ``"file"`` or ``"run"`` for a model argument, without building it.

    Raises:
        ModelLoadError: ``FILE.py`` without ``:FACTORY`` (the message lists the file's top-level
            functions and classes), or a ``.py`` file that does not exist.
        UnknownModelError: none of the three forms; lists close registry names and the forms.
    """
    from .registry import list_models

    arg = str(arg)
    if arg in list_models():
        return "registry"
    path, sep, factory = arg.rpartition(":")
    if sep and path.endswith(".py"):
        return "file"
    if arg.endswith(".py"):
        raise ModelLoadError(_factory_hint(Path(arg)))
    if Path(arg).is_dir() or (Path(arg).is_file() and not arg.endswith(".py")):
        return "run"
    if "/" in arg or os.sep in arg or arg.endswith(".pt"):   # meant as a path: say so, not "unknown model"
        raise UnknownModelError(f"{arg}: no such run folder or checkpoint file (a model is {FORMS})")
    try:
        from .registry import _lookup

        _lookup(arg)                                   # raises with the close matches
    except UnknownModelError as err:
        raise UnknownModelError(f"{err} (a model is {FORMS})") from None
    return "registry"  # pragma: no cover - _lookup always raises here


def _top_level_names(file: Path) -> list[str]:
    """The functions and classes a Python file defines at top level (read, not run)."""
    try:
        tree = ast.parse(file.read_text(), str(file))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def _factory_hint(file: Path) -> str:
    if not file.is_file():
        return f"{file}: no such file (a model file is given as FILE.py:FACTORY)"
    names = _top_level_names(file)
    there = f"; top-level functions and classes there: {', '.join(names)}" if names else ""
    return f"{file}: name the function or class that builds the model, as {file}:{names[0] if names else 'build'}{there}"


def canonical_spec(arg: str) -> str:
    """The model argument as a run records it: a registry name unchanged, ``FILE.py:FACTORY``
    with the file's absolute path (so the run can be evaluated from any folder), a run as given."""
    if model_kind(arg) != "file":
        return str(arg)
    path, _, factory = str(arg).rpartition(":")
    return f"{Path(path).resolve()}:{factory}"


def model_label(spec: str) -> str:
    """A short name for folders and tables: the registry name, or ``FILE-FACTORY`` (``net-build``)."""
    path, sep, factory = str(spec).rpartition(":")
    return f"{Path(path).stem}-{factory}" if sep and path.endswith(".py") else str(spec)


_MODULES: dict[tuple[str, float], object] = {}      # (absolute path, mtime) -> imported module


def _import_file(file: Path):
    """Import a model file as ``python FILE.py`` would see its imports (its folder first on sys.path)."""
    if not file.is_file():
        raise ModelLoadError(f"{file}: no such file")
    key = (str(file.resolve()), file.stat().st_mtime)
    if key in _MODULES:
        return _MODULES[key]
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"_cnnzoo_user_{file.stem}_{len(_MODULES)}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module                       # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - a user's file may raise anything
        del sys.modules[name]
        raise ModelLoadError(f"{file}: import failed: {type(err).__name__}: {err}") from err
    _MODULES[key] = module
    return module


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _built(model: nn.Module, what: str) -> int | None:
    """The class count or input channels a model says it has (attribute, else its layers)."""
    if isinstance(getattr(model, what, None), int):
        return getattr(model, what)
    if what == "num_classes":
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
        return last[0].out_features if last else None
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first else None


def _build_from_file(spec: str, options: dict) -> tuple[nn.Module, dict]:
    """Call ``FACTORY`` with the options its signature takes; check the others hold."""
    path, _, factory = spec.rpartition(":")
    file = Path(path)
    fn = getattr(_import_file(file), factory, None)
    if fn is None:
        names = _top_level_names(file)
        raise ModelLoadError(f"{file}: has no {factory!r}"
                             + (f"; top-level functions and classes there: {', '.join(names)}" if names else ""))
    if isinstance(fn, nn.Module):
        model, passed = fn, {}
    else:
        passed = {k: v for k, v in options.items() if _accepts(fn, k)}
        try:
            model = fn(**passed) if callable(fn) else fn
        except Exception as err:  # noqa: BLE001
            raise ModelLoadError(f"{file}:{factory}() raised {type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{file}:{factory} is not a model: it gives {type(model).__name__}, not an nn.Module")
    for key, want in options.items():
        have = _built(model, key) if key in ("num_classes", "in_chans") else None
        if key in passed or have == want:
            continue
        built = f" and builds {have}" if have is not None else ""
        raise ModelLoadError(f"{file}:{factory} takes no {key} argument{built}; {want} is needed here: "
                             f"add a {key} parameter to {factory}")
    return model, passed


def resolve_model(arg: str, *, num_classes: int | None = None, in_chans: int | None = None,
                  width: float | None = None, model_kwargs: dict | None = None,
                  input_size: int | None = None, meta: bool = False) -> ResolvedModel:
    """Build the model a command was given; see the module docstring for the three forms.

    Args:
        arg: registry name, ``FILE.py:FACTORY``, or a run folder / ``checkpoint.pt``.
        num_classes, in_chans: size of the logits and input channels; ``None``: the paper's for a
            registry name, the factory's own defaults for a file, the run's for a run.
        width: channel multiplier (builder kwarg ``width``); ``None``: the builder's (1.0).
        model_kwargs: further builder keyword arguments (``norm``, ``aux_logits``, ...).
        input_size: the square side the command feeds the model (``train``: its ``--input-size``);
            ``None``: the default input (see :class:`ResolvedModel`). Sets ``input_size`` and the
            description; not with a run.
        meta: build on the meta device (no memory, no arithmetic: for shapes and counts); a run's
            weights are then not loaded. Model files are built on the CPU either way.

    Returns:
        A :class:`ResolvedModel`.

    Raises:
        UnknownModelError: not a registry name, model file or run; close names are listed.
        ModelLoadError: a model file or factory that fails (see :class:`ModelLoadError`), or
            options given with a run.
        CheckpointError: a run whose checkpoint is missing or unreadable.
        WeightsMismatchError: a checkpoint whose weights do not fit its recorded model.
    """
    kind = model_kind(arg)
    opts = {"num_classes": num_classes, "in_chans": in_chans, "width": width, "input_size": input_size,
            **(model_kwargs or {})}
    opts = {k: v for k, v in opts.items() if v is not None}
    side = opts.pop("input_size", None)
    hw = lambda default: (side, side) if side is not None else tuple(default)  # noqa: E731
    if kind == "run":
        return _resolve_run(str(arg), {**opts, **({"input_size": side} if side is not None else {})}, meta)
    if kind == "registry":
        from .registry import _lookup, create_model

        info = _lookup(arg)                    # the paper's classes and input (no min-size probe)
        nc = info.num_classes if num_classes is None else num_classes
        ch = info.default_input_size[0] if in_chans is None else in_chans
        kwargs = {k: v for k, v in opts.items() if k not in ("num_classes", "in_chans")}
        if kwargs.get("width") == 1.0:
            kwargs.pop("width")
        with torch.device("meta") if meta else contextlib.nullcontext():
            model = create_model(arg, num_classes=nc, in_chans=ch, **kwargs)
        size = (ch, *hw(info.default_input_size[1:]))
        return ResolvedModel(model, _describe(f"{arg} (registry)", nc, ch, kwargs, size), kind, str(arg), nc, ch,
                             size, kwargs)
    spec = canonical_spec(arg)
    if opts.get("width") == 1.0:
        opts.pop("width")
    model, passed = _build_from_file(spec, opts)
    nc, ch = _built(model, "num_classes"), _built(model, "in_chans")
    c0, *default_hw = getattr(model, "default_input_size", None) or (3, 224, 224)
    size = (ch or c0, *hw(default_hw))
    kwargs = {k: v for k, v in passed.items() if k not in ("num_classes", "in_chans")}
    return ResolvedModel(model, _describe(f"{arg} (model file)", nc, ch, kwargs, size), kind, spec, nc, ch,
                         size, kwargs)


def _describe(what: str, nc, ch, kwargs: dict, size) -> str:
    """``what: 10 classes, 1 input channel, width 1, norm=True, input 1x28x28``."""
    extra = "".join(f", {k}={v!r}" for k, v in kwargs.items() if k != "width")
    classes = plural(nc, "class", "classes") if nc is not None else "classes as built"
    chans = f"{ch} input channel{'s' if ch != 1 else ''}" if ch is not None else "input channels as built"
    return (f"{what}: {classes}, {chans}, width {kwargs.get('width', 1):g}{extra}, "
            f"input {'x'.join(map(str, size))}")


def _resolve_run(arg: str, opts: dict, meta: bool) -> ResolvedModel:
    from .models._weights import load_state_dict

    if opts:
        raise ModelLoadError(f"{arg} is a trained run: its model is fixed; drop "
                             + ", ".join(f"--{k.replace('_', '-')}" for k in opts))
    path = Path(arg)
    ck = load_checkpoint(path)
    ck.pop("optimizer", None)
    inner = resolve_model(ck["model"], num_classes=ck["num_classes"], in_chans=ck["in_chans"],
                          model_kwargs=ck["model_kwargs"], meta=meta and model_kind(ck["model"]) == "registry")
    model = inner.model
    if not (meta and inner.kind == "registry"):
        load_state_dict(model, ck["state_dict"], str(path))
    ch, s = ck["in_chans"], ck["input_size"]
    epochs, planned = ck["config"].get("epochs"), planned_epochs(ck)
    done = f"{ck['epoch']} of {epochs} epochs" + (", early stop" if planned != epochs else
                                                  ", unfinished" if ck["epoch"] < (epochs or 0) else "")
    what = f"{arg} (run of {model_label(ck['model'])} on {ck['dataset']}, {done})"
    return ResolvedModel(model.eval(), _describe(what, ck["num_classes"], ch, inner.model_kwargs, (ch, s, s)),
                         "run", ck["model"], ck["num_classes"], ch, (ch, s, s), inner.model_kwargs, ck)


def run_data(ck: dict, data_dir: str | None = None, dataset: str | None = None, workers: int | None = None):
    """The data set of a run's checkpoint ``ck``, read as its training read it: the folder it
    recorded (unless ``data_dir`` names another, or ``dataset`` another data set), converted to its
    channels and, for an image folder, resized to its input size, in memory or streamed as training
    read it (``workers``: a stream's decoding processes). Used by ``eval``, ``bench``/``export``,
    ``explain`` and compare's fast-path check; its parts are :class:`~cnnzoo.data.source.ImageSource` s.

    Raises:
        DataFileError: the data are missing or unreadable (names the file and how to get it).
    """
    cfg, same = ck.get("config") or {}, dataset in (None, ck["dataset"])
    if same:
        data_dir = data_dir or cfg.get("data_dir")
    folder = {}                             # the run's own folder: split, labelled and cleaned as training did
    if same and ck["dataset"] == "folder" and data_dir == cfg.get("data_dir"):
        folder = {"split": cfg.get("split"), "seed": cfg.get("seed", 0), "labels": cfg.get("labels"),
                  "skip_bad": cfg.get("skip_bad_images", False), "mode": cfg.get("data_mode") or "auto"}
    from .data.preprocess import run_preprocess        # the resize rule of the weights the run started from

    return load_dataset(dataset or ck["dataset"], data_dir, channels=ck["in_chans"], size=ck["input_size"],
                        resize=run_preprocess(ck).resize(ck["input_size"]), workers=workers, **folder)


def load_run(checkpoint: str | os.PathLike) -> ResolvedModel:
    """The trained model of a run folder or ``checkpoint.pt`` (eval mode, fp32, CPU), with its
    description (:func:`resolve_model` of the run).

    Raises:
        CheckpointError: missing or corrupt checkpoint, or a model name or file given instead.
        WeightsMismatchError: weights that do not fit the recorded model (a few lines: counts,
            names, likely cause).
    """
    arg = str(checkpoint)
    if not Path(arg).exists():
        try:
            kind = model_kind(arg)
        except CnnzooError:
            kind = None
        if kind is not None:
            raise CheckpointError(f"{arg} is a model, not a trained run: give a run folder or its checkpoint.pt "
                                  f"(train one with: cnnzoo train {arg})")
        raise CheckpointError(f"missing checkpoint {arg}")
    if Path(arg).suffix == ".py":
        raise CheckpointError(f"{arg} is a model file, not a trained run: give a run folder or its checkpoint.pt")
    return resolve_model(arg)


def load_model(checkpoint: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint (eval mode, fp32, CPU); see :func:`load_run`.

    Returns:
        (model, checkpoint dict without tensors of the optimizer).
    """
    r = load_run(checkpoint)
    return r.model, r.checkpoint


def add_model_argument(parser, name: str = "model", help_prefix: str = "") -> None:
    """Add the positional model argument with the standard help text."""
    parser.add_argument(name, help=f"{help_prefix}{FORMS}")
