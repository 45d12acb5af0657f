"""The package's modules import each other without a circle, counting imports made
inside functions: a circle that a deferred import hides still ties the two modules
into one, and breaks as soon as someone moves the import to the top. Its sub-packages
and top-level modules are layered the same way: none imports one that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

from zspace import paths


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (a folder under ``root``) and the modules of the
    same package it imports, wherever in the file the import stands.

    ``from a.b import c`` counts as an import of ``a.b`` and, where ``a.b.c`` is a
    module, of ``a.b.c`` as well.
    """
    modules = {}
    for file in sorted((root / package).rglob("*.py")):
        parts = file.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            modules[".".join(parts[:-1])] = (file, True)
        else:
            modules[".".join(parts)] = (file, False)
    graph = {}
    for name, (file, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, one level up per dot
                    base = ".".join([*here[:len(here) - node.level + 1],
                                     *([base] if base else [])])
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {other for other in found if other in modules and other != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of ``graph`` as the modules along it, the first repeated at the
    end (``[a, b, a]``); empty where there is none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str]:
        path.append(module)
        on_path.add(module)
        for other in sorted(graph[module]):
            if other in on_path:
                return [*path[path.index(other):], other]
            if other not in done:
                cycle = visit(other)
                if cycle:
                    return cycle
        on_path.discard(path.pop())
        done.add(module)
        return []

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return []


def test_no_module_of_the_package_imports_itself_through_others():
    cycle = find_cycle(import_graph(paths.ROOT, "zspace"))
    assert cycle == [], "import circle: " + " -> ".join(cycle)


def packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` with each module folded into its sub-package or top-level module of
    the package (``zspace.store.keys`` into ``zspace.store``)."""

    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    folded: dict[str, set[str]] = {part(module): set() for module in graph}
    for module, imported in graph.items():
        folded[part(module)].update(part(other) for other in imported)
    for name, imported in folded.items():
        imported.discard(name)
    return folded


def test_no_part_of_the_package_imports_one_that_imports_it():
    cycle = find_cycle(packages(import_graph(paths.ROOT, "zspace")))
    assert cycle == [], "import circle between parts: " + " -> ".join(cycle)


def test_a_circle_through_an_import_inside_a_function_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from pkg.b import B\n")
    (package / "b.py").write_text(
        "import os\n\nB = 1\n\n\ndef late():\n    from .sub import a\n    return a\n")
    (package / "c.py").write_text("from pkg import b\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == {"pkg", "pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub", "pkg.sub.a"}
    assert find_cycle(graph) == ["pkg.b", "pkg.sub.a", "pkg.b"]
    assert packages(graph)["pkg.b"] == {"pkg.sub"}
    assert find_cycle(packages(graph)) == ["pkg.b", "pkg.sub", "pkg.b"]
