"""The diagram's graph, built from the analyzer's trace (:class:`~cnnzoo.analysis.Profile`).

Steps, each a small pure function of the profile:

1. :func:`layer_graph`: one node per row, the profile's data-flow edges between them; rows
   that only decorate the row before them (batch norm, activations, dropout, flatten, identity)
   fold into that row's box and are listed on its second line ("BN, ReLU");
2. :func:`mark_roles`: residual shortcuts (an ``add`` whose input skips a branch: ``identity``
   edge; a short branch with weights beside a longer one: ``projection`` nodes, without weights
   (option A's zero padding): ``shortcut`` nodes) and auxiliary
   exits (nodes from which the first output cannot be reached: ``aux``);
3. :func:`at_depth`: ``"layer"`` keeps every box; ``"block"`` draws each block (a module that
   owns an ``add``/``cat``: a residual block, an Inception module) as a cluster and collapses
   runs of identical blocks (and of identical layers, VGG's stacks) into one with "x N";
   ``"stage"`` draws each top-level module that holds blocks or sub-modules (a ResNet stage, an
   Inception module, an auxiliary head) as one box.

Labels follow the lecture ("conv 3x3, 64, /2", "max pool 3x3, /2", "FC 4096", "+", "concat")
with the output as H x W x C.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..analysis import Profile

DEPTHS = ("layer", "block", "stage")

#: Row types (lower case, trailing ``_`` of in-place ops removed) that fold into the box before them,
#: with the word shown on that box's second line ("" shows nothing).
FOLD = {"batchnorm1d": "BN", "batchnorm2d": "BN", "batchnorm3d": "BN", "batch_norm": "BN",
        "relu": "ReLU", "relu6": "ReLU6", "leakyrelu": "leaky ReLU", "leaky_relu": "leaky ReLU",
        "tanh": "tanh", "scaledtanh": "tanh", "sigmoid": "sigmoid", "gelu": "GELU", "silu": "SiLU",
        "hardswish": "h-swish", "elu": "ELU", "dropout": "dropout", "dropout2d": "dropout",
        "identity": "", "flatten": "flatten", "view": "", "reshape": "", "contiguous": ""}
#: Ids of the input and (first) output boxes; parentheses keep them apart from module names.
INPUT, OUTPUT = "(input)", "(output)"
JOINS = {"add": "+", "cat": "concat", "concat": "concat", "stack": "stack"}


@dataclass
class Node:
    """One box of the diagram.

    Attributes:
        id: unique key (the main row's name, ``#2`` for a module's second call; ``(input)``, ``(output)``).
        rows: profile row indices it stands for (the first is the main row; -1: the input).
        kind: ``conv``, ``fc``, ``pool``, ``norm``, ``add``, ``cat``, ``input``, ``output``, ``group``, ``other``.
        label: the lecture's words ("conv 3x3, 64").
        detail: second line (folded rows, a block's contents).
        shape: output shape (N, C, H, W) or (N, C).
        params, macs: summed over ``rows`` (and over the ``count`` members of a collapsed run).
        rf: receptive field of the output (analyzer), or None.
        count: members of a collapsed run ("x N").
        role: ``main``, ``projection`` (a shortcut with weights), ``shortcut`` (one without, option A)
            or ``aux`` (a side exit).
        cluster: the block drawn around it (block depth), or None.
        groups: a conv's group count (AlexNet's towers: 2), else 1.
    """

    id: str
    rows: list[int]
    kind: str
    label: str
    detail: str = ""
    shape: tuple | None = None
    params: int = 0
    macs: int = 0
    rf: object = None
    count: int = 1
    role: str = "main"
    cluster: str | None = None
    groups: int = 1


@dataclass
class Graph:
    """Nodes in execution order and edges ``(src id, dst id) -> role`` (``main``, ``identity``,
    ``projection``, ``shortcut``, ``aux``); ``clusters``: block name -> its label ("layer1.0 x 3")."""

    nodes: list[Node]
    edges: dict[tuple[str, str], str]
    clusters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_id = {n.id: n for n in self.nodes}

    def node(self, id_: str) -> Node:
        return self._by_id[id_]

    def adjacency(self) -> tuple[Counter, dict[str, list[str]]]:
        """(consumers per node, node -> its inputs in edge order)."""
        preds: dict[str, list[str]] = {}
        for a, b in self.edges:
            preds.setdefault(b, []).append(a)
        return Counter(a for a, _ in self.edges), preds


# ----------------------------------------------------------------------------------------- labels

def _type(row) -> str:
    return row.type.lower().rstrip("_")


def _kernel(k: tuple) -> str:
    return "x".join(map(str, k))


def _stride(row) -> str:
    s = row.stride
    if not s or all(v == 1 for v in s):
        return ""
    return f", /{s[0]}" if len(set(s)) == 1 else f", /{_kernel(s)}"


def kind_of(row) -> str:
    t = _type(row)
    if t in JOINS:
        return "add" if JOINS[t] == "+" else "cat"
    if "conv" in t:
        return "conv"
    if "pool" in t or "subsample" in t:
        return "pool"
    if t in ("linear", "addmm", "matmul") or "rbf" in t:
        return "fc"
    if "lrn" in t or "localresponse" in t or "local_response" in t:
        return "norm"
    return "other"


def label_of(row) -> str:
    """The lecture's label of one row: ``conv 3x3, 64, /2``, ``max pool 3x3, /2``, ``FC 4096``, ``+``."""
    t, kind = _type(row), kind_of(row)
    out = row.output_shape[1] if row.output_shape and len(row.output_shape) > 1 else "?"
    if kind in ("add", "cat"):
        return JOINS[t]
    if kind == "conv":
        k = f" {_kernel(row.kernel)}" if row.kernel else ""
        g = f", groups {row.groups}" if row.groups and row.groups > 1 else ""
        return f"conv{k}, {out}{_stride(row)}{g}"
    if kind == "pool":
        ins, outs = (row.input_shape or ())[2:], (row.output_shape or ())[2:]
        how = "max" if "max" in t else "avg" if "avg" in t else "subsample" if "subsample" in t else "pool"
        if "adaptive" in t:
            return f"global {how} pool" if all(v == 1 for v in outs) and any(v > 1 for v in ins) \
                else f"adaptive {how} pool to {_kernel(outs)}"
        name = how if how == "subsample" else f"{how} pool"
        return f"{name} {_kernel(row.kernel)}{_stride(row)}" if row.kernel else name
    if kind == "fc":
        return ("RBF " if "rbf" in t else "FC ") + str(row.output_shape[-1] if row.output_shape else "?")
    if kind == "norm":
        return "norm (LRN)"
    return row.type


