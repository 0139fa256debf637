"""`jvn explain` and `jvn stats`: why a record is or is not shown; the live run's figures."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.audit.reports import STATS_DIMENSIONS, explain, stats
from flows.cli.arguments import business_date as _date
from flows.common.config import DEFAULT_WAREHOUSE
from transforms.rules import default_rules_path


def add_commands(commands: Any, storage: Callable[..., None]) -> None:
    """Add `explain` and `stats` to the `jvn` sub-command parser."""
    explain = commands.add_parser("explain", help="why a record is or is not shown")
    explain.add_argument("record_id")
    explain.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    explain.add_argument("--rules", type=Path, default=default_rules_path())
    explain.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="business date to explain for (default: the latest run's)",
    )

    stats = commands.add_parser(
        "stats", help="the live run's visibility figures (the run whose snapshot CURRENT names)"
    )
    stats.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    stats.add_argument(
        "--feed",
        type=Path,
        default=None,
        help="the feed whose live snapshot to report (default: the feed the latest run "
        "published to)",
    )
    stats.add_argument(
        "--by",
        choices=STATS_DIMENSIONS,
        default="system",
        help="count the records by this, with a total row (default: system)",
    )


def run(arguments: argparse.Namespace) -> int | None:
    """Run `explain` or `stats`; None for any other command."""
    if arguments.command == "explain":
        return explain(arguments.warehouse, arguments.rules, arguments.record_id, arguments.as_of)
    if arguments.command == "stats":
        return stats(arguments.warehouse, arguments.by, arguments.feed)
    return None
