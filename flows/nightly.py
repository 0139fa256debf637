"""The nightly run as a Prefect flow: inbox -> warehouse -> decisions -> feed -> analytics.

Flows only wire I/O tasks to the pure transforms in `transforms/`. Every task
takes paths and plain values (never frames or connections), so Prefect records
nothing personal as a parameter, and each task opens the warehouse itself
(`build_analytics` hands back the analysts' database's open patch, which the
flow commits after go-live).

Stages, one way:
  prepare_deliveries      -> checked, parsed, adapted Parquet parts (per delivery; any worker)
  load_feed (per system)  -> record_versions / block_versions / quarantine / deliveries
  plan_partitions         -> full, or only the records new deliveries / block dates touched
  export_state            -> state Parquet, one folder per patient partition
  decide_partition (each) -> decided Parquet + feed Parquet, validated by pandera
                             (incremental: small partitions grouped into one task)
  store_decisions         -> warehouse `decisions`, every record id once
  publish                 -> the new snapshot, complete (files, manifest, change set), not live
  record run              -> decision history + run published, one transaction
  build_analytics         -> analytics.duckdb patched in an open transaction (or built
                             beside the old one), no personal data
  go_live                 -> CURRENT swapped atomically, logged in PUBLISHED; then the
                             analysts' database committed (or renamed into place)
Whatever fails before go_live is taken back: exit 1 always means the old feed is live.

In Prefect's UI each task run is named by what it does (`load melior`, `decide
partition 3 of 16`), the run summary is the run's artifact `jvn-run-summary`,
and a run that rejected deliveries ends `Published with rejections` (exit 3).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import paths
from flows.common.errors import (
    LocalFailure,
    RunFailed,
    messages_may_name,
    safe_message,
    sanitized,
)
from flows.common.faults import checkpoint
from flows.common.files import private_dir
from flows.common.warehouse import connect
from flows.common.words import plural
from flows.decide import distributed
from flows.decide.partition import (
    PartitionResult,
    decide_groups,
    decide_partitions,
    group_label,
)
from flows.load.batches import delivery_batches
from flows.load.inbox import DeliveryFolder, FileStamp, InboxListing, discover
from flows.load.ingest import (
    DeliveryOutcome,
    KnownDeliveries,
    known_deliveries_in,
    record_later,
    store_delivery,
)
from flows.load.prepare import PreparedDelivery, prepare_delivery, shared_parser
from flows.publish import analytics, feed
from flows.publish.run_summary import final_state, show_summary
from flows.publish.snapshot import assemble_snapshot
from flows.store import decisions, runs, state
from flows.store.state import PartitionPlan, dirty_record_ids
from transforms.canonical import FEEDS
from transforms.rules import load_rules

__all__ = ["RunFailed", "final_state", "nightly_run", "with_task_runner"]

THREAD_WORKERS = 2
"""Tasks the flow runs at once on this machine's threads (its default task runner)."""


@task(
    name="discover-inbox",
    task_run_name="list the inbox for {as_of}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
)
@sanitized
def discover_inbox(inbox: str, as_of: date) -> InboxListing:
    """List delivery folders in scope and those left for later (I/O: retried on a
    flaky file system)."""
    return discover(Path(inbox), as_of)


@task(name="known-deliveries", task_run_name="list deliveries loaded before", cache_policy=NO_CACHE)
@sanitized
def known_deliveries(warehouse: str) -> KnownDeliveries:
    """What the warehouse already holds: the folders loaded, the digests per system."""
    with connect(Path(warehouse)) as connection:
        return known_deliveries_in(connection)


@task(name="prepare-deliveries", task_run_name="prepare {label}", cache_policy=NO_CACHE)
@sanitized
def prepare_deliveries(
    label: str,
    deliveries: list[DeliveryFolder],
    work_dir: str,
    known_sha256: frozenset[str],
    known_stamps: frozenset[FileStamp] = frozenset(),
) -> list[PreparedDelivery]:
    """Check, parse and adapt deliveries' files into the work folder (no warehouse: runs
    on any worker that mounts the inbox and the work folder). `label` names the task run."""
    try:
        with shared_parser(Path(work_dir)) as parser:
            return [
                prepare_delivery(delivery, Path(work_dir), known_sha256, known_stamps, parser)
                for delivery in deliveries
            ]
    except LocalFailure as failure:
        # This machine failed, not the sender: nothing is recorded against the
        # delivery, and the next run loads it.
        raise RunFailed(f"{failure} while loading {label}") from None


