"""`jvn diff`, `jvn whatif`, `jvn rollback`, `jvn serve`: rule changes, reruns and the schedule.

A command group of `flows.cli`: `add_commands` adds the
subcommands, `run` runs one of them (None: not one of ours). Bad arguments and
refusals raise ConfigError, which the CLI turns into exit 2 with one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.cli.arguments import business_date as _date
from flows.cli.arguments import dask_options
from flows.cli.arguments import positive as _positive
from flows.common.config import ConfigError
from flows.common.words import plural

COMMANDS = ("diff", "whatif", "rollback", "serve")

_BY_CHOICES = ("direction", "system", "unit", "type", "reason")


def _diff_output(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--by",
        action="append",
        choices=_BY_CHOICES,
        help="break the changes down by this (repeatable; default: system, type, reason, unit)",
    )
    sub.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="also write every changed record to FILE.csv or FILE.parquet (no personal data)",
    )


def add_commands(commands: Any, storage: Callable[..., None]) -> None:
    """Add this module's subcommands to `jvn`'s subparsers."""
    from flows.common.config import DEFAULT_FEED, DEFAULT_WAREHOUSE

    diff = commands.add_parser(
        "diff", help="records whose visibility or reason changed between two published runs"
    )
    diff.add_argument(
        "--from",
        dest="from_run",
        metavar="RUN",
        help="run id, start of one, business date (its latest run), `latest`, `previous`, "
        "or any of these + `~N` (N published runs before it; a bare `~N` counts back from "
        "--to); the same run as --to exits 2 (default: previous, the run before --to)",
    )
    diff.add_argument(
        "--to",
        dest="to_run",
        metavar="RUN",
        help="as --from; a bare `~N` counts back from the latest (default: latest)",
    )
    diff.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    _diff_output(diff)

    whatif = commands.add_parser(
        "whatif",
        help="decide under a proposed rule file, diff against the latest run; publishes nothing",
    )
    whatif.add_argument("--rules", type=Path, required=True, help="the proposed rule file")
    whatif.add_argument(
        "--as-of",
        type=_date,
        default=None,
        help="business date to decide for (default: the latest published run's)",
    )
    whatif.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    whatif.add_argument("--partitions", type=_positive, default=16)
    _diff_output(whatif)

    rollback = commands.add_parser(
        "rollback", help="point the feed's CURRENT back at the previous snapshot"
    )
    rollback.add_argument("--feed", type=Path, default=DEFAULT_FEED)
    rollback.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)

    serve = commands.add_parser(
        "serve", help="serve the nightly run as a Prefect deployment on a schedule"
    )
    serve.add_argument("--cron", default=None, help='cron expression (default "30 2 * * *")')
    serve.add_argument(
        "--timezone", default=None, help="time zone of the cron (default Europe/Stockholm)"
    )
    serve.add_argument("--name", default=None, help="deployment name (default nightly)")
    storage(serve)
    serve.add_argument("--partitions", type=_positive, default=16)
    serve.add_argument("--keep-snapshots", type=_positive, default=7)
    dask_options(serve)


def run(arguments: argparse.Namespace) -> int | None:
    """Run `arguments.command` if it is one of ours; None otherwise."""
    if arguments.command in ("diff", "whatif") and arguments.export:
        from flows.common.paths import check_separate, job_places

        check_separate(job_places(warehouse=arguments.warehouse, export=arguments.export))
    if arguments.command == "diff":
        from flows.audit import diff

        result = diff.diff_runs(arguments.warehouse, arguments.from_run, arguments.to_run)
        return _report(result, arguments)
    if arguments.command == "whatif":
        from flows.audit import diff
        from flows.common.lock import RunLock, RunLocked

        if not arguments.warehouse.exists():
            raise ConfigError(f"no warehouse at {arguments.warehouse}: run `jvn run` first")
        try:
            with RunLock(arguments.warehouse):
                result = diff.whatif(
                    arguments.warehouse, arguments.rules, arguments.as_of, arguments.partitions
                )
        except RunLocked as error:
            raise ConfigError(str(error)) from None
        print("WHAT IF (nothing published, no run recorded)")
        return _report(result, arguments)
    if arguments.command == "rollback":
        return rollback(arguments.feed, arguments.warehouse)
    if arguments.command == "serve":
        from flows import serve

        arguments.cron = arguments.cron or serve.DEFAULT_CRON
        arguments.timezone = arguments.timezone or serve.DEFAULT_TIMEZONE
        arguments.name = arguments.name or serve.DEFAULT_DEPLOYMENT
        return serve.serve(arguments)
    return None


def _report(result: Any, arguments: argparse.Namespace) -> int:
    from flows.audit import diff

    diff.print_diff(result, arguments.by)
    if arguments.export:
        rows = diff.export(result, arguments.export)
        print(f"\nwrote {plural(rows, 'changed record')} to {arguments.export}")
    return 0


def rollback(feed_dir: Path, warehouse: Path) -> int:
    """`jvn rollback`: make the snapshot before the live one live again.

    Only the feed moves; the warehouse keeps its history (the rolled-back run
    stays recorded). Refuses (ConfigError, exit 2) when there is no live
    snapshot or none older than it is kept.
    """
    from flows.common.lock import RunLock, RunLocked
    from flows.common.paths import check_separate, job_places
    from flows.publish.feed import FeedError, live_snapshot, point_current_at, previously_live

    check_separate(job_places(warehouse=warehouse, feed=feed_dir))
    try:
        # The feed's lock too (a run publishing to it with another warehouse);
        # a feed folder that does not exist is not created for it.
        with RunLock(warehouse, feed=feed_dir if feed_dir.is_dir() else None):
            try:
                live = live_snapshot(feed_dir)
            except FeedError as error:
                raise ConfigError(str(error)) from None
            if live is None:
                raise ConfigError(f"nothing to roll back: no live snapshot in {feed_dir}")
            # Back along the publication log, never to a folder that was not live.
            previous = previously_live(feed_dir, live.name)
            if previous is None:
                raise ConfigError(
                    f"cannot roll back: {live.name} is the oldest snapshot kept in {feed_dir} "
                    "(of those the job published)"
                )
            point_current_at(feed_dir, previous)
    except RunLocked as error:
        raise ConfigError(str(error)) from None
    print(f"rolled back {feed_dir}: CURRENT now names {previous} (was {live.name})")
    print(
        "the warehouse still records the rolled-back run; portals that ingest change sets "
        "must reload this snapshot in full"
    )
    return 0
