"""The trainer's in-memory data path alone: one Fashion-MNIST epoch of lenet5_modern's batches (batch
256: shuffled, augmented, normalised), the fastest and the median of 7, seconds.

    OMP_NUM_THREADS=1 PYTHONPATH=OTHER_CHECKOUT/src python benchmarks/data_path.py other
    OMP_NUM_THREADS=1 python benchmarks/data_path.py this

Run it on two checkouts one after the other to compare them side by side (issue 24's data
contract had to leave this path within 10%); a checkout from before the contract (413ddb0 and
earlier) has ``Trainer.batch`` in place of ``Trainer.train_batches``, and is timed through it.
"""
import sys
import tempfile
import time

import torch

from cnnzoo.data import batch_slices, epoch_order
from cnnzoo.training import TrainConfig, Trainer

cfg = dict(model="lenet5_modern", dataset="fashion-mnist", batch_size=256, epochs=1, amp="fp32", channels_last=True)
with tempfile.TemporaryDirectory() as out:
    t = Trainer(TrainConfig(**cfg), out, progress=False)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        if hasattr(t, "train_batches"):
            for _ in t.train_batches(0):
                pass
        else:                                       # before the data contract
            order = epoch_order(len(t.train_x), 0, 0)
            for step, sl in batch_slices(len(order), 256):
                t.batch(order, sl, torch.Generator().manual_seed(step))
        times.append(time.perf_counter() - t0)
label = sys.argv[1] if len(sys.argv) > 1 else "this checkout"
print(f"{label}: data path s per epoch: min {min(times):.4f}, median {sorted(times)[3]:.4f}")
