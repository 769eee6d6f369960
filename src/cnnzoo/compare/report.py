"""The comparison's verdicts on the lecture's L31 and L32 and its outputs: ``results.json``,
``report.md``, the plots and the README results section. Every verdict is derived from the
measured numbers; no sentence of it is written in advance of the measurement."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._readme import update_section
from .evidence import (ACCURACY_RULE, ALPHA, TIME_RULE, accuracy_gap, per_image,
                       spearman_test, time_comparison)
from .imagenet import TABLE_BATCH, imagenet_rows, l31_points
from .latency import RAPL_GLOB, timing_paths
from .plots import save_plots

README_SECTION = "compare"  # the README block between <!-- cnnzoo-compare:begin/end --> markers

# -- statistics ------------------------------------------------------------------------------


def pearson_log(x, y) -> float:
    """Pearson correlation of log10(x) and log10(y) (operations and times span decades)."""
    return float(np.corrcoef(np.log10(x), np.log10(y))[0, 1])


def strength(r: float) -> str:
    a = abs(r)
    return "strong" if a >= 0.8 else "moderate" if a >= 0.5 else "weak"


# -- L31 -------------------------------------------------------------------------------------

#: A ranking claim ("X is the most ...") needs at least this many models from this many families.
MIN_MODELS = 3

#: L31's four claims and the family each names.
L31_CLAIMS = (("VGG is the most expensive (operations per image)", "vgg"),
              ("ResNet is the most accurate, at moderate cost", "resnet"),
              ("GoogLeNet is the most efficient (accuracy per parameter)", "googlenet"),
              ("AlexNet has low compute but many parameters", "alexnet"))


def _fmt_pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _rank(values: dict[str, float], name: str, descending: bool) -> int:
    order = sorted(values, key=values.get, reverse=descending)
    return order.index(name) + 1


def _too_few(points: dict) -> str | None:
    fams = sorted({p["family"] for p in points.values()})
    if len(points) >= MIN_MODELS and len(fams) >= MIN_MODELS:
        return None
    return (f"only {len(points)} model(s) from {len(fams)} famil{'y' if len(fams) == 1 else 'ies'} "
            f"({', '.join(fams) or 'none'}); a ranking claim needs at least {MIN_MODELS} models from "
            f"{MIN_MODELS} families")


def _v(claim: str, verdict: str, detail: str) -> dict:
    return {"claim": claim, "verdict": verdict, "detail": detail}


def _most_expensive(claim: str, pts: dict) -> dict:
    macs = {n: p["macs"] for n, p in pts.items()}
    top = max(macs, key=macs.get)
    ok = pts[top]["family"] == "vgg"
    return _v(claim, "agrees" if ok else "differs",
              f"{top} ({pts[top]['family']}) is the most expensive: {macs[top] / 1e9:.2f} GMACs at 224x224 "
              "(analyzer count, exact)")


def _leader(pts: dict, score: dict, family: str, scale: dict | None = None,
            unit: str = "points") -> tuple[str, str, dict]:
    """(best model, its closest rival from another family, the gap between them with its noise
    threshold) for a score that is an accuracy times ``scale`` (1 if absent)."""
    best = max(score, key=score.get)
    others = [n for n in score if pts[n]["family"] != pts[best]["family"]]
    if pts[best]["family"] != family:                 # the rival that matters: the claim's family
        others = [n for n in score if pts[n]["family"] == family]
    rival = max(others, key=score.get)
    s = scale or {}
    gap = accuracy_gap(pts[best]["top1"], pts[best]["n"], pts[rival]["top1"], pts[rival]["n"],
                       s.get(best, 1.0), s.get(rival, 1.0), unit)
    return best, rival, gap


def _most_accurate(claim: str, pts: dict) -> dict:
    top1 = {n: p["top1"] for n, p in pts.items()}
    macs = {n: p["macs"] for n, p in pts.items()}
    best, rival, gap = _leader(pts, top1, "resnet")
    what = (f"{best} ({pts[best]['family']}, {_fmt_pct(top1[best])}) vs {rival} ({pts[rival]['family']}, "
            f"{_fmt_pct(top1[rival])}): {gap['text']}")
    if not gap["beyond"]:
        return _v(claim, "not shown", f"{what}: the lead is within noise ({ACCURACY_RULE})")
    if pts[best]["family"] != "resnet":
        return _v(claim, "differs", f"{best} is the most accurate, beyond noise; {what}")
    costliest = max(macs, key=macs.get)
    cost = (f"cost rank {_rank(macs, best, True)} of {len(macs)} (1 = most GMACs): {macs[best] / 1e9:.2f} GMACs "
            f"against {macs[costliest] / 1e9:.2f} for {costliest}")
    if best == costliest:
        return _v(claim, "agrees in part", f"most accurate, beyond noise ({what}), but also the costliest: {cost}")
    return _v(claim, "agrees", f"most accurate, beyond noise ({what}); moderate cost = cheaper than the "
                               f"costliest network: {cost}")


def _most_efficient(claim: str, pts: dict) -> dict:
    # Canziani et al. 2016 (Fig. 5) call top-1 per parameter "accuracy density"; LeNet-5 is not in
    # their figure, so the efficiency claim is judged among the ImageNet networks.
    nets = {n: p for n, p in pts.items() if p["family"] != "lenet"}
    if "googlenet" not in {p["family"] for p in nets.values()} or len(nets) < 2:
        return _v(claim, "not tested", "fewer than 2 ImageNet networks besides LeNet, or no GoogLeNet")
    per_m = {n: 1e6 / p["density_params"] for n, p in nets.items()}           # scale: 1 / (M params)
    dens = {n: p["top1"] * per_m[n] for n, p in nets.items()}
    best, rival, gap = _leader(nets, dens, "googlenet", per_m, "points per M params")
    per_gmac = {n: p["top1"] / (p["macs"] / 1e9) for n, p in nets.items()}
    g = max(per_gmac, key=per_gmac.get)
    what = (f"accuracy density (top-1 % per M params, LeNet excluded): {best} {100 * dens[best]:.2f} vs "
            f"{rival} {100 * dens[rival]:.2f} ({gap['text']}); by top-1 % per GMAC the "
            f"leader is {g} ({100 * per_gmac[g]:.1f})")
    if not gap["beyond"]:
        return _v(claim, "not shown", f"{what}: within noise")
    return _v(claim, "agrees" if nets[best]["family"] == "googlenet" else "differs", what)


def _alexnet_shape(claim: str, pts: dict) -> dict:
    nets = {n: p for n, p in pts.items() if p["family"] != "lenet"}
    a = next(n for n, p in nets.items() if p["family"] == "alexnet")
    macs = {n: p["macs"] for n, p in nets.items()}
    params = {n: p["params"] for n, p in nets.items()}
    ratio = {n: params[n] / macs[n] for n in nets}
    k = len(nets)
    rm, rp, rr = _rank(macs, a, False), _rank(params, a, True), _rank(ratio, a, True)
    low, many = rm <= (k + 1) // 2, rp <= (k + 1) // 2 or rr == 1
    return _v(claim, "agrees" if low and many else "differs",
              f"{a}: {macs[a] / 1e9:.2f} GMACs, rank {rm} of {k} from the cheapest; {params[a] / 1e6:.1f} M params, "
              f"rank {rp} of {k} from the largest; {1e3 * ratio[a]:.0f} params per kMAC, rank {rr} "
              f"(LeNet excluded; low = in the cheaper half; many = in the larger half or the most per operation)")


_L31_RULES = {"vgg": _most_expensive, "resnet": _most_accurate, "googlenet": _most_efficient,
              "alexnet": _alexnet_shape}


def l31_claims(points: dict) -> list[dict]:
    """L31's claims judged on ``points`` ({model: family, macs, params, density_params, top1 as a
    fraction, n test images}): "not tested" with the reason when there are too few models or the
    claim's family is absent, "not shown" when an accuracy lead is within noise
    (:data:`~cnnzoo.compare.evidence.ACCURACY_RULE`); each verdict lists the ``models`` it judged."""
    few = _too_few(points)
    fams = {p["family"] for p in points.values()}
    out = []
    for claim, fam in L31_CLAIMS:
        if few or fam not in fams:
            v = _v(claim, "not tested", few or f"no {fam} model in this comparison")
        else:
            v = _L31_RULES[fam](claim, points)
        out.append({**v, "models": list(points)})
    return out


def l31_verdicts(records: dict, short_budget: bool) -> list[dict]:
    """L31 on this machine's training: operations and parameters at ImageNet scale (the
    architectures as published), accuracy density with the trained-scale parameters (those that
    produced the accuracy), accuracy and its test-set size from the training runs."""
    pts = {n: {"family": r["analysis"]["family"], "macs": r["analysis"]["imagenet"]["macs"],
               "params": r["analysis"]["imagenet"]["params_executed"],
               "density_params": r["analysis"]["trained"]["params_executed"], "top1": r["accuracy"]["top1"],
               "n": r["accuracy"].get("test_images") or r["accuracy"].get("limit_test") or 0}
           for n, r in records.items()}
    out = l31_claims(pts)
    if short_budget:
        for v in out:
            if v["verdict"] != "not tested" and ("accura" in v["claim"] or "efficient" in v["claim"]):
                v["detail"] += "; accuracy from short-budget training (how fast each net learns, not its ceiling)"
    return out


def imagenet_l31_verdicts(rows: list[dict]) -> list[dict]:
    """L31 at ImageNet scale: published top-1 of torchvision's IMAGENET1K_V1 weights (one per
    architecture; not measured here), operations and parameters from the analyzer at 224x224."""
    pts = {n: {**p, "density_params": p["params"]} for n, p in l31_points(rows).items()}
    out = l31_claims(pts)
    for v in out:
        if "accura" in v["claim"] or "efficient" in v["claim"]:
            v["detail"] += ("; top-1 as published with torchvision's IMAGENET1K_V1 weights (50,000 validation "
                            "images, single 224 crop), not measured here")
    return out


# -- L32 -------------------------------------------------------------------------------------


def _batch_claim(curves: dict, conditions: str) -> dict:
    """Per-image time at the smallest vs the largest batch, per model, under :data:`TIME_RULE`."""
    claim = "Per-image forward time falls as the batch grows"
    if not curves:
        return {**_v(claim, "not tested", "no timing"), "models": []}
    groups: dict[str, list[str]] = {"falls": [], "rises": [], "flat": []}
    for n, rows in curves.items():
        c = time_comparison(per_image(rows[0]), per_image(rows[-1]))
        key = {"a slower": "falls", "a faster": "rises"}[c["outcome"]] if c["outcome"] != "within noise" else "flat"
        groups[key].append(f"{n} {c['ratio']:.2f}x")
    b0, b1 = (next(iter(curves.values()))[i]["batch_size"] for i in (0, -1))
    falls, rises, flat = groups["falls"], groups["rises"], groups["flat"]
    verdict = ("agrees" if len(falls) == len(curves) else "agrees in part" if falls else
               "differs" if rises else "not shown")
    detail = (f"{conditions}, batch {b0} vs {b1} (per-image time at {b0} / at {b1}): falls for {len(falls)} of "
              f"{len(curves)} models ({', '.join(falls) or 'none'})"
              + (f"; rises for {', '.join(rises)}" if rises else "")
              + (f"; within noise for {', '.join(flat)}" if flat else "") + f" ({TIME_RULE})")
    return {**_v(claim, verdict, detail), "models": list(curves)}


def _correlation(claim: str, x: dict, y: dict, conditions: str) -> dict:
    names = [n for n in x if n in y and x[n] and y[n] and x[n] > 0 and y[n] > 0]
    if len(names) < MIN_MODELS:
        return {**_v(claim, "not tested", f"fewer than {MIN_MODELS} models ({conditions})"), "models": names}
    xs, ys = [x[n] for n in names], [y[n] for n in names]
    rho, p = spearman_test(xs, ys)
    r = pearson_log(xs, ys)
    per_gmac = {n: y[n] / (x[n] / 1e9) for n in names}       # seconds per GMAC
    lo, hi = min(per_gmac, key=per_gmac.get), max(per_gmac, key=per_gmac.get)
    if p >= ALPHA:
        verdict = "not shown"
    else:
        verdict = "agrees" if strength(rho) == "strong" else "agrees in part"
    return {"claim": claim, "verdict": verdict, "spearman": rho, "p_value": p, "pearson_log": r, "n": len(names),
            "models": names,
            "detail": f"{conditions}: Spearman rho = {rho:.2f} ({strength(rho)}; one-sided permutation p = {p:.3f}, "
                      f"counts when p < {ALPHA}), Pearson r of log10 values = {r:.2f}, over {len(names)} models; "
                      f"time per GMAC ranges from {1e3 * per_gmac[lo]:.2f} ms ({lo}) to "
                      f"{1e3 * per_gmac[hi]:.2f} ms ({hi})"}


def l32_verdicts(records: dict) -> list[dict]:
    """L32 at the trained scale: per-image time falls as the batch grows; operation count predicts
    inference time."""
    out = [_batch_claim({n: r["latency"]["eager"] for n, r in records.items()}, "eager, trained scale")]
    b1 = next(iter(records.values()))["latency"]["eager"][-1]["batch_size"]
    tr_lat = {n: r["latency"]["eager"][-1]["per_image_seconds"] for n, r in records.items()}
    tr_macs = {n: r["analysis"]["trained"]["macs"] for n, r in records.items()}
    out.append(_correlation("Operation count predicts inference time (trained scale)", tr_macs, tr_lat,
                            f"MACs vs eager per-image forward time at batch {b1}, trained scale"))
    return out


def _power(curves: dict) -> dict:
    claim = "Power against batch size"
    watts = [row["watts"] for c in curves.values() for k in ("eager", "fast") for row in c[k] if row.get("watts")]
    if not watts:
        v = _v(claim, "not measured", f"no readable RAPL energy counter ({RAPL_GLOB}) on this machine; "
                                      "only time is measured")
    else:
        v = _v(claim, "measured", f"package power during the timed batches: {min(watts):.0f} to {max(watts):.0f} W "
                                  "(RAPL; the lecture's figure plots it against batch size)")
    return {**v, "models": list(curves)}


def imagenet_l32_verdicts(records: dict) -> list[dict]:
    """L32 at 3x224x224 (the models timed by the ``imagenet.json`` stage)."""
    curves = {n: r["imagenet_latency"] for n, r in records.items() if r.get("imagenet_latency")}
    out = [_batch_claim({n: c["eager"] for n, c in curves.items()}, "eager, 3x224x224")]
    macs = {n: records[n]["analysis"]["imagenet"]["macs"] for n in curves}
    b1 = {n: c["eager"][0]["per_image_seconds"] for n, c in curves.items()}
    out.append(_correlation("Operation count predicts inference time (ImageNet scale)", macs, b1,
                            f"MACs vs eager forward time at batch {next(iter(curves.values()))['eager'][0]['batch_size']}"
                            ", 3x224x224" if curves else "no ImageNet-scale timing"))
    out.append(_power(curves))
    return out


# -- tables ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table; the first ``left`` columns are text (left-aligned), the rest numbers."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _ms(sec: float | None) -> str:
    return "-" if sec is None else f"{1e3 * sec:.2f}"


def architecture_table(records: dict) -> str:
    """The compared models at ImageNet scale, analyzer figures (the architectures as published)."""
    rows = []
    for n, r in records.items():
        a = r["analysis"]["imagenet"]
        rows.append([n, f"{r['analysis']['year']}", f"{a['params_executed'] / 1e6:.2f}", f"{a['macs'] / 1e9:.3f}",
                     f"{a['activation_bytes'] / 1e6:.1f}", str(a["receptive_field"]), str(a["depth"])])
    return _table(["model", "year", "params (M)", "GMACs", "activations (MB)", "receptive field (px)", "depth"], rows)


def _opt(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def imagenet_table(rows: list[dict]) -> str:
    """The table behind both ImageNet-scale charts: one row per published figure (or per model
    without one), with the figure's source, the analyzer's cost and this machine's timing."""
    src = {"torchvision": "torchvision weights", "paper": "paper", None: "none published"}
    body = []
    for r in rows:
        where = r["citation"] if r["source"] == "paper" else src[r["source"]]
        top1 = _opt(r["top1"], ".2f") + ("" if r["imagenet"] or r["top1"] is None else f" ({r['dataset']})")
        body.append([r["model"], r["weights"] or "-", where, top1, _opt(r["top5"], ".2f"),
                     f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e9:.3f}", _opt(r["top1_per_mparam"], ".2f"),
                     _opt(r["top1_per_gmac"], ".1f"), _ms(r["b1_eager"]), _ms(r["b16_eager"]),
                     "-" if r["b16_fast"] is None else f"{_ms(r['b16_fast'])} ({r['fast_path']})",
                     _opt(r["peak_bytes"] and r["peak_bytes"] / 1e6, ".0f")])
    return _table(["model", "weights", "accuracy source", "top-1 % (published)", "top-5 % (published)",
                   "params (M)", "GMACs", "top-1 % per M params", "top-1 % per GMAC", "batch 1 eager (ms/img)",
                   f"batch {TABLE_BATCH} eager (ms/img)", f"batch {TABLE_BATCH} fastest (ms/img)",
                   "peak memory, batch 1 (MB)"], body, left=3)


