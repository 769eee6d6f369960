"""The diagram's :class:`~cnnzoo.draw.graph.Graph` as a Graphviz ``dot`` graph (layout by Graphviz).

Boxes are coloured by kind (conv orange, pooling blue, FC purple, normalization green, a
collapsed block or stage yellow), joins are ellipses (``+``, ``concat``); residual shortcuts are
drawn apart: an ``identity`` arc (blue, bold) around its block, a ``projection`` path (orange,
dashed boxes); auxiliary classifiers are grey dashed side exits. AlexNet's grouped convolutions
(``groups=2``) split the layers they span into two columns, one per tower (Krizhevsky et al.
2012, Fig. 2).
"""
from __future__ import annotations

import html
from collections import Counter

import graphviz

from .._text import hwc, short
from .graph import Graph, Node

FILL = {"conv": "#fdd9b5", "pool": "#c6dbef", "fc": "#e2d4f0", "norm": "#d4edda", "group": "#fff1a8",
        "add": "#ffffff", "cat": "#ffffff", "input": "#eeeeee", "output": "#eeeeee", "other": "#f4f4f4"}
EDGE = {"main": {}, "identity": {"color": "#1f5fbf", "penwidth": "2.2", "weight": "0"},
        "projection": {"color": "#d9730d", "penwidth": "1.6", "style": "dashed"},
        "shortcut": {"color": "#1f5fbf", "penwidth": "1.6", "style": "dashed"},
        "aux": {"color": "#888888", "style": "dashed", "weight": "0"}}
SHOW = ("params", "macs", "rf")


def _q(node_id: str) -> str:
    """A node id for Graphviz, where ``:`` starts a port: ``layer1.0:add`` -> ``layer1.0/add``."""
    return node_id.replace(":", "/")


def _text(s: str) -> str:
    return html.escape(s, quote=False)


def stats(n: Node, show: tuple[str, ...]) -> str:
    """``"36.9K params, 115.6M MACs, RF 5"``: the figures of ``show`` for one box (blank when zero)."""
    out = []
    if "params" in show and n.params:
        out.append(f"{short(n.params)} params")
    if "macs" in show and n.macs:
        out.append(f"{short(n.macs)} MACs")
    if "rf" in show and n.rf is not None and n.kind not in ("input", "output"):
        out.append(f"RF {n.rf}" if not n.rf.is_global else "RF global")
    return ", ".join(out)


def node_label(n: Node, show: tuple[str, ...]) -> str:
    """An HTML-like Graphviz label: the lecture's label (bold), then detail, shape and figures."""
    title = n.label + (f" (x {n.count})" if n.count > 1 else "")
    lines = [f"<B>{_text(title)}</B>"]
    small = '<FONT POINT-SIZE="9" COLOR="#444444">{}</FONT>'
    if n.detail:
        lines.append(small.format(_text(n.detail)))
    if n.kind not in ("add",) or n.detail:
        lines.append(small.format(_text(hwc(n.shape[1:]) if n.shape and len(n.shape) > 1 else "?")))
    extra = stats(n, show)
    if extra:
        lines.append(small.format(_text(extra)))
    return "<" + "<BR/>".join(lines) + ">"


def _node_attrs(n: Node, show: tuple[str, ...], index: dict[str, int]) -> dict[str, str]:
    a = {"label": node_label(n, show), "fillcolor": FILL.get(n.kind, FILL["other"]),
         "id": f"box-{index[n.id]}", "tooltip": n.id}
    if n.kind in ("add", "cat"):
        a["shape"] = "ellipse"
    if n.kind in ("input", "output"):
        a["shape"] = "note" if n.kind == "input" else "box"
    if n.role in ("projection", "shortcut"):
        a.update(color=EDGE[n.role]["color"], style="rounded,filled,dashed", penwidth="1.6")
    if n.role == "aux":
        a.update(color="#888888", style="rounded,filled,dashed", fillcolor="#f2f2f2")
    return a


def _towers(g: Graph) -> tuple[int, list[str]]:
    """AlexNet's towers: the group count of its grouped convs and the chain of boxes they span
    (from the first conv to the last box before the first FC layer); (1, []) when the model has
    none. Only small group counts are drawn as columns (a depthwise conv has as many groups as
    channels)."""
    groups = {n.groups for n in g.nodes if n.kind == "conv" and n.groups > 1}
    if len(groups) != 1 or not 2 <= next(iter(groups)) <= 4:
        return 1, []
    ids = [n.id for n in g.nodes]
    first = next(i for i, n in enumerate(g.nodes) if n.kind == "conv")
    last = next((i for i, n in enumerate(g.nodes) if n.kind == "fc"), len(ids))
    span = ids[first:last]
    heads = Counter(b for a, b in g.edges)
    chain = all(heads[x] == 1 for x in span[1:])
    return (next(iter(groups)), span) if chain else (1, [])


