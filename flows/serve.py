"""`jvn serve`: the nightly run as a Prefect deployment on a cron schedule.

A scheduled run has no one to type `--as-of`, so the deployment serves a small
wrapper flow, `scheduled_nightly_run`, whose `as_of` is optional and becomes
"today in Europe/Stockholm" when the run starts (not when the deployment was
made). It makes the same checks as `jvn run` before it touches anything (rule
file, pseudonym key, a live feed that must not go back in time, one run at a
time) and then runs `nightly_run` as a subflow, so both show in Prefect's UI.

Schedules are kept by a Prefect server's scheduler: `jvn serve` needs
`PREFECT_API_URL` (docs/operations.md). Without a server, schedule `jvn run`
with the operating system's scheduler instead.

No `from __future__ import annotations` here: a served run validates its
parameters in a process the runner spawns, and there the string annotation
"date | None" failed ("model not fully defined; define `date`"). Real
annotation objects work (checked against `prefect server start`).
"""

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import flow, get_run_logger
from prefect.deployments.runner import EntrypointType
from prefect.schedules import Cron, Schedule

from flows import nightly
from flows.common.config import (
    DEFAULT_ANALYTICS,
    DEFAULT_FEED,
    DEFAULT_INBOX,
    DEFAULT_WAREHOUSE,
    ConfigError,
    today_in_stockholm,
)
from flows.common.errors import FeedError
from flows.common.lock import RunLock, RunLocked
from flows.common.warehouse import make_private
from flows.preflight import check_can_run, check_configuration
from flows.publish.feed import claim_feed
from transforms.canonical import LOCAL_TIME_ZONE
from transforms.rules import default_rules_path

DEFAULT_CRON = "30 2 * * *"
DEFAULT_TIMEZONE = LOCAL_TIME_ZONE
DEFAULT_DEPLOYMENT = "nightly"
SCHEDULED_FLOW_NAME = "jvn-nightly-scheduled"


class RunRefused(Exception):
    """A scheduled run found its configuration unusable; it touched nothing."""


@flow(name=SCHEDULED_FLOW_NAME, validate_parameters=True)
def scheduled_nightly_run(
    inbox: str = str(DEFAULT_INBOX),
    warehouse: str = str(DEFAULT_WAREHOUSE),
    analytics_db: str = str(DEFAULT_ANALYTICS),
    feed_dir: str = str(DEFAULT_FEED),
    rules: str | None = None,
    partitions: int = 16,
    keep_snapshots: int = 7,
    as_of: date | None = None,
    dask: bool = False,
    dask_address: str | None = None,
    dask_workers: int = 2,
) -> dict[str, Any]:
    """The nightly run for `as_of`, by default today's date in Europe/Stockholm at run time.

    With `dask` (a local cluster of `dask_workers` processes) or `dask_address`
    (a running scheduler), deliveries are prepared and partitions decided on Dask, as
    `jvn run --dask`.
    """
    logger = get_run_logger()
    day = as_of or today_in_stockholm()
    rules_path = rules or str(default_rules_path())
    try:
        check_can_run(
            day,
            Path(feed_dir),
            Path(rules_path),
            warehouse=Path(warehouse),
            inbox=Path(inbox),
            analytics=Path(analytics_db),
        )
        with RunLock(Path(warehouse), feed=Path(feed_dir)):
            make_private(Path(warehouse))
            try:
                claim_feed(Path(feed_dir), Path(warehouse))
            except FeedError as error:
                raise ConfigError(str(error)) from None
            logger.info("nightly run for business date %s", day)
            flow_to_run = nightly.with_task_runner(dask, dask_address, dask_workers)
            summary = flow_to_run(
                as_of=day,
                inbox=inbox,
                warehouse=warehouse,
                analytics_db=analytics_db,
                feed_dir=feed_dir,
                rules=rules_path,
                partitions=partitions,
                keep_snapshots=keep_snapshots,
            )
            # The served run's own state says what the nightly run's says
            # (`Published with rejections`); the summary stays its result.
            return cast("dict[str, Any]", nightly.final_state(summary))
    except (ConfigError, RunLocked) as error:
        logger.error("run for %s refused: %s", day, error)
        raise RunRefused(str(error)) from None


def schedule_for(cron: str, timezone: str) -> Schedule:
    """A Prefect cron schedule in a named time zone (bad values are ConfigError)."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {timezone!r} (an IANA name)") from None
    try:
        return Cron(cron, timezone=timezone)
    except ValueError:
        raise ConfigError(f"not a cron expression: {cron!r}") from None


def deployment_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments for `Flow.serve` / `Flow.to_deployment`, from `jvn serve`'s options.

    Paths become absolute: a served run starts in the runner's own folder.
    """
    parameters: dict[str, Any] = {
        "inbox": str(Path(arguments.inbox).resolve()),
        "warehouse": str(Path(arguments.warehouse).resolve()),
        "analytics_db": str(Path(arguments.analytics).resolve()),
        "feed_dir": str(Path(arguments.feed).resolve()),
        "rules": str(Path(arguments.rules).resolve()),
        "partitions": arguments.partitions,
        "keep_snapshots": arguments.keep_snapshots,
        "dask": arguments.dask,
        "dask_address": arguments.dask_address,
        "dask_workers": arguments.dask_workers,
    }
    return {
        "name": arguments.name,
        "schedule": schedule_for(arguments.cron, arguments.timezone),
        "parameters": parameters,
        "description": (
            f"jvn nightly run at {arguments.cron!r} {arguments.timezone}, for that day's "
            "business date in Europe/Stockholm (set as_of to rerun another date)"
        ),
        "tags": ["jvn"],
        "entrypoint_type": EntrypointType.MODULE_PATH,
    }


def build_deployment(arguments: argparse.Namespace) -> Any:
    """The deployment `jvn serve` serves, built but not registered (for checks and tests)."""
    return scheduled_nightly_run.to_deployment(**deployment_options(arguments))


def serve(arguments: argparse.Namespace) -> int:
    """`jvn serve`: check the configuration, then serve until interrupted."""
    from prefect.settings import PREFECT_API_URL

    options = deployment_options(arguments)
    check_configuration(
        Path(arguments.rules),
        warehouse=Path(arguments.warehouse),
        inbox=Path(arguments.inbox),
        analytics=Path(arguments.analytics),
        feed=Path(arguments.feed),
    )
    if not (PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL")):
        raise ConfigError(
            "jvn serve needs a Prefect server to keep its schedule: start one "
            "(`prefect server start`) and set PREFECT_API_URL (docs/operations.md); "
            "without a server, schedule `jvn run` with cron or a systemd timer"
        )
    print(
        f"serving deployment {SCHEDULED_FLOW_NAME}/{arguments.name}: "
        f"{arguments.cron!r} {arguments.timezone} (Ctrl-C stops)"
    )
    scheduled_nightly_run.serve(**options)
    return 0
