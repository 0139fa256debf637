"""What the `jvn` subcommands share: exit statuses, argument types, common options.

Bad values exit 2 with one line.
"""

from __future__ import annotations

import argparse
import signal
from datetime import date
from pathlib import Path

from flows.common.config import DEFAULT_ANALYTICS, DEFAULT_FEED, DEFAULT_INBOX, DEFAULT_WAREHOUSE
from transforms.rules import default_rules_path

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_REJECTED = 0, 1, 2, 3
EXIT_TERMINATED = 128 + signal.SIGTERM


def business_date(text: str) -> date:
    """A `YYYY-MM-DD` date."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


def lock_wait_option(sub: argparse.ArgumentParser) -> None:
    """`--lock-wait SECONDS`: how long to wait for a warehouse another process holds."""
    sub.add_argument(
        "--lock-wait",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="wait this long while another process (a DuckDB session) holds the warehouse, "
        "then fail (default: JVN_WAREHOUSE_LOCK_WAIT, else 60)",
    )


def dask_options(sub: argparse.ArgumentParser) -> None:
    """`--dask`, `--dask-address`, `--dask-workers`: where deliveries are prepared and
    partitions decided."""
    sub.add_argument(
        "--dask",
        action="store_true",
        help="prepare deliveries and decide partitions on a local Dask cluster (LocalCluster)",
    )
    sub.add_argument(
        "--dask-address",
        default=None,
        help="prepare deliveries and decide partitions on the Dask scheduler at this address",
    )
    sub.add_argument(
        "--dask-workers",
        type=positive,
        default=2,
        help="worker processes of the local Dask cluster; also how many deliveries are "
        "prepared ahead on any cluster (default 2)",
    )


def storage(
    sub: argparse.ArgumentParser, *, inbox: bool = True, analytics_help: str | None = None
) -> None:
    """The job's places and rule file, with their defaults (flows/common/config.py).

    With `analytics_help`, `--analytics` has no default: the command reads the
    analysts' database only when it is named (`jvn verify`)."""
    if inbox:
        sub.add_argument("--inbox", type=Path, default=DEFAULT_INBOX)
    sub.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    if analytics_help is None:
        sub.add_argument("--analytics", type=Path, default=DEFAULT_ANALYTICS)
    else:
        sub.add_argument("--analytics", type=Path, default=None, help=analytics_help)
    sub.add_argument("--feed", type=Path, default=DEFAULT_FEED)
    sub.add_argument("--rules", type=Path, default=default_rules_path())
