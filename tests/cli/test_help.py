"""`jvn <command> --help` tells the default of every option that has one."""

from __future__ import annotations

import argparse

import pytest

from flows.cli import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_help_shows_the_default_of_every_option_that_has_one(command: str) -> None:
    sub = _subcommands()[command]
    text = sub.format_help()
    for action in sub._actions:
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            continue
        assert action.help and "default" in action.help, (command, action.option_strings)
    assert "default:" in text or "default " in text
