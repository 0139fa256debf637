"""The nightly run as a Prefect flow: inbox -> warehouse -> decisions -> feed -> analytics.

Flows only wire I/O tasks to the pure transforms in `transforms/`. Every task
takes paths and plain values (never frames or connections), so Prefect records
nothing personal as a parameter, and each task opens the warehouse itself.

Stages, one way:
  load_feed (per system)  -> record_versions / block_versions / quarantine / deliveries
  plan_partitions         -> full, or only the records new deliveries / block dates touched
  export_state            -> state Parquet, one folder per patient partition
  decide_partition (each) -> decided Parquet + feed Parquet, validated by pandera
  store_decisions         -> warehouse `decisions`, every record id once
  publish                 -> the new snapshot, complete (files, manifest, change set), not live
  record run              -> decision history + run published, one transaction
  build_analytics         -> the new analytics.duckdb beside the old one, no personal data
  go_live                 -> CURRENT swapped atomically, logged in PUBLISHED
Whatever fails before go_live is taken back: exit 1 always means the old feed is live.
"""

from __future__ import annotations

import errno
import functools
import os
import resource
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows import analytics, diff, feed, history, paths
from flows.faults import checkpoint
from flows.inbox import DeliveryFolder, InboxListing, discover
from flows.ingest import DeliveryOutcome, load_delivery, record_later
from flows.reader import LocalFailure
from flows.sql import load_sql
from flows.warehouse import (
    WORK_FILE_COMPRESSION,
    WarehouseBusy,
    connect,
    first_row,
    private_dir,
)
from transforms.canonical import FEEDS
from transforms.decide import decide
from transforms.rules import RuleSet, load_rules
from transforms.schemas import validate_decisions_batch, validate_feed_batch

P = ParamSpec("P")
R = TypeVar("R")

VALIDATION_BATCH_ROWS = 250_000

DECISION_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source_system",
    "record_version",
    "patient_id",
    "care_unit_hsa_id",
    "care_unit_name",
    "info_type",
    "source_code",
    "documented_date",
    "visible",
    "reason",
    "reasons",
    "exempt_unit_by_name_only",
    "rules_version",
    "run_id",
    "partition_key",
)


class RunFailed(Exception):
    """The run stopped; nothing was published. The message is safe to log."""


def _sanitized(function: Callable[P, R]) -> Callable[P, R]:
    """Re-raise any error of a task as RunFailed with a message safe to log.

    Prefect stores a failed task's exception text in its logs, events and
    state messages; a library's error can quote a value (a personnummer, a line
    of journal text), so only our own, safe, messages may pass.
    """

    @functools.wraps(function)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except RunFailed:
            raise
        except Exception as error:
            raise RunFailed(safe_message(error)) from None

    return guarded


@dataclass
class PartitionResult:
    """What deciding one patient partition produced."""

    partition: int
    records: int
    visible: int
    reasons: dict[str, int]
    feed_file: str | None


@dataclass
class RunSummary:
    """What a run did, for the operator's summary and the exit status."""

    run_id: str
    as_of: str
    rules_version: str
    status: str = "running"
    snapshot: str | None = None
    records: int = 0
    visible: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    deliveries_loaded: int = 0
    deliveries_already_loaded: int = 0
    deliveries_rejected: list[dict[str, str]] = field(default_factory=list)
    deliveries_duplicate: int = 0
    deliveries_later: list[str] = field(default_factory=list)
    """Deliveries dated after as_of, left for a later run (`melior/2026-11-27`)."""
    rows_quarantined: int = 0
    rows_quarantined_without_id: int = 0
    """Quarantined rows whose record id could not be read: their records may still show
    an older version (nothing names the record to hide)."""
    records_loaded: int = 0
    units_exempt_by_name_only: list[dict[str, Any]] = field(default_factory=list)
    unknown_codes: list[dict[str, Any]] = field(default_factory=list)
    ignored_folders: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)
    plan: str = ""
    partitions: int = 0
    partitions_decided: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_peak_rss_mib: dict[str, int] = field(default_factory=dict)
    """This process's peak resident memory so far at the end of each stage: the stage
    where it first reaches its maximum is where the run's memory peaks."""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    """Sortable by start time, unique: `20261126T023000Z-1a2b3c`."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@task(name="discover-inbox", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
@_sanitized
def discover_inbox(inbox: str, as_of: date) -> InboxListing:
    """List delivery folders in scope and those left for later (I/O: retried on a
    flaky file system)."""
    return discover(Path(inbox), as_of)


@task(name="load-feed", cache_policy=NO_CACHE)
@_sanitized
def load_feed(
    feed_name: str, deliveries: list[DeliveryFolder], warehouse: str, work_dir: str, run_id: str
) -> list[DeliveryOutcome]:
    """Load one system's deliveries, oldest first, each in its own transaction."""
    logger = get_run_logger()
    outcomes = []
    with connect(Path(warehouse)) as connection:
        for delivery in deliveries:
            try:
                outcome = load_delivery(
                    connection, delivery, run_id=run_id, work_dir=Path(work_dir)
                )
            except LocalFailure as failure:
                # This machine failed, not the sender: nothing is recorded against
                # the delivery, and the next run loads it.
                raise RunFailed(f"{failure} while loading {delivery.label}") from None
            if outcome.status == "rejected":
                logger.warning("delivery %s rejected: %s", outcome.label, outcome.error)
            elif outcome.status == "loaded":
                logger.info(
                    "delivery %s loaded: %d records, %d rows quarantined",
                    outcome.label,
                    outcome.records_loaded,
                    outcome.rows_quarantined,
                )
            outcomes.append(outcome)
    return outcomes