def sources_list(rows: list[dict]) -> str:
    """Each accuracy source once, with its evaluation set and test protocol."""
    seen = {}
    for r in rows:
        if r["source"] == "paper":
            seen.setdefault(f"{r['citation']}: {r['dataset']}", set()).add(f"{r['model']} ({r['protocol']})")
    tv = sorted({r["protocol"].split("; recipe")[0] for r in rows if r["source"] == "torchvision"})
    lines = [f"- torchvision weights: `get_model_weights(name)`, each weight's `meta['_metrics']['ImageNet-1K']` "
             f"acc@1/acc@5 (ImageNet-1K val, 50,000 images; {'; '.join(tv)}); `IMAGENET1K_V2` weights come from "
             "torchvision's 2021 training recipe, V1 from the original references."]
    lines += [f"- {k}: " + "; ".join(sorted(v)) for k, v in seen.items()]
    none = sorted({r["model"] for r in rows if r["source"] is None})
    if none:
        lines.append(f"- no published figure (shown without accuracy): {', '.join(none)}")
    return "\n".join(lines)


def imagenet_batch_table(records: dict) -> str:
    """Per-image forward time (ms) against batch size at 3x224x224, eager and the fastest path."""
    timed = {n: r["imagenet_latency"] for n, r in records.items() if r.get("imagenet_latency")}
    if not timed:
        return "Not timed at this preset."
    b = [row["batch_size"] for row in next(iter(timed.values()))["eager"]]
    rows = [[f"{n} {key if key == 'eager' else c['fast_path']}", *[_ms(row["per_image_seconds"]) for row in c[key]]]
            for n, c in timed.items() for key in ("eager", "fast")]
    return _table(["model, path (ms per image)", *[f"batch {x}" for x in b]], rows)


