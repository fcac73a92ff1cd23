"""The layout's rules, checked on the code itself (read with ast, nothing imported).

No import cycle among bridge modules; each subpackage imports only what its docstring allows;
no module over 600 lines; every subpackage says what it owns and what it may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BRIDGE = Path(__file__).resolve().parent.parent / "bridge"
MAX_LINES = 600

# What each subpackage must never import (their docstrings say the same in words).
NEVER = {
    "bridge.protocol": {"bridge.rpc", "bridge.tracking", "bridge.store", "bridge.report", "bridge.migration",
                        "bridge.cli", "bridge.opencode", "bridge.config"},
    "bridge.lmdbjs": {"bridge.rpc", "bridge.tracking", "bridge.store", "bridge.report", "bridge.migration",
                      "bridge.cli", "bridge.opencode", "bridge.protocol", "bridge.config"},
    "bridge.store": {"bridge.rpc", "bridge.tracking", "bridge.report", "bridge.migration", "bridge.cli"},
    "bridge.tracking": {"bridge.rpc", "bridge.report", "bridge.migration", "bridge.cli", "bridge.opencode"},
    "bridge.report": {"bridge.rpc", "bridge.migration", "bridge.cli", "bridge.opencode"},
    "bridge.migration": {"bridge.rpc", "bridge.tracking", "bridge.report", "bridge.cli", "bridge.opencode"},
    "bridge.opencode": {"bridge.rpc", "bridge.tracking", "bridge.report", "bridge.migration", "bridge.cli"},
    "bridge.rpc": {"bridge.cli", "bridge.team"},
    "bridge.summaries": {"bridge.rpc", "bridge.cli", "bridge.migration", "bridge.opencode"},
    "bridge.team": {"bridge.rpc", "bridge.cli", "bridge.migration", "bridge.opencode"},
}
# Only the CLI may use the team package (pyarrow and DuckDB are an optional extra).
for _package in ("bridge.protocol", "bridge.lmdbjs", "bridge.store", "bridge.tracking", "bridge.report",
                 "bridge.migration", "bridge.opencode"):
    NEVER[_package] = NEVER[_package] | {"bridge.team"}
# Single modules a subpackage may use inside a package it otherwise must not import.
EXCEPT = {"bridge.migration": {"bridge.tracking.git_commands", "bridge.tracking.stack"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(BRIDGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(BRIDGE.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imported_modules(name: str, path: Path) -> set[str]:
    """Modules of the bridge that ``name`` imports, lazily or not (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import faults` imports the module bridge.tracking.faults; `from .x import f`, x.
            submodules = {f"{target}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_the_graph_sees_the_imports_it_should() -> None:
    """A guard on the reader itself: known edges, relative and lazy ones included."""
    assert "bridge.tracking.faults" in GRAPH["bridge.tracking.service"]
    assert "bridge.store" in GRAPH["bridge.tracking.service"]
    assert "bridge.rpc.server" in GRAPH["bridge.cli"]  # a lazy import inside main()


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                walk(target, path + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            walk(module, [module])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("package", sorted(NEVER))
def test_subpackages_import_only_what_they_may(package: str) -> None:
    broken = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items() if module == package or module.startswith(package + ".")
        for target in targets
        if any(target == never or target.startswith(never + ".") for never in NEVER[package])
        and target not in EXCEPT.get(package, set()))
    assert broken == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it along its jobs"


@pytest.mark.parametrize("package", sorted(name for name, path in MODULES.items()
                                           if path.name == "__init__.py" and name != "bridge"))
def test_every_subpackage_says_what_it_owns_and_may_import(package: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8"))) or ""
    assert "owns" in docstring.lower(), package
    assert "import" in docstring.lower(), package
