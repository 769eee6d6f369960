"""The comparison's verdicts on the lecture's L31 and L32 and its outputs: ``results.json``,
``report.md``, the plots and the README results section. Every verdict is derived from the
measured numbers; no sentence of it is written in advance of the measurement."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._readme import update_section
from .plots import save_plots

README_SECTION = "compare"  # the README block between <!-- cnnzoo-compare:begin/end --> markers

# -- statistics ------------------------------------------------------------------------------


def spearman(x, y) -> float:
    """Spearman rank correlation (Pearson on ranks; ties get their first-occurrence rank)."""
    rx, ry = (np.argsort(np.argsort(np.asarray(v, dtype=float))) for v in (x, y))
    return float(np.corrcoef(rx, ry)[0, 1])


def pearson_log(x, y) -> float:
    """Pearson correlation of log10(x) and log10(y) (operations and times span decades)."""
    return float(np.corrcoef(np.log10(x), np.log10(y))[0, 1])


def strength(r: float) -> str:
    a = abs(r)
    return "strong" if a >= 0.8 else "moderate" if a >= 0.5 else "weak"


# -- verdicts --------------------------------------------------------------------------------


def _fmt_pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _rank(values: dict[str, float], name: str, descending: bool) -> int:
    order = sorted(values, key=values.get, reverse=descending)
    return order.index(name) + 1


def _family_claim(claim: str, winner: str, families: dict[str, str], family: str, what: str) -> dict:
    present = [n for n, f in families.items() if f == family]
    if not present:
        verdict, why = "not tested", f"no {family} model in this comparison"
    elif families[winner] == family:
        verdict, why = "agrees", f"{winner} is {what}"
    else:
        verdict, why = "differs", f"{winner} ({families[winner]}) is {what}, not {', '.join(present)}"
    return {"claim": claim, "verdict": verdict, "detail": why}


def l31_verdicts(records: dict, short_budget: bool) -> list[dict]:
    """L31: VGG the most expensive, GoogLeNet the most efficient, ResNet the most accurate at
    moderate cost, AlexNet low compute but many parameters. Operations and parameters at
    ImageNet scale (the architectures as published); accuracy from this machine's training."""
    fam = {n: r["analysis"]["family"] for n, r in records.items()}
    macs = {n: r["analysis"]["imagenet"]["macs"] for n, r in records.items()}
    params = {n: r["analysis"]["imagenet"]["params_executed"] for n, r in records.items()}
    top1 = {n: r["accuracy"]["top1"] for n, r in records.items()}
    out = []
    costly = max(macs, key=macs.get)
    out.append(_family_claim("VGG is the most expensive (operations per image)", costly, fam, "vgg",
                             f"the most expensive at 224x224: {macs[costly] / 1e9:.2f} GMACs"))
    best = max(top1, key=top1.get)
    v = _family_claim("ResNet is the most accurate, at moderate cost", best, fam, "resnet",
                      f"the most accurate: top-1 {_fmt_pct(top1[best])}")
    v["detail"] += (f"; its cost ranks {_rank(macs, best, True)} of {len(macs)} (1 = most GMACs, "
                    f"{macs[best] / 1e9:.2f} GMACs at 224x224)")
    out.append(v)
    # Canziani et al. 2016 (Fig. 6) call accuracy per parameter "accuracy density"; LeNet-5 is
    # not in their figure, so the efficiency claim is judged among the ImageNet networks.
    nets = {n: top1[n] / (r["analysis"]["trained"]["params_executed"] / 1e6) for n, r in records.items()
            if fam[n] != "lenet"}
    if nets:
        dense = max(nets, key=nets.get)
        v = _family_claim("GoogLeNet is the most efficient", dense, {n: fam[n] for n in nets}, "googlenet",
                          f"the most efficient by accuracy density (top-1 % per M params at the trained "
                          f"scale, LeNet excluded): {100 * nets[dense]:.1f} %/M")
        out.append(v)
    alex = [n for n in records if fam[n] == "alexnet" and fam.get(n) != "lenet"]
    if alex:
        a = alex[0]
        lect = {n: m for n, m in macs.items() if fam[n] != "lenet"}
        lp = {n: p for n, p in params.items() if fam[n] != "lenet"}
        rm, rp, k = _rank(lect, a, False), _rank(lp, a, True), len(lect)
        ok = rm <= (k + 1) // 2 and rp <= (k + 1) // 2
        out.append({"claim": "AlexNet has low compute but many parameters", "verdict": "agrees" if ok else "differs",
                    "detail": f"{a}: {macs[a] / 1e9:.2f} GMACs, rank {rm} of {k} from the cheapest; "
                              f"{params[a] / 1e6:.1f} M params, rank {rp} of {k} from the largest "
                              f"(LeNet excluded; 'low'/'many' = in the cheaper/larger half)"})
    if short_budget:
        for v in out:
            if v["verdict"] != "not tested" and ("accura" in v["claim"] or "efficient" in v["claim"]):
                v["detail"] += "; accuracy from short-budget training (how fast each net learns, not its ceiling)"
    return out


