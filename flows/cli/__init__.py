"""The `jvn` command: run the nightly job, make sample inboxes, explain, report, diff.

Exit status (interfaces.md): 0 published; 3 published with rejected deliveries;
1 failed (nothing published, previous feed untouched); 2 bad arguments or
configuration, with a one-line message; 143 stopped by SIGTERM (as Ctrl-C:
Prefect's temporary server is stopped, the next run closes the run's record);
141 when the reader of its output went away (`jvn stats | head`): no traceback.

Every command runs under a umask of 077: what the job writes beside the
warehouse holds personal data and is its user's alone (the feed and the
analysts' database get their modes explicitly, docs/operations.md).

One module per command group, each with `add_commands(commands, storage)` and
`run(arguments) -> int | None` (None: not one of its commands).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from flows.cli import history, inspect, pages, run, sample, sql, trust
from flows.cli.arguments import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TERMINATED,
    storage,
)
from flows.cli.output import discard_stdout
from flows.common.config import ConfigError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_TERMINATED",
    "build_parser",
    "main",
]

PRIVATE_UMASK = 0o077

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
"""141: the reader of stdout went away (`jvn stats | head`), as the shell reports a
tool that SIGPIPE ended."""

COMMAND_GROUPS = (run, sample, inspect, history, trust, pages, sql)
"""The subcommands, in the order `jvn --help` lists them."""


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 2 with one line (no usage dump), and `--help`
    shows the default of every option that has one."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_CONFIG, f"jvn: {message}\n")

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        shown = action.help or ""
        if (
            action.option_strings
            and action.help is not argparse.SUPPRESS
            and action.default not in (None, False, argparse.SUPPRESS)
            and "default" not in shown
        ):
            action.help = f"{shown} (default: %(default)s)" if shown else "default: %(default)s"
        return action


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jvn", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for group in COMMAND_GROUPS:
        group.add_commands(commands, storage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jvn` console script."""
    # Prefect's temporary server would try to send usage telemetry; this job
    # runs on closed networks and reports to nobody.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # With no Prefect server configured, a temporary one starts; on a busy
    # 2-core machine that can take longer than Prefect's default wait.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    arguments = build_parser().parse_args(argv)
    # No argv: this process is the `jvn` command and ends with it (flows/pages/report_process.py).
    arguments.command_line = argv is None
    previous_umask = os.umask(PRIVATE_UMASK)
    try:
        status = _dispatch(arguments)
        # Written out here, inside the handler, not at exit where a closed pipe
        # would only print a traceback-like "Exception ignored".
        sys.stdout.flush()
        return status
    except ConfigError as error:
        print(f"jvn: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        return _reader_gone()
    finally:
        os.umask(previous_umask)


def _reader_gone() -> int:
    """`jvn stats | head -1`: the reader closed the pipe. Stop quietly, as a tool the
    shell sees killed by SIGPIPE (141), with no traceback.

    What is still buffered for stdout goes to /dev/null, so the flush at exit
    cannot fail again.
    """
    discard_stdout()
    return EXIT_BROKEN_PIPE


def _dispatch(arguments: argparse.Namespace) -> int:
    for group in COMMAND_GROUPS:
        status = group.run(arguments)
        if status is not None:
            return int(status)
    raise AssertionError(f"unhandled command {arguments.command}")