@task(name="record-later-deliveries", cache_policy=NO_CACHE)
@_sanitized
def record_later_deliveries(warehouse: str, later: list[DeliveryFolder], run_id: str) -> None:
    """Record deliveries dated after as_of as left for later (not as seen: they load then)."""
    with connect(Path(warehouse)) as connection:
        for delivery in later:
            record_later(connection, delivery, run_id)


DIRTY_RECORDS_FILE = "dirty_records.parquet"
"""In a run's work folder: the record ids an incremental run decides anew."""


@dataclass(frozen=True)
class PartitionPlan:
    """What this run decides anew; everything else is kept from `previous_snapshot`."""

    dirty_records: int | None
    """How many records are decided anew (their ids in DIRTY_RECORDS_FILE); None: all."""
    affected: list[int]
    """Incremental: the partitions the dirty records were in (their files are rebuilt)."""
    previous_snapshot: str | None
    reason: str
    previous_run: str | None = None
    unavailable_parts: dict[str, str] = field(default_factory=dict)
    """Parts of the live snapshot that are missing or damaged (name -> which): never
    reused or read; the run rebuilds every partition and says so."""
    previous_ids_known: bool = True
    """With unavailable parts: whether the warehouse could say which records they
    held (UNAVAILABLE_PREVIOUS_FILE), so the change set still lists them."""

    @property
    def incremental(self) -> bool:
        return self.dirty_records is not None

    def warnings(self) -> list[str]:
        """What the operator must hear about parts the run could not reuse."""
        if not self.unavailable_parts:
            return []
        listed = ", ".join(
            f"{name} {state}" for name, state in sorted(self.unavailable_parts.items())
        )
        change_set = (
            "its change set lists their records as changed or disappeared"
            if self.previous_ids_known
            else "its change set is a full reload (since_snapshot empty)"
        )
        return [
            f"the live snapshot's parts could not be reused ({listed}): every partition "
            f"was decided anew; {change_set}; run `jvn verify` on the old snapshot"
        ]