def to_dot(g: Graph, show: tuple[str, ...] = (), title: str | None = None, rankdir: str = "TB") -> graphviz.Digraph:
    """A ``graphviz.Digraph`` of ``g``; node ids in the SVG are ``box-K`` (K: the box's index in
    ``g.nodes``), node titles are the layer names."""
    d = graphviz.Digraph("cnnzoo", graph_attr={"rankdir": rankdir, "nodesep": "0.25", "ranksep": "0.28",
                                               "fontname": "Helvetica", "fontsize": "12", "labelloc": "t",
                                               "newrank": "true", "ordering": "out"},
                         node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                    "fontsize": "11", "margin": "0.12,0.04", "penwidth": "0.8"},
                         edge_attr={"arrowsize": "0.6", "color": "#555555"})
    if title:
        d.attr(label=f"<<B>{_text(title)}</B>>")
    if len(g.edges) > 2 * len(g.nodes):  # densely connected (DenseNet's concatenations): bound dot's
        d.attr(nslimit="2", nslimit1="2", mclimit="0.5")  # network-simplex passes, or layout takes minutes
    index = {n.id: i for i, n in enumerate(g.nodes)}
    towers, span = _towers(g)
    split = set(span)
    labels = len(g.nodes) <= 40
    for cluster in dict.fromkeys(n.cluster for n in g.nodes if n.cluster):
        with d.subgraph(name=f"cluster_{cluster}") as c:
            c.attr(label=g.clusters.get(cluster, cluster), style="rounded,dashed", color="#999999", fontsize="10")
            for n in g.nodes:
                if n.cluster == cluster:
                    c.node(_q(n.id), **_node_attrs(n, show, index))
    for n in g.nodes:
        if n.cluster:
            continue
        if n.id in split:
            _tower_nodes(d, n, towers, show, index)
        else:
            d.node(_q(n.id), **_node_attrs(n, show, index))
    for (a, b), role in g.edges.items():
        attrs = dict(EDGE[role])
        if labels and role in ("identity", "projection", "shortcut"):
            attrs["xlabel"] = role
            attrs["fontsize"], attrs["fontcolor"] = "9", attrs["color"]
        if a in split or b in split:
            _tower_edges(d, g, a, b, towers, split, attrs)
        else:
            d.edge(_q(a), _q(b), **attrs)
    return d


def _tower_nodes(d: graphviz.Digraph, n: Node, towers: int, show: tuple[str, ...], index: dict[str, int]) -> None:
    """One box per tower, side by side, each with 1/towers of the channels (and of the figures)."""
    c = n.shape[1] // towers if n.shape else 0
    parts = [p for p in n.label.split(", ") if not p.startswith("groups")]
    if n.kind == "conv":
        parts[1] = str(c)  # "conv 5x5, 256" -> "conv 5x5, 128" per tower
    label = ", ".join(parts)
    with d.subgraph() as s:
        s.attr(rank="same")
        for t in range(towers):
            half = Node(n.id, n.rows, n.kind, label, n.detail, (n.shape[0], c, *n.shape[2:]) if n.shape else None,
                        n.params // towers, n.macs // towers, n.rf)
            attrs = _node_attrs(half, show, index)
            attrs["id"] = f"box-{index[n.id]}-{t + 1}"
            attrs["tooltip"] = f"{n.id} (tower {t + 1})"
            s.node(_q(f"{n.id}@{t + 1}"), **attrs)


def _tower_edges(d, g: Graph, a: str, b: str, towers: int, split: set[str], attrs: dict) -> None:
    """Within a tower when ``b`` is grouped (or per-tower: pooling, LRN); across towers when ``b``
    reads every channel (a dense conv or the first FC layer)."""
    srcs = [f"{a}@{t + 1}" for t in range(towers)] if a in split else [a]
    dsts = [f"{b}@{t + 1}" for t in range(towers)] if b in split else [b]
    node_b = g.node(b)
    dense = node_b.kind in ("conv", "fc") and node_b.groups == 1
    for i, s in enumerate(srcs):
        for j, t in enumerate(dsts):
            if dense or len(srcs) == 1 or len(dsts) == 1 or i == j:
                d.edge(_q(s), _q(t), **{**attrs, "weight": "4" if i == j else "1"})
