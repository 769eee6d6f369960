"""``cnnzoo page``: one self-contained HTML file per model (no network, no CDN at view time).

The page holds the diagram (inline SVG from :func:`cnnzoo.draw.draw`), the analyzer's per-layer
table (click a header to sort, type to filter), the totals, and a receptive-field viewer: click a
layer (in the table or the diagram) and the input grid shows the area that one unit of that
layer sees (the centre unit), with the field's size, effective stride and effective padding in
input pixels, as :func:`cnnzoo.profile` computes them. Registry models also show their paper,
variant notes and the lecture's claims about their family with cnnzoo's verdicts. A trained run's
page also shows Grad-CAM explanations of a few test images per class (``explanations``, from
:func:`cnnzoo.explain.page_examples`), embedded as ``data:`` URIs beside the receptive-field viewer.
"""
from __future__ import annotations

import html
import json
import re
import string
from pathlib import Path

from torch import nn

from .._text import megabytes
from ..analysis import Profile
from ..analysis.render import _kernel
from . import default_title, draw, trace, write_bytes

def rows_json(prof: Profile) -> list[dict]:
    """The table's rows: the analyzer's figures per layer, as the page's script reads them."""
    return [{"i": i, "name": r.name + (f" (call {r.call})" if r.call > 1 else ""), "type": r.type,
             "kernel": _kernel(r), "input": list(r.input_shape or ()), "output": list(r.output_shape or ()),
             "params": r.params, "macs": r.macs, "rf": r.rf.to_dict() if r.rf else None}
            for i, r in enumerate(prof.layers)]


def _registry(name: str | None) -> dict | None:
    """Paper, year, ILSVRC result, notes and the lecture's claims (with verdicts) of a registry model."""
    if not name:
        return None
    from ..lecture import claims_of, evaluate
    from ..registry import model_info
    info = model_info(name)
    results = evaluate(claims_of(info.family))
    return {"name": name, "paper": info.paper, "year": info.year, "ilsvrc": info.ilsvrc, "notes": info.notes,
            "torchvision": info.torchvision,
            "claims": [{"id": r.claim.id, "text": r.claim.text,
                        "lecture": r.claim.stated.text if r.claim.stated else "",
                        "cnnzoo": r.computed.shown if r.computed else "", "verdict": r.verdict, "reason": r.reason}
                       for r in results]}


def _svg_body(svg: str) -> str:
    """The ``<svg>`` element alone (no XML prolog or doctype), so it can sit inline in HTML."""
    return svg[svg.index("<svg"):]


def render_page(prof: Profile, svg: str, box_rows: list[list[int]], title: str, registry: dict | None,
                caption: str = "", explanations: dict | None = None) -> str:
    """The page's HTML text from a profile, the diagram's SVG and the rows each box stands for
    (box K is ``<g id="box-K">``; its first row is the one a click on it chooses); ``caption``: the
    diagram's title, shown as text above it that wraps to the pane (an SVG title wider than the
    pane was cut off when the pane scrolls to the input box); ``explanations`` as
    :func:`cnnzoo.explain.page_examples` returns them."""
    t = prof.totals
    totals = [("parameters", f"{t.params:,}"), ("executed parameters", f"{t.params_executed:,}"),
              ("MACs (" + " + ".join(prof.count) + ")", f"{t.macs:,}"), ("FLOPs (2 x MACs)", f"{t.flops:,}"),
              ("activations (forward)", megabytes(t.activation_bytes)),
              ("weights", f"{t.param_bytes / 1e6:,.2f} MB"), ("depth (weight layers)", str(prof.depth)),
              ("receptive field", str(prof.receptive_field) if prof.receptive_field else "-")]
    if prof.train:
        totals.append(("mode", "training: the auxiliary heads run and are counted"))
    data = {"title": title, "input": list(prof.input_shape), "rows": rows_json(prof), "boxes": box_rows,
            "totals": totals, "registry": registry, "conventions": prof.conventions(),
            "explain": explanations}
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _TEMPLATE.substitute(title=html.escape(title), caption=html.escape(caption), svg=_svg_body(svg),
                                data=payload)