@task(name="plan-partitions", cache_policy=NO_CACHE)
@_sanitized
def plan_partitions(
    warehouse: str, feed_dir: str, work_dir: str, as_of: date, partitions: int, rules_path: str
) -> PartitionPlan:
    """Decide everything, or only the records new deliveries or block dates touched.

    Keeping the rest is safe only when nothing but the deliveries and the date
    moved since the previous published run, whose snapshot is still the live one
    and whose decisions are still the warehouse's.
    """
    rules = load_rules(Path(rules_path))
    live = feed.live_snapshot(Path(feed_dir))
    # Every part of the live snapshot is checked against its manifest before
    # anything reuses it (hard links) or reads it (kept rows, the change set).
    unavailable = feed.unavailable_parts(live) if live is not None else {}
    ids_known = True

    def full(reason: str) -> PartitionPlan:
        return PartitionPlan(
            None, [], None, reason, unavailable_parts=unavailable, previous_ids_known=ids_known
        )

    with connect(Path(warehouse)) as connection:
        if live is not None and unavailable:
            ids_known = _write_unavailable_previous_ids(connection, live, unavailable, work_dir)
        previous = first_row(
            connection,
            "SELECT run_id, as_of, rules_version, partitions, snapshot FROM runs "
            "WHERE status = 'published' ORDER BY run_seq DESC LIMIT 1",
        )
        if previous is None:
            return full("first run")
        run_id, previous_as_of, rules_version, previous_partitions, snapshot = previous
        if live is None or live.name != snapshot:
            return full("the live feed is not the previous run's snapshot")
        if unavailable:
            return full(f"{len(unavailable)} parts of the live snapshot missing or damaged")
        if rules_version != rules.rules_version:
            return full("the rules changed")
        if previous_partitions != partitions:
            return full("the partition count changed")
        if as_of < previous_as_of:
            return full("a rerun for an earlier business date")
        if rules.unsigned_delay_days(as_of) != 0 or rules.unsigned_delay_days(previous_as_of) != 0:
            return full("an unsigned-entry delay is in force, so visibility moves with the date")
        if rules.release_delay_in_force(as_of) or rules.release_delay_in_force(previous_as_of):
            return full("a release delay is in force, so visibility moves with the date")
        stray = first_row(
            connection,
            "SELECT count(*) FROM decisions WHERE run_id NOT IN "
            "(SELECT run_id FROM runs WHERE status = 'published')",
        )
        if stray and stray[0]:
            return full("the warehouse holds decisions of an unpublished run")
        dirty_path = Path(work_dir) / DIRTY_RECORDS_FILE
        connection.execute(
            f"COPY ({load_sql('state/dirty_records')}) TO '{_sql_path(dirty_path)}' "
            "(FORMAT parquet)",
            {"as_of": as_of, "previous_run": run_id, "previous_as_of": previous_as_of},
        )
        affected = connection.execute(
            "SELECT DISTINCT partition_key FROM decisions WHERE record_id IN "
            "(SELECT record_id FROM read_parquet($path)) ORDER BY partition_key",
            {"path": str(dirty_path)},
        ).fetchall()
    dirty = pl.scan_parquet(dirty_path).select(pl.len()).collect().item()
    return PartitionPlan(
        dirty_records=int(dirty),
        affected=[int(key) for (key,) in affected],
        previous_snapshot=snapshot,
        reason=f"{dirty} records touched since the previous run",
        previous_run=run_id,
    )


UNAVAILABLE_PREVIOUS_FILE = "unavailable_previous_ids.parquet"
"""In a run's work folder: ids of the records the live snapshot's unavailable parts held."""


def _write_unavailable_previous_ids(
    connection: Any, live: feed.LiveSnapshot, unavailable: dict[str, str], work_dir: str
) -> bool:
    """Write the ids the live snapshot's missing or damaged parts held; False if unknown.

    They are the records the warehouse's decision history shows as visible at
    the live snapshot's run, less those in its intact parts. The change set
    lists them as changed (when still shown) or disappeared, so a portal that
    applies it still drops what must no longer be shown.
    """
    row = first_row(
        connection,
        "SELECT run_seq FROM runs WHERE run_id = $run AND status = 'published' "
        "AND snapshot = $snapshot",
        {"run": str(live.manifest.get("run_id")), "snapshot": live.name},
    )
    if row is None or row[0] is None:
        return False
    intact = [
        str(live.path / str(entry["name"]))
        for name, entry in feed.part_entries(live).items()
        if name not in unavailable
    ]
    in_intact = (
        "AND record_id NOT IN (SELECT record_id FROM read_parquet($intact))" if intact else ""
    )
    target = Path(work_dir) / UNAVAILABLE_PREVIOUS_FILE
    connection.execute(
        f"""COPY (SELECT DISTINCT record_id FROM decision_history
                  WHERE visible AND from_seq <= $seq AND (to_seq IS NULL OR to_seq > $seq)
                  {in_intact}
                  ORDER BY record_id)
            TO '{_sql_path(target)}' (FORMAT parquet)""",
        {"seq": int(row[0]), **({"intact": intact} if intact else {})},
    )
    return True


def dirty_record_ids(work_dir: str | Path) -> list[str] | None:
    """The ids an incremental run decides anew, or None for a full run."""
    path = Path(work_dir) / DIRTY_RECORDS_FILE
    if not path.exists():
        return None
    return pl.read_parquet(path)["record_id"].to_list()


