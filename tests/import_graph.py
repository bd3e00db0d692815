"""The package's import graph, read with ``ast`` (nothing is imported), and its layer rules.

``check(root)`` returns every violation under the package folder ``root`` as one line each
(``path:line: importer -> imported (kind): why``); tests/unit/test_layers.py runs it on
synthetic packages (to prove each rule can fire) and on pytest_stagegate itself.

The rules (docs/architecture.md draws them):

- **Layers**, derived from the tree. A *unit* is a top-level folder of the package or a top-level
  module. Ranks: every top-level module not named in ``RANKS`` is core (0) and may import only
  core; ``config`` 1 < ``verdict`` 2 < ``target``, ``load`` 3 < ``plugin``, ``cli`` 4. An import
  from one unit to another must point strictly down, except between core modules. Inside one
  unit (a folder and its subfolders) modules import each other freely, but not in a cycle. A
  top-level folder missing from ``RANKS`` is a violation: a new folder needs a place.
- **Cycles** between modules are violations. Module-level and lazy (function-level) imports
  count: a cycle through a lazy import runs both ways at run time and is still a tangle. Imports
  under ``if TYPE_CHECKING:`` do not count for cycles: they are never executed, and annotations
  that name each other are how two collaborating types are written down. They do count for
  every other rule (an upward type-only import is still an upward dependency).
- **The process boundary.** ``locust``, ``gevent``, ``geventhttpclient`` and ``zmq`` are imported
  only under ``load/child/`` (importing locust monkey-patches the standard library; zmq and
  geventhttpclient are Locust's gevent-based transports). ``psutil`` is allowed anywhere: it
  patches nothing. Nothing outside ``load/child/`` imports a module inside it (that would bring
  locust into the pytest process transitively), and ``load/child/__init__.py`` imports nothing
  (it runs before ``__main__`` can import locust first).
- **The entry point.** Nothing imports ``plugin/__init__.py`` (the pytest11 entry point), and only
  ``plugin/__init__.py`` imports ``plugin/session.py`` (the one mutator of the run's state).
- **The package root** ``__init__.py`` (the lazy public API) is exempt as an importer, and no
  module imports it: import a name from the module that defines it.

An import names the module it loads: ``from .x import y`` loads ``x``; ``from . import y``
loads submodule ``y`` when it exists, else the package's ``__init__``. The parent packages that
Python runs implicitly before a submodule are not counted as arrows.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["module", "lazy", "type"]

# Ranks of the units that are not core; any other top-level module is core (0).
RANKS: Mapping[str, int] = {
    "config": 1,
    "verdict": 2,
    "target": 3,
    "load": 3,
    "plugin": 4,
    "cli": 4,
}
LAYER_NAMES: Mapping[int, str] = {0: "core", 1: "config", 2: "verdict", 3: "engines", 4: "glue"}

# Imported only under load/child/: the gevent world.
CHILD_ONLY = frozenset({"locust", "gevent", "geventhttpclient", "zmq"})
CHILD = ("load", "child")


@dataclass(frozen=True)
class Import:
    """One import statement's arrow: ``importer`` loads ``imported`` at ``path:line``."""

    importer: str
    imported: str  # a dotted module of the package, or a third-party top-level name
    path: Path
    line: int
    kind: Kind
    internal: bool


@dataclass(frozen=True)
class Graph:
    """Every module of the package (dotted name -> file) and every import arrow."""

    package: str
    modules: Mapping[str, Path]
    imports: tuple[Import, ...]

    def internal(self) -> Iterator[Import]:
        return (i for i in self.imports if i.internal)


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(
    body: list[ast.stmt], lazy: bool = False, typed: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, Kind]]:
    """Every import statement under ``body`` with how it runs: at import time, later, or never."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, "type" if typed else "lazy" if lazy else "module"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _import_nodes(node.body, True, typed)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.body, lazy, True)
            yield from _import_nodes(node.orelse, lazy, typed)
        else:
            # class bodies, try/with/for/while/match and plain ifs run with their module
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _import_nodes([child], lazy, typed)
                elif isinstance(child, ast.ExceptHandler | ast.match_case):
                    yield from _import_nodes(child.body, lazy, typed)


def _resolve(name: str, modules: Mapping[str, Path]) -> str:
    """The deepest module of the package that ``name`` names (``a.b.func`` -> ``a.b``)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def scan(root: Path) -> Graph:
    """Read every ``.py`` file under the package folder ``root`` and collect its imports."""
    package = root.name
    modules = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    imports: list[Import] = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, kind in _import_nodes(tree.body):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif node.level == 0:
                base = node.module or ""
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                here = importer.split(".") if is_package else importer.split(".")[:-1]
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.split(".")[0] == package:
                    resolved, internal = _resolve(target, modules), True
                else:
                    resolved, internal = target.split(".")[0], False
                if resolved == "__future__" or resolved == importer:
                    continue
                imports.append(Import(importer, resolved, path, node.lineno, kind, internal))
    return Graph(package, modules, tuple(imports))


def unit_of(module: str) -> tuple[str, ...]:
    """The module's path inside the package, as parts (``()`` for the package root)."""
    return tuple(module.split(".")[1:])