def trained_table(records: dict, short_budget: bool) -> str:
    rows = []
    for n, r in records.items():
        t, acc = r["analysis"]["trained"], r["accuracy"]
        rows.append([n, f"{t['input_size']}x{t['input_size']}x{t['input'][0]}", f"{t['width']:g}",
                     f"{t['params_executed'] / 1e6:.3f}", f"{t['macs'] / 1e6:.1f}",
                     f"{100 * acc['top1']:.2f}", f"{100 * acc['top5']:.2f}", str(acc["epochs"]),
                     f"{acc['limit_train']:,}" if acc["limit_train"] else "all",
                     f"{acc['train_seconds']:.0f}"])
    label = " (short-budget)" if short_budget else ""
    return _table(["model", "input", "width", "params (M)", "MMACs", f"top-1 %{label}", f"top-5 %{label}",
                   "epochs", "train images", "train time (s)"], rows)


def _check_words(check: dict | None) -> str:
    """The fast path's check on the trained model, e.g. `` (agrees 99.9%)`` or `` (not validated: agrees
    98.7%)``; empty where none was made (eager is the reference, or a record made before the check)."""
    if not check:
        return ""
    return f" ({'' if check['validated'] else 'not validated: '}agrees {check['agreement']:.1%})"


def latency_table(records: dict) -> str:
    rows = []
    for n, r in records.items():
        lat = r["latency"]
        f0, f1, q0, q1 = lat["eager"][0], lat["eager"][-1], lat["fast"][0], lat["fast"][-1]
        rows.append([n, _ms(f0["median_seconds"]), _ms(q0["median_seconds"]), f"{f1['images_per_s']:.0f}",
                     f"{q1['images_per_s']:.0f}", lat["fast_path"] + _check_words(r.get("fast_path_check")),
                     f"{f0['per_image_seconds'] / f1['per_image_seconds']:.1f}",
                     f"{lat['memory']['peak_bytes'] / 1e6:.1f}"])
    r0 = next(iter(records.values()))["latency"]
    b0, b1 = r0["eager"][0]["batch_size"], r0["eager"][-1]["batch_size"]
    return _table(["model", f"batch {b0} eager (ms)", f"batch {b0} fast (ms)", f"batch {b1} eager (img/s)",
                   f"batch {b1} fast (img/s)", "fast path", f"per-image time {b0}/{b1}",
                   f"peak memory at {b1} (MB)"], rows)