@task(name="export-state", cache_policy=NO_CACHE)
@_sanitized
def export_state(
    warehouse: str,
    as_of: date,
    partitions: int,
    work_dir: str,
    run_id: str | None,
    affected: list[int] | None = None,
) -> list[int]:
    """Write each record's state on as_of, partitioned by patient, and the blocks' state.

    An incremental run (a dirty-records file in `work_dir`) writes only those
    records. Returns the partitions to decide: those holding exported records,
    plus `affected` (partitions the records were in before, whose feed files
    must be rebuilt even if they now hold none of them). With `run_id` None
    (`jvn whatif`) the warehouse is only read: no run's deliveries are recorded.
    """
    state_dir = Path(work_dir) / "state"
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    with connect(Path(warehouse), read_only=run_id is None) as connection:
        parameters = {
            "as_of": as_of,
            "partitions": partitions,
            "only_records": dirty_record_ids(work_dir),
        }
        connection.execute(
            f"COPY ({load_sql('state/current_records')}) TO '{_sql_path(state_dir / 'records')}' "
            f"(FORMAT parquet, PARTITION_BY (partition_key), COMPRESSION {WORK_FILE_COMPRESSION})",
            parameters,
        )
        connection.execute(
            f"COPY ({load_sql('state/current_blocks')}) TO "
            f"'{_sql_path(state_dir / 'blocks.parquet')}' (FORMAT parquet)",
            {"as_of": as_of},
        )
        if run_id is not None:
            connection.execute(
                "INSERT INTO run_deliveries SELECT $run_id, delivery_id FROM deliveries "
                "WHERE status = 'loaded' AND business_date <= $as_of",
                {"run_id": run_id, "as_of": as_of},
            )
    checkpoint("export_state")
    records_dir = state_dir / "records"
    exported = (
        {int(path.name.split("=", 1)[1]) for path in records_dir.glob("partition_key=*")}
        if records_dir.exists()
        else set()
    )
    return sorted(exported | set(affected or []))


@task(name="decide-partition", cache_policy=NO_CACHE)
@_sanitized
def decide_partition(
    partition: int,
    work_dir: str,
    rules_path: str,
    as_of: date,
    run_id: str,
    previous_snapshot: str | None = None,
) -> PartitionResult:
    """Decide, validate and stage the feed file of one patient partition."""
    rules = load_rules(Path(rules_path))
    previous = Path(previous_snapshot) if previous_snapshot else None
    return decide_partition_with(partition, Path(work_dir), rules, as_of, run_id, previous)


def decide_partition_with(
    partition: int,
    work_dir: Path,
    rules: RuleSet,
    as_of: date,
    run_id: str,
    previous_snapshot: Path | None = None,
) -> PartitionResult:
    """The body of `decide_partition`, callable without Prefect (and by Dask workers).

    With `previous_snapshot` (an incremental run), the partition's feed file is
    the previous one's rows minus every record decided anew, plus the newly
    decided visible rows: exactly what deciding the whole partition would give.
    """
    state_dir = work_dir / "state"
    partition_dir = state_dir / "records" / f"partition_key={partition}"
    name = feed.part_name(partition)
    decided = None
    if partition_dir.exists():
        records = pl.scan_parquet(partition_dir / "*.parquet", hive_partitioning=False)
        blocks = pl.scan_parquet(state_dir / "blocks.parquet")
        decided = (
            decide(
                records.with_columns(partition_key=pl.lit(partition, dtype=pl.Int32)),
                blocks,
                rules,
                as_of,
            )
            .with_columns(run_id=pl.lit(run_id))
            .sort("record_id")
            .collect()
        )
        for batch in decided.iter_slices(VALIDATION_BATCH_ROWS):
            validate_decisions_batch(batch)
        decided.select(DECISION_COLUMNS).write_parquet(
            private_dir(work_dir / "decisions") / name, compression=WORK_FILE_COMPRESSION
        )
    checkpoint("decide")
    parts = []
    if decided is not None:
        parts.append(decided.filter(pl.col("visible")).select(feed.FEED_COLUMNS))
    previous_part = (
        feed.listed_part(previous_snapshot, name) if previous_snapshot is not None else None
    )
    if previous_part is not None:
        kept = pl.scan_parquet(previous_part).join(
            pl.scan_parquet(work_dir / DIRTY_RECORDS_FILE), on="record_id", how="anti"
        )
        parts.append(kept.collect())
    feed_rows = (
        pl.concat(parts).sort("record_id").rechunk()
        if parts
        else pl.DataFrame(schema=dict.fromkeys(feed.FEED_COLUMNS, pl.String))
    )
    for batch in feed_rows.with_columns(visible=pl.lit(True)).iter_slices(VALIDATION_BATCH_ROWS):
        validate_feed_batch(batch)
    feed_file = None
    if feed_rows.height:
        feed_file = name
        feed_rows.write_parquet(
            private_dir(work_dir / "feed") / feed_file, compression="zstd", statistics=True
        )
    reasons = (
        Counter(dict(decided.group_by("reason").len().iter_rows())) if decided is not None else {}
    )
    return PartitionResult(
        partition=partition,
        records=decided.height if decided is not None else 0,
        visible=feed_rows.height,
        reasons={str(k): int(v) for k, v in reasons.items()},
        feed_file=feed_file,
    )


