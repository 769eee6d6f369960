"""Epoch time and test accuracy of LeNet-5 (modern) trained by cnnzoo against a plain
torchvision DataLoader loop of the same network (batch 256, ``ToTensor``, one worker).

    .venv/bin/python benchmarks/train_speed.py [--epochs 1] [--data-dir DIR]

Both train the same registry model with the same optimizer (SGD, Nesterov momentum 0.9, lr of
the cnnzoo recipe, constant schedule for the plain loop) on Fashion-MNIST; cnnzoo holds the data as
uint8 tensors and augments whole batches, the plain loop decodes every image through PIL and
``ToTensor`` in a DataLoader worker. Prints one row per trainer (epoch time, throughput, test top-1,
and the time of one epoch of its data path alone, without the model), both speed-ups, and the
ceiling that a free data path would reach: the plain epoch over cnnzoo's epoch less its data path.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

MODEL = "lenet5_modern"


def plain_loop(data_dir: Path, epochs: int, batch_size: int, lr: float, input_size: int,
               model_kwargs: dict) -> dict:
    import torchvision.transforms as T
    from torchvision.datasets import FashionMNIST
    from torchvision.datasets.utils import extract_archive

    from cnnzoo import create_model

    tmp = Path(tempfile.mkdtemp(prefix="cnnzoo-plain-"))
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in data_dir.glob("*-ubyte.gz"):
        extract_archive(str(f), str(raw))                   # torchvision reads the unpacked files
    tf = T.Compose(([T.Resize(input_size)] if input_size != 28 else []) + [T.ToTensor()])
    train = FashionMNIST(str(tmp), train=True, transform=tf)
    test = FashionMNIST(str(tmp), train=False, transform=tf)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=1)
    test_loader = torch.utils.data.DataLoader(test, batch_size=1000, num_workers=1)
    torch.manual_seed(0)
    model = create_model(MODEL, num_classes=10, in_chans=1, **model_kwargs)   # the recipe's network
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    times = []
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for x, y in loader:                                         # the data path alone: decode + collate
        pass
    data_seconds = time.perf_counter() - t0
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += (model(x).argmax(1) == y).sum().item()
    shutil.rmtree(tmp)
    return {"epoch_seconds": min(times), "test_acc": correct / len(test), "data_seconds": data_seconds}


def cnnzoo_data_seconds(cfg: dict) -> float:
    """One epoch of the trainer's own data path alone (``Trainer.train_batches``: shuffled uint8
    batches from the data source, augmented and normalised), with the run's config."""
    from cnnzoo.training import TrainConfig, Trainer

    with tempfile.TemporaryDirectory(prefix="cnnzoo-speed-") as out:
        trainer = Trainer(TrainConfig(**cfg), out, progress=False)
        t0 = time.perf_counter()
        for _ in trainer.train_batches(0):
            pass
        return time.perf_counter() - t0


def cnnzoo_run(data_dir: Path, epochs: int, batch_size: int) -> tuple[dict, dict]:
    from cnnzoo.training import train

    with tempfile.TemporaryDirectory(prefix="cnnzoo-speed-") as out:
        r = train(MODEL, out=out, epochs=epochs, batch_size=batch_size, data_dir=str(data_dir), progress=False)
    return {"epoch_seconds": min(h["train_seconds"] for h in r.history), "test_acc": r.final["test_acc"],
            "data_seconds": cnnzoo_data_seconds(r.summary["config"])}, r.summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    ours, summary = cnnzoo_run(data_dir, args.epochs, 256)
    cfg = summary["config"]
    plain = plain_loop(data_dir, args.epochs, 256, cfg["lr"], cfg["input_size"], cfg["model_kwargs"])
    print(f"{MODEL} on Fashion-MNIST, {args.epochs} epoch(s), batch 256, input {cfg['input_size']}x"
          f"{cfg['input_size']}, {torch.get_num_threads()} torch threads, amp {cfg['amp']}, "
          f"channels_last {cfg['channels_last']}")
    print(f"{'trainer':<28} {'epoch s':>8} {'images/s':>9} {'test top-1':>10} {'data path s':>11}")
    for name, r in (("cnnzoo (in-memory, batched)", ours), ("plain DataLoader + ToTensor", plain)):
        print(f"{name:<28} {r['epoch_seconds']:8.2f} {60000 / r['epoch_seconds']:9.0f} {r['test_acc']:10.2%} "
              f"{r['data_seconds']:11.2f}")
    print(f"speed-up of the epoch: {plain['epoch_seconds'] / ours['epoch_seconds']:.1f}x (target >= 6x); "
          f"of the data path alone (one epoch of batches, no model): "
          f"{plain['data_seconds'] / ours['data_seconds']:.1f}x")
    model_s = ours["epoch_seconds"] - ours["data_seconds"]     # cnnzoo's epoch without its data path
    print(f"ceiling for any data path (plain epoch / cnnzoo's epoch less its data path, {model_s:.2f} s): "
          f"{plain['epoch_seconds'] / model_s:.1f}x; beyond it only a faster step of the network itself helps")


if __name__ == "__main__":
    main()
