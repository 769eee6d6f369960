#!/usr/bin/env bash
# The GPU check of issue 22, a few minutes on one CUDA GPU: ResNet-50 training steps (224x224, batch
# 64) in each numeric path and the path `cnnzoo train` chooses there, then `cnnzoo bench resnet50`
# on the GPU. Prints the GPU, images/s per path and the chosen path. Run from the checkout:
#
#     bash benchmarks/gpu_check.sh            # PYTHON=... to use another interpreter
#
# The training images are 128 random images the script writes (2 classes, an image folder), so it
# needs no data set; the figures are speed only.
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export CNNZOO_CACHE="$TMP/cache"          # measured now, not read from an older cache

"$PY" - "$TMP" <<'PY'
import os, sys
import numpy as np
import torch
from PIL import Image

from cnnzoo import numerics
from cnnzoo.training import TrainConfig, Trainer

tmp = sys.argv[1]
assert torch.cuda.is_available(), "no CUDA device: this check is for a GPU"
rng = np.random.default_rng(0)
for split, n in (("train", 128), ("test", 16)):
    for k in range(2):
        os.makedirs(f"{tmp}/photos/{split}/c{k}", exist_ok=True)
        for i in range(n // 2):
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(f"{tmp}/photos/{split}/c{k}/{i}.png")
caps = numerics.capabilities("cuda")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {caps.name} ({caps.isa}), {caps.bf16_words()}")
opts = dict(model="resnet50", dataset="folder", data_dir=f"{tmp}/photos", input_size=224, width=1.0, batch_size=64,
            epochs=1, limit_test=16, device="cuda", numerics=list(numerics.TRAIN_PATHS))
half = "bf16_cl" if caps.bf16 else "fp16_cl"
tr = Trainer(TrainConfig(**opts, amp="fp32", channels_last=True), f"{tmp}/forced", progress=False)
for path in ("fp32", "fp32_cl", half):
    print(f"resnet50 training step, batch 64, 224x224, {path:<8} {tr.measure_numerics(path, steps=10):8.0f} images/s")
chosen = Trainer(TrainConfig(**opts), f"{tmp}/chosen", progress=False).numerics
print(f"cnnzoo train chooses: {chosen.reason}")
PY

"$PY" -m cnnzoo bench resnet50 --device cuda --batch-size 64 --rounds 5 --paths eager,channels_last,bn_folded,bf16
