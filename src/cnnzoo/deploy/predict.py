"""``cnnzoo predict``: the top-k classes of image files, from a training run, a torchvision weight
file or a cnnzoo ONNX export.

Every form reads an image the same way (:func:`cnnzoo.data.read_image`: as a viewer shows it, then
the shorter side resized and the centre square cut) and normalises it with the statistics its
weights expect (:mod:`cnnzoo.data.preprocess`):

* a run: its recorded preprocessing (its training set's, or the pretrained weights' it started
  from), on the fastest inference path ``cnnzoo bench`` validated;
* a registry name with ``weights``, a torchvision file: torchvision's metadata for those weights
  (offline): the ImageNet class names (``Weights.meta["categories"]``) and ``Weights.transforms()``
  (shorter side to 256, centre 224 crop, ImageNet mean and std), so the top-5 equals torchvision's;
* ``FILE.onnx`` exported by ``cnnzoo export``: the classes, input size, mean, std and resize rule
  in its ``metadata_props`` (:data:`ONNX_META_PREFIX`), run in ONNX Runtime.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import CnnzooError

#: Key prefix of cnnzoo's entries in an ONNX file's ``metadata_props`` (values are JSON).
ONNX_META_PREFIX = "cnnzoo."


def onnx_meta(path: str | os.PathLike) -> dict:
    """The :func:`~cnnzoo.deploy.source.input_meta` an ONNX export of cnnzoo carries, read with
    ONNX Runtime's ``custom_metadata_map``.

    Raises:
        CnnzooError: the file is not a loadable ONNX model, or carries no cnnzoo metadata
            (an ONNX file not exported by cnnzoo, or by a version before it wrote them).
    """
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - any ONNX Runtime failure: the user's file
        raise CnnzooError(f"{path} is not an ONNX model ONNX Runtime can load: {str(err).splitlines()[0]}") from None
    props = sess.get_modelmeta().custom_metadata_map
    meta = {k[len(ONNX_META_PREFIX):]: json.loads(v) for k, v in props.items() if k.startswith(ONNX_META_PREFIX)}
    if "mean" not in meta:
        raise CnnzooError(f"{path} carries no cnnzoo metadata (classes, input size, mean, std): export it with "
                          "cnnzoo export RUN --format onnx, or predict with the run itself")
    name = sess.get_inputs()[0].name
    meta["runner"] = lambda x: torch.from_numpy(sess.run(None, {name: x.numpy()})[0])
    return meta


def _source(model: str, weights: str | None):
    """(runner, meta, description, path name, why) of a predict argument."""
    from .source import resolve_model

    if str(model).endswith(".onnx"):
        if weights is not None:
            raise CnnzooError(f"--weights is for a registry name; {model} is an ONNX file with its own weights")
        if not Path(model).is_file():
            raise CnnzooError(f"ONNX file not found: {model}")
        meta = onnx_meta(model)
        return meta.pop("runner"), meta, f"{model} (ONNX export of {meta.get('model', '?')})", "onnx", "an ONNX file"
    from ..resolve import model_kind

    kind = model_kind(str(model))
    if kind == "run":
        from ..data.preprocess import run_preprocess
        from ..resolve import resolve_model as resolve
        from .bench import validated_runner
        from .source import input_meta

        r = resolve(model)
        run, path, why = validated_runner(model, r.model, r.checkpoint)     # the fastest validated path
        return run, input_meta(r.checkpoint["classes"], r.input_size, run_preprocess(r.checkpoint)), \
            r.description, path, why
    if weights is None:
        raise CnnzooError(f"{model} is a {kind} model with fresh weights: give a run, a FILE.onnx export, or "
                          f"--weights FILE (a torchvision weight file for a registry name)")
    src = resolve_model(model, weights=weights)
    return src.model, src.meta, f"{model} with torchvision weights {weights}", "eager", "a weight file"


@torch.no_grad()
def predict(model: str | os.PathLike, images: list[str | os.PathLike], topk: int = 5,
            weights: str | os.PathLike | None = None) -> list[dict]:
    """Classify image files (PNG/JPEG/..., any size and mode).

    Each image is read as an image viewer shows it (EXIF orientation applied, first frame,
    transparency over white: :func:`cnnzoo.data.open_image`), converted to the model's channels,
    its shorter side resized (to the input size S, or by the weights' rule, e.g. 256 for 224) and
    the centre S x S square cut (torchvision's ``Resize`` + ``CenterCrop``: the aspect ratio is
    kept), then normalised with the mean and std the weights expect. Note that Fashion-MNIST images
    are light objects on a black background; a photo on a white background looks different to the model.

    Args:
        model: a run folder / ``checkpoint.pt`` (run on its fastest inference path validated by
            ``cnnzoo bench``, agreement with eager fp32 >= 99.5%, else eager fp32); a registry name
            with ``weights`` (a torchvision file: torchvision's class names and transform); or a
            ``FILE.onnx`` exported by cnnzoo (its metadata; ONNX Runtime).
        images: image files. topk: classes per image (at most the class count).

    Returns:
        one dict per image: ``image`` (path), ``top`` ([(class name, probability), ...],
        ``topk`` entries, most likely first), ``path`` (the inference path), ``path_why`` and
        ``description`` (the model in one line).

    Raises:
        CheckpointError, DataFileError: missing/corrupt checkpoint, weight file or image.
        CnnzooError: a model with fresh weights, an ONNX file without cnnzoo's metadata.
    """
    from ..data import read_image, to_input

    run, meta, description, path_name, why = _source(str(model), None if weights is None else str(weights))
    c, s = meta["input_size"][0], meta["input_size"][-1]
    classes = meta.get("classes")
    name = (lambda i: classes[i]) if classes else (lambda i: f"class {i}")  # noqa: E731
    results = []
    for path in images:
        x = read_image(Path(path), c, s, resize=meta.get("resize"))[None]        # (1, C, S, S) uint8
        probs = run(to_input(x, s, meta["mean"], meta["std"])).float().softmax(1)[0]
        p, idx = probs.topk(min(topk, len(probs)))
        results.append({"image": str(path), "top": [(name(i), float(q)) for q, i in zip(p, idx.tolist())],
                        "path": path_name, "path_why": why, "description": description})
    return results