@task(name="load-feed", task_run_name="load {feed_name}", cache_policy=NO_CACHE)
@sanitized
def load_feed(
    feed_name: str,
    deliveries: list[DeliveryFolder],
    prepared: list[PreparedDelivery],
    warehouse: str,
    work_dir: str,
    run_id: str,
) -> list[DeliveryOutcome]:
    """Store one system's prepared deliveries, oldest first, each in its own transaction
    (`prepared[i]` is `deliveries[i]`'s). Named `load-feed` as before the file side
    moved to `prepare-deliveries`: filters and automations match task names."""
    logger = get_run_logger()
    outcomes = []
    with connect(Path(warehouse)) as connection:
        for delivery, prepared_delivery in zip(deliveries, prepared, strict=True):
            try:
                outcome = store_delivery(
                    connection, delivery, prepared_delivery, run_id=run_id, work_dir=Path(work_dir)
                )
            except LocalFailure as failure:
                raise RunFailed(f"{failure} while loading {delivery.label}") from None
            if outcome.status == "rejected":
                logger.warning("delivery %s rejected: %s", outcome.label, outcome.error)
            elif outcome.status == "loaded":
                logger.info(
                    "delivery %s loaded: %s, %s quarantined",
                    outcome.label,
                    plural(outcome.records_loaded, "record"),
                    plural(outcome.rows_quarantined, "row"),
                )
            outcomes.append(outcome)
    return outcomes


def load_deliveries(
    deliveries: list[DeliveryFolder],
    warehouse: str,
    work_dir: str,
    run_id: str,
    in_flight: int,
) -> list[DeliveryOutcome]:
    """Prepare deliveries on the task runner, at most `in_flight` batches at a time, and
    store each system's in this process, in load order (systems in order, each
    oldest first), while the next batches are prepared.

    Preparing (checksum, parse, adapt) needs no warehouse, so it runs on workers;
    storing needs the warehouse's one writer, so it stays here, and overlaps the
    preparing of the batches after it.
    """
    known = known_deliveries(warehouse)
    batches = delivery_batches(deliveries, known.folders)
    futures: list[Any] = []
    taken = 0  # batches whose prepared deliveries the flow has taken, in order

    def keep_in_flight() -> None:
        # Never more than `in_flight` batches submitted and not yet taken: each one
        # holds a DuckDB parse and an adapter slice in memory while it runs.
        while len(futures) < len(batches) and len(futures) - taken < in_flight:
            batch = batches[len(futures)]
            futures.append(
                prepare_deliveries.submit(
                    batch.label,
                    batch.deliveries,
                    work_dir,
                    known.sha256.get(batch.feed, frozenset()),
                    known.stamps.get(batch.feed, frozenset()),
                )
            )

    outcomes: list[DeliveryOutcome] = []
    try:
        for feed_name in FEEDS:
            prepared: dict[str, PreparedDelivery] = {}
            # Batches come system by system, so this system's are the next ones.
            while taken < len(batches) and batches[taken].feed == feed_name:
                keep_in_flight()
                ready = futures[taken].result()
                prepared.update(
                    zip(
                        (delivery.label for delivery in batches[taken].deliveries),
                        ready,
                        strict=True,
                    )
                )
                taken += 1
            if not prepared:
                continue
            keep_in_flight()  # the next system's first batches prepare while this one stores
            own = sorted(
                (delivery for delivery in deliveries if delivery.feed == feed_name),
                key=lambda delivery: delivery.business_date,
            )
            outcomes.extend(
                load_feed(
                    feed_name,
                    own,
                    [prepared[delivery.label] for delivery in own],
                    warehouse,
                    work_dir,
                    run_id,
                )
            )
    except Exception:
        # Nothing may still be writing into the work folder when the run cleans it up
        # (a stop by signal does not wait: the next run clears the folder).
        for future in futures:
            future.wait()
        raise
    return outcomes


