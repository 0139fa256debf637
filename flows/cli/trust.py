"""`jvn verify`: the command that re-checks the live feed (plugged into flows/cli.py).

Exit status: 0 every check holds; 1 any mismatch (listed by kind and count,
never a value from a record), or verification could not be completed; 2 bad
arguments or configuration (an unreadable rule file, no warehouse, a run in
progress), with a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_MISMATCH, EXIT_CONFIG = 0, 1, 2


def add_commands(commands: Any, storage: Callable[..., None]) -> None:
    """Add `verify` to the `jvn` sub-command parser."""
    verify = commands.add_parser(
        "verify",
        help="re-check the live feed against its manifest, the warehouse and the rules",
        description=(
            "Re-check the live feed: CURRENT, every file's sha256 and row count against the "
            "manifest, every record against the warehouse's decisions, the feed against "
            "the rule file (the live run's state decided again), and with --analytics the "
            "analysts' database against the warehouse. Exit 0: all hold; "
            "1: mismatches (listed by kind and count); 2: bad configuration."
        ),
    )
    storage(
        verify,
        inbox=False,
        analytics_help=(
            "also check this analysts' database against the warehouse (its patient keys "
            "recomputed when JVN_PSEUDONYM_KEY or JVN_PSEUDONYM_KEY_FILE is set)"
        ),
    )


def run(arguments: argparse.Namespace) -> int | None:
    """Run `verify`; None for any other command."""
    if arguments.command != "verify":
        return None
    from flows.audit.verify import VerifyError, verify
    from flows.common.config import ConfigError, pseudonym_key_if_set

    try:
        report = verify(
            arguments.feed,
            arguments.warehouse,
            arguments.rules,
            analytics=arguments.analytics,
            pseudonym_key=pseudonym_key_if_set() if arguments.analytics else None,
        )
    except VerifyError as error:
        raise ConfigError(str(error)) from None
    except Exception as error:
        # A library error may quote a value: name only its type.
        print(
            f"jvn verify: could not complete verification ({type(error).__name__}); "
            "treat the feed as unverified",
            file=sys.stderr,
        )
        return EXIT_MISMATCH
    for line in report.lines():
        print(line)
    return EXIT_OK if report.ok else EXIT_MISMATCH
