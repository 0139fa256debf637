"""Argument types the `jvn` subcommands share (bad values exit 2 with one line)."""

from __future__ import annotations

import argparse
from datetime import date


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
    """`--dask`, `--dask-address`, `--dask-workers`: where partitions are decided."""
    sub.add_argument(
        "--dask",
        action="store_true",
        help="decide partitions on a local Dask cluster (LocalCluster)",
    )
    sub.add_argument(
        "--dask-address",
        default=None,
        help="decide partitions on the Dask scheduler at this address",
    )
    sub.add_argument(
        "--dask-workers",
        type=positive,
        default=2,
        help="worker processes of the local Dask cluster (default 2)",
    )
