"""The layers of cnnzoo, read from its source (ast, nothing imported): what may import what.

docs/contributing.md draws the same picture. A *unit* is a package (``cnnzoo.training``) or a
top-level module (``cnnzoo.resolve``); every import between units, at module level or inside a
function, is an edge. Two rules:

1. No cycle between units. The one allowed circle is the lazy model registration: the registry
   imports ``cnnzoo.models`` on first use, and every family module imports the registry to
   register its builders.
2. A unit imports only from its own layer or below (:data:`LAYERS`, bottom first). A package's
   ``cli.py`` module (its CLI verbs) belongs to the top layer, with ``cnnzoo/cli.py``.

The package ``cnnzoo/__init__.py`` (the public API) and ``__main__.py`` sit above everything; a
module may read only ``__version__`` from it.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnzoo"

#: Bottom first; a unit may import from its own layer and the layers below it.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_text", "_io", "_readme"),                      # plain helpers: text, files, errors
    ("shapes", "analysis", "data", "numerics"),                 # shape probes, analyzer, data, numeric paths
    ("registry", "models"),                                     # the zoo
    ("resolve",),                                               # the one model argument, run loading
    ("training", "deploy"),                                     # training; inference paths, export
    ("lecture", "draw", "visualize", "explain", "compare", "experiments"),  # what is built on all of that
    ("cli",),                                                   # cnnzoo/cli.py and every package's cli.py
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}

#: The allowed circle (see the module docstring).
LAZY_REGISTRATION = {("registry", "models"), ("models", "registry")}
#: What a module may import from the package ``cnnzoo`` itself.
FROM_FACADE = {"__version__"}


def _module_name(file: Path) -> tuple[str, bool]:
    parts = list(file.relative_to(SRC.parent).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_pkg else parts), is_pkg


def _unit(module: str) -> str:
    """``cnnzoo.training.api`` -> ``training``; a package's ``cli`` module -> ``cli``."""
    parts = module.split(".")
    return "cli" if parts[-1] == "cli" else parts[1]


def import_edges() -> dict[tuple[str, str], list[str]]:
    """{(unit, imported unit): ["module:line -> imported", ...]} over cnnzoo's source."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    submodules = {p.stem if p.suffix else p.name for p in SRC.iterdir()}
    for file in sorted(SRC.rglob("*.py")):
        module, is_pkg = _module_name(file)
        if module in ("cnnzoo", "cnnzoo.__main__"):
            continue
        package = module.split(".") if is_pkg else module.split(".")[:-1]
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
                target = ".".join(filter(None, (base, node.module)))
                if target == "cnnzoo":        # from cnnzoo import X / from .. import X
                    names = [a.name for a in node.names]
                    facade = [n for n in names if n not in submodules]
                    assert set(facade) <= FROM_FACADE, \
                        f"{module}:{node.lineno} imports {facade} from the package cnnzoo (the public API, above " \
                        f"every layer); import it from the module that defines it"
                    targets = [f"cnnzoo.{n}" for n in names if n in submodules]
                else:
                    targets = [target]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "cnnzoo" and target != "cnnzoo":
                    a, b = _unit(module), _unit(target)
                    if a != b:
                        edges[a, b].append(f"{module}:{node.lineno} -> {target}")
    return edges


def _cycles(edges) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan)."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on_stack.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_unit_has_a_layer():
    edges = import_edges()
    units = {u for edge in edges for u in edge}
    assert units - set(LAYER) == set(), "give the new package or module a layer in LAYERS and docs/contributing.md"
    assert {"resolve", "training", "models", "registry", "_io", "cli"} <= units   # the walk sees the code


def test_no_cycle_between_units():
    edges = {e: where for e, where in import_edges().items() if e not in LAZY_REGISTRATION}
    cycles = _cycles(edges)
    detail = [f"{a} -> {b}: {where[0]}" for comp in cycles for (a, b), where in edges.items()
              if a in comp and b in comp]
    assert cycles == [], f"import cycles between {cycles}:\n" + "\n".join(detail)


def test_imports_go_down_the_layers():
    upward = [f"{a} (layer {LAYER[a]}) imports {b} (layer {LAYER[b]}): {where[0]}"
              for (a, b), where in sorted(import_edges().items()) if LAYER.get(b, 0) > LAYER.get(a, 0)]
    assert upward == [], "imports up the layers:\n" + "\n".join(upward)


def test_the_lazy_registration_is_the_only_circle_and_is_seen():
    """The check finds a cycle where there is one: the registry and the models import each other."""
    edges = import_edges()
    assert LAZY_REGISTRATION <= set(edges)
    assert _cycles(edges) == [["models", "registry"]]
