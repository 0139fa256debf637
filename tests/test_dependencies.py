"""What the job's code imports is installed by its runtime dependencies, not only by dev tools.

`uv sync --locked` installs the dev group too, so a module that only a dev tool
brings along (pyarrow came with the test tools) works on a developer's machine
and in CI, and fails with ModuleNotFoundError where the job is installed
without them (`uv sync --no-dev`, `pip install .`). Every third-party module
that `flows/` and `transforms/` import, anywhere in a module, must come from a
distribution in `[project] dependencies` or in what they require in turn.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"flows", "transforms"}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_distributions() -> set[str]:
    """The declared runtime dependencies and everything they require, extras followed."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    pending = [Requirement(text) for text in declared]
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = _normalised(requirement.name)
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            nested = Requirement(text)
            environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if nested.marker is None or any(
                nested.marker.evaluate(environment) for environment in environments
            ):
                pending.append(nested)
    return found


def _imported_top_level_modules() -> dict[str, set[str]]:
    """Third-party top-level module -> the project files importing it."""
    imported: dict[str, set[str]] = {}
    for folder in sorted(PROJECT_PACKAGES):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top not in PROJECT_PACKAGES and top not in sys.stdlib_module_names:
                        imported.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return imported


def test_every_third_party_module_the_code_imports_comes_from_a_runtime_dependency() -> None:
    runtime = _runtime_distributions()
    providers = metadata.packages_distributions()
    missing = {
        module: sorted(files)
        for module, files in sorted(_imported_top_level_modules().items())
        if not any(_normalised(dist) in runtime for dist in providers.get(module, [module]))
    }
    assert not missing, f"imported, but not installed by [project] dependencies: {missing}"


def test_the_check_sees_a_module_that_only_a_dev_tool_installs() -> None:
    # pytest is a dev dependency only: were the code to import it, the check must say so.
    providers = metadata.packages_distributions()
    assert not any(_normalised(dist) in _runtime_distributions() for dist in providers["pytest"])