def batch_table(records: dict) -> str:
    r0 = next(iter(records.values()))["latency"]["eager"]
    rows = [[n, *[_ms(row["median_seconds"]) for row in r["latency"]["eager"]]] for n, r in records.items()]
    return _table(["model (eager ms per batch)", *[f"batch {row['batch_size']}" for row in r0]], rows)


def verdict_table(verdicts: list[dict]) -> str:
    return _table(["claim", "verdict", "measured"], [[v["claim"], f"**{v['verdict']}**", v["detail"]] for v in verdicts],
                  left=3)


# -- outputs ---------------------------------------------------------------------------------


def _hardware_line(meta: dict) -> str:
    h, v = meta["hardware"], meta["versions"]
    return (f"{h['processor'] or h['machine']}, {h['cpu_count']} logical CPUs, {h['torch_threads']} torch threads, "
            f"ISA {h['cpu_capability']}; {h['platform']}; "
            + ", ".join(f"{k} {val}" for k, val in v.items()))


def _cpu(h: dict | None) -> str:
    return "not recorded" if not h else f"{h['processor'] or h['machine']} ({h['cpu_count']} logical CPUs)"


def hosts_line(meta: dict, records: dict) -> str:
    """Where each stage was measured (a cached run may come from another host than the report's)."""
    stages = {"training": {_cpu(r["accuracy"].get("hardware")) for r in records.values()},
              "ImageNet-scale timing": {_cpu((r.get("imagenet_latency") or {}).get("hardware"))
                                        for r in records.values() if r.get("imagenet_latency")}}
    here = _cpu(meta["hardware"])
    parts = [f"{k}: {', '.join(sorted(v))}" for k, v in stages.items() if v and v != {here}]
    return ("- measured on another host than this report's: " + "; ".join(parts) +
            " (the trained-scale timing ran in the same job as the training)") if parts else ""


