"""The package's shape: no import circles between its modules, sibling tasks never import each other, and the
engine and the tree structures know no task and draw nothing on a screen."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unnparse"
TASKS = ("parser", "mnist", "seqcomplete")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (at any depth of its code)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("unnparse"):
                    found.add(target)
        graph[name] = found
    return graph


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_no_import_circles_between_modules():
    graph = _imports()
    # a package's __init__ re-exports its modules; edges into a package's own __init__ are not circles of code
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("task", TASKS)
def test_sibling_tasks_do_not_import_each_other(task):
    graph = _imports()
    others = [f"unnparse.{t}" for t in TASKS if t != task]
    crossing = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _package_of(module) == f"unnparse.{task}"
        for target in targets
        if _package_of(target) in others
    )
    assert crossing == []


@pytest.mark.parametrize("package", ["unnparse.engine", "unnparse.structures"])
def test_engine_and_structures_know_no_task_and_no_cli(package):
    graph = _imports()
    forbidden = [f"unnparse.{t}" for t in TASKS] + ["unnparse.cli"]
    crossing = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _package_of(module) == package
        for target in targets
        if _package_of(target) in forbidden
    )
    assert crossing == []


def test_importing_the_engine_draws_nothing():
    code = "import sys, unnparse.engine, unnparse.structures; print(sorted(m for m in sys.modules if m[:5] == 'rich'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
