"""Per-model training defaults for Fashion-MNIST on a 2-core CPU: one table, data not code.

Each row keeps the lecture model's topology (layer sequence, kernel sizes, strides) and
shrinks only what 2 CPU cores cannot afford: the input side (``input_size``, Fashion-MNIST's
28x28 images resized to it) and the channel count (``width`` multiplier). Both are written
next to every result (metrics.json, the results table).

Rows are matched by shell-style pattern, first match wins; fields missing in a row come from
``DEFAULT``. A :class:`~cnnzoo.training.config.TrainConfig` field set by the user always wins.

Fields:
    input_size: side of the square model input, pixels (at least the model's minimum).
    width: channel multiplier passed as ``width=`` to the builder (1.0 = paper).
    epochs, batch_size: training length and per-step batch.
    lr: peak learning rate of the schedule; optimizer: "sgd" (Nesterov, momentum 0.9) or "adamw".
    weight_decay: on conv/linear weights only (not on biases and norm parameters).
    schedule: "cosine" or "linear" decay to zero after ``warmup_epochs`` of linear warm-up, or "constant".
    label_smoothing: cross-entropy label smoothing (Szegedy et al. 2016, Sec. 7).
    pad, flip: random crop with this padding and random horizontal flip (batched, on tensors).
    erase: probability of random erasing (Zhong et al. 2020), after crop and flip; 0 = off.
    ema: decay of the exponential moving average of the weights that is evaluated and saved; 0 = off.
    numerics: the numeric paths the recipe may use (:data:`cnnzoo.numerics.TRAIN_PATHS`: ``fp32``,
        ``fp32_cl``, ``bf16_cl``, ``fp16_cl``). Which one a run uses is chosen on the machine it runs
        on (:func:`cnnzoo.numerics.choose`: bf16 only with native bf16, then the fastest measured);
        reduced precision is listed only where twin runs kept the accuracy (below).
    model_kwargs: builder keyword arguments (e.g. ``{"init": "torch"}``), under the user's own.
"""
from __future__ import annotations

import fnmatch

DEFAULT: dict = {
    "input_size": 32, "width": 1.0, "epochs": 10, "batch_size": 128, "lr": 0.05,
    "optimizer": "sgd", "weight_decay": 5e-4, "schedule": "cosine", "warmup_epochs": 0.5,
    "label_smoothing": 0.1, "pad": 2, "flip": True, "erase": 0.0, "ema": 0.0,
    "numerics": ("fp32_cl", "fp32"),
}
# Label smoothing 0.1 and the cosine schedule are measured on LeNet-5 (modern) only, 3 seeds
# (`python benchmarks/twins.py lenet5_modern --vary label_smoothing 0 0.1 --seeds 0 1 2`, and
# `--vary schedule cosine linear`; README): +0.15 points over no smoothing, linear -0.14 vs cosine.
# Speed defaults, measured as images/s of one training step at each recipe's size on a 2-core
# AVX-512/AMX CPU (`python benchmarks/train_step_paths.py --threads 1`; the README quotes its last
# output): channels_last was faster than fp32 for 9 of the 10 recipes (1.1-1.9x; AlexNet 0.95x,
# 1.11x in the run before). bf16 autocast + channels_last was faster again for most (e.g. CIFAR
# ResNet-20 781 vs 398 img/s, VGG-16 2,340 vs 1,668) but not for GoogLeNet (equal) and the
# width-0.25 ResNet-18/50 (0.93x, 0.67x). bf16 is allowed where full runs with it reached the
# accuracies in the README (CIFAR ResNet-20, VGG-16, ZFNet). Equal accuracy is measured for CIFAR
# ResNet-20 (`python benchmarks/twins.py cifar_resnet20 --seeds 0 1 --epochs 3`: bf16 -0.01
# points, 1.8x faster per epoch) and VGG-16 (`twins.py vgg16 --seeds 0 1 --epochs 3`: +0.65 points, 1.2x);
# ZFNet's twins lose accuracy in bf16 (`twins.py zfnet --seeds 0 --epochs 2`: -0.36 points; two seeds of
# 4 epochs: -0.15 points, 1.06x faster); it keeps bf16 only until the comparison's ZFNet row is retrained
# in fp32 (README, Benchmarks). These recipes *allow* bf16; a machine without native bf16 (AVX2: bf16
# emulated, 9-13x slower than fp32 channels_last on an AMD EPYC) trains them in fp32, and their
# accuracy does not depend on bf16: the twins above put bf16 within one point of fp32 either way. fp16 (GPUs without bf16,
# with a gradient scaler) is allowed with bf16 but has no twin run yet. LeNet-5 (modern) keeps fp32: its twin run
# (`python benchmarks/twins.py lenet5_modern --seeds 0 1 2`, README) lost 0.21 points of top-1 in
# bf16 on average and no epoch time. The width-0.25 ImageNet ResNets keep fp32 until their twin run.
_BF16 = {"numerics": ("bf16_cl", "fp16_cl", "fp32_cl", "fp32")}
# The BatchNorm-free nets (LeNet-5's RBF head, AlexNet, ZFNet, VGG, GoogLeNet) stayed at chance
# (10%) after 1-2 epochs of a few thousand images with Nesterov SGD, and learned with AdamW
# (e.g. VGG-16 61.6% / 68.6%, GoogLeNet 41.4% / 55.8% after 1 / 2 epochs of 12,800 / 6,400 images;
# LeNet-5 77.1% / 81.4% on 20,000). AlexNet and ZFNet with the papers' N(0, 0.01) weights stayed
# at chance even with AdamW (the paper trained 90 epochs), so their recipe keeps PyTorch's
# default init (builder kwarg init="torch"; written into every run's config).
_ADAMW = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05}