@task(name="store-decisions", cache_policy=NO_CACHE)
@_sanitized
def store_decisions(warehouse: str, work_dir: str) -> None:
    """Replace the decisions this run made, in one transaction; every record id once.

    A full run replaces all; an incremental one the records it decided anew.
    """
    decisions_glob = str(Path(work_dir) / "decisions" / "*.parquet")
    has_files = any((Path(work_dir) / "decisions").glob("*.parquet"))
    dirty_path = Path(work_dir) / DIRTY_RECORDS_FILE
    with connect(Path(warehouse)) as connection:
        connection.execute("BEGIN TRANSACTION")
        try:
            if dirty_path.exists():
                connection.execute(
                    "DELETE FROM decisions WHERE record_id IN "
                    "(SELECT record_id FROM read_parquet($path))",
                    {"path": str(dirty_path)},
                )
            else:
                connection.execute("DELETE FROM decisions")
            if has_files:
                connection.execute(
                    "INSERT INTO decisions BY NAME SELECT * FROM read_parquet($files)",
                    {"files": decisions_glob},
                )
            duplicated = first_row(
                connection, "SELECT count(*) - count(DISTINCT record_id) FROM decisions"
            )
            if duplicated and duplicated[0]:
                raise RunFailed(f"validation failed: {duplicated[0]} record ids decided twice")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    checkpoint("store_decisions")