@task(
    name="record-later-deliveries",
    task_run_name="record deliveries left for later",
    cache_policy=NO_CACHE,
)
@sanitized
def record_later_deliveries(warehouse: str, later: list[DeliveryFolder], run_id: str) -> None:
    """Record deliveries dated after as_of as left for later (not as seen: they load then)."""
    with connect(Path(warehouse)) as connection:
        for delivery in later:
            record_later(connection, delivery, run_id)


@task(name="plan-partitions", task_run_name="plan partitions", cache_policy=NO_CACHE)
@sanitized
def plan_partitions(
    warehouse: str, feed_dir: str, work_dir: str, as_of: date, partitions: int, rules_path: str
) -> PartitionPlan:
    """Decide everything, or only the records new deliveries or block dates touched."""
    rules = load_rules(Path(rules_path))
    return state.plan_partitions(
        Path(warehouse), Path(feed_dir), Path(work_dir), as_of, partitions, rules
    )


@task(name="export-state", task_run_name="export state on {as_of}", cache_policy=NO_CACHE)
@sanitized
def export_state(
    warehouse: str,
    as_of: date,
    partitions: int,
    work_dir: str,
    run_id: str,
    affected: list[int] | None = None,
) -> list[int]:
    """Write each record's state on as_of, partitioned by patient; the partitions to decide."""
    return state.export_state(Path(warehouse), as_of, partitions, Path(work_dir), run_id, affected)


@task(
    name="decide-partition",
    task_run_name="decide {label}",
    cache_policy=NO_CACHE,
)
@sanitized
def decide_partition(
    label: str,
    partitions: list[int],
    work_dir: str,
    rules_path: str,
    as_of: date,
    run_id: str,
    previous_snapshot: str | None = None,
) -> list[PartitionResult]:
    """Decide, validate and stage the feed files of patient partitions (one on a full
    run; `label`, `partition 3 of 16`, names the task run)."""
    rules = load_rules(Path(rules_path))
    previous = Path(previous_snapshot) if previous_snapshot else None
    return decide_partitions(partitions, Path(work_dir), rules, as_of, run_id, previous)


@task(name="store-decisions", task_run_name="store decisions", cache_policy=NO_CACHE)
@sanitized
def store_decisions(warehouse: str, work_dir: str) -> None:
    """Replace the decisions this run made, in one transaction; every record id once."""
    decisions.store_decisions(Path(warehouse), Path(work_dir))


@task(
    name="publish-feed",
    task_run_name="publish snapshot",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=2,
)
@sanitized
def publish(
    feed_dir: str,
    work_dir: str,
    snapshot_name: str,
    manifest_fields: dict[str, Any],
    keep: int,
    plan: PartitionPlan,
    decided_partitions: list[int] | None = None,
) -> str:
    """Assemble the new snapshot, complete in its final folder, not yet live (`keep` is
    go-live's: old snapshots are pruned only once the new one is live)."""
    return assemble_snapshot(
        Path(feed_dir), Path(work_dir), snapshot_name, manifest_fields, plan, decided_partitions
    )


@task(name="go-live", task_run_name="go live", cache_policy=NO_CACHE)
@sanitized
def go_live(feed_dir: str, snapshot_name: str, keep: int) -> None:
    """Swap CURRENT to the complete snapshot, log it, prune old snapshots."""
    feed.go_live(Path(feed_dir), snapshot_name)
    feed.prune_snapshots(Path(feed_dir), keep)


@task(
    name="build-analytics",
    task_run_name="build analytics",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=2,
)
@sanitized
def build_analytics(
    warehouse: str,
    analytics_path: str,
    work_dir: str,
    run_id: str,
    previous_run: str | None,
) -> analytics.InPlace | analytics.Renamed:
    """The analysts' database (no personal data), patched in place or built beside the
    live one, to be installed once the feed is live (`flows/publish/analytics.py`)."""
    checkpoint("analytics")
    return analytics.prepare(
        Path(warehouse),
        Path(analytics_path),
        run_id=run_id,
        previous_run=previous_run,
        only_records=dirty_record_ids(work_dir),
    )


