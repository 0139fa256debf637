"""README's command table against `jvn --help`: every option a command takes is in its row.

Commands whose row points to another document for their options (`jvn diff`,
`whatif`, `rollback`, `serve`) are documented there and left out here.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from flows.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = (
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return dict(subparsers.choices)


def _row(command: str) -> str | None:
    """The synopsis cell of the command's own row (one code span), if it has one."""
    cells = [
        re.split(r"(?<!\\)\|", line)[1].strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `jvn ")
    ]
    own = [
        cell for cell in cells if cell.count("`") == 2 and re.match(rf"`jvn {command}[ `]", cell)
    ]
    return own[0] if len(own) == 1 else None


ROWED = [name for name in _commands() if _row(name) is not None]


def test_the_readme_has_a_row_of_its_own_for_the_everyday_commands() -> None:
    assert {"run", "sample", "explain", "stats", "verify", "page", "report", "sql"} <= set(ROWED)


@pytest.mark.parametrize("command", ROWED)
def test_readme_row_names_every_option_the_command_takes(command: str) -> None:
    row = _row(command)
    assert row is not None
    synopsis = row
    missing = [
        action.option_strings[-1]
        for action in _commands()[command]._actions
        if action.option_strings
        and "--help" not in action.option_strings
        and not any(
            re.search(re.escape(option) + r"(?![\w-])", synopsis)
            for option in action.option_strings
        )
    ]
    assert not missing, f"README's `jvn {command}` row lacks {missing}"
