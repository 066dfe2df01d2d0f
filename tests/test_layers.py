"""Imports point down the flow: the import graph of src/clvmodel has no cycle.

The graph is built from the source with :mod:`ast`, not from what happens to be imported at run
time, so an import inside a function counts like one at the top of a module: a cycle held
together by a function-level import still means that neither module can be understood, tested
or moved without the other. Only ``if TYPE_CHECKING:`` blocks are left out (they never run).

Resolution: ``import clvmodel.a.b`` and ``from clvmodel.a import b`` give an edge to
``clvmodel.a.b`` when that is a module, else to the deepest module the name lies in
(``from clvmodel.a import name`` -> ``clvmodel.a``), and to the packages on the way
(``clvmodel.a``, whose ``__init__`` runs first); relative imports are resolved against the
importing module's package. An edge from a module to a package it lies in (``clvmodel.x`` ->
``clvmodel``) is not counted: Python imports every parent package before the module anyway, so
such an edge orders nothing.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest


def _package_root() -> Path:
    """The clvmodel source tree under test (the one ``import clvmodel`` finds, e.g. via PYTHONPATH)."""
    spec = importlib.util.find_spec("clvmodel")
    assert spec is not None and spec.submodule_search_locations, "clvmodel is not importable"
    return Path(next(iter(spec.submodule_search_locations)))


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (a package by its ``__init__``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """``id`` of every node inside an ``if TYPE_CHECKING:`` block (never executed)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of the package that ``target`` names or lies in; None outside the package."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Edges ``module -> modules it imports`` within the package; see the module docstring."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: `from . import x`, `from ..a import b`
                    parts = package.split(".")
                    anchor = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import x` imports the module pkg.x when x is one, else a name of pkg.
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                module = _resolve(target, modules)
                # Importing a.b.c runs a/__init__ and a/b/__init__ first: edges to those too.
                while module is not None:
                    if module != name and not name.startswith(module + "."):
                        graph[name].add(module)
                    module = _resolve(module.rpartition(".")[0], modules)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None when the graph is acyclic (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        state[start] = 1
        stack = [iter(sorted(graph[start]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return path[path.index(following):] + [following]
            elif following not in state:
                state[following] = 1
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph(_package_root())
    assert len(graph) > 30, sorted(graph)  # the whole package was read, not an empty folder
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_the_integrations_package_imports_mlflow() -> None:
    """One module: the run logger and the model-directory writer; the pyfunc loader (tracking.py) needs none."""
    root = _package_root()
    importers = set()
    for name, path in _modules(root).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
                importers.add(name)
    assert importers == {"clvmodel.integrations.mlflow_tracking"}, importers


# --- the checker itself: it must see what it claims to see --------------------------------------


@pytest.fixture()
def package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "low.py").write_text("import os\n")
    (root / "sub" / "deep.py").write_text("from pkg import low\n")
    return root


def test_an_import_inside_a_function_closes_a_cycle(package: Path) -> None:
    (package / "low.py").write_text("def f():\n    from pkg.sub.deep import g\n")
    assert find_cycle(import_graph(package)) == ["pkg.low", "pkg.sub.deep", "pkg.low"]


def test_relative_and_from_package_imports_resolve_to_modules(package: Path) -> None:
    (package / "low.py").write_text("from .sub import deep\n")
    assert import_graph(package)["pkg.low"] == {"pkg.sub.deep", "pkg.sub"}
    assert find_cycle(import_graph(package)) is not None


def test_a_name_from_a_module_is_an_edge_to_that_module(package: Path) -> None:
    (package / "low.py").write_text("from pkg.sub.deep import helper\n")
    assert import_graph(package)["pkg.low"] == {"pkg.sub.deep", "pkg.sub"}  # pkg/sub/__init__ runs too


def test_type_checking_imports_and_parent_packages_are_not_edges(package: Path) -> None:
    (package / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import deep\n")
    (package / "sub" / "deep.py").write_text("from pkg.sub import __doc__\nfrom pkg import low\n")
    graph = import_graph(package)
    assert graph["pkg.low"] == set() and graph["pkg.sub.deep"] == {"pkg.low"}
    assert find_cycle(graph) is None


#: The flow's rooms, in order (README "Layout"); each module, by its longest matching prefix.
ROOMS: dict[str, tuple[str, ...]] = {
    "data": ("errors", "units", "models.registry", "sqltext", "amounts", "config", "checks", "files", "staging", "io", "bundled",
             "document", "integrity", "mlmodel"),
    "features": ("rfm", "customers", "summaries", "prepared"),
    "models": ("models", "artifact", "modeldir"),
    "valuation": ("clv", "uncertainty", "segments", "formula", "acquisition"),
    "evaluation": ("evaluate", "plots", "cohorts"),
    "tracking": ("integrations",),  # MLflow's low side: the run logger and the model-directory writer
    "pipelines": ("inputs", "attributes", "acquired", "predict", "batch", "train", "subscription", "report", "pipelines",
                  "whatif", "html_report"),
    "integrations": ("spark", "tracking", "serve"),  # the pyfunc loader, Spark, REST: they call the pipelines
    "budget": ("budget",),
    "cli": ("cli", "__main__", ""),  # "": the package itself (clvmodel.load_model, the public face)
}
#: Imports up the flow that are there on purpose, each with its reason.
UPWARD = {
    # The load leaves the per-customer-day table behind (the same-day rule, applied once), which
    # the summary then reads instead of the transactions: it costs one GROUP BY less at scale.
    ("clvmodel.io", "clvmodel.rfm"),
}


#: Packages whose ``__init__`` imports nothing when it runs, so importing a module inside them
#: (``clvmodel.models.registry`` from the config) costs nothing above the importer's room.
EMPTY_PACKAGES = {"clvmodel.models"}  # PEP 562: its re-exports resolve on first use


def _room(module: str) -> str:
    if module in EMPTY_PACKAGES:
        return "data"
    name = module.removeprefix("clvmodel").removeprefix(".")
    matches = [(len(prefix), room) for room, prefixes in ROOMS.items() for prefix in prefixes
               if name == prefix or name.startswith(prefix + ".") or (prefix == "" and name == "")]
    assert matches, f"{module} is in no room of ROOMS: add it"
    return max(matches)[1]


def test_imports_point_down_the_flow() -> None:
    """A room imports only rooms before it (README "Layout"), except the :data:`UPWARD` ones."""
    order = list(ROOMS)
    graph = import_graph(_package_root())
    for package in EMPTY_PACKAGES:
        assert graph[package] == set(), f"{package}'s __init__ imports {sorted(graph[package])}"
    upward = sorted(
        (module, target) for module, targets in graph.items() for target in targets
        if order.index(_room(target)) > order.index(_room(module)) and (module, target) not in UPWARD
        and target != "clvmodel"  # every module's parent package runs first; not an import of its API
    )
    assert upward == [], "imports up the flow: " + ", ".join(f"{a} -> {b}" for a, b in upward)