@flow(
    name="jvn-nightly",
    validate_parameters=True,
    # Partitions are decided two at a time by default: each holds its rows in
    # memory, and polars already uses every core inside one. `--dask` swaps
    # this for a Dask cluster.
    task_runner=ThreadPoolTaskRunner(max_workers=THREAD_WORKERS),  # type: ignore[arg-type]
)
def nightly_run(
    as_of: date,
    inbox: str,
    warehouse: str,
    analytics_db: str,
    feed_dir: str,
    rules: str,
    partitions: int = 16,
    keep_snapshots: int = 7,
    deliveries_in_flight: int = 1,
    workers: int = THREAD_WORKERS,
) -> dict[str, Any]:
    """Load every new delivery up to `as_of`, decide, validate, publish, record.

    `deliveries_in_flight`: batches of deliveries prepared at a time (1 on this
    machine's threads: one parse, beside the flow storing the previous system;
    a Dask cluster's worker count there). Each holds a DuckDB parse and an
    adapter slice in memory.

    `workers`: the tasks that run at once (the thread pool's, a Dask cluster's
    worker count), over which a night's partitions to decide are spread.

    The pseudonym key for the analysts' database is read from the environment
    inside the analytics stage, never passed as a parameter (Prefect stores
    parameters).
    """
    logger = get_run_logger()
    rule_set = load_rules(Path(rules))
    run_id = runs.new_run_id()
    summary = runs.RunSummary(
        run_id=run_id,
        as_of=as_of.isoformat(),
        rules_version=rule_set.rules_version,
        partitions=partitions,
    )
    work_root = private_dir(paths.work_root(Path(warehouse)))
    foreign = runs.clear_stale_work(work_root)
    if foreign:
        summary.warnings.append(
            f"the work folder {work_root} holds {foreign} entries the job did not make; "
            "they were left alone (only the job's own run folders are removed)"
        )
        logger.warning(summary.warnings[-1])
    work_dir = str(private_dir(work_root / run_id))
    messages_may_name(warehouse, analytics_db, feed_dir)
    stage = runs.StageClock(summary)
    recorded = live = False
    prepared: analytics.InPlace | analytics.Renamed | None = None
    try:
        feed.clean_stale_staging(Path(feed_dir))
        feed.remove_unpublished(Path(feed_dir))
        runs.reconcile_killed_runs(Path(warehouse), Path(feed_dir))
        runs.start_run(Path(warehouse), run_id, as_of, rule_set, Path(feed_dir))
        with stage("load"):
            listing = discover_inbox(inbox, as_of)
            deliveries = listing.deliveries
            summary.ignored_folders = listing.ignored
            for name in listing.ignored:
                logger.warning("inbox: %s", name)
            for folder, reason in listing.unreadable:
                # Its deliveries cannot even be listed: reported as rejected (exit 3).
                summary.deliveries_rejected.append({"delivery": folder, "error": reason})
                logger.warning("inbox: %s %s", folder, reason)
            summary.deliveries_later = [delivery.label for delivery in listing.later]
            for label in summary.deliveries_later:
                logger.warning("delivery %s left for later: dated after %s", label, as_of)
            if listing.later:
                record_later_deliveries(warehouse, listing.later, run_id)
            outcomes = load_deliveries(
                deliveries, warehouse, work_dir, run_id, deliveries_in_flight
            )
            runs.count_outcomes(summary, outcomes)
        with stage("state"):
            plan = plan_partitions(warehouse, feed_dir, work_dir, as_of, partitions, rules)
            summary.plan = plan.reason
            for warning in plan.warnings():
                summary.warnings.append(warning)
                logger.warning("feed: %s", warning)
            logger.info("plan: %s", plan.reason)
            partition_keys = export_state(
                warehouse, as_of, partitions, work_dir, run_id, affected=plan.affected
            )
        with stage("decide_and_validate"):
            logger.info("deciding %d patient partitions", len(partition_keys))
            previous = (
                str(Path(feed_dir) / plan.previous_snapshot)
                if plan.incremental and plan.previous_snapshot
                else None
            )
            groups = decide_groups(partition_keys, Path(work_dir), workers=workers)
            futures = [
                decide_partition.submit(
                    group_label(group, partitions), group, work_dir, rules, as_of, run_id, previous
                )
                for group in groups
            ]
            for future in futures:
                future.result()
            summary.partitions_decided = len(partition_keys)
        with stage("store_decisions"):
            store_decisions(warehouse, work_dir)
            count_decisions(warehouse, summary)
        with stage("publish"):
            snapshot_name = f"{as_of.isoformat()}_{run_id}"
            manifest_fields = {
                "run_id": run_id,
                "as_of": as_of.isoformat(),
                "rules_version": rule_set.rules_version,
                "partitions": partitions,
            }
            summary.snapshot = publish(
                feed_dir,
                work_dir,
                snapshot_name,
                manifest_fields,
                keep_snapshots,
                plan,
                partition_keys if plan.incremental else None,
            )
        with stage("record_run"):
            # Recorded before the swap, so that a failure here leaves the old feed
            # live; taken back below if anything fails before the swap completes.
            runs.finish_run(Path(warehouse), summary, status="published", work_dir=Path(work_dir))
            recorded = True
            checkpoint("finish")
        with stage("analytics"):
            prepared = build_analytics(warehouse, analytics_db, work_dir, run_id, plan.previous_run)
            analytics.check_replaceable(Path(analytics_db))
            runs.fill_report_lists(Path(warehouse), summary)
        with stage("go_live"):
            go_live(feed_dir, snapshot_name, keep_snapshots)
            live = True
        # The feed is live: from here on nothing may report "nothing published".
        with stage("analytics_install"):
            try:
                prepared.install()
            except analytics.INSTALL_ERRORS as error:
                summary.warnings.append(
                    f"the analysts' database was not replaced ({type(error).__name__}); "
                    "it still shows the previous run"
                )
        summary.status = "published"
        logger.info(
            "published %s: %d records, %d visible",
            summary.snapshot,
            summary.records,
            summary.visible,
        )
    except Exception as error:
        if live:
            raise
        message = safe_message(error)
        summary.status = "failed"
        if summary.snapshot:
            feed.discard_unpublished(Path(feed_dir), summary.snapshot)
        message += runs.record_failure(Path(warehouse), summary, message, undo=recorded)
        logger.error("run %s failed: %s", run_id, message)
        show_summary({**summary.as_dict(), "error": message})
        raise RunFailed(message) from None
    finally:
        if prepared is not None:
            prepared.discard()
        shutil.rmtree(work_dir, ignore_errors=True)
        messages_may_name()
    result = summary.as_dict()
    show_summary(result)
    # Prefect makes a State the flow returns its final state (the name and message
    # the UI shows) and hands the state's data to the caller: `jvn run` still gets
    # the summary.
    return cast("dict[str, Any]", final_state(result))