# ----------------------------------------------------------------------------------------- the graph

def _row_id(row) -> str:
    return row.name + (f"#{row.call}" if row.call > 1 else "")


def layer_graph(prof: Profile) -> Graph:
    """One node per non-folded row plus ``input`` and one ``output`` per model output."""
    rows = prof.layers
    consumers = Counter(a for a, _ in prof.edges)
    preds: dict[int, list[int]] = {}
    for a, b in prof.edges:
        preds.setdefault(b, []).append(a)
    owner: dict[int, int] = {-1: -1}   # row -> the row whose box it is drawn in
    nodes: dict[int, Node] = {-1: Node(INPUT, [-1], "input", "input", shape=prof.input_shape)}
    for i, row in enumerate(rows):
        p = preds.get(i, [])
        word = FOLD.get(_type(row))
        if word is not None and len(p) == 1 and p[0] >= 0 and consumers[p[0]] == 1 and owner[p[0]] >= 0:
            host = nodes[owner[p[0]]]
            owner[i] = owner[p[0]]
            host.rows.append(i)
            host.params += row.params
            host.macs += row.macs
            host.shape, host.rf = row.output_shape, row.rf
            if word and word not in host.detail.split(", "):
                host.detail = f"{host.detail}, {word}" if host.detail else word
            continue
        owner[i] = i
        nodes[i] = Node(_row_id(row), [i], kind_of(row), label_of(row), "", row.output_shape, row.params,
                        row.macs, row.rf, groups=row.groups or 1)
    edges: dict[tuple[str, str], str] = {}
    for a, b in prof.edges:
        u, v = nodes[owner[a]].id, nodes[owner[b]].id
        if u != v:
            edges[(u, v)] = "main"
    outs = []
    for k, (r, shape) in enumerate(zip(prof.output_rows, prof.output_shapes)):
        o = Node(OUTPUT if k == 0 else f"{OUTPUT[:-1]} {k + 1})", [], "output", "output" if k == 0 else "aux output",
                 shape=shape)
        outs.append(o)
        edges[(nodes[owner.get(r, -1)].id, o.id)] = "main"
    return Graph([nodes[k] for k in sorted(nodes)] + outs, edges)


def _walk_back(start: str, succ_count: Counter, preds: dict) -> tuple[str, list[str]]:
    """From ``start`` back along single-input, single-consumer nodes: (the fork reached, the path)."""
    path, x = [], start
    while succ_count[x] == 1 and len(preds.get(x, [])) == 1:
        path.append(x)
        x = preds[x][0]
    return x, path


