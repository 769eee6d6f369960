"""Zeiler & Fergus's occlusion experiment (2013, Sec. 4.2, Fig. 7) on a trained run: does the
class probability fall when the *object* is covered, or when its surroundings are?

    OMP_NUM_THREADS=1 python docs/explain/zfnet_occlusion.py RUN [--images 100] [--patch 16] [--stride 8] [--fill mean|black]

For the first ``--images`` test images of the run's data set (as its training read them), the
occlusion map of the true class (:func:`cnnzoo.explain`, a square of the training mean) is split
into the object (pixels brighter than 10 % of full scale; Fashion-MNIST's objects lie on a black
background) and the background, and the mean probability drop under each is compared. Prints
one line per class and the share of images whose object drop exceeds their background drop.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from cnnzoo.explain import explain, load_subject


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--fill", choices=("mean", "black"), default="mean")
    a = ap.parse_args()
    from cnnzoo.training.api import run_data

    subject = load_subject(a.run)
    data = run_data(subject.checkpoint)
    x, y = data.test_x[:a.images], data.test_y[:a.images]
    rows = []
    for k in range(len(data.classes)):
        idx = (y == k).nonzero().flatten().tolist()
        if not idx:
            continue
        res = explain(subject, [x[i] for i in idx], method="occlusion", target=k, patch=a.patch, stride=a.stride,
                      fill=a.fill, write=False)
        for i, r in zip(idx, res):
            img = torch.nn.functional.interpolate(x[i][None].float(), size=r["map"].shape, mode="bilinear")
            obj = img[0].amax(0).numpy() > 25.5                          # (S, S) the object's pixels at the input size
            rows.append((k, r["map"][obj].mean(), r["map"][~obj].mean(), r["probability"]))
    rows = np.array(rows)
    s = subject.input_size[-1]
    print(f"{subject.name}: {len(rows)} test images at {s}x{s}, square {a.patch} px, stride {a.stride} px "
          f"({((s - a.patch) // a.stride + 1) ** 2} positions), filled with {a.fill}")
    print(f"{'class':12s} {'images':>6s} {'p(true)':>8s} {'drop on object':>15s} {'drop on background':>19s}")
    for k in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == k]
        print(f"{data.classes[k]:12s} {len(r):6d} {r[:, 3].mean():8.3f} {r[:, 1].mean():15.4f} {r[:, 2].mean():19.4f}")
    share = float(np.mean(rows[:, 1] > rows[:, 2]))
    print(f"object drop > background drop for {share:.0%} of the images")


if __name__ == "__main__":
    main()