def count_decisions(warehouse: str, summary: runs.RunSummary) -> None:
    """Records and reasons over all partitions, reused ones included, into the summary."""
    summary.reasons = decisions.count_reasons(Path(warehouse))
    summary.records = sum(summary.reasons.values())
    summary.visible = summary.reasons.get("shown", 0)


def with_task_runner(
    dask: bool,
    dask_address: str | None,
    dask_workers: int,
    on_published: Callable[[], None] | None = None,
) -> Any:
    """The nightly flow, on a Dask cluster when asked (`--dask`, `--dask-address`).

    On a cluster, as many deliveries are prepared ahead as it has workers
    (`dask_workers`, also for a cluster at `dask_address`); on this machine's
    threads, one beside the store.

    `on_published` is called once the flow has completed (a completed run is a
    published one: every failure raises), before Prefect ends the flow run:
    `jvn run` asks for its report there, so that the report is written while
    the flow run ends. Prefect logs an error it raises; the run stays published.
    """
    runner = distributed.task_runner_for(dask, dask_address, dask_workers)
    options: dict[str, Any] = {}
    if runner is not None:
        options["task_runner"] = runner
    if on_published is not None:
        options["on_completion"] = [distributed.PublishedHook(on_published)]
    configured = nightly_run.with_options(**options) if options else nightly_run
    if runner is None:
        return configured
    return functools.partial(configured, deliveries_in_flight=dask_workers, workers=dask_workers)
