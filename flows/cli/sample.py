"""`jvn sample`: write a synthetic, contract-conformant inbox (flows/sample/)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from flows.cli.arguments import EXIT_CONFIG, EXIT_OK
from flows.cli.arguments import business_date as _date
from flows.cli.arguments import positive as _positive
from flows.common.config import DEFAULT_INBOX
from flows.common.words import plural
from flows.sample import generate_inbox


def add_commands(commands: Any, storage: Callable[..., None]) -> None:
    """Add `sample` to the `jvn` sub-command parser."""
    sample = commands.add_parser(
        "sample",
        help="write a synthetic contract-conformant inbox",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sample.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_INBOX,
        help="inbox folder to write; refused if it is not empty, unless --overwrite",
    )
    sample.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out, replacing the delivery folders it generates",
    )
    sample.add_argument(
        "--records",
        type=_positive,
        default=5000,
        help="about this many history records across the five journal systems",
    )
    sample.add_argument(
        "--seed", type=int, default=1177, help="the same arguments give a byte-identical inbox"
    )
    sample.add_argument(
        "--days", type=_positive, default=5, help="business dates (Mon-Fri) with deliveries"
    )
    sample.add_argument(
        "--end-date", type=_date, default=date(2026, 11, 25), help="the last business date"
    )
    sample.add_argument("--no-bad-rows", action="store_true", help="write no deliberately bad rows")
    sample.add_argument(
        "--bad-deliveries", action="store_true", help="also write deliveries that must be rejected"
    )


def run(arguments: argparse.Namespace) -> int | None:
    """Run `sample`; None for any other command."""
    if arguments.command != "sample":
        return None
    return command_sample(arguments)


def command_sample(arguments: argparse.Namespace) -> int:
    """`jvn sample`: write a synthetic inbox, never over a non-empty one unasked (exit 2)."""
    out: Path = arguments.out
    if out.exists() and not out.is_dir():
        print(f"jvn: {out} is not a folder", file=sys.stderr)
        return EXIT_CONFIG
    # The default --out is the committed sample: rewriting it must be a choice.
    if not arguments.overwrite and out.is_dir() and any(out.iterdir()):
        print(
            f"jvn: {out} is not empty; pass --overwrite to write the sample into it",
            file=sys.stderr,
        )
        return EXIT_CONFIG

    def progress(message: str) -> None:
        print(message, file=sys.stderr)

    summary = generate_inbox(
        arguments.out,
        records=arguments.records,
        seed=arguments.seed,
        days=arguments.days,
        end_date=arguments.end_date,
        bad_rows=not arguments.no_bad_rows,
        bad_deliveries=arguments.bad_deliveries,
        progress=progress,
    )
    print(
        f"wrote {plural(len(summary.deliveries), 'delivery', 'deliveries')}, "
        f"{plural(summary.rows_written, 'row')} "
        f"({summary.bad_rows} deliberately bad) to {arguments.out}"
    )
    return EXIT_OK
