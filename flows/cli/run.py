"""`jvn run`: check the configuration (exit 2), take the lock, run the nightly flow.

Exit status (interfaces.md): 0 published; 3 published with rejected deliveries;
1 failed (nothing published, previous feed untouched); 2 bad arguments or
configuration; 143 stopped by SIGTERM (as Ctrl-C: Prefect's temporary server is
stopped, the next run closes the run's record).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from flows.audit.reports import print_run_summary
from flows.cli.arguments import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TERMINATED,
    dask_options,
    lock_wait_option,
)
from flows.cli.arguments import business_date as _date
from flows.cli.arguments import positive as _positive
from flows.cli.output import discard_stdout
from flows.cli.pages import write_report_after_run
from flows.cli.prefect_start import (
    EarlyServer,
    ServerDidNotStart,
    temporary_server_started_early,
)
from flows.common.config import (
    LOCK_WAIT_VARIABLE,
    ConfigError,
    environment_variable,
    key_withheld_from_children,
    today_in_stockholm,
    warehouse_lock_wait,
)
from flows.common.errors import FeedError, WarehouseBusy
from flows.common.lock import RunLock, RunLocked
from flows.common.warehouse import make_private, open_waiting
from flows.pages.report_process import EarlyReport, report_started_early
from flows.preflight import check_can_run
from flows.publish.feed import claim_feed


def add_commands(commands: Any, storage: Callable[..., None]) -> None:
    """Add `run` to the `jvn` sub-command parser."""
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


def run(arguments: argparse.Namespace) -> int | None:
    """Run `run`; None for any other command."""
    if arguments.command != "run":
        return None
    return command_run(arguments)


def command_run(arguments: argparse.Namespace) -> int:
    """`jvn run`: check configuration first (exit 2), then run the flow."""
    as_of = arguments.as_of or today_in_stockholm()
    check_can_run(
        as_of,
        arguments.feed,
        arguments.rules,
        warehouse=arguments.warehouse,
        inbox=arguments.inbox,
        analytics=arguments.analytics,
        hint=". Publish it elsewhere with --feed DIR.",
    )
    with lock_wait_setting(arguments.lock_wait):
        warehouse_lock_wait()  # a bad JVN_WAREHOUSE_LOCK_WAIT is exit 2, before anything
        try:
            # SIGTERM is caught from here on: from now on there may be a server
            # process to stop. It starts now, so that its few seconds of start
            # overlap the lock, the warehouse and the imports below.
            with (
                stopped_by_sigterm(),
                temporary_server_started_early() as server,
                RunLock(arguments.warehouse, feed=arguments.feed),
            ):
                make_private(arguments.warehouse)
                try:
                    # Opens the warehouse (waiting for an operator's session):
                    # a file that is no warehouse is one line too.
                    claim_feed(arguments.feed, arguments.warehouse, adopt=arguments.adopt_feed)
                except FeedError as error:
                    raise ConfigError(str(error)) from None
                if arguments.warehouse.exists():
                    # Waited for here, before the flow starts, so that a session
                    # left open by an operator gives one line, not a failed flow.
                    open_waiting(arguments.warehouse).close()
                with key_withheld_from_children():
                    return _run_flow(arguments, as_of, server)
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
    with environment_variable(LOCK_WAIT_VARIABLE, repr(seconds)):
        yield


def _run_flow(arguments: argparse.Namespace, as_of: date, server: EarlyServer) -> int:
    with (
        server.in_use(),
        # Started before the flow's imports: its own imports and engine overlap the run.
        report_started_early(
            arguments.analytics,
            wanted=not arguments.no_report,
            command_line=arguments.command_line,
        ) as report,
    ):
        # Prefect is imported only for the commands that run the flow (`jvn --help`,
        # `jvn sample` and the rest start without it), and here after the early
        # server's address is in the environment, where Prefect reads it.
        from flows import nightly

        try:
            server.wait_ready()
        except ServerDidNotStart as error:
            print(f"jvn: run failed, nothing published: {error}", file=sys.stderr)
            return EXIT_FAILED
        with server.flow_settings():
            return _call_flow(nightly, arguments, as_of, report)


def _call_flow(
    nightly: Any, arguments: argparse.Namespace, as_of: date, report: EarlyReport | None
) -> int:
    flow_to_run = nightly.with_task_runner(
        arguments.dask,
        arguments.dask_address,
        arguments.dask_workers,
        on_published=report.ask if report is not None else None,
    )
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
    except nightly.RunFailed as error:
        print(
            f"jvn: run failed, nothing published, the previous feed stays live: {error}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        if arguments.json:
            print(json.dumps(summary, indent=2, sort_keys=True, default=str))
        else:
            print_run_summary(summary)
        sys.stdout.flush()
    except BrokenPipeError:
        # The run is published and recorded whoever reads its summary: a reader that
        # went away (`jvn run | head`) must not turn exit 0 or 3 into 141.
        discard_stdout()
    if summary["status"] == "published" and report is not None:
        written = write_report_after_run(report)
        if written is not None and not arguments.json:
            try:
                print(f"  report        {written}", flush=True)
            except BrokenPipeError:
                discard_stdout()
    if summary["deliveries_rejected"]:
        for rejected in summary["deliveries_rejected"]:
            print(
                f"jvn: delivery {rejected['delivery']} rejected: {rejected['error']}",
                file=sys.stderr,
            )
        return EXIT_REJECTED
    return EXIT_OK