#: (pattern, overrides). Ordered: the first matching pattern wins.
RECIPES: list[tuple[str, dict]] = [
    # LeNet-5: 32x32 input as in the 1998 paper (Sec. II.B: 28x28 digits in a 32x32 field).
    ("lenet5", {"epochs": 10, "batch_size": 128, **_ADAMW, "lr": 2e-3, "weight_decay": 0.0, "pad": 0,
                "flip": False, "label_smoothing": 0.0}),
    # The modern LeNet-5 with its optional BatchNorm and no augmentation: in one minute (4-5 epochs)
    # 92.0% vs 90.3% with crop + flip and 89.7% without BN (2,000 / 10,000 test images).
    ("lenet5_modern", {"input_size": 28, "epochs": 5, "batch_size": 256, "lr": 0.1, "pad": 0, "flip": False,
                       "model_kwargs": {"norm": True}}),
    # AlexNet / ZFNet: big strided stems need a bigger input; width cut for 2 cores.
    ("alexnet*", {"input_size": 96, "width": 0.25, "epochs": 8, **_ADAMW, "model_kwargs": {"init": "torch"}}),
    ("zfnet*", {"input_size": 96, "width": 0.25, "epochs": 8, **_ADAMW, "model_kwargs": {"init": "torch"},
                **_BF16}),
    # VGG: five 2x2 pools -> 32x32 leaves a 1x1 map; width 1/8 keeps 2 cores busy but not stuck.
    ("vgg*_bn", {"input_size": 32, "width": 0.125, "epochs": 8, "lr": 0.05, **_BF16}),
    ("vgg*", {"input_size": 32, "width": 0.125, "epochs": 8, **_ADAMW, **_BF16}),
    ("googlenet*", {"input_size": 64, "width": 0.25, "epochs": 8, **_ADAMW}),
    # CIFAR-style 6n+2 ResNets and plain nets: the paper's CIFAR-10 network at 32x32, full width
    # (He et al. 2015, Sec. 4.2: SGD 0.1, momentum 0.9, weight decay 1e-4, pad 4 + crop + flip).
    # Fashion-MNIST's own 28x28 (no resize; the stages see 28/14/7 instead of 32/16/8).
    ("cifar_*", {"input_size": 28, "width": 1.0, "epochs": 15, "batch_size": 128, "lr": 0.1,
                 "weight_decay": 1e-4, "pad": 2, **_BF16}),
    ("resnet*", {"input_size": 32, "width": 0.25, "epochs": 10, "lr": 0.1, "weight_decay": 1e-4}),
    ("plain*", {"input_size": 32, "width": 0.25, "epochs": 10, "lr": 0.1, "weight_decay": 1e-4}),
]


def recipe_for(model: str) -> dict:
    """The full recipe (``DEFAULT`` updated by the first matching row) for a model name."""
    for pattern, row in RECIPES:
        if fnmatch.fnmatchcase(model, pattern):
            return {**DEFAULT, **row}
    return dict(DEFAULT)
