"""Profile ResNet-50 and ResNet-152 with cnnzoo, torchinfo and fvcore in the same run.

Prints, per model and tool, the best of ``--repeat`` wall times, the conv + linear MACs and the
parameter count each tool reports, the speed ratio of cnnzoo against the fastest peer, and
whether the totals agree. Target (issue 3): cnnzoo at least 5x faster, equal totals.

    python benchmarks/profile_speed.py [--repeat 2] [--models resnet50 resnet152]

Each tool runs as its users run it: torchinfo and fvcore on a CPU model with a real input
(neither runs on the meta device), cnnzoo with its default (a meta copy of the same CPU model).
"""
from __future__ import annotations

import argparse
import logging
import time

import torch
import torchvision

import cnnzoo


def _torchinfo(model, shape):
    import torchinfo
    s = torchinfo.summary(model, input_size=shape, verbose=0, device="cpu")
    # total_mult_adds also counts batch norm, and a Linear's bias as one MAC per output (batch 1 here):
    # keep conv + linear weights only, the convention of torchvision's `_ops`, fvcore and cnnzoo.
    layers = [la for la in s.summary_list if la.class_name in ("Conv2d", "Linear")]
    macs = sum(la.macs for la in layers) - sum(
        la.module.out_features for la in layers if la.class_name == "Linear" and la.module.bias is not None)
    return macs, s.total_params


def _fvcore(model, shape):
    from fvcore.nn import FlopCountAnalysis, parameter_count
    flops = FlopCountAnalysis(model, torch.zeros(shape))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    # fvcore counts one multiply-add as one "flop"; restrict to conv + linear (addmm) like cnnzoo.
    by_op = flops.by_operator()
    return by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0), parameter_count(model)[""]


def _cnnzoo(model, shape):
    prof = cnnzoo.profile(model, shape)
    return prof.totals.macs, prof.totals.params


def best_time(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet152"])
    args = ap.parse_args(argv)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.set_grad_enabled(False)
    ok = True
    print(f"{'model':10} {'tool':9} {'seconds':>8} {'conv+linear MACs':>16} {'params':>12}")
    for name in args.models:
        model = torchvision.models.get_model(name).eval()
        shape = (1, 3, 224, 224)
        res = {tool: best_time(lambda f=f: f(model, shape), args.repeat)
               for tool, f in (("cnnzoo", _cnnzoo), ("torchinfo", _torchinfo), ("fvcore", _fvcore))}
        for tool, (sec, (macs, params)) in res.items():
            print(f"{name:10} {tool:9} {sec:8.3f} {macs:16,} {params:12,}")
        fastest = min((t for t in res if t != "cnnzoo"), key=lambda t: res[t][0])
        ratio = res[fastest][0] / res["cnnzoo"][0]
        agree = len({r[1] for r in res.values()}) == 1
        ok &= agree and ratio >= 5
        print(f"{name:10} cnnzoo is {ratio:.1f}x faster than {fastest} (target >= 5x); "
              f"totals {'agree' if agree else 'DIFFER'}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