def _describe(root: Path, imp: Import, why: str) -> str:
    where = imp.path.relative_to(root.parent).as_posix()
    return f"{where}:{imp.line}: {imp.importer} -> {imp.imported} ({imp.kind}): {why}"


def _rank(root: Path, unit: str) -> int | None:
    if unit in RANKS:
        return RANKS[unit]
    return None if (root / unit).is_dir() else 0


def _layer(rank: int) -> str:
    return LAYER_NAMES.get(rank, str(rank))


def check(root: Path) -> list[str]:
    """Every violation of the rules in this module's docstring, for the package at ``root``."""
    graph = scan(root)
    package = graph.package
    problems: list[str] = []

    for unit in sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file()):
        if unit not in RANKS:
            problems.append(
                f"{package}/{unit}/: top-level folder without a layer: give it a rank in "
                "tests/import_graph.py RANKS and a place in docs/architecture.md"
            )

    for imp in graph.imports:
        problems.extend(_describe(root, imp, why) for why in _broken_rules(root, imp))

    problems.extend(cycles(graph, root))
    return problems


def _broken_rules(root: Path, imp: Import) -> Iterator[str]:
    """Why the arrow ``imp`` breaks a rule, once per rule it breaks."""
    src = unit_of(imp.importer)
    if not src:
        return  # the lazy public API may reach every layer
    in_child = src[: len(CHILD)] == CHILD
    if src == CHILD and imp.kind != "type":
        yield "load/child/__init__.py must import nothing"
    if not imp.internal:
        if imp.imported in CHILD_ONLY and not in_child:
            yield f"{imp.imported} may be imported only under load/child/"
        return
    dst = unit_of(imp.imported)
    if not dst:
        yield "imports the package root (the lazy public API); import from the defining module"
        return
    if dst[: len(CHILD)] == CHILD and not in_child:
        yield "imports the load child from outside it (locust would follow)"
    if dst == ("plugin",):
        yield "imports the pytest11 entry point"
    if dst == ("plugin", "session") and src != ("plugin",):
        yield "only plugin/__init__.py may import plugin/session.py"
    if src[0] != dst[0]:
        r_src, r_dst = _rank(root, src[0]), _rank(root, dst[0])
        if r_src is None or r_dst is None:
            return  # reported once as a folder without a layer
        if r_dst > r_src:
            yield f"upward import ({_layer(r_src)} {r_src} -> {_layer(r_dst)} {r_dst})"
        elif r_dst == r_src and r_src > 0:
            yield f"sideways import between two units of layer {_layer(r_src)} {r_src}"


def cycles(graph: Graph, root: Path) -> list[str]:
    """One line per cycle of executed imports (module-level and lazy; type-only ones excluded)."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in graph.modules}
    for imp in graph.internal():
        if imp.kind != "type" and imp.imported in edges:
            edges[imp.importer].setdefault(imp.imported, imp)
    problems = []
    for component in _strongly_connected(edges):
        if len(component) < 2:
            continue
        start = min(component)
        path = _path_back(edges, component, start)
        steps = [edges[a][b] for a, b in itertools.pairwise(path)]
        shown = " -> ".join(path)
        detail = "; ".join(
            f"{s.path.relative_to(root.parent).as_posix()}:{s.line} ({s.kind})" for s in steps
        )
        others = sorted(component - set(path))
        more = f"; also in this tangle: {', '.join(others)}" if others else ""
        problems.append(f"import cycle: {shown} [{detail}]{more}")
    return problems


def _strongly_connected(edges: Mapping[str, Mapping[str, Import]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion limits are not)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    found.append(component)
    return found


def _path_back(
    edges: Mapping[str, Mapping[str, Import]], component: set[str], start: str
) -> list[str]:
    """The shortest walk ``start -> ... -> start`` inside one strongly connected component."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node]):
                if child not in component:
                    continue
                if child == start:
                    walk = [node]
                    while walk[-1] != start:
                        walk.append(previous[walk[-1]])
                    return [*reversed(walk), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is not on a cycle")  # a component of 2+ always has one


def outside_child(root: Path) -> list[str]:
    """Every module of the package that the pytest process may import (all but load/child/)."""
    graph = scan(root)
    return sorted(m for m in graph.modules if unit_of(m)[: len(CHILD)] != CHILD)


def locust_free(root: Path) -> list[str]:
    """Every module of the package that can be imported without bringing in locust, gevent,
    geventhttpclient or zmq: what runs in the pytest process, plus the child's pure modules.

    Follows executed imports (module-level and lazy, not type-only) and the parent packages
    Python runs before a submodule, so the list is derived from the tree, not kept by hand.
    """
    graph = scan(root)
    pulls: dict[str, set[str]] = {m: set() for m in graph.modules}
    for imp in graph.imports:
        if imp.kind != "type":
            pulls[imp.importer].add(imp.imported)
    for module in graph.modules:
        parts = module.split(".")
        pulls[module].update(".".join(parts[:n]) for n in range(1, len(parts)))
    free = []
    for module in graph.modules:
        seen, todo = {module}, [module]
        while todo:
            for name in pulls.get(todo.pop(), ()):
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
        if not seen & CHILD_ONLY:
            free.append(module)
    return sorted(free)