def _correlation(claim: str, x: dict, y: dict, conditions: str) -> dict:
    names = [n for n in x if n in y and x[n] > 0 and y[n] > 0]
    if len(names) < 3:
        return {"claim": claim, "verdict": "not tested", "detail": f"fewer than 3 models ({conditions})"}
    xs, ys = [x[n] for n in names], [y[n] for n in names]
    rho, r = spearman(xs, ys), pearson_log(xs, ys)
    per_gmac = {n: y[n] / (x[n] / 1e9) for n in names}       # seconds per GMAC
    lo, hi = min(per_gmac, key=per_gmac.get), max(per_gmac, key=per_gmac.get)
    verdict = {"strong": "agrees", "moderate": "agrees in part", "weak": "differs"}[strength(rho)] if rho > 0 else "differs"
    return {"claim": claim, "verdict": verdict, "spearman": rho, "pearson_log": r, "n": len(names),
            "detail": f"{conditions}: Spearman rho = {rho:.2f} ({strength(rho)}), Pearson r of log10 values = "
                      f"{r:.2f}, over {len(names)} models; time per GMAC ranges from {1e3 * per_gmac[lo]:.2f} ms "
                      f"({lo}) to {1e3 * per_gmac[hi]:.2f} ms ({hi})"}


def l32_verdicts(records: dict) -> list[dict]:
    """L32: per-image time falls as the batch grows; operation count predicts inference time."""
    falls, flat = [], []
    for n, r in records.items():
        rows = r["latency"]["fp32"]
        first, last = rows[0], rows[-1]
        ratio = first["per_image_seconds"] / last["per_image_seconds"]
        (falls if ratio > 1.0 else flat).append(f"{n} {ratio:.1f}x")
    b0, b1 = (next(iter(records.values()))["latency"]["fp32"][i]["batch_size"] for i in (0, -1))
    verdict = "agrees" if not flat else "differs" if not falls else "agrees in part"
    out = [{"claim": "Per-image forward time falls as the batch grows", "verdict": verdict,
            "detail": f"fp32, trained scale, batch {b0} vs {b1} (per-image time at {b0} / at {b1}): "
                      f"falls for {len(falls)} of {len(records)} models ({', '.join(falls) or 'none'})"
                      + (f"; does not fall for {', '.join(flat)}" if flat else "")}]
    im_lat = {n: r["latency"]["imagenet_fp32"]["median_seconds"] for n, r in records.items()
              if r["latency"].get("imagenet_fp32")}
    im_macs = {n: r["analysis"]["imagenet"]["macs"] for n, r in records.items()}
    out.append(_correlation("Operation count predicts inference time (ImageNet scale)", im_macs, im_lat,
                            "MACs vs fp32 batch-1 forward time at 3x224x224"))
    tr_lat = {n: r["latency"]["fp32"][-1]["median_seconds"] / r["latency"]["fp32"][-1]["batch_size"]
              for n, r in records.items()}
    tr_macs = {n: r["analysis"]["trained"]["macs"] for n, r in records.items()}
    out.append(_correlation("Operation count predicts inference time (trained scale)", tr_macs, tr_lat,
                            f"MACs vs fp32 per-image forward time at batch {b1}, trained scale"))
    out.append({"claim": "Power against batch size", "verdict": "not measured",
                "detail": "cnnzoo reads no power meter; only time is measured"})
    return out