def write_page(model: nn.Module, out: str | Path, input_size=None, *, name: str | None = None,
               depth: str = "layer", stem: str | None = None, explanations: dict | None = None) -> Path:
    """Write ``out/STEM.html`` and return its path. ``name``: the registry name (adds the paper,
    notes and the lecture's claims); ``stem`` defaults to ``name`` or the model's class.

    Raises:
        DrawError: ``out`` cannot be created or written. Errors of :func:`cnnzoo.profile` when the
        model cannot run at ``input_size``.
    """
    prof = trace(model, input_size)
    diagram = draw(model, input_size, depth, prof=prof, show=("params", "macs"), title="")   # title: the caption
    boxes = [n.rows for n in diagram.graph.nodes]
    title = f"{name or type(model).__name__} at {'x'.join(map(str, prof.input_shape[1:]))}"
    text = render_page(prof, diagram.svg(), boxes, title, _registry(name), default_title(model, prof),
                       explanations)
    path = Path(out) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', stem or name or type(model).__name__)}.html"
    write_bytes(path, text.encode())
    return path


_TEMPLATE = string.Template(r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>$title - cnnzoo</title>
<style>
body{font:14px/1.4 Helvetica,Arial,sans-serif;margin:0;color:#222}
header{padding:12px 20px;background:#f4f1ea;border-bottom:1px solid #ddd}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px}
main{display:flex;gap:16px;padding:0 20px;align-items:flex-start}
#diagram{flex:1 1 45%;overflow:auto;max-height:92vh;border:1px solid #ddd;margin-top:12px}
#side{flex:1 1 55%;min-width:420px}
#zoom{position:sticky;top:0;left:0;z-index:1;padding:4px;background:#fff} #diagram.fit svg{width:100%;height:auto}
#diagram g.node{cursor:pointer} #diagram g.node.sel path,#diagram g.node.sel polygon,#diagram g.node.sel ellipse{stroke:#c00;stroke-width:3}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #e4e4e4;padding:2px 6px;text-align:left;white-space:nowrap}
th{cursor:pointer;background:#fafafa;position:sticky;top:0} th.asc:after{content:" \25B2"} th.desc:after{content:" \25BC"}
td.n{text-align:right;font-variant-numeric:tabular-nums}
#layers tbody tr{cursor:pointer} #layers tbody tr:hover{background:#f0f6ff} #layers tbody tr.sel{background:#ffe9b3}
#tablebox{max-height:50vh;overflow:auto;border:1px solid #ddd}
#rfbox{display:flex;gap:14px;align-items:flex-start} #rfgrid{flex:none;border:1px solid #ccc;background:#fff}
.fig{font-weight:bold} .claim{margin:4px 0} .verdict{font-weight:bold}
.muted{color:#666;font-size:12px}
#explain figure{display:inline-block;margin:2px 4px;text-align:center;font-size:11px} #explain img{display:block;width:120px}
</style></head>
<body>
<header><h1>$title</h1><div id="meta" class="muted"></div></header>
<main>
<section id="diagram"><div id="zoom"><button id="fit">fit width</button> <b id="caption">$caption</b></div>$svg</section>
<section id="side">
<h2>Totals</h2><table id="totals"></table>
<h2>Receptive field</h2>
<div id="rfbox"><svg id="rfgrid" width="260" height="260" viewBox="0 0 260 260"></svg>
<div><div>layer: <span id="rf-layer" class="fig">(click a layer)</span></div>
<div>size: <span id="rf-size" class="fig">-</span> px</div>
<div>effective stride: <span id="rf-stride" class="fig">-</span> px</div>
<div>effective padding: <span id="rf-padding" class="fig">-</span> px</div>
<div id="rf-unit" class="muted"></div>
<p class="muted">The grey square is the input (H x W); the red box is the area one unit (the centre one) of the chosen
layer sees, padding included (dashed outside the input). Size r, effective stride j and padding P per axis, in input pixels.</p></div></div>
<div id="explain"></div>
<h2>Layers</h2>
<input id="filter" placeholder="filter layers (name, type, kernel...)" size="40">
<span id="count" class="muted"></span>
<div id="tablebox"><table id="layers"><thead><tr></tr></thead><tbody></tbody></table></div>
<div id="registry"></div>
<h2>Conventions</h2><ul id="conventions" class="muted"></ul>
</section></main>
<script id="data" type="application/json">$data</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $$ = (s, e) => (e || document).querySelector(s);
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const hw = a => a.length > 1 ? a.join("x") : String(a[0]);
const shape = s => s.length ? s.slice(1).join("x") : "-";
const fmt = n => n.toLocaleString("en-US");
const cols = [["#", r => r.i, 1], ["layer", r => r.name], ["type", r => r.type], ["kernel", r => r.kernel],
  ["input", r => shape(r.input)], ["output", r => shape(r.output)], ["params", r => r.params, 1], ["MACs", r => r.macs, 1],
  ["RF", r => !r.rf ? "-" : r.rf.is_global ? "global" : hw(r.rf.size), 0, r => !r.rf ? -1 : r.rf.is_global ? 1e9 : r.rf.size[0]]];
$$("#totals").innerHTML = D.totals.map(([k, v]) => `<tr><td>$${esc(k)}</td><td class="n">$${esc(v)}</td></tr>`).join("");
$$("#conventions").innerHTML = D.conventions.map(c => `<li>$${esc(c)}</li>`).join("");
if (D.registry) {
  const R = D.registry;
  $$("#meta").innerHTML = `$${esc(R.paper)} ($${R.year})$${R.ilsvrc ? " &middot; " + esc(R.ilsvrc) : ""}<br>` +
    `<b>variant:</b> $${esc(R.notes)}$${R.torchvision ? " &middot; state_dict-compatible with torchvision's " + esc(R.torchvision) : ""}`;
  if (R.claims.length) $$("#registry").innerHTML = "<h2>The lecture's claims</h2>" + R.claims.map(c =>
    `<div class="claim"><b>$${esc(c.id)}</b> $${esc(c.text)} <span class="verdict">[$${esc(c.verdict)}]</span>` +
    (c.lecture ? `<div class="muted">lecture: $${esc(c.lecture)}; cnnzoo: $${esc(c.cnnzoo)}</div>` : "") +
    `<div class="muted">$${esc(c.reason)}</div></div>`).join("");
} else $$("#meta").textContent = "a module given as a file (not in the registry)";
if (D.explain && D.explain.items.length) { const E = D.explain;
  $$("#explain").innerHTML = `<h2>Explanations</h2><div class="muted">$${esc(E.method === "gradcam" ? "Grad-CAM" : E.method)}` +
    (E.layer ? ` at $${esc(E.layer)} (receptive field $${esc(E.receptive_field || "-")})` : "") +
    ` of the predicted class, one test image per class (cnnzoo explain)</div>` + E.items.map(it =>
    `<figure><img alt="$${esc(it.class)}" src="$${it.src}"><figcaption>$${esc(it.class)}<br>` +
    `<span class="muted">said $${esc(it.predicted)} $${it.probability.toFixed(2)}</span></figcaption></figure>`).join("");
}
const head = $$("#layers thead tr"), body = $$("#layers tbody");
head.innerHTML = cols.map(c => `<th>$${c[0]}</th>`).join("");
let order = D.rows.slice(), sortCol = -1, asc = true;
function paint() {
  const q = $$("#filter").value.toLowerCase();
  const shown = order.filter(r => !q || cols.map(c => String(c[1](r))).join(" ").toLowerCase().includes(q));
  body.innerHTML = shown.map(r => `<tr data-i="$${r.i}">` + cols.map(c =>
    `<td$${c[2] ? ' class="n"' : ""}>$${esc(c[2] && typeof c[1](r) === "number" ? fmt(c[1](r)) : c[1](r))}</td>`).join("") + "</tr>").join("");
  $$("#count").textContent = `$${shown.length} of $${D.rows.length} rows`;
  if (current >= 0) { const tr = $$(`tr[data-i="$${current}"]`, body); if (tr) tr.classList.add("sel"); }
}
head.addEventListener("click", e => {
  const k = [...head.children].indexOf(e.target); if (k < 0) return;
  asc = sortCol === k ? !asc : true; sortCol = k;
  const key = cols[k][3] || cols[k][1];
  order.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
  [...head.children].forEach((th, j) => th.className = j === k ? (asc ? "asc" : "desc") : "");
  paint();
});
$$("#filter").addEventListener("input", paint);
let current = -1;
const NS = "http://www.w3.org/2000/svg";
function rect(g, x, y, w, h, attrs) {
  const r = document.createElementNS(NS, "rect");
  Object.entries({x, y, width: w, height: h, ...attrs}).forEach(([k, v]) => r.setAttribute(k, v));
  g.appendChild(r);
}
function select(i, scroll) {
  current = i;
  const r = D.rows[i];
  body.querySelectorAll("tr.sel").forEach(t => t.classList.remove("sel"));
  const tr = $$(`tr[data-i="$${i}"]`, body); if (tr) tr.classList.add("sel");
  document.querySelectorAll("#diagram g.node.sel").forEach(g => g.classList.remove("sel"));
  D.boxes.forEach((rows, k) => { if (rows.includes(i)) document.querySelectorAll(`#diagram g[id^="box-$${k}"]`)
    .forEach(g => { if (g.id === `box-$${k}` || g.id.startsWith(`box-$${k}-`)) g.classList.add("sel"); }); });
  const box = $$("#diagram g.node.sel");
  if (box && scroll) { // bring the chosen box to the middle of the diagram's pane
    const d = $$("#diagram"), b = box.getBoundingClientRect(), o = d.getBoundingClientRect();
    d.scrollTop += b.top - o.top - d.clientHeight / 2; d.scrollLeft += b.left - o.left - d.clientWidth / 2 + b.width / 2;
  }
  $$("#rf-layer").textContent = r.name;
  const g = $$("#rfgrid"); g.innerHTML = "";
  const sp = D.input.slice(2), H = sp.length > 1 ? sp[sp.length - 2] : 1, W = sp[sp.length - 1];
  let rf = r.rf;
  if (!rf) { ["size", "stride", "padding"].forEach(k => $$("#rf-" + k).textContent = "-");
    $$("#rf-unit").textContent = "no receptive field rule for this layer"; return; }
  const glob = rf.is_global;
  if (glob && rf.feature) rf = rf.feature;
  $$("#rf-size").textContent = glob ? "global" : hw(rf.size);
  $$("#rf-stride").textContent = glob ? "global" : hw(rf.stride);
  $$("#rf-padding").textContent = glob ? "global" : hw(rf.padding);
  const out = r.output.slice(2), oh = out.length > 1 ? out[0] : 1, ow = out.length ? out[out.length - 1] : 1;
  const ui = glob ? 0 : Math.floor((oh - 1) / 2), uj = glob ? 0 : Math.floor((ow - 1) / 2);
  const [rh, rw] = glob ? [H, W] : [sp.length > 1 ? rf.size[0] : 1, rf.size[rf.size.length - 1]];
  const [sh, sw] = rf.stride.length > 1 ? rf.stride : [rf.stride[0], rf.stride[0]];
  const [ph, pw] = rf.padding.length > 1 ? rf.padding : [rf.padding[0], rf.padding[0]];
  const y0 = glob ? 0 : ui * sh - ph, x0 = glob ? 0 : uj * sw - pw;
  const lo = Math.min(0, x0, y0), hi = Math.max(W, H, x0 + rw, y0 + rh), span = hi - lo, k = 240 / span, o = 10;
  const X = v => o + (v - lo) * k;
  rect(g, X(0), X(0), W * k, H * k, {fill: "#e6e6e6", stroke: "#999"});
  const step = Math.max(1, sw); if (W / step <= 64) for (let v = step; v < W; v += step)
    rect(g, X(v), X(0), 0.3, H * k, {fill: "#bbb"});
  rect(g, X(x0), X(y0), rw * k, rh * k, {fill: "rgba(220,0,0,0.18)", stroke: "#c00", "stroke-width": 1.5,
    "stroke-dasharray": (x0 < 0 || y0 < 0 || x0 + rw > W || y0 + rh > H) ? "4 2" : "none"});
  $$("#rf-unit").textContent = glob ? "after global pooling or flatten every unit sees the whole input; figures: the last spatial map's field" :
    `unit ($${ui}, $${uj}) of the $${oh}x$${ow} map sees input rows $${y0}..$${y0 + rh - 1}, columns $${x0}..$${x0 + rw - 1} of $${H}x$${W}`;
}
body.addEventListener("click", e => { const tr = e.target.closest("tr"); if (tr) select(+tr.dataset.i, true); });
$$("#diagram").addEventListener("click", e => {
  const g = e.target.closest("g.node"); if (!g) return;
  const rows = D.boxes[+g.id.split("-")[1]]; if (rows.length && rows[0] >= 0) select(rows[0], false);
});
paint();
$$("#fit").addEventListener("click", () => { const d = $$("#diagram"); d.classList.toggle("fit");
  $$("#fit").textContent = d.classList.contains("fit") ? "actual size" : "fit width"; });
{ // start with the input box in view and the last layer with a spatial receptive field chosen
  const d = $$("#diagram"), box = $$("#diagram g.node"), r = box && box.getBoundingClientRect(), o = d.getBoundingClientRect();
  if (r) d.scrollLeft = Math.max(0, r.left - o.left - d.clientWidth / 2 + r.width / 2);
  const last = D.rows.filter(r => r.rf && !r.rf.is_global).pop(); if (last) select(last.i);
}
</script></body></html>
""")
