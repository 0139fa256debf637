"""The nightly run as a Prefect flow: inbox -> warehouse -> decisions -> feed -> analytics.

Flows only wire I/O tasks to the pure transforms in `transforms/`. Every task
takes paths and plain values (never frames or connections), so Prefect records
nothing personal as a parameter, and each task opens the warehouse itself.

Stages, one way:
  load_feed (per system)  -> record_versions / block_versions / quarantine / deliveries
  export_state            -> state Parquet, one folder per patient partition
  decide_partition (each) -> decided Parquet + feed Parquet, validated by pandera
  store_decisions         -> warehouse `decisions`, every record id once
  publish, then record    -> decision history + run published, one transaction
  publish                 -> feed snapshot + manifest, CURRENT swapped atomically
  build_analytics         -> analytics.duckdb rebuilt, no personal data
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import analytics, feed, history
from flows.inbox import DeliveryFolder, discover
from flows.ingest import DeliveryOutcome, load_delivery
from flows.sql import load_sql
from flows.warehouse import connect, private_dir
from transforms.canonical import FEEDS
from transforms.decide import decide
from transforms.rules import RuleSet, load_rules
from transforms.schemas import validate_decisions_batch, validate_feed_batch

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
    rows_quarantined: int = 0
    records_loaded: int = 0
    units_exempt_by_name_only: list[dict[str, Any]] = field(default_factory=list)
    unknown_codes: list[dict[str, Any]] = field(default_factory=list)
    ignored_folders: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id(as_of: date) -> str:
    """Sortable by start time, unique: `20261126T023000Z-1a2b3c`."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