def _conditions(meta: dict) -> str:
    p = meta["preset"]
    acc = ("short-budget training: about {:.0f} s per model on a training subset, {} test images".format(
        p["train_seconds"], p["limit_test"] or "all") if p["train_seconds"] is not None
        else "each model's recipe (epochs, input side, width) on the whole training set, the whole test set")
    return (f"Preset **{p['name']}**: {acc}. Latency: wall-clock median of timed blocks (about "
            f"{p['min_seconds']} s per point, as `cnnzoo bench` times), randomly initialised weights, "
            "`torch.inference_mode`; *eager* = eager PyTorch fp32, NCHW; *fast* = the fastest of `cnnzoo bench`'s "
            f"quick paths that this CPU runs well ({', '.join(timing_paths())}), chosen per model at the largest "
            "batch; on the trained model its predictions are compared with eager's on the run's test images "
            "(*agrees*: the share that match; validated at 99.5% or more with top-1 at most 0.2 points lower, as "
            "`cnnzoo bench`). Peak memory: "
            "weights + input + the measured peak of live tensors created in one eager forward. "
            "MACs: conv + linear multiply-adds (FLOPs = 2 x MACs). MB = 10^6 bytes.")


def _imagenet_conditions(meta: dict) -> str:
    p = meta["preset"]
    if not p["imagenet_latency"]:
        return "Timing at 3x224x224: off in this preset."
    few = " (fewer batch sizes and a single timed call per point than the full preset: noisier)" \
        if p["imagenet_repeats"] < 2 else ""
    return (f"Published accuracies are quoted, never measured here (sources below). Operations (GMACs = 10^9 "
            f"multiply-adds) and parameters (those used at inference) are the analyzer's, on cnnzoo's modules at "
            f"3x224x224 with 1000 classes. Timing: the compared models only, randomly initialised, at batch sizes "
            f"{', '.join(map(str, p['imagenet_batch_sizes']))}: one warm-up call, then {p['imagenet_repeats']} timed "
            f"call(s) per point, median{few}; *fastest* = the fastest of the paths available here at batch "
            f"{p['imagenet_select_batch']}. Peak memory: weights + input + the measured peak of live tensors in one "
            "eager forward at batch 1. MB = 10^6 bytes.")


