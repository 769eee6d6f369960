"""Images/s of one training step (forward, backward, SGD update) of each model at its recipe's
input size, width, batch and builder options (``model_kwargs``, e.g. lenet5_modern's BatchNorm),
in three numeric paths: fp32, fp32 + channels_last, and bf16 autocast + channels_last. The
recipes' ``amp`` and ``channels_last`` defaults are chosen from this table.

    .venv/bin/python benchmarks/train_step_paths.py [--threads 1] [MODEL ...]

Prints one row per model: the median images/s of 4 timed steps after 2 warm-up steps per path.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.training.recipes import recipe_for

PATHS = {"fp32": (False, False), "fp32_cl": (False, True), "bf16_cl": (True, True)}  # (bf16, channels_last)
DEFAULT_MODELS = ["lenet5", "lenet5_modern", "cifar_resnet20", "alexnet_paper", "zfnet", "vgg16",
                  "googlenet_paper", "resnet18", "resnet50", "resnet152"]


def step_images_per_s(name: str, bf16: bool, channels_last: bool, warmup: int = 2, steps: int = 4) -> float:
    r = recipe_for(name)
    torch.manual_seed(0)
    model = cnnzoo.create_model(name, num_classes=10, in_chans=1, width=r["width"], **r.get("model_kwargs", {}))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(r["batch_size"], 1, r["input_size"], r["input_size"]).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (r["batch_size"],))
    times = []
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model.forward_with_aux(x)[0] if hasattr(model, "forward_with_aux") else model(x)
            loss = F.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    median = sorted(times[warmup:])[steps // 2]
    return r["batch_size"] / median


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; images/s of one training step")
    print(f"{'model':<16} {'size':>4} {'width':>5} {'batch':>5} " + " ".join(f"{p:>9}" for p in PATHS) + "  recipe")
    for name in args.models:
        r = recipe_for(name)
        speeds = [step_images_per_s(name, *flags) for flags in PATHS.values()]
        chosen = f"{r['amp']}{'_cl' if r['channels_last'] else ''}"
        print(f"{name:<16} {r['input_size']:>4} {r['width']:>5g} {r['batch_size']:>5} "
              + " ".join(f"{s:9.0f}" for s in speeds) + f"  {chosen}", flush=True)


if __name__ == "__main__":
    main()