def mark_roles(g: Graph) -> Graph:
    """Mark residual shortcuts (``identity`` edges, ``projection`` nodes) and auxiliary exits."""
    succ_count, preds = g.adjacency()
    by_id = {n.id: n for n in g.nodes}
    for n in g.nodes:
        ins = preds.get(n.id, [])
        if n.kind != "add" or len(ins) != 2:
            continue
        walks = [_walk_back(x, succ_count, preds) for x in ins]
        if walks[0][0] != walks[1][0] or len(walks[0][1]) == len(walks[1][1]):
            continue
        k = 0 if len(walks[0][1]) < len(walks[1][1]) else 1
        fork, path = walks[k]
        if not path:
            g.edges[(fork, n.id)] = "identity"
            continue
        role = "projection" if any(by_id[x].params for x in path) else "shortcut"  # option B/C vs A
        for x in path:
            by_id[x].role = role
        for a, b in zip([fork, *reversed(path)], [*reversed(path), n.id]):
            g.edges[(a, b)] = role
    # auxiliary exits: nodes that do not lead to the first output
    main, todo = {OUTPUT}, [OUTPUT]
    while todo:
        for p in preds.get(todo.pop(), []):
            if p not in main:
                main.add(p)
                todo.append(p)
    if len(main) > 1:
        for n in g.nodes:
            if n.id not in main and n.kind != "input":
                n.role = "aux"
        for e in g.edges:
            if e[1] not in main:
                g.edges[e] = "aux"
    return g


# ------------------------------------------------------------------------------------------- depth

def _module(n: Node, prof: Profile) -> str:
    if not n.rows or n.rows[0] < 0:
        return ""
    mod = prof.layers[n.rows[0]].name.partition(":")[0]
    return "" if mod == "(model)" else mod


def _inside(mod: str, block: str) -> bool:
    return mod == block or mod.startswith(block + ".")


def blocks_of(g: Graph, prof: Profile) -> list[str]:
    """Modules that own a join (``add``/``cat`` called in their ``forward``), in execution order;
    the innermost when they nest."""
    owners = []
    for n in g.nodes:
        if n.kind in ("add", "cat") and n.rows and n.rows[0] >= 0:
            name = prof.layers[n.rows[0]].name
            mod, sep, _ = name.partition(":")
            if sep and mod not in owners:
                owners.append(mod)
    return [b for b in owners if not any(o != b and _inside(o, b) for o in owners)]


def _signature(g: Graph, ids: list[str]) -> tuple:
    pos = {x: i for i, x in enumerate(ids)}
    nodes = tuple((n.label, n.detail, n.shape[1:] if n.shape else None, n.role)
                  for n in (g.node(x) for x in ids))
    edges = tuple(sorted((pos[a], pos[b], r) for (a, b), r in g.edges.items() if a in pos and b in pos))
    return nodes, edges


def _remap(g: Graph, alias: dict[str, str], member: dict[str, tuple[str, int]]) -> dict[tuple[str, str], str]:
    """Edges with nodes renamed by ``alias``; edges between two members of one collapsed run
    (``member``: node -> (run, index in the run)) disappear."""
    out: dict[tuple[str, str], str] = {}
    for (a, b), role in g.edges.items():
        ma, mb = member.get(a), member.get(b)
        if ma and mb and ma[0] == mb[0] and ma[1] != mb[1]:
            continue
        u, v = alias.get(a, a), alias.get(b, b)
        if u != v:
            out.setdefault((u, v), role)
    return out


def _collapse_blocks(g: Graph, prof: Profile) -> Graph:
    order = {n.id: i for i, n in enumerate(g.nodes)}
    members = {b: [n.id for n in g.nodes if _inside(_module(n, prof), b)] for b in blocks_of(g, prof)}
    blocks = [b for b in members if members[b]]
    runs: list[list[str]] = []
    for b in blocks:
        last = runs[-1][-1] if runs else None
        if last and order[members[b][0]] == order[members[last][-1]] + 1 and \
                _signature(g, members[b]) == _signature(g, members[last]):
            runs[-1].append(b)
        else:
            runs.append([b])
    alias, member_of, dropped = {}, {}, set()
    clusters = {}
    for run in runs:
        head = run[0]
        for k, b in enumerate(run):
            for i, x in enumerate(members[b]):
                member_of[x] = (head, k)
                if k:
                    alias[x] = members[head][i]
                    dropped.add(x)
        for x in members[head]:
            g.node(x).cluster = head
        clusters[head] = f"{head} x {len(run)}" if len(run) > 1 else head
    edges = _remap(g, alias, member_of)
    return Graph([n for n in g.nodes if n.id not in dropped], edges, clusters)


