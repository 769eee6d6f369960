"""Profile torchvision models with cnnzoo, torchinfo and fvcore in the same run.

Prints, per model and tool, the best of ``--repeat`` wall times (the tools take turns in each round), the MACs and the parameter count
each tool reports, the speed ratio of cnnzoo against the fastest peer, and whether the totals
agree with cnnzoo and with torchvision's published ``_ops`` (GMACs, 3 decimals). Targets (issues 3
and 14): cnnzoo at least 5x faster, equal totals where the peers are right.

    OMP_NUM_THREADS=1 python benchmarks/profile_speed.py [--repeat 2] [--models resnet50 vit_b_16]

Each tool runs as its users run it: torchinfo and fvcore on a CPU model with a real input
(neither runs on the meta device), cnnzoo with its default (a meta copy of the same CPU model).
MACs are conv + linear multiply-adds, plus attention's matmuls (QK^T, AV) for the transformers, as
torchvision's ``_ops`` counts them. torchinfo sums module MACs only (``nn.MultiheadAttention``'s
projections, never the attention matmuls or functional ops such as Swin's and MaxViT's); fvcore
counts traced aten ops (``matmul``, ``einsum``, ``bmm``, ``linear``) but skips the fused
``scaled_dot_product_attention`` that ViT's attention reaches under ``no_grad``.
"""
from __future__ import annotations

import argparse
import logging
import math
import time

import torch
import torchvision

import cnnzoo


_LINEAR = ("Linear", "NonDynamicallyQuantizableLinear")


def _torchinfo(model, shape):
    import torchinfo
    s = torchinfo.summary(model, input_size=shape, verbose=0, device="cpu")
    # total_mult_adds also counts batch norm, and a Linear's bias as one MAC per output (batch 1 here):
    # keep conv + linear weights only, the convention of torchvision's `_ops`, fvcore and cnnzoo. For
    # nn.MultiheadAttention torchinfo reports its in-projection (+ bias) as the module's MACs.
    layers = [la for la in s.summary_list if la.class_name in ("Conv2d", "MultiheadAttention", *_LINEAR)]
    bias = sum(la.module.out_features for la in layers if la.class_name in _LINEAR and la.module.bias is not None)
    bias += sum(la.module.out_channels * math.prod(la.output_size[:1] + la.output_size[2:])   # a conv's bias
                for la in layers if la.class_name == "Conv2d" and la.module.bias is not None)
    bias += sum(3 * la.module.embed_dim * shape[0] * (la.output_size[1] if la.output_size else 0)
                for la in layers if la.class_name == "MultiheadAttention" and la.module.in_proj_bias is not None
                and la.macs)
    return sum(la.macs for la in layers) - bias, s.total_params


def _fvcore(model, shape):
    from fvcore.nn import FlopCountAnalysis, parameter_count
    flops = FlopCountAnalysis(model, torch.zeros(shape))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    # fvcore counts one multiply-add as one "flop"; restrict to conv + linear (addmm) like cnnzoo.
    by_op = flops.by_operator()
    macs = sum(by_op.get(op, 0) for op in ("conv", "linear", "addmm", "matmul", "bmm", "einsum"))
    return macs, parameter_count(model)[""]


def _cnnzoo(model, shape):
    prof = cnnzoo.profile(model, shape)
    return prof.totals.macs, prof.totals.params


def best_times(fns: dict, repeat: int) -> dict:
    """{name: (best seconds, result)}, the tools taking turns in each round so that a change in the
    machine's load falls on all of them alike."""
    times, results = {k: [] for k in fns}, {}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            results[k] = fn()
            times[k].append(time.perf_counter() - t)
    return {k: (min(times[k]), results[k]) for k in fns}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet152", "vit_b_16", "swin_t",
                                                     "efficientnet_b0", "convnext_tiny"])
    args = ap.parse_args(argv)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.set_grad_enabled(False)
    ok = True
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); MACs in G: published = torchvision _ops")
    print(f"{'model':15} {'tool':9} {'seconds':>8} {'MACs':>16} {'GMACs':>7} {'params':>12}  vs published")
    for name in args.models:
        model = torchvision.models.get_model(name).eval()
        published = torchvision.models.get_model_weights(name).DEFAULT.meta
        shape = (1, 3, 224, 224)
        res = best_times({tool: (lambda f=f: f(model, shape))
                          for tool, f in (("cnnzoo", _cnnzoo), ("torchinfo", _torchinfo), ("fvcore", _fvcore))},
                         args.repeat)
        right = {}
        for tool, (sec, (macs, params)) in res.items():
            right[tool] = (round(macs / 1e9, 3), params) == (published["_ops"], published["num_params"])
            print(f"{name:15} {tool:9} {sec:8.3f} {macs:16,} {macs / 1e9:7.3f} {params:12,}  "
                  f"{'equal' if right[tool] else 'DIFFERS'}")
        fastest = min((t for t in res if t != "cnnzoo"), key=lambda t: res[t][0])
        ratio = res[fastest][0] / res["cnnzoo"][0]
        agree = all(res[t][1] == res["cnnzoo"][1] for t in res if right[t])   # equal wherever a peer is right
        ok &= right["cnnzoo"] and agree and ratio >= 5
        wrong = [t for t in res if not right[t]]
        print(f"{name:15} cnnzoo is {ratio:.1f}x faster than {fastest} (target >= 5x); cnnzoo "
              f"{'equals' if right['cnnzoo'] else 'DIFFERS from'} the published figures"
              + (f"; wrong: {', '.join(wrong)}" if wrong else "; all tools agree") + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
