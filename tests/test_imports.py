"""No import cycles inside the ideaboard package, lazy (function-level) imports included.

A cycle hidden behind an import inside a function works until someone moves that import to
the top, or imports the modules in another order; it also means neither module can be read
(or tested) without the other. The graph is read from the source with `ast`: every
`import` and `from … import`, at module level or inside a function, absolute or relative.
Importing `a.b.c` also runs `a` and `a.b`; those implicit parent-package imports are not
edges (a package's `__init__` is an edge only when it is what is imported).
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import sqlite_pass_only

pytestmark = sqlite_pass_only

ROOT = Path(__file__).resolve().parent.parent / "ideaboard"


def module_files(root: Path) -> dict[str, tuple[Path, bool]]:
    """Every module under `root` by dotted name: (file, is it a package's __init__)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts.pop()
        modules[".".join(parts)] = (path, package)
    return modules


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the modules of the same package that it imports, anywhere in its body."""
    modules = module_files(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, package) in modules.items():
        here = name if package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                for alias in node.names:
                    target = f"{base}.{alias.name}"  # `from pkg import module`
                    if target in modules:
                        graph[name].add(target)
                    elif base in modules:  # `from module import name`
                        graph[name].add(base)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, …, a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    """No chain of imports inside ideaboard leads from a module back to itself."""
    cycle = find_cycle(import_graph(ROOT))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_graph_sees_lazy_relative_and_package_imports():
    """The scanner finds edges hidden in functions, relative ones and `from pkg import mod`."""
    graph = import_graph(ROOT)
    assert "ideaboard.services.accounts" in graph["ideaboard.mail"]  # from .services.accounts
    assert "ideaboard.perf.fastvote" in graph["ideaboard"]  # inside create_app()
    assert "ideaboard.services.votes" in graph["ideaboard.perf.fastvote"]  # from pkg import mod
    assert "ideaboard.models" in graph["ideaboard.security"]  # a package's own __init__
    assert "ideaboard" not in graph["ideaboard.services.accounts"]  # no implicit parents


def test_a_cycle_behind_a_function_level_import_is_named(tmp_path):
    """A lazy import that closes a loop is reported with the whole loop."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import thing\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    assert find_cycle(import_graph(pkg)) == ["pkg.a", "pkg.sub.b", "pkg.a"]
