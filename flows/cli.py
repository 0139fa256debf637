"""The `jvn` command: run the nightly job, make sample inboxes, explain, report, diff.

Exit status (interfaces.md): 0 published; 3 published with rejected deliveries;
1 failed (nothing published, previous feed untouched); 2 bad arguments or
configuration, with a one-line message; 143 stopped by SIGTERM (as Ctrl-C:
Prefect's temporary server is stopped, the next run closes the run's record).

Every command runs under a umask of 077: what the job writes beside the
warehouse holds personal data and is its user's alone (the feed and the
analysts' database get their modes explicitly, docs/operations.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flows.arguments import business_date as _date
from flows.arguments import dask_options, lock_wait_option
from flows.arguments import positive as _positive
from flows.config import (
    LOCK_WAIT_VARIABLE,
    ConfigError,
    key_withheld_from_children,
    pseudonym_key,
    warehouse_lock_wait,
)
from flows.paths import check_separate, job_places
from transforms.canonical import LOCAL_TIME_ZONE

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_REJECTED = 0, 1, 2, 3
EXIT_TERMINATED = 128 + signal.SIGTERM
PRIVATE_UMASK = 0o077

DEFAULT_INBOX = Path("data/inbox")
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
DEFAULT_ANALYTICS = Path("data/analytics.duckdb")
DEFAULT_FEED = Path("data/feed")


def today_in_stockholm() -> date:
    """The business date a run defaults to: today on a Swedish wall calendar."""
    return datetime.now(ZoneInfo(LOCAL_TIME_ZONE)).date()


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 2 with one line (no usage dump)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_CONFIG, f"jvn: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from transforms.rules import default_rules_path

    parser = _Parser(prog="jvn", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def storage(sub: argparse.ArgumentParser, *, inbox: bool = True) -> None:
        if inbox:
            sub.add_argument("--inbox", type=Path, default=DEFAULT_INBOX)
        sub.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
        sub.add_argument("--analytics", type=Path, default=DEFAULT_ANALYTICS)
        sub.add_argument("--feed", type=Path, default=DEFAULT_FEED)
        sub.add_argument("--rules", type=Path, default=default_rules_path())

    run = commands.add_parser("run", help="load, decide, validate, publish (the nightly job)")
    run.add_argument("--as-of", type=_date, default=None, help="business date (default: today)")
    storage(run)
    run.add_argument(
        "--partitions",
        type=_positive,
        default=16,
        help="patient partitions = feed files (default 16)",
    )
    run.add_argument("--keep-snapshots", type=_positive, default=7)
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument(
        "--no-report",
        action="store_true",
        help="do not write the analysts' report (analytics.html) beside the analysts' database",
    )
    run.add_argument(
        "--adopt-feed",
        action="store_true",
        help="publish to a feed another warehouse owns, making this one its owner",
    )
    lock_wait_option(run)
    dask_options(run)

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

    stats = commands.add_parser("stats", help="the latest run's visibility figures")
    stats.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    stats.add_argument("--by", choices=["system", "reason", "type", "unit"], default="system")

    for module in _command_modules():
        module.add_commands(commands, storage)
    return parser


PLUGGED_COMMANDS = ("flows.commands_history", "flows.commands_trust", "flows.commands_pages")
"""Modules that add subcommands: each has `add_commands(commands, storage)` and
`run(arguments) -> int | None` (None: not one of its commands)."""


def _command_modules() -> list[Any]:
    import importlib

    modules = []
    for name in PLUGGED_COMMANDS:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
    return modules


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
    previous_umask = os.umask(PRIVATE_UMASK)
    try:
        return _dispatch(arguments)
    except ConfigError as error:
        print(f"jvn: {error}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        os.umask(previous_umask)


def _dispatch(arguments: argparse.Namespace) -> int:
    if arguments.command == "run":
        return command_run(arguments)
    if arguments.command == "sample":
        return command_sample(arguments)
    if arguments.command == "explain":
        from flows.reports import explain

        return explain(arguments.warehouse, arguments.rules, arguments.record_id, arguments.as_of)
    if arguments.command == "stats":
        from flows.reports import stats

        return stats(arguments.warehouse, arguments.by)
    for module in _command_modules():
        status = module.run(arguments)
        if status is not None:
            return int(status)
    raise AssertionError(f"unhandled command {arguments.command}")


def command_run(arguments: argparse.Namespace) -> int:
    """`jvn run`: check configuration first (exit 2), then run the flow."""
    from flows.feed import FeedError, claim_feed, live_snapshot
    from flows.lock import RunLock, RunLocked
    from flows.warehouse import WarehouseBusy, make_private, open_waiting
    from transforms.rules import RuleFileError, load_rules

    as_of = arguments.as_of or today_in_stockholm()
    check_separate(
        job_places(
            warehouse=arguments.warehouse,
            inbox=arguments.inbox,
            analytics=arguments.analytics,
            feed=arguments.feed,
        )
    )
    try:
        load_rules(arguments.rules)
    except RuleFileError as error:
        raise ConfigError(str(error)) from None
    pseudonym_key()
    try:
        live = live_snapshot(arguments.feed)
    except FeedError as error:
        raise ConfigError(str(error)) from None
    if live is not None and as_of < live.as_of:
        raise ConfigError(
            f"the live feed in {arguments.feed} is for {live.as_of}; a run for the earlier "
            f"date {as_of} would take it back in time. Publish it elsewhere with --feed DIR."
        )
    with lock_wait_setting(arguments.lock_wait):
        warehouse_lock_wait()  # a bad JVN_WAREHOUSE_LOCK_WAIT is exit 2, before anything
        try:
            with RunLock(arguments.warehouse, feed=arguments.feed), stopped_by_sigterm():
                make_private(arguments.warehouse)
                try:
                    # Opens the warehouse (waiting for an operator's session):
                    # a file that is no warehouse is one line too.
                    claim_feed(arguments.feed, arguments.warehouse, adopt=arguments.adopt_feed)
                except FeedError as error:
                    raise ConfigError(str(error)) from None
                if arguments.warehouse.exists():
                    # Waited for here, before Prefect starts, so that a session
                    # left open by an operator gives one line, not a failed flow.
                    open_waiting(arguments.warehouse).close()
                with key_withheld_from_children():
                    return _run_flow(arguments, as_of)
        except (RunLocked, WarehouseBusy) as error:
            print(f"jvn: {error}", file=sys.stderr)
            return EXIT_FAILED
        except Terminated:
            print(
                "jvn: stopped by SIGTERM; if the feed was not swapped yet the previous one "
                "stays live, and the next run closes this run's record",
                file=sys.stderr,
            )
            return EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so that it stops as on Ctrl-C: `finally`
    blocks run, and Prefect's temporary server is stopped at exit (a SIGTERM
    left to its default action would end this process and orphan that server)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """While inside, SIGTERM raises Terminated (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def lock_wait_setting(seconds: float | None) -> Iterator[None]:
    """`--lock-wait` for this command: JVN_WAREHOUSE_LOCK_WAIT, which every
    opening of the warehouse reads (tasks open it themselves)."""
    if seconds is None:
        yield
        return
    saved = os.environ.get(LOCK_WAIT_VARIABLE)
    os.environ[LOCK_WAIT_VARIABLE] = repr(seconds)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(LOCK_WAIT_VARIABLE, None)
        else:
            os.environ[LOCK_WAIT_VARIABLE] = saved


def _run_flow(arguments: argparse.Namespace, as_of: date) -> int:
    from flows.nightly import RunFailed, nightly_run

    flow_to_run = nightly_run
    if arguments.dask or arguments.dask_address:
        from flows.distributed import dask_task_runner

        runner = dask_task_runner(arguments.dask_address, arguments.dask_workers)
        flow_to_run = nightly_run.with_options(task_runner=runner)
    try:
        summary = flow_to_run(
            as_of=as_of,
            inbox=str(arguments.inbox),
            warehouse=str(arguments.warehouse),
            analytics_db=str(arguments.analytics),
            feed_dir=str(arguments.feed),
            rules=str(arguments.rules),
            partitions=arguments.partitions,
            keep_snapshots=arguments.keep_snapshots,
        )
    except RunFailed as error:
        print(
            f"jvn: run failed, nothing published, the previous feed stays live: {error}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if arguments.json:
        print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    else:
        from flows.reports import print_run_summary

        print_run_summary(summary)
    if summary["status"] == "published" and not arguments.no_report:
        from flows.commands_pages import write_report_after_run

        report = write_report_after_run(arguments.analytics)
        if report is not None and not arguments.json:
            print(f"  report        {report}")
    if summary["deliveries_rejected"]:
        for rejected in summary["deliveries_rejected"]:
            print(
                f"jvn: delivery {rejected['delivery']} rejected: {rejected['error']}",
                file=sys.stderr,
            )
        return EXIT_REJECTED
    return EXIT_OK


def command_sample(arguments: argparse.Namespace) -> int:
    """`jvn sample`: write a synthetic inbox, never over a non-empty one unasked (exit 2)."""
    from flows.sample import generate_inbox

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
        f"wrote {len(summary.deliveries)} deliveries, {summary.rows_written} rows "
        f"({summary.bad_rows} deliberately bad) to {arguments.out}"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