def load_note(meta: dict, records: dict) -> str:
    """The system load seen by the latency stages, and what it means for the times."""
    loads = [v for r in records.values() for stage in ("latency", "imagenet_latency")
             for v in (r.get(stage) or {}).get("load_average", [])]
    if not loads:
        return "System load during timing: not recorded."
    threads = meta["hardware"]["torch_threads"]
    note = f"System load (1-min load average) during the latency stages: {min(loads):.1f} to {max(loads):.1f}"
    if max(loads) > threads:
        note += (f", above the {threads} torch threads: other processes competed for the cores, so the "
                 "times are inflated and noisy; rerun on an idle machine for clean latency figures")
    return note + "."


def side_by_side(small: list[dict], big: list[dict], dataset: str) -> str:
    """One row per claim: its verdict on this machine's training and at ImageNet scale."""
    key = lambda c: c.replace(" (trained scale)", "").replace(" (ImageNet scale)", "")  # noqa: E731
    a, b = {key(v["claim"]): v["verdict"] for v in small}, {key(v["claim"]): v["verdict"] for v in big}
    claims = list(dict.fromkeys([*a, *b]))
    return _table(["claim", f"{dataset}, trained here", "ImageNet scale (published accuracy, timing here)"],
                  [[c, f"**{a[c]}**" if c in a else "-", f"**{b[c]}**" if c in b else "-"] for c in claims], left=3)