@task(name="publish-feed", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
@_sanitized
def publish(
    feed_dir: str,
    work_dir: str,
    snapshot_name: str,
    manifest_fields: dict[str, Any],
    keep: int,
    plan: PartitionPlan,
    decided_partitions: list[int] | None = None,
) -> str:
    """Assemble the new snapshot, complete in its final folder, not yet live.

    Partitions this run did not decide are hard links to the previous
    snapshot's files (checked against its manifest when the run was planned:
    an incremental plan means every one of them was intact): a quiet night
    rewrites few files, and the snapshot still reads as one complete folder.
    Record parts go to `records/`, whichever layout the previous snapshot had.
    """
    feed_path = Path(feed_dir)
    staged = feed.staging_dir(feed_path, snapshot_name)
    records = staged / feed.RECORDS_DIR
    produced = Path(work_dir) / "feed"
    if produced.exists():
        # Linked, not moved: a retried publish finds every file where it was.
        for path in sorted(produced.glob("*.parquet")):
            feed.link_or_copy(path, records / path.name)
    known: dict[str, dict[str, Any]] = {}
    if decided_partitions is not None and plan.previous_snapshot:
        previous = feed.live_snapshot(feed_path)
        if previous is None or previous.name != plan.previous_snapshot:
            raise RunFailed("the live snapshot changed while the run was deciding")
        redone = {feed.part_name(key) for key in decided_partitions}
        for name, entry in feed.part_entries(previous).items():
            if name not in redone:
                feed.link_or_copy(previous.path / str(entry["name"]), records / name)
                known[f"{feed.RECORDS_DIR}/{name}"] = entry
    manifest_fields = {**manifest_fields, "rows_per_system": _rows_per_system(str(records))}
    previous_live = feed.live_snapshot(feed_path)
    candidates = (
        dirty_record_ids(work_dir)
        if previous_live is not None and previous_live.name == plan.previous_snapshot
        else None
    )
    unavailable_ids = Path(work_dir) / UNAVAILABLE_PREVIOUS_FILE
    manifest_fields["change_set"] = diff.write_change_set(
        staged,
        previous_live,
        Path(work_dir),
        candidates,
        unavailable=set(plan.unavailable_parts),
        unavailable_ids=unavailable_ids if unavailable_ids.exists() else None,
    )
    feed.publish_snapshot(
        feed_path,
        staged,
        snapshot_name,
        manifest_fields,
        known_files=known,
        extra_files=(diff.CHANGE_SET_FILE,),
        make_live=False,
    )
    return snapshot_name


@task(name="go-live", cache_policy=NO_CACHE)
@_sanitized
def go_live(feed_dir: str, snapshot_name: str, keep: int) -> None:
    """Swap CURRENT to the complete snapshot, log it, prune old snapshots."""
    feed.go_live(Path(feed_dir), snapshot_name)
    feed.prune_snapshots(Path(feed_dir), keep)


@task(name="build-analytics", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
@_sanitized
def build_analytics(
    warehouse: str, analytics_path: str, work_dir: str, run_id: str, previous_run: str | None
) -> str:
    """Build the analysts' database beside the live one (no personal data); its path."""
    checkpoint("analytics")
    built = analytics.build(
        Path(warehouse),
        Path(analytics_path),
        run_id=run_id,
        previous_run=previous_run,
        only_records=dirty_record_ids(work_dir),
    )
    return str(built)


@flow(
    name="jvn-nightly",
    validate_parameters=True,
    # Partitions are decided two at a time by default: each holds its rows in
    # memory, and polars already uses every core inside one. `--dask` swaps
    # this for a Dask cluster.
    task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
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
) -> dict[str, Any]:
    """Load every new delivery up to `as_of`, decide, validate, publish, record.

    The pseudonym key for the analysts' database is read from the environment
    inside the analytics stage, never passed as a parameter (Prefect stores
    parameters).
    """
    logger = get_run_logger()
    rule_set = load_rules(Path(rules))
    run_id = new_run_id()
    summary = RunSummary(
        run_id=run_id,
        as_of=as_of.isoformat(),
        rules_version=rule_set.rules_version,
        partitions=partitions,
    )
    work_root = private_dir(paths.work_root(Path(warehouse)))
    foreign = clear_stale_work(work_root)
    if foreign:
        summary.warnings.append(
            f"the work folder {work_root} holds {foreign} entries the job did not make; "
            "they were left alone (only the job's own run folders are removed)"
        )
        logger.warning(summary.warnings[-1])
    work_dir = str(private_dir(work_root / run_id))
    _messages_may_name(warehouse, analytics_db, feed_dir)
    stage = _StageClock(summary)
    recorded = live = False
    try:
        feed.clean_stale_staging(Path(feed_dir))
        feed.remove_unpublished(Path(feed_dir))
        _reconcile_killed_runs(warehouse, feed_dir)
        with connect(Path(warehouse)) as connection:
            connection.execute(
                "INSERT INTO runs (run_id, as_of, rules_version, rules_sha256, started_at, "
                "status, feed) VALUES ($run_id, $as_of, $rules_version, $sha, $now, 'running', "
                "$feed)",
                {
                    "run_id": run_id,
                    "as_of": as_of,
                    "rules_version": rule_set.rules_version,
                    "sha": rule_set.content_sha256,
                    "now": datetime.now(UTC),
                    "feed": str(Path(feed_dir).resolve()),
                },
            )
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
            for feed_name in FEEDS:
                own = [d for d in deliveries if d.feed == feed_name]
                if own:
                    outcomes = load_feed(feed_name, own, warehouse, work_dir, run_id)
                    _count_outcomes(summary, outcomes)
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
            futures = [
                decide_partition.submit(key, work_dir, rules, as_of, run_id, previous)
                for key in partition_keys
            ]
            for future in futures:
                future.result()
            summary.partitions_decided = len(partition_keys)
        with stage("store_decisions"):
            store_decisions(warehouse, work_dir)
            _count_decisions(warehouse, summary)
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
            _finish_run(warehouse, summary, status="published", work_dir=work_dir)
            recorded = True
            checkpoint("finish")
        with stage("analytics"):
            built_analytics = build_analytics(
                warehouse, analytics_db, work_dir, run_id, plan.previous_run
            )
            analytics.check_replaceable(Path(analytics_db))
            _fill_report_lists(warehouse, summary)
        with stage("go_live"):
            go_live(feed_dir, snapshot_name, keep_snapshots)
            live = True
        # The feed is live: from here on nothing may report "nothing published".
        try:
            analytics.install(Path(built_analytics), Path(analytics_db))
        except OSError as error:
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
        message += _record_failure(warehouse, summary, message, undo=recorded)
        logger.error("run %s failed: %s", run_id, message)
        raise RunFailed(message) from None
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        _messages_may_name()
    return summary.as_dict()


def _record_failure(warehouse: str, summary: RunSummary, message: str, *, undo: bool) -> str:
    """Record the failed run; what to add to the message when even that fails.

    The failure must still be reported in one line (the cause is often the same:
    the warehouse held by another process, a full disk). The run's record then
    stays `running` (or `published` with a feed that never went live), and the
    next run closes it as killed and takes its history back.
    """
    try:
        _finish_run(warehouse, summary, status="failed", message=message, undo=undo)
    except Exception as error:
        cause = (
            "the warehouse is still held by another process"
            if isinstance(error, WarehouseBusy)
            else safe_message(error)
        )
        return (
            f"; this failure could not be recorded in the warehouse ({cause}): "
            "the next run records the run as killed"
        )
    return ""


def clear_stale_work(work_root: Path) -> int:
    """Remove the run folders a killed run left (staging files, personal data).

    The run holds the lock, so the job's own folders there are stale. Only
    folders with the job's own names (`paths.JOB_WORK_NAME`) are removed: an
    operator's files in the work folder are left alone. Returns how many
    entries were left.
    """
    foreign = 0
    for entry in work_root.iterdir():
        if entry.is_dir() and not entry.is_symlink() and paths.JOB_WORK_NAME.match(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            foreign += 1
    return foreign


class _StageClock:
    """`with stage("name"):` adds the stage's wall time and the peak memory so far to
    the summary (for benchmarks)."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = round(time.perf_counter() - started, 3)
            self.summary.stage_seconds[name] = elapsed
            # Linux reports ru_maxrss in KiB.
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.summary.stage_peak_rss_mib[name] = peak_kib // 1024


def _reconcile_killed_runs(warehouse: str, feed_dir: str) -> None:
    """Close the records of runs that were killed (this run holds the lock).

    A run still `running` died. A run recorded `published` to this feed whose
    snapshot never went live (it died between recording and the swap) did not
    publish: its decision history is taken back, so the audit trail matches
    what the portal showed.
    """
    feed_path = Path(feed_dir)
    went_live = set(feed.published_snapshots(feed_path))
    live = feed.live_snapshot(feed_path)
    if live is not None:
        went_live.add(live.name)
    with connect(Path(warehouse)) as connection:
        connection.execute(
            "UPDATE runs SET status = 'failed', ended_at = coalesce(ended_at, $now), "
            "exit_code = 1, message = 'the run was killed before it finished' "
            "WHERE status = 'running'",
            {"now": datetime.now(UTC)},
        )
        recorded = connection.execute(
            "SELECT run_id, snapshot FROM runs WHERE status = 'published' AND feed = $feed",
            {"feed": str(feed_path.resolve())},
        ).fetchall()
        for run_id, snapshot in recorded:
            if snapshot in went_live:
                continue
            connection.execute("BEGIN TRANSACTION")
            history.undo_run(connection, run_id=run_id)
            connection.execute(
                "UPDATE runs SET status = 'failed', exit_code = 1, "
                "message = 'killed after recording, before its feed went live' "
                "WHERE run_id = $run_id",
                {"run_id": run_id},
            )
            connection.execute("COMMIT")


def safe_message(error: BaseException) -> str:
    """An error message that cannot carry personal data.

    Our own exceptions are written to be safe; anything else (a library error
    may quote a value) is reduced to its type.
    """
    from flows.reader import DeliveryFileError
    from transforms.rules import RuleFileError
    from transforms.schemas import ValidationFailed

    safe_types = (
        RunFailed,
        ValidationFailed,
        RuleFileError,
        DeliveryFileError,
        feed.FeedError,
        WarehouseBusy,
    )
    if isinstance(error, safe_types):
        return str(error)
    what = type(error).__name__
    if isinstance(error, OSError) and error.errno:
        what += f" {errno.errorcode.get(error.errno, str(error.errno))}"
        named = [
            str(name)
            for name in (error.filename, error.filename2)
            if name is not None and _is_own_file(name)
        ]
        if named:
            what += " on " + " -> ".join(named)
    return f"internal error ({what}); see 'Internal errors' in docs/operations.md"


_own_places: list[Path] = []
"""The running job's own files and folders: an error's message may name a path
under these (they carry no personal data; a delivery's file names are the sender's)."""


def _messages_may_name(
    warehouse: str | None = None, analytics_db: str | None = None, feed_dir: str | None = None
) -> None:
    """Set (or, without arguments, clear) the paths an error message may name."""
    _own_places.clear()
    if warehouse and analytics_db and feed_dir:
        places = paths.job_places(
            warehouse=Path(warehouse), analytics=Path(analytics_db), feed=Path(feed_dir)
        )
        _own_places.extend(Path(os.path.abspath(p)) for group in places.values() for p in group)


def _is_own_file(name: str | bytes | int) -> bool:
    if not isinstance(name, str):
        return False
    path = Path(os.path.abspath(name))
    return any(path == place or place in path.parents for place in _own_places)


def _count_outcomes(summary: RunSummary, outcomes: list[DeliveryOutcome]) -> None:
    for outcome in outcomes:
        if outcome.status == "loaded":
            summary.deliveries_loaded += 1
            summary.records_loaded += outcome.records_loaded
            summary.rows_quarantined += outcome.rows_quarantined
            summary.rows_quarantined_without_id += outcome.rows_quarantined_without_id
        elif outcome.status == "already_loaded":
            summary.deliveries_already_loaded += 1
        elif outcome.status == "duplicate":
            summary.deliveries_duplicate += 1
        else:
            summary.deliveries_rejected.append(
                {"delivery": outcome.label, "error": outcome.error or ""}
            )


def _rows_per_system(folder: str) -> dict[str, int]:
    produced = Path(folder)
    if not produced.exists() or not any(produced.glob("*.parquet")):
        return {}
    counts = (
        pl.scan_parquet(produced / "*.parquet")
        .group_by("source_system")
        .len()
        .sort("source_system")
        .collect()
    )
    return {str(system): int(rows) for system, rows in counts.iter_rows()}


def _count_decisions(warehouse: str, summary: RunSummary) -> None:
    """Records and reasons over all partitions, reused ones included."""
    with connect(Path(warehouse)) as connection:
        rows = connection.execute(
            "SELECT reason, count(*) FROM decisions GROUP BY reason ORDER BY reason"
        ).fetchall()
    summary.reasons = {str(reason): int(count) for reason, count in rows}
    summary.records = sum(summary.reasons.values())
    summary.visible = summary.reasons.get("shown", 0)


def _finish_run(
    warehouse: str,
    summary: RunSummary,
    *,
    status: str,
    message: str | None = None,
    work_dir: str | None = None,
    undo: bool = False,
) -> None:
    """Close the run's record; a published run also extends the decision history.

    `undo`: the run had recorded its publication, but its feed never went live:
    its history is taken back in the same transaction that marks it failed.
    """
    with connect(Path(warehouse)) as connection:
        connection.execute("BEGIN TRANSACTION")
        if undo:
            history.undo_run(connection, run_id=summary.run_id)
        if status == "published":
            summary.changes = history.record_history(
                connection,
                run_id=summary.run_id,
                only_records=dirty_record_ids(work_dir) if work_dir else None,
            )
        connection.execute(
            """UPDATE runs SET ended_at = $now, status = $status, snapshot = $snapshot,
               records = $records, visible = $visible, deliveries_loaded = $loaded,
               deliveries_rejected = $rejected, rows_quarantined = $quarantined,
               exit_code = $exit_code, message = $message, partitions = $partitions,
               partitions_decided = $partitions_decided
               WHERE run_id = $run_id""",
            {
                "now": datetime.now(UTC),
                "status": status,
                "snapshot": summary.snapshot,
                "records": summary.records,
                "visible": summary.visible,
                "loaded": summary.deliveries_loaded,
                "rejected": len(summary.deliveries_rejected),
                "quarantined": summary.rows_quarantined,
                "exit_code": exit_code_for(summary, status),
                "message": message,
                "partitions": summary.partitions,
                "partitions_decided": summary.partitions_decided,
                "run_id": summary.run_id,
            },
        )
        connection.execute("COMMIT")


def exit_code_for(summary: RunSummary, status: str) -> int:
    """interfaces.md: 0 published, 3 published with rejected deliveries, 1 failed."""
    if status != "published":
        return 1
    return 3 if summary.deliveries_rejected else 0


def _fill_report_lists(warehouse: str, summary: RunSummary) -> None:
    with connect(Path(warehouse), read_only=True) as connection:
        units = connection.execute(load_sql("report/units_exempt_by_name_only")).fetchall()
        summary.units_exempt_by_name_only = [
            {"care_unit_hsa_id": hsa, "care_unit_name": name, "records": n}
            for hsa, name, n in units
        ]
        codes = connection.execute(load_sql("report/unknown_codes")).fetchall()
        summary.unknown_codes = [
            {"source_system": system, "source_code": code, "records": n}
            for system, code, n in codes
        ]


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
