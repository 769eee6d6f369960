"""Images/s of one training step of each model's recipe in three numeric paths, side by side in one
run, and the path ``cnnzoo train`` chooses on this machine (:mod:`cnnzoo.numerics`).

    .venv/bin/python benchmarks/train_step_paths.py --threads 1 [MODEL ...]

Each step is the trainer's own (:meth:`cnnzoo.training.Trainer.measure_numerics`: forward, loss,
backward, the recipe's optimizer) at the recipe's input size, width, batch and builder options, on
Fashion-MNIST images, in fp32, fp32 + channels_last and bf16 autocast + channels_last (bf16 timed
even where it is emulated, to show what the selector avoids). Per model: the fastest of ``--steps``
timed steps after one warm-up, per path; then *chosen*: the selector's rule applied to these figures
(the recipe's allowed paths, less bf16 without native bf16, the fastest measured), and *vs best*:
chosen images/s over the fastest of the three.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import torch

from cnnzoo import numerics
from cnnzoo.training import Trainer, TrainConfig
from cnnzoo.training.recipes import recipe_for

COLUMNS = ("fp32", "fp32_cl", "bf16_cl")
DEFAULT_MODELS = ["lenet5", "lenet5_modern", "cifar_resnet20", "alexnet_paper", "zfnet", "vgg16",
                  "googlenet_paper", "resnet18", "resnet50", "resnet152"]


def measure(name: str, steps: int, tmp: str) -> tuple[dict[str, float], numerics.Choice, dict]:
    """({path: images/s}, the selector's choice from them, the recipe) for one model."""
    r = recipe_for(name)
    cfg = TrainConfig(model=name, epochs=1, limit_train=r["batch_size"], limit_test=1, amp="fp32",
                      channels_last=True)                      # forced: the trainer measures nothing itself
    tr = Trainer(cfg, os.path.join(tmp, name), progress=False)
    columns = COLUMNS + (("fp16_cl",) if tr.device.type == "cuda" else ())   # fp16: GPUs only
    speeds = {p: tr.measure_numerics(p, steps) for p in columns}
    choice = numerics.choose(r["numerics"], tr.numerics_config(), speeds.get, device=str(tr.device))
    return speeds, choice, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--steps", type=int, default=4, help="timed steps per path (after one warm-up)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    caps = numerics.capabilities("cpu")
    print(f"torch {torch.__version__}, {args.threads} thread(s), {caps.name}, CPU capability {caps.isa}, "
          f"{caps.bf16_words()}; images/s of one training step")
    print(f"{'model':<16} {'size':>4} {'width':>5} {'batch':>5} " + " ".join(f"{p:>8}" for p in COLUMNS)
          + f"  {'chosen':<8} {'vs best':>7}  allowed")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CNNZOO_CACHE"] = tmp                      # the choice from these figures, no older cache
        os.environ["CNNZOO_MEASURE_NUMERICS"] = "1"
        for name in args.models:
            speeds, choice, r = measure(name, args.steps, tmp)
            print(f"{name:<16} {r['input_size']:>4} {r['width']:>5g} {r['batch_size']:>5} "
                  + " ".join(f"{speeds[p]:8.0f}" for p in COLUMNS) + "".join(f" fp16_cl {v:.0f}" for p, v in
                                                                         speeds.items() if p not in COLUMNS)
                  + f"  {choice.path:<8} {speeds[choice.path] / max(speeds.values()):6.2f}x  {','.join(r['numerics'])}",
                  flush=True)


if __name__ == "__main__":
    main()