def render_report(meta: dict, records: dict, verdicts: dict, files: dict, rows: list[dict]) -> str:
    short = meta["preset"]["train_seconds"] is not None
    acc_label = "short-budget accuracy" if short else "accuracy"
    parts = [
        "# cnnzoo compare: the lecture's networks on this machine",
        f"- command: `{meta['command']}`\n- date: {meta['date']}\n- hardware and libraries: {_hardware_line(meta)}\n"
        f"- data set: {meta['dataset']}" + (f"\n{hosts_line(meta, records)}" if hosts_line(meta, records) else ""),
        _conditions(meta),
        "## The verdicts at both scales",
        side_by_side(verdicts["L31"] + verdicts["L32"], verdicts["L31_imagenet"] + verdicts["L32_imagenet"],
                     meta["dataset"]),
        f"Rules: a claim naming the most/least of something needs at least {MIN_MODELS} models from {MIN_MODELS} "
        f"families, else *not tested*; accuracies: {ACCURACY_RULE}; times: {TIME_RULE}; correlations: one-sided "
        f"permutation test, p < {ALPHA}. A difference inside these limits reads *not shown*.",
        f"## L31 on {meta['dataset']}: accuracy against operations (bubble = parameters)",
        f"![accuracy vs MACs]({files['accuracy_vs_macs.png']})",
        "### Trained scale (the recipe's input side and width) and " + acc_label,
        trained_table(records, short),
        "### The compared architectures at ImageNet scale (3x224x224, 1000 classes), analyzer figures",
        architecture_table(records),
        "### Does this machine agree with L31?",
        verdict_table(verdicts["L31"]),
        "## L32 at the trained scale: forward time against batch size",
        load_note(meta, records),
        f"![latency vs batch]({files['latency_vs_batch.png']})",
        latency_table(records),
        batch_table(records),
        "### Does this machine agree with L32?",
        verdict_table(verdicts["L32"]),
        "## At ImageNet scale: published accuracy against cost measured here (Canziani et al. 2016, Fig. 1-3)",
        _imagenet_conditions(meta),
        f"![ImageNet accuracy vs operations]({files['imagenet_accuracy_vs_ops.png']})",
        f"![ImageNet latency vs batch]({files['imagenet_latency_vs_batch.png']})",
        imagenet_table(rows),
        "Accuracy sources and test protocols:\n\n" + sources_list(rows),
        imagenet_batch_table(records),
        "### L31 and L32 at ImageNet scale",
        verdict_table(verdicts["L31_imagenet"] + verdicts["L32_imagenet"]),
        "## Training curves",
        f"![training curves]({files['training_curves.png']})",
    ]
    return "\n\n".join(parts) + "\n"