@task(name="discover-inbox", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def discover_inbox(inbox: str, as_of: date) -> tuple[list[DeliveryFolder], list[str]]:
    """List delivery folders in scope (I/O: retried on a flaky file system)."""
    listing = discover(Path(inbox), as_of)
    return listing.deliveries, listing.ignored


@task(name="load-feed", cache_policy=NO_CACHE)
def load_feed(
    feed_name: str, deliveries: list[DeliveryFolder], warehouse: str, work_dir: str, run_id: str
) -> list[DeliveryOutcome]:
    """Load one system's deliveries, oldest first, each in its own transaction."""
    logger = get_run_logger()
    outcomes = []
    with connect(Path(warehouse)) as connection:
        for delivery in deliveries:
            outcome = load_delivery(connection, delivery, run_id=run_id, work_dir=Path(work_dir))
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


@task(name="export-state", cache_policy=NO_CACHE)
def export_state(
    warehouse: str, as_of: date, partitions: int, work_dir: str, run_id: str
) -> list[int]:
    """Write each record's state on as_of, partitioned by patient, and the blocks' state."""
    state_dir = Path(work_dir) / "state"
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    with connect(Path(warehouse)) as connection:
        parameters = {"as_of": as_of, "partitions": partitions}
        connection.execute(
            f"COPY ({load_sql('state/current_records')}) TO '{_sql_path(state_dir / 'records')}' "
            "(FORMAT parquet, PARTITION_BY (partition_key), COMPRESSION zstd)",
            parameters,
        )
        connection.execute(
            f"COPY ({load_sql('state/current_blocks')}) TO "
            f"'{_sql_path(state_dir / 'blocks.parquet')}' (FORMAT parquet)",
            {"as_of": as_of},
        )
        connection.execute(
            "INSERT INTO run_deliveries SELECT $run_id, delivery_id FROM deliveries "
            "WHERE status = 'loaded' AND business_date <= $as_of",
            {"run_id": run_id, "as_of": as_of},
        )
    records_dir = state_dir / "records"
    if not records_dir.exists():
        return []
    return sorted(int(path.name.split("=", 1)[1]) for path in records_dir.glob("partition_key=*"))


@task(name="decide-partition", cache_policy=NO_CACHE)
def decide_partition(
    partition: int, work_dir: str, rules_path: str, as_of: date, run_id: str
) -> PartitionResult:
    """Decide, validate and stage the feed file of one patient partition."""
    rules = load_rules(Path(rules_path))
    return decide_partition_with(partition, Path(work_dir), rules, as_of, run_id)


def decide_partition_with(
    partition: int, work_dir: Path, rules: RuleSet, as_of: date, run_id: str
) -> PartitionResult:
    """The body of `decide_partition`, callable without Prefect (and by Dask workers)."""
    state_dir = work_dir / "state"
    records = pl.scan_parquet(
        state_dir / "records" / f"partition_key={partition}" / "*.parquet",
        hive_partitioning=False,
    ).with_columns(partition_key=pl.lit(partition, dtype=pl.Int32))
    blocks = pl.scan_parquet(state_dir / "blocks.parquet")
    decided = (
        decide(records, blocks, rules, as_of)
        .with_columns(run_id=pl.lit(run_id))
        .sort("record_id")
        .collect()
    )
    for batch in decided.iter_slices(VALIDATION_BATCH_ROWS):
        validate_decisions_batch(batch)
    visible = decided.filter(pl.col("visible"))
    for batch in visible.select(*feed.FEED_COLUMNS, "visible").iter_slices(VALIDATION_BATCH_ROWS):
        validate_feed_batch(batch)
    decisions_dir = private_dir(work_dir / "decisions")
    decided.select(DECISION_COLUMNS).write_parquet(
        decisions_dir / f"part-{partition:04d}.parquet", compression="zstd"
    )
    feed_file = None
    if visible.height:
        feed_file = f"part-{partition:04d}.parquet"
        visible.select(feed.FEED_COLUMNS).write_parquet(
            private_dir(work_dir / "feed") / feed_file, compression="zstd", statistics=True
        )
    reasons = Counter(dict(decided.group_by("reason").len().iter_rows()))
    return PartitionResult(
        partition=partition,
        records=decided.height,
        visible=visible.height,
        reasons={str(k): int(v) for k, v in reasons.items()},
        feed_file=feed_file,
    )


@task(name="store-decisions", cache_policy=NO_CACHE)
def store_decisions(warehouse: str, work_dir: str) -> None:
    """Replace the warehouse's decisions in one transaction; every record id once."""
    decisions_glob = str(Path(work_dir) / "decisions" / "*.parquet")
    has_files = any((Path(work_dir) / "decisions").glob("*.parquet"))
    with connect(Path(warehouse)) as connection:
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute("DELETE FROM decisions")
            if has_files:
                connection.execute(
                    "INSERT INTO decisions BY NAME SELECT * FROM read_parquet($files)",
                    {"files": decisions_glob},
                )
            duplicated = connection.execute(
                "SELECT count(*) - count(DISTINCT record_id) FROM decisions"
            ).fetchone()
            if duplicated and duplicated[0]:
                raise RunFailed(f"validation failed: {duplicated[0]} record ids decided twice")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


@task(name="publish-feed", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def publish(
    feed_dir: str, work_dir: str, snapshot_name: str, manifest_fields: dict[str, Any], keep: int
) -> str:
    """Move the staged feed files into a new snapshot and make it live."""
    feed_path = Path(feed_dir)
    staged = feed.staging_dir(feed_path, snapshot_name)
    produced = Path(work_dir) / "feed"
    if produced.exists():
        for path in sorted(produced.glob("*.parquet")):
            shutil.move(str(path), staged / path.name)
    feed.publish_snapshot(feed_path, staged, snapshot_name, manifest_fields)
    feed.prune_snapshots(feed_path, keep)
    return snapshot_name


@task(name="build-analytics", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def build_analytics(warehouse: str, analytics_path: str) -> None:
    """Rebuild the analysts' database from the warehouse (no personal data)."""
    analytics.rebuild(Path(warehouse), Path(analytics_path))


@flow(name="jvn-nightly", validate_parameters=True)
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
    run_id = new_run_id(as_of)
    summary = RunSummary(
        run_id=run_id, as_of=as_of.isoformat(), rules_version=rule_set.rules_version
    )
    work_dir = str(private_dir(private_dir(Path(warehouse).parent / "work") / run_id))
    feed.clean_stale_staging(Path(feed_dir))
    with connect(Path(warehouse)) as connection:
        connection.execute(
            "INSERT INTO runs (run_id, as_of, rules_version, rules_sha256, started_at, status) "
            "VALUES ($run_id, $as_of, $rules_version, $sha, $now, 'running')",
            {
                "run_id": run_id,
                "as_of": as_of,
                "rules_version": rule_set.rules_version,
                "sha": rule_set.content_sha256,
                "now": datetime.now(UTC),
            },
        )
    try:
        deliveries, ignored = discover_inbox(inbox, as_of)
        summary.ignored_folders = ignored
        for name in ignored:
            logger.warning("inbox: %s", name)
        for feed_name in FEEDS:
            own = [d for d in deliveries if d.feed == feed_name]
            if own:
                _count_outcomes(summary, load_feed(feed_name, own, warehouse, work_dir, run_id))
        partition_keys = export_state(warehouse, as_of, partitions, work_dir, run_id)
        logger.info("deciding %d patient partitions", len(partition_keys))
        results = [decide_partition(key, work_dir, rules, as_of, run_id) for key in partition_keys]
        for result in results:
            summary.records += result.records
            summary.visible += result.visible
            for reason, count in result.reasons.items():
                summary.reasons[reason] = summary.reasons.get(reason, 0) + count
        store_decisions(warehouse, work_dir)
        snapshot_name = f"{as_of.isoformat()}_{run_id}"
        manifest_fields = {
            "run_id": run_id,
            "as_of": as_of.isoformat(),
            "rules_version": rule_set.rules_version,
            "rows_per_system": _rows_per_system(work_dir),
        }
        summary.snapshot = publish(
            feed_dir, work_dir, snapshot_name, manifest_fields, keep_snapshots
        )
        _finish_run(warehouse, summary, status="published")
        build_analytics(warehouse, analytics_db)
        _fill_report_lists(warehouse, summary)
        summary.status = "published"
        logger.info(
            "published %s: %d records, %d visible",
            summary.snapshot,
            summary.records,
            summary.visible,
        )
    except Exception as error:
        message = safe_message(error)
        summary.status = "failed"
        _finish_run(warehouse, summary, status="failed", message=message)
        logger.error("run %s failed: %s", run_id, message)
        raise RunFailed(message) from None
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return summary.as_dict()


def safe_message(error: BaseException) -> str:
    """An error message that cannot carry personal data.

    Our own exceptions are written to be safe; anything else (a library error
    may quote a value) is reduced to its type.
    """
    from flows.reader import DeliveryFileError
    from transforms.rules import RuleFileError
    from transforms.schemas import ValidationFailed

    safe_types = (RunFailed, ValidationFailed, RuleFileError, DeliveryFileError, feed.FeedError)
    if isinstance(error, safe_types):
        return str(error)
    return f"internal error ({type(error).__name__}); see the operator guide"


def _count_outcomes(summary: RunSummary, outcomes: list[DeliveryOutcome]) -> None:
    for outcome in outcomes:
        if outcome.status == "loaded":
            summary.deliveries_loaded += 1
            summary.records_loaded += outcome.records_loaded
            summary.rows_quarantined += outcome.rows_quarantined
        elif outcome.status == "already_loaded":
            summary.deliveries_already_loaded += 1
        elif outcome.status == "duplicate":
            summary.deliveries_duplicate += 1
        else:
            summary.deliveries_rejected.append(
                {"delivery": outcome.label, "error": outcome.error or ""}
            )


def _rows_per_system(work_dir: str) -> dict[str, int]:
    produced = Path(work_dir) / "feed"
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


def _finish_run(
    warehouse: str, summary: RunSummary, *, status: str, message: str | None = None
) -> None:
    """Close the run's record; a published run also extends the decision history."""
    with connect(Path(warehouse)) as connection:
        connection.execute("BEGIN TRANSACTION")
        if status == "published":
            summary.changes = history.record_history(connection, run_id=summary.run_id)
        connection.execute(
            """UPDATE runs SET ended_at = $now, status = $status, snapshot = $snapshot,
               records = $records, visible = $visible, deliveries_loaded = $loaded,
               deliveries_rejected = $rejected, rows_quarantined = $quarantined,
               exit_code = $exit_code, message = $message
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