def _collapse_layers(g: Graph) -> Graph:
    """Runs of identical conv/FC boxes in a chain (outside blocks) -> one box "x N" (VGG's stacks)."""
    succ_count, pred = g.adjacency()
    alias: dict[str, str] = {}
    keep = []
    for n in g.nodes:
        p = pred.get(n.id, [])
        if len(p) == 1 and n.kind in ("conv", "fc") and n.cluster is None and succ_count[p[0]] == 1:
            head = g.node(alias.get(p[0], p[0]))
            if head.kind == n.kind and head.cluster is None and (head.label, head.detail, head.shape[1:], head.role) \
                    == (n.label, n.detail, n.shape[1:], n.role):
                head.count += 1
                head.params += n.params
                head.macs += n.macs
                head.rows += n.rows
                head.rf = n.rf
                alias[n.id] = head.id
                continue
        keep.append(n)
    return Graph(keep, _remap(g, alias, {}), g.clusters)


def _top(mod: str) -> str:
    return mod.split(".")[0] if mod else ""


def _stage_groups(g: Graph, prof: Profile) -> dict[str, str]:
    """Node id -> the top-level module drawn as one box at stage depth (modules holding blocks
    or non-leaf children; a plain container of layers, like VGG's ``features``, stays open)."""
    names = [n for n in prof.module_types if n != "(model)"]
    blocks = blocks_of(g, prof)

    def grouped(top: str) -> bool:
        deep = any(n.startswith(top + ".") and "." in n[len(top) + 1:] for n in names)
        return deep or any(_inside(b, top) for b in blocks)

    out = {}
    for n in g.nodes:
        top = _top(_module(n, prof))
        if top and grouped(top):
            out[n.id] = top
    return out


def _summary(g: Graph, ids: list[str], prof: Profile) -> str:
    """A group box's second line: its blocks ("3 x BasicBlock [conv 3x3, 64; conv 3x3, 64]") or
    the branches of its join ("conv 1x1, 64 | conv 1x1, 96 > conv 3x3, 128 | ...")."""
    inner = [b for b in blocks_of(g, prof) if any(_inside(_module(g.node(x), prof), b) for x in ids)]
    cats = [x for x in ids if g.node(x).kind == "cat"]
    if len(inner) == 1 and cats and all(_inside(_module(g.node(x), prof), inner[0]) for x in ids):
        succ_count, preds = g.adjacency()  # an Inception module: its branches, each as a path
        paths = [list(reversed(_walk_back(x, succ_count, preds)[1])) for x in preds.get(cats[-1], [])]
        return " | ".join(" > ".join(g.node(x).label for x in p) for p in paths)
    if inner:
        types = Counter(prof.module_types.get(b, "?") for b in inner)
        first = [g.node(x).label for x in ids if _inside(_module(g.node(x), prof), inner[0])
                 and g.node(x).kind in ("conv", "fc") and g.node(x).role == "main"]
        kinds = ", ".join(f"{c} x {t}" for t, c in types.items())
        return f"{kinds} [{'; '.join(first)}]"
    labels = [g.node(x).label for x in ids if g.node(x).kind not in ("add", "cat", "other")]
    return "; ".join(labels)


def _collapse_stages(g: Graph, prof: Profile) -> Graph:
    group = _stage_groups(g, prof)
    alias, keep, seen = {}, [], {}
    for n in g.nodes:
        top = group.get(n.id)
        if top is None:
            keep.append(n)
            continue
        if top not in seen:
            ids = [x for x, t in group.items() if t == top]
            members = [g.node(x) for x in ids]
            last = members[-1]
            box = Node(top, [r for m in members for r in m.rows], "group", top, _summary(g, ids, prof), last.shape,
                       sum(m.params for m in members), sum(m.macs for m in members), last.rf,
                       role="aux" if all(m.role == "aux" for m in members) else "main")
            seen[top] = box
            keep.append(box)
        alias[n.id] = top
    edges = _remap(g, alias, {})
    return Graph(keep, edges, {})


def build(prof: Profile, depth: str = "layer") -> Graph:
    """The diagram's graph of ``prof`` at ``depth`` (``"layer"``, ``"block"`` or ``"stage"``)."""
    g = mark_roles(layer_graph(prof))
    if depth == "layer":
        return g
    if depth == "block":
        return _collapse_layers(_collapse_blocks(g, prof))
    return _collapse_layers(_collapse_stages(g, prof))


__all__ = ["DEPTHS", "Graph", "Node", "build", "hwc", "label_of", "kind_of"]