def readme_section(meta: dict, records: dict, verdicts: dict, out: Path, readme: Path) -> str:
    """The README's results block: command, trained-scale table, the trained-scale bubble and
    latency charts, the ImageNet-scale chart, and the verdicts at both scales."""
    rel = lambda f: os.path.relpath(out / f, readme.parent)  # noqa: E731
    short = meta["preset"]["train_seconds"] is not None
    return "\n\n".join([
        f"Generated by `{meta['command']}` on {meta['date'][:10]} ({_hardware_line(meta).split(';')[0]}); "
        f"full report: [{rel('report.md')}]({rel('report.md')})."
        + (f" Cached stages {hosts_line(meta, records)[2:]}." if hosts_line(meta, records) else ""),
        trained_table(records, short),
        f"![accuracy vs MACs]({rel('accuracy_vs_macs.png')})",
        f"![latency vs batch]({rel('latency_vs_batch.png')})",
        f"At ImageNet scale (published top-1, never measured here, against the analyzer's GMACs; details and "
        f"sources in the report):\n\n![ImageNet accuracy vs operations]({rel('imagenet_accuracy_vs_ops.png')})",
        side_by_side(verdicts["L31"] + verdicts["L32"], verdicts["L31_imagenet"] + verdicts["L32_imagenet"],
                     meta["dataset"]),
    ])


def write_outputs(out: Path, meta: dict, records: dict, readme=None) -> dict:
    """Write the plots, ``results.json`` and ``report.md`` into ``out``; returns results.json's content."""
    short = meta["preset"]["train_seconds"] is not None
    rows = imagenet_rows(records)
    verdicts = {"L31": l31_verdicts(records, short), "L32": l32_verdicts(records),
                "L31_imagenet": imagenet_l31_verdicts(rows), "L32_imagenet": imagenet_l32_verdicts(records)}
    scale = "short-budget, " if short else ""
    titles = {"accuracy_vs_macs.png": f"{meta['dataset']} top-1 ({scale}trained scale) vs operations; "
                                      "bubble area = parameters",
              "latency_vs_batch.png": "forward time vs batch size on this machine (trained scale)",
              "training_curves.png": f"training on {meta['dataset']} ({scale.rstrip(', ') or 'recipe epochs'})",
              "imagenet_accuracy_vs_ops.png": "ImageNet-1K top-1 as published (not measured here) vs operations "
                                              "at 224x224; bubble area = parameters",
              "imagenet_latency_vs_batch.png": "forward time per image vs batch size at 3x224x224 on this machine"}
    points = save_plots(out, records, rows, titles)
    files = {f: f for f in points}
    results = {**meta, "models": records, "imagenet": rows, "verdicts": verdicts,
               "files": {"report": "report.md", "results": "results.json",
                         "plots": {f: {"path": f, "points": n} for f, n in points.items()}}}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report.md").write_text(render_report(meta, records, verdicts, files, rows))
    if readme is not None:
        update_section(readme, README_SECTION, readme_section(meta, records, verdicts, out, Path(readme)))
    return results
