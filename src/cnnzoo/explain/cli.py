"""``cnnzoo explain``: a thin wrapper of :func:`cnnzoo.explain.explain`."""
from __future__ import annotations

import argparse

from ..resolve import FORMS


def _cmd_explain(args: argparse.Namespace) -> None:
    from .api import explain
    from .maps import SANITY_RULE

    res = explain(args.model, args.images, method=args.method, layer=args.layer, target=args.target, topk=args.topk,
                  out=args.out, weights=args.weights, check=args.check, patch=args.patch, stride=args.stride, fill=args.fill)
    head = res[0]
    print(f"model: {head['description']}")
    if head["method"] == "gradcam":
        print(f"Grad-CAM layer: {head['layer']} (receptive field {head['receptive_field'] or 'unknown'})")
    elif head["method"] == "occlusion":
        what = "the training mean" if head["fill"] == "mean" else "black (pixel value 0)"
        print(f"occlusion: a {head['patch']}x{head['patch']} px square of {what}, stride {head['stride']} px, "
              f"{head['positions']} positions; map = mean drop of the class probability")
    for r in res:
        top = ", ".join(f"{c} {p:.3f}" for c, p in r["top"])
        print(f"{r['image']}: top {top}")
        print(f"  {r['method']} map of {r['class']!r} (p={r['probability']:.3f}) in {r['seconds']:.2f} s: {r['png']}, {r['npy']}")
        if "check" in r:
            rhos = ", ".join(f"{s['stage']} re-initialised rho={s['rho']:.2f}" for s in r["check"]["stages"])
            verdict = ("FLAGGED: the map barely changes, it does not explain the model" if r["check"]["flagged"]
                       else "passes: the map depends on the learned weights")
            print(f"  sanity check: {rhos}; {verdict}")
    if args.check:
        print(f"rule: {SANITY_RULE}")
    if not head["trained"]:
        print("note: untrained weights; give --weights FILE or a trained run to explain a trained model")


def add_commands(sub) -> None:
    p = sub.add_parser("explain", help="heat maps of why: occlusion, Grad-CAM, saliency",
                       description="For each image: the top-k and a heat map of one class (occlusion as in ZFNet, "
                                   "Grad-CAM, or saliency) over the image as the model saw it, written as a PNG beside "
                                   "the image and as a raw .npy map. docs/explain.md.")
    p.add_argument("model", help=FORMS)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any size and mode; fitted as predict does)")
    p.add_argument("--method", choices=("occlusion", "gradcam", "saliency"), default="gradcam",
                   help="default gradcam")
    p.add_argument("--layer", default="auto",
                   help="Grad-CAM's module name (e.g. layer4), or auto: the last feature map before global pooling")
    p.add_argument("--class", dest="target", metavar="K|NAME", help="class index or name (default: each image's top-1)")
    p.add_argument("--topk", type=int, default=5, help="classes listed per image (default 5)")
    p.add_argument("--weights", metavar="FILE", help="weight file for a registry name (torchvision's or a state_dict)")
    p.add_argument("--check", action="store_true",
                   help="sanity check: recompute with the classifier, then all layers re-initialised")
    p.add_argument("--patch", type=int, help="occlusion square side in pixels (default: about 1/7 of the input)")
    p.add_argument("--stride", type=int, help="occlusion step in pixels (default: the patch)")
    p.add_argument("--fill", choices=("mean", "black"), default="mean",
                   help="occlusion square: the training mean (ZFNet's grey, default) or black")
    p.add_argument("--out", help="output folder (default RUN/explain for a run, else ./explain)")
    p.set_defaults(func=_cmd_explain)