# -- tables ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table; the first ``left`` columns are text (left-aligned), the rest numbers."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _ms(sec: float | None) -> str:
    return "-" if sec is None else f"{1e3 * sec:.2f}"


def imagenet_table(records: dict) -> str:
    rows = []
    for n, r in records.items():
        a, lat = r["analysis"]["imagenet"], r["latency"]
        im, mem = lat.get("imagenet_fp32"), lat.get("imagenet_memory")
        rows.append([n, f"{r['analysis']['year']}", f"{a['params_executed'] / 1e6:.2f}", f"{a['macs'] / 1e9:.3f}",
                     f"{a['activation_bytes'] / 1e6:.1f}", str(a["receptive_field"]), str(a["depth"]),
                     _ms(im and im["median_seconds"]), "-" if not mem else f"{mem['peak_bytes'] / 1e6:.0f}"])
    return _table(["model", "year", "params (M)", "GMACs", "activations (MB)", "receptive field (px)", "depth",
                   "fp32 batch-1 time (ms)", "peak memory (MB)"], rows)


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


def latency_table(records: dict) -> str:
    rows = []
    for n, r in records.items():
        lat = r["latency"]
        f0, f1, q0, q1 = lat["fp32"][0], lat["fp32"][-1], lat["fast"][0], lat["fast"][-1]
        rows.append([n, _ms(f0["median_seconds"]), _ms(q0["median_seconds"]), f"{f1['images_per_s']:.0f}",
                     f"{q1['images_per_s']:.0f}", lat["fast_path"],
                     f"{f0['per_image_seconds'] / f1['per_image_seconds']:.1f}",
                     f"{lat['memory']['peak_bytes'] / 1e6:.1f}"])
    r0 = next(iter(records.values()))["latency"]
    b0, b1 = r0["fp32"][0]["batch_size"], r0["fp32"][-1]["batch_size"]
    return _table(["model", f"batch {b0} fp32 (ms)", f"batch {b0} fast (ms)", f"batch {b1} fp32 (img/s)",
                   f"batch {b1} fast (img/s)", "fast path", f"per-image time {b0}/{b1}",
                   f"peak memory at {b1} (MB)"], rows)


def batch_table(records: dict) -> str:
    r0 = next(iter(records.values()))["latency"]["fp32"]
    rows = [[n, *[_ms(row["median_seconds"]) for row in r["latency"]["fp32"]]] for n, r in records.items()]
    return _table(["model (fp32 ms per batch)", *[f"batch {row['batch_size']}" for row in r0]], rows)


def verdict_table(verdicts: list[dict]) -> str:
    return _table(["claim", "verdict", "measured"], [[v["claim"], f"**{v['verdict']}**", v["detail"]] for v in verdicts],
                  left=3)


# -- outputs ---------------------------------------------------------------------------------


def _hardware_line(meta: dict) -> str:
    h, v = meta["hardware"], meta["versions"]
    return (f"{h['processor'] or h['machine']}, {h['cpu_count']} logical CPUs, {h['torch_threads']} torch threads, "
            f"ISA {h['cpu_capability']}; {h['platform']}; "
            + ", ".join(f"{k} {val}" for k, val in v.items()))


def _conditions(meta: dict) -> str:
    p = meta["preset"]
    acc = ("short-budget training: about {:.0f} s per model on a training subset, {} test images".format(
        p["train_seconds"], p["limit_test"] or "all") if p["train_seconds"] is not None
        else "each model's recipe (epochs, input side, width) on the whole training set, the whole test set")
    return (f"Preset **{p['name']}**: {acc}. Latency: wall-clock median of timed blocks "
            f"(torch.utils.benchmark, at least {p['min_seconds']} s per point), randomly initialised weights, "
            "`torch.inference_mode`; *fast* = the fastest of fp32, fp32 channels_last and bf16 autocast + "
            "channels_last (where the CPU has native bf16), chosen per model at the largest batch. Peak memory: "
            "weights + input + the measured peak of live tensors created in one forward (fp32). "
            "MACs: conv + linear multiply-adds (FLOPs = 2 x MACs). MB = 10^6 bytes.")


