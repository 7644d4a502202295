"""Imports run one way: engine <- render <- cli, with no circles.

Every module's imports are read from its source (ast), deferred imports
inside functions included, so the test sees what the code can import, not
only what one run happened to.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mnsize"
#: what no engine module may import (third-party packages and mnsize's upper floors)
ABOVE_THE_ENGINE = ("click", "rich", "mnsize.cli", "mnsize.render", "mnsize.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The modules ``name`` imports: absolute names, mnsize's resolved to the
    module (``from . import x`` is the module mnsize.x when there is one)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:  # from . import bench: the module mnsize.bench
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in MODULES else source)
    return found


GRAPH = {name: {m for m in imports(name) if m in MODULES and m != name} for name in MODULES}


def floor(name: str) -> str:
    if name == "mnsize.cli" or name.startswith("mnsize.cli.") or name == "mnsize.__main__":
        return "cli"
    if name == "mnsize.render" or name.startswith("mnsize.render."):
        return "render"
    return "engine"


def test_the_modules_are_found():
    assert {"mnsize.spec", "mnsize.costs", "mnsize.cli", "mnsize.cli.table", "mnsize.render.base"} <= set(MODULES)
    assert "mnsize.costs" in GRAPH["mnsize.conventions"]
    assert "mnsize.calibrate" in GRAPH["mnsize.cli.profile"]  # from .. import calibrate


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if floor(n) == "engine"))
def test_engine_modules_import_nothing_above_them(name):
    upward = sorted(m for m in imports(name) if m.startswith(ABOVE_THE_ENGINE))
    assert upward == [], f"{name} imports {upward}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if floor(n) == "render"))
def test_rendering_never_imports_the_cli(name):
    upward = sorted(m for m in imports(name) if m.startswith(("click", "mnsize.cli")))
    assert upward == [], f"{name} imports {upward}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("mnsize.cli.")))
def test_command_modules_never_import_the_group(name):
    assert "mnsize.cli" not in imports(name)
