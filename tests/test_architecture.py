"""The house rule (docs/architecture.md): imports run one way, from the top down.

Every module of `flows/` and `transforms/` is read with `ast`, imports inside
functions included. A module may import only modules of its own layer or of
layers below it, and no chain of imports may come back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("transforms",),
    ("flows.common",),
    ("flows.load",),
    ("flows.store",),
    ("flows.decide",),
    ("flows.publish",),
    ("flows.nightly", "flows.preflight", "flows.serve"),
    ("flows.audit", "flows.pages", "flows.sample"),
    ("flows.cli",),
)
"""Layers from the bottom up: the stages in the order the data moves through them,
the flow on top of the stages, the commands on top of everything."""

MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    paths = [*(REPO / "flows").rglob("*.py"), *(REPO / "transforms").rglob("*.py")]
    return {_module_name(path): path for path in sorted(paths)}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules `name` imports, anywhere in it (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from flows.load import reader` imports the module flows.load.reader.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in MODULES and target != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            return index
    if name in ("flows",):
        return 0
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_or_the_layers_below(name: str) -> None:
    upward = sorted(target for target in GRAPH[name] if _layer(target) > _layer(name))
    assert not upward, f"{name} imports upward: {upward}"


def test_no_chain_of_imports_comes_back_to_where_it_started() -> None:
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_commands_are_wired_by_explicit_imports_not_importlib() -> None:
    wired = [
        name
        for name, path in MODULES.items()
        if "importlib" in path.read_text(encoding="utf-8") or "__import__(" in path.read_text()
    ]
    assert not wired, f"modules loading modules by name: {wired}"