def load_note(meta: dict, records: dict) -> str:
    """The system load seen by the latency stages, and what it means for the times."""
    loads = [v for r in records.values() for v in r["latency"].get("load_average", [])]
    if not loads:
        return "System load during timing: not recorded."
    threads = meta["hardware"]["torch_threads"]
    note = f"System load (1-min load average) during the latency stages: {min(loads):.1f} to {max(loads):.1f}"
    if max(loads) > threads:
        note += (f", above the {threads} torch threads: other processes competed for the cores, so the "
                 "times are inflated and noisy; rerun on an idle machine for clean latency figures")
    return note + "."


def render_report(meta: dict, records: dict, verdicts: dict, files: dict) -> str:
    short = meta["preset"]["train_seconds"] is not None
    acc_label = "short-budget accuracy" if short else "accuracy"
    parts = [
        "# cnnzoo compare: the lecture's networks on this machine",
        f"- command: `{meta['command']}`\n- date: {meta['date']}\n- hardware and libraries: {_hardware_line(meta)}\n"
        f"- data set: {meta['dataset']}",
        _conditions(meta),
        "## L31: accuracy against operations (bubble = parameters)",
        f"![accuracy vs MACs]({files['accuracy_vs_macs.png']})",
        "### Trained scale (the recipe's input side and width) and " + acc_label,
        trained_table(records, short),
        "### ImageNet scale (3x224x224, 1000 classes): the architectures as published",
        imagenet_table(records),
        "### Does this machine agree with L31?",
        verdict_table(verdicts["L31"]),
        "## L32: forward time against batch size",
        load_note(meta, records),
        f"![latency vs batch]({files['latency_vs_batch.png']})",
        latency_table(records),
        batch_table(records),
        "### Does this machine agree with L32?",
        verdict_table(verdicts["L32"]),
        "## Training curves",
        f"![training curves]({files['training_curves.png']})",
    ]
    return "\n\n".join(parts) + "\n"


def readme_section(meta: dict, records: dict, verdicts: dict, out: Path, readme: Path) -> str:
    """The README's results block: command, trained-scale table, bubble chart, L31/L32 verdicts."""
    rel = lambda f: os.path.relpath(out / f, readme.parent)  # noqa: E731
    short = meta["preset"]["train_seconds"] is not None
    return "\n\n".join([
        f"Generated by `{meta['command']}` on {meta['date'][:10]} ({_hardware_line(meta).split(';')[0]}); "
        f"full report: [{rel('report.md')}]({rel('report.md')}).",
        trained_table(records, short),
        f"![accuracy vs MACs]({rel('accuracy_vs_macs.png')})",
        verdict_table(verdicts["L31"] + verdicts["L32"]),
    ])


def write_outputs(out: Path, meta: dict, records: dict, readme=None) -> dict:
    """Write the plots, ``results.json`` and ``report.md`` into ``out``; returns results.json's content."""
    short = meta["preset"]["train_seconds"] is not None
    verdicts = {"L31": l31_verdicts(records, short), "L32": l32_verdicts(records)}
    scale = "short-budget, " if short else ""
    titles = {"accuracy_vs_macs.png": f"{meta['dataset']} top-1 ({scale}trained scale) vs operations; "
                                      "bubble area = parameters",
              "latency_vs_batch.png": "forward time vs batch size on this machine (trained scale)",
              "training_curves.png": f"training on {meta['dataset']} ({scale.rstrip(', ') or 'recipe epochs'})"}
    points = save_plots(out, records, titles)
    files = {f: f for f in points}
    results = {**meta, "models": records, "verdicts": verdicts,
               "files": {"report": "report.md", "results": "results.json",
                         "plots": {f: {"path": f, "points": n} for f, n in points.items()}}}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report.md").write_text(render_report(meta, records, verdicts, files))
    if readme is not None:
        update_section(readme, README_SECTION, readme_section(meta, records, verdicts, out, Path(readme)))
    return results
