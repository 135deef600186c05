"""rig_core is layered: each package imports only packages of lower layers, and no modules import each other
in a cycle. Imports anywhere in a module count, function-local ones included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rig_core"

# Lowest first. A package may import its own modules and those of any lower layer, nothing else.
LAYERS = [
    {"errors", "resources"},
    {"fsutil", "versions", "ui", "config", "records", "stats"},
    {"envs", "tasks", "tokenize", "results"},
    {"agents", "data", "model"},
    {"annotate", "collect", "viz", "exchange"},
    {"inference"},
    {"review"},
    {"train", "evaluate"},
    {"diagnostics", "pipeline"},
    {"view"},
]


def _module_name(path: Path) -> str:
    parts = ("rig_core",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The rig_core modules ``path`` imports (``from rig_core.x import y`` counts as rig_core.x, or rig_core.x.y
    where that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rig_core.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rig_core"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if _exists(sub) else node.module)
    return {m for m in found if m != "rig_core"}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in ROOT.rglob("*.py")}


def _package(module: str) -> str:
    return module.split(".")[1]


def _layer(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"package {package} has no layer: add it to LAYERS in {__file__}")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, deps in sorted(graph.items()):
        here = _package(module) if module.count(".") else None
        if here is None:
            continue
        for dep in sorted(deps):
            there = _package(dep)
            if there != here and _layer(there) >= _layer(here):
                bad.append(f"{module} imports {dep} ({there} is not below {here})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle between modules, each as the path that closes it."""
    found, state = [], {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                found.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return found


def test_every_package_has_a_layer():
    packages = {_package(m) for m in _graph() if m.count(".")}
    for p in packages:
        _layer(p)


def test_no_package_imports_a_layer_above_or_beside_it():
    assert upward_imports(_graph()) == []


def test_no_import_cycles():
    assert cycles(_graph()) == []


def test_the_checks_can_fail():
    graph = {"rig_core.data.reader": {"rig_core.train.run"}, "rig_core.train.run": {"rig_core.data.reader"}}
    assert upward_imports(graph) == ["rig_core.data.reader imports rig_core.train.run (train is not below data)"]
    assert cycles(graph) == [["rig_core.data.reader", "rig_core.train.run", "rig_core.data.reader"]]
